//! Check runners against real local servers: HTTP (200/429/503), TCP, UDP, scripts (exit
//! codes, timeouts, huge output), gRPC health (grpcio's server), alias, the status
//! thresholds, and deregister_critical_service_after.

use crate::http_util::*;
use integration_tests::harness::{wait_until, Node, NodeOptions};
use serde_json::json;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

fn check_status(n: &Node, id: &str) -> (String, String) {
    let c = get(n, "/v1/agent/checks").json();
    (
        c[id]["Status"].as_str().unwrap_or("").to_string(),
        c[id]["Output"].as_str().unwrap_or("").to_string(),
    )
}

fn wait_status(n: &Node, id: &str, want: &str) -> String {
    wait_output(n, id, want, "")
}

/// Wait for a status whose output contains `text` (checks start critical with no output,
/// so a critical result is only told apart by its output).
fn wait_output(n: &Node, id: &str, want: &str, text: &str) -> String {
    wait_until(WAIT, &format!("{id} to be {want} with {text:?}"), || {
        let (s, o) = check_status(n, id);
        (s == want && o.contains(text)).then_some(o)
    })
}

/// A tiny HTTP server whose status code can be switched.
fn http_server() -> (String, Arc<AtomicU16>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let code = Arc::new(AtomicU16::new(200));
    let c = code.clone();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let c = c.clone();
            std::thread::spawn(move || {
                let mut s = s;
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                let code = c.load(Ordering::SeqCst);
                let body = format!("status {code}");
                let _ = write!(
                    s,
                    "HTTP/1.1 {code} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    (addr, code)
}

fn agent() -> Node {
    Node::start(NodeOptions {
        dev: true,
        extra: vec!["-enable-script-checks".into()],
        ..Default::default()
    })
}

#[test]
fn http_check_follows_the_server() {
    let n = agent();
    let (addr, code) = http_server();
    let r = put_json(
        &n,
        "/v1/agent/service/register",
        &json!({
            "Name": "web", "Port": 80,
            "Check": {"CheckID": "web-http", "HTTP": format!("http://{addr}/health"), "Interval": "1s", "Timeout": "2s"}
        }),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let out = wait_status(&n, "web-http", "passing");
    assert!(out.contains("200") && out.contains("status 200"), "{out}");
    assert_eq!(
        get(&n, "/v1/health/service/web?passing")
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    code.store(429, Ordering::SeqCst);
    wait_status(&n, "web-http", "warning");
    code.store(503, Ordering::SeqCst);
    wait_output(&n, "web-http", "critical", "503");
    assert_eq!(get(&n, "/v1/health/service/web?passing").json(), json!([]));
}

#[test]
fn tcp_and_udp_checks() {
    let n = agent();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp = l.local_addr().unwrap().to_string();
    put_json(
        &n,
        "/v1/agent/check/register",
        &json!({"Name": "tcp", "TCP": tcp, "Interval": "1s", "Timeout": "1s"}),
    );
    let out = wait_status(&n, "tcp", "passing");
    assert!(out.contains("Success"), "{out}");
    drop(l);
    wait_output(&n, "tcp", "critical", "dial tcp");

    let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp = u.local_addr().unwrap().to_string();
    put_json(
        &n,
        "/v1/agent/check/register",
        &json!({"Name": "udp", "UDP": udp, "Interval": "1s", "Timeout": "500ms"}),
    );
    wait_status(&n, "udp", "passing");
    drop(u);
    wait_output(&n, "udp", "critical", "udp");
}

#[test]
fn script_checks_exit_codes_timeouts_and_output() {
    let n = agent();
    for (name, script) in [
        ("s-ok", "echo fine"),
        ("s-warn", "echo meh; exit 1"),
        ("s-crit", "exit 2"),
    ] {
        let r = put_json(
            &n,
            "/v1/agent/check/register",
            &json!({"Name": name, "Args": ["sh", "-c", script], "Interval": "1s"}),
        );
        assert_eq!(r.status, 200, "{}", r.body);
    }
    assert!(wait_status(&n, "s-ok", "passing").contains("fine"));
    wait_status(&n, "s-warn", "warning");
    wait_output(&n, "s-crit", "critical", "");
    // legacy `script` key runs through a shell
    put_json(
        &n,
        "/v1/agent/check/register",
        &json!({"Name": "legacy", "Script": "test 1 -eq 1 && echo legacy-ok", "Interval": "1s"}),
    );
    assert!(wait_status(&n, "legacy", "passing").contains("legacy-ok"));

    // a hanging script times out while another keeps reporting; megabytes are truncated
    put_json(
        &n,
        "/v1/agent/check/register",
        &json!({"Name": "hang", "Args": ["sleep", "30"], "Interval": "1s", "Timeout": "1s"}),
    );
    put_json(
        &n,
        "/v1/agent/check/register",
        &json!({"Name": "flood", "Args": ["sh", "-c", "head -c 5000000 /dev/zero | tr '\\0' x"], "Interval": "1s"}),
    );
    wait_output(&n, "hang", "critical", "Timed out");
    let out = wait_status(&n, "flood", "passing");
    assert!(
        out.len() < 8 * 1024,
        "output is capped, got {} bytes",
        out.len()
    );
    assert_eq!(
        check_status(&n, "s-ok").0,
        "passing",
        "other checks are unaffected"
    );
    assert_eq!(
        get(&n, "/v1/agent/self").status,
        200,
        "the agent stays responsive"
    );
}

#[test]
fn thresholds_and_reaping() {
    let n = agent();
    put_json(
        &n,
        "/v1/agent/check/register",
        &json!({
            "Name": "slow-to-pass", "Args": ["true"], "Interval": "1s", "SuccessBeforePassing": 3
        }),
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        check_status(&n, "slow-to-pass").0,
        "critical",
        "not passing before 3 successes"
    );
    wait_status(&n, "slow-to-pass", "passing");

    put_json(
        &n,
        "/v1/agent/service/register",
        &json!({
            "Name": "doomed", "Port": 1,
            "Check": {"CheckID": "doomed-chk", "Args": ["sh", "-c", "exit 2"], "Interval": "1s", "DeregisterCriticalServiceAfter": "2s"}
        }),
    );
    wait_until(WAIT, "the critical service to be reaped", || {
        get(&n, "/v1/agent/services")
            .json()
            .get("doomed")
            .is_none()
            .then_some(())
    });
    // The catalog follows through anti-entropy, a moment after the local state.
    wait_until(WAIT, "the reaped service to leave the catalog", || {
        (get(&n, "/v1/catalog/service/doomed").json() == json!([])).then_some(())
    });
}

#[test]
fn alias_check_mirrors_a_service() {
    let n = agent();
    put_json(
        &n,
        "/v1/agent/service/register",
        &json!({"Name": "db", "Check": {"CheckID": "db-ttl", "TTL": "60s"}}),
    );
    put_json(
        &n,
        "/v1/agent/service/register",
        &json!({"Name": "app", "Check": {"CheckID": "app-alias", "AliasService": "db"}}),
    );
    wait_output(&n, "app-alias", "critical", "Aliased");
    put(&n, "/v1/agent/check/pass/db-ttl", "");
    wait_status(&n, "app-alias", "passing");
    put(&n, "/v1/agent/check/warn/db-ttl", "");
    wait_status(&n, "app-alias", "warning");
}

#[test]
fn grpc_health_check_against_grpcio() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = std::env::var("PRAETOR_COMPAT_PYTHON")
        .unwrap_or_else(|_| root.join(".venv-compat/bin/python").display().to_string());
    let server = r#"
import sys, time
from concurrent import futures
import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
s = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
h = health.HealthServicer()
health_pb2_grpc.add_HealthServicer_to_server(h, s)
port = s.add_insecure_port("127.0.0.1:0")
h.set("", health_pb2.HealthCheckResponse.SERVING)
h.set("billing", health_pb2.HealthCheckResponse.NOT_SERVING)
s.start()
print(port, flush=True)
time.sleep(120)
"#;
    let mut child = std::process::Command::new(&python)
        .args(["-c", server])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("{python}: {e} (scripts/deps.sh installs grpcio-health-checking)")
        });
    let mut line = String::new();
    {
        use std::io::BufRead;
        let mut r = std::io::BufReader::new(child.stdout.as_mut().unwrap());
        r.read_line(&mut line).unwrap();
    }
    let port: u16 = line.trim().parse().expect("grpc server port");
    let n = agent();
    put_json(
        &n,
        "/v1/agent/check/register",
        &json!({"Name": "grpc-ok", "GRPC": format!("127.0.0.1:{port}"), "Interval": "1s"}),
    );
    put_json(
        &n,
        "/v1/agent/check/register",
        &json!({"Name": "grpc-billing", "GRPC": format!("127.0.0.1:{port}/billing"), "Interval": "1s"}),
    );
    let ok = wait_status(&n, "grpc-ok", "passing");
    let bad = wait_output(&n, "grpc-billing", "critical", "NOT_SERVING");
    let _ = child.kill();
    let _ = child.wait();
    assert!(ok.contains("success"), "{ok}");
    assert!(bad.contains("NOT_SERVING"), "{bad}");
}
