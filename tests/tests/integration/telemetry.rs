//! `/v1/agent/metrics` (JSON and Prometheus) with Consul's metric names, and
//! `/v1/agent/monitor` streaming log lines at a level of its own.

use crate::http_util::*;
use integration_tests::harness::Node;
use std::io::Read;
use std::time::Duration;

#[test]
fn metrics_have_consul_names() {
    let n = Node::dev();
    put(&n, "/v1/kv/m", "1");
    let m = get(&n, "/v1/agent/metrics").json();
    let names = |section: &str| -> Vec<String> {
        m[section]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["Name"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(names("Gauges").contains(&"consul.runtime.alloc_bytes".to_string()));
    assert!(
        names("Samples").contains(&"consul.kvs.apply".to_string()),
        "{:?}",
        names("Samples")
    );
    assert!(names("Samples").contains(&"consul.api.http".to_string()));
    assert!(names("Counters").contains(&"consul.raft.apply".to_string()));
    let alloc = m["Gauges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["Name"] == "consul.runtime.alloc_bytes")
        .unwrap()["Value"]
        .as_f64()
        .unwrap();
    assert!(alloc > 1_000_000.0);
    let p = get(&n, "/v1/agent/metrics?format=prometheus");
    assert!(p.header("Content-Type").starts_with("text/plain"));
    assert!(
        p.body.contains("# TYPE consul_runtime_alloc_bytes gauge"),
        "{}",
        p.body
    );
    assert!(p.body.contains("consul_kvs_apply_count"));
}

#[test]
fn monitor_streams_logs_at_its_own_level() {
    let n = Node::dev();
    let url = n.url("/v1/agent/monitor?loglevel=debug");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut r = reqwest::blocking::Client::builder()
            .timeout(None)
            .build()
            .unwrap()
            .get(url)
            .send()
            .unwrap();
        let mut buf = [0u8; 4096];
        let mut acc = String::new();
        while let Ok(k) = r.read(&mut buf) {
            if k == 0 {
                break;
            }
            acc.push_str(&String::from_utf8_lossy(&buf[..k]));
            if tx.send(acc.clone()).is_err() {
                break;
            }
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    // generate log lines: a reload logs at info, and its work at debug
    put(&n, "/v1/agent/reload", "");
    let mut seen = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline && !seen.contains("monitor attached") {
        if let Ok(s) = rx.recv_timeout(Duration::from_millis(200)) {
            seen = s;
        }
    }
    assert!(
        seen.contains("monitor attached"),
        "no log lines streamed: {seen:?}"
    );
    assert!(seen.contains("[INFO]"), "{seen}");
    assert_eq!(get(&n, "/v1/agent/monitor?loglevel=loud").status, 400);
}
