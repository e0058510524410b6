//! The web UI in a real browser: headless Debian Chromium driven by playwright-core
//! (`tests/ui/ui_test.js`; `scripts/deps.sh` installs both).

use crate::http_util::*;
use integration_tests::harness::Node;
use std::path::PathBuf;
use std::process::Command;

#[test]
fn ui_in_headless_chromium() {
    let n = Node::dev();
    let ui = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("ui");
    let out = Command::new("node")
        .arg(ui.join("ui_test.js"))
        .arg(&n.http)
        .env("NODE_PATH", ui.join("node_modules"))
        .env("UI_SCREENSHOT", n.dir().join("ui.png"))
        .output()
        .expect("node (and tests/ui/node_modules from scripts/deps.sh)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("UI-OK"),
        "UI test failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn ui_acl_tokens_view_in_headless_chromium() {
    const MGMT: &str = "7e1a0f3c-2222-3333-4444-555555555555";
    let n = Node::start(integration_tests::harness::NodeOptions {
        dev: true,
        no_wait: true,
        config: vec![(
            "acl.json".into(),
            format!(
                r#"{{"acl": {{"enabled": true, "default_policy": "deny", "tokens": {{"initial_management": "{MGMT}"}}}}}}"#
            ),
        )],
        ..Default::default()
    });
    integration_tests::harness::wait_until(integration_tests::harness::TIMEOUT, "ACLs", || {
        let r = reqwest::blocking::Client::new()
            .get(n.url("/v1/acl/token/self"))
            .header("X-Consul-Token", MGMT)
            .send()
            .ok()?;
        (r.status() == 200).then_some(())
    });
    let ui = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("ui");
    let out = Command::new("node")
        .arg(ui.join("ui_acl_test.js"))
        .arg(&n.http)
        .arg(MGMT)
        .env("NODE_PATH", ui.join("node_modules"))
        .output()
        .expect("node (and tests/ui/node_modules from scripts/deps.sh)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("UI-ACL-OK"),
        "UI ACL test failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn ui_is_off_unless_enabled() {
    let n = Node::server();
    assert_eq!(get(&n, "/ui/").status, 404);
    let with_flag = Node::start(integration_tests::harness::NodeOptions {
        extra: vec!["-ui".into()],
        ..Default::default()
    });
    assert_eq!(get(&with_flag, "/ui/").status, 200, "-ui turns it on");
    let d = Node::dev();
    let page = get(&d, "/ui/");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<title>Praetor</title>"));
}
