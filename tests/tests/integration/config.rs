//! Config files: services and checks from a config dir (JSON and HCL, lexical order),
//! Consul keys we do not implement accepted, typos rejected with the key and file named,
//! and reload (HTTP and SIGHUP) applying changes.

use crate::http_util::*;
use integration_tests::harness::{wait_until, Node, NodeOptions, TIMEOUT};
use serde_json::json;

fn files(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn services_and_checks_from_config_dir() {
    let n = Node::start(NodeOptions {
        dev: true,
        config: files(&[
            (
                "10-web.json",
                r#"{"service": {"name": "web", "port": 80, "tags": ["rails"], "check": {"ttl": "30s"}}}"#,
            ),
            (
                "20-more.hcl",
                r#"
services {
  name = "db"
  id   = "db1"
  port = 5432
}
services {
  name = "cache"
  port = 6379
}
check {
  id   = "disk"
  name = "Disk"
  ttl  = "60s"
}
"#,
            ),
            (
                "30-consul-keys.json",
                r#"{"connect": {"enabled": true}, "telemetry": {"disable_hostname": true}, "ui_config": {"enabled": true}}"#,
            ),
            ("README.txt", "not a config file"),
        ]),
        ..Default::default()
    });
    let svcs = get(&n, "/v1/agent/services").json();
    assert_eq!(svcs["web"]["Port"], 80);
    assert_eq!(svcs["db1"]["Service"], "db");
    assert_eq!(svcs["cache"]["Port"], 6379);
    let checks = get(&n, "/v1/agent/checks").json();
    assert_eq!(checks["service:web"]["Type"], "ttl");
    assert_eq!(checks["disk"]["Name"], "Disk");
    // anti-entropy registers each service on its own: wait for all of them
    wait_until(TIMEOUT, "config services in the catalog", || {
        let all = get(&n, "/v1/catalog/services").json();
        (get(&n, "/v1/catalog/service/db").json().as_array()?.len() == 1
            && all["web"] == json!(["rails"])
            && all.get("cache").is_some())
        .then_some(())
    });
}

#[test]
fn typo_in_config_is_an_error_naming_key_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("web.json");
    std::fs::write(&f, r#"{"servie": {"name": "web"}}"#).unwrap();
    let out = Node::try_start(&[
        "agent",
        "-dev",
        "-http-port=0",
        "-dns-port=-1",
        "-server-port=0",
        "-config-file",
        f.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(err.contains("servie"), "{err}");
    assert!(err.contains("web.json"), "{err}");

    std::fs::write(&f, r#"{"service": {"name": "web", "prot": 80}}"#).unwrap();
    let out = Node::try_start(&[
        "agent",
        "-dev",
        "-http-port=0",
        "-dns-port=-1",
        "-server-port=0",
        "-config-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(err.contains("prot"), "{err}");

    std::fs::write(&f, "{ not json").unwrap();
    let out = Node::try_start(&[
        "agent",
        "-dev",
        "-http-port=0",
        "-dns-port=-1",
        "-server-port=0",
        "-config-file",
        f.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("web.json"));

    let out = Node::try_start(&["agent", "-bogus-flag"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bogus-flag"));
}

#[test]
fn reload_applies_new_definitions() {
    let mut n = Node::start(NodeOptions {
        dev: true,
        config: files(&[("a.json", r#"{"service": {"name": "first", "port": 1}}"#)]),
        ..Default::default()
    });
    let dir = n.config_dir();
    std::fs::write(
        dir.join("b.json"),
        r#"{"service": {"name": "second", "port": 2}}"#,
    )
    .unwrap();
    assert_eq!(put(&n, "/v1/agent/reload", "").status, 200);
    let svcs = get(&n, "/v1/agent/services").json();
    assert_eq!(svcs["second"]["Port"], 2);
    assert_eq!(
        get(&n, "/v1/catalog/service/second").json()[0]["ServicePort"],
        2
    );

    std::fs::remove_file(dir.join("a.json")).unwrap();
    n.signal("HUP");
    wait_until(TIMEOUT, "SIGHUP reload to drop `first`", || {
        get(&n, "/v1/catalog/service/first")
            .json()
            .as_array()?
            .is_empty()
            .then_some(())
    });
    // a broken file on reload is reported and the running config stays
    std::fs::write(dir.join("c.json"), "{").unwrap();
    let r = put(&n, "/v1/agent/reload", "");
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(get(&n, "/v1/agent/services").json()["second"]["Port"], 2);
    n.kill();
}
