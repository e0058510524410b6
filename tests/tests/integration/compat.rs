//! Real third-party clients against the real agent: py-consul (PyPI) and Debian's
//! python3-consul. `.ci/run` installs them (scripts/deps.sh); the interpreter comes from
//! `$PRAETOR_COMPAT_PYTHON` or `.venv-compat/bin/python` at the repository root.

use integration_tests::harness::Node;
use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run_script(python: &str, script: &str, n: &Node) {
    let addr = n.http.trim_start_matches("http://").to_string();
    let out = Command::new(python)
        .arg(root().join("tests/compat").join(script))
        .arg(&addr)
        .output()
        .unwrap_or_else(|e| {
            panic!("running {python}: {e} (install the compat clients with scripts/deps.sh)")
        });
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("ALL-OK"),
        "{script} failed:\n{stdout}\n{}\nagent log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        n.log()
    );
}

#[test]
fn py_consul_client_end_to_end() {
    let python = std::env::var("PRAETOR_COMPAT_PYTHON")
        .unwrap_or_else(|_| root().join(".venv-compat/bin/python").display().to_string());
    let n = Node::dev();
    run_script(&python, "py_consul_smoke.py", &n);
}

#[test]
fn debian_python3_consul_client_end_to_end() {
    let n = Node::dev();
    run_script("/usr/bin/python3", "python3_consul_smoke.py", &n);
}
