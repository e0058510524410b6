//! Durability: a single server with a data directory keeps every acknowledged write across
//! `kill -9` and restart, catalog and sessions included.

use crate::http_util::*;
use integration_tests::harness::{Node, NodeOptions};
use serde_json::json;

#[test]
fn acknowledged_writes_survive_kill_9() {
    let mut n = Node::server();
    for i in 0..200 {
        assert_eq!(
            put(&n, &format!("/v1/kv/durable/{i:03}"), format!("v{i}")).body,
            "true"
        );
    }
    put_json(
        &n,
        "/v1/catalog/register",
        &json!({"Node": "ext", "Address": "10.0.0.9", "Service": {"Service": "ext-svc", "Port": 9}}),
    );
    let sid = put_json(&n, "/v1/session/create", &json!({"Name": "keep"})).json()["ID"]
        .as_str()
        .unwrap()
        .to_string();
    let node_id = get(&n, "/v1/agent/self").json()["Config"]["NodeID"].clone();
    let before = get(&n, "/v1/kv/durable/?recurse").index();
    n.kill();
    n.restart();
    let r = get(&n, "/v1/kv/durable/?recurse");
    let entries = r.json();
    assert_eq!(
        entries.as_array().unwrap().len(),
        200,
        "every acknowledged write is back"
    );
    assert_eq!(entries[199]["Key"], "durable/199");
    assert!(r.index() >= before);
    assert_eq!(get(&n, "/v1/kv/durable/042?raw").body, "v42");
    assert_eq!(
        get(&n, "/v1/catalog/service/ext-svc").json()[0]["ServicePort"],
        9
    );
    assert_eq!(
        get(&n, &format!("/v1/session/info/{sid}")).json()[0]["Name"],
        "keep"
    );
    assert_eq!(
        get(&n, "/v1/agent/self").json()["Config"]["NodeID"],
        node_id,
        "node ID is persisted"
    );
    // and it keeps accepting writes
    assert_eq!(put(&n, "/v1/kv/after", "x").body, "true");
}

#[test]
fn many_writes_with_snapshots_then_restart() {
    // A low snapshot threshold so the writes cross it several times and the restart goes
    // through snapshot restore plus log replay (and purged logs).
    let mut n = Node::start(NodeOptions {
        extra: vec![
            "-hcl".into(),
            "raft_snapshot_threshold = 256".into(),
            "-hcl".into(),
            "raft_trailing_logs = 64".into(),
        ],
        ..Default::default()
    });
    let c = reqwest::blocking::Client::new();
    for i in 0..1500u32 {
        let r = c
            .put(n.url(&format!("/v1/kv/bulk/{}", i % 500)))
            .body(i.to_string())
            .send()
            .unwrap();
        assert!(r.status().is_success());
    }
    n.kill();
    n.restart();
    let entries = get(&n, "/v1/kv/bulk/?recurse").json();
    assert_eq!(entries.as_array().unwrap().len(), 500);
    // key i%500 last written with value 1000 + i (for i < 500)
    assert_eq!(get(&n, "/v1/kv/bulk/7?raw").body, "1007");
    let snap_dir = n.dir().join("data/raft");
    assert!(snap_dir.exists());
    // Log compaction keeps the log bounded: at most the snapshot threshold plus the trailing
    // logs (and the entries since the last snapshot) remain after 1500 writes.
    let num = |v: &serde_json::Value| v.as_str().unwrap().parse::<u64>().unwrap();
    let raft = get(&n, "/v1/agent/self").json()["Stats"]["raft"].clone();
    let (last, purged, snap) = (
        num(&raft["last_log_index"]),
        num(&raft["purged_index"]),
        num(&raft["last_snapshot_index"]),
    );
    assert!(snap >= 1024, "snapshots were taken: {raft}");
    assert!(purged > 0, "old log entries were purged: {raft}");
    assert!(last - purged <= 256 + 64 + 64, "log kept bounded: {raft}");
}
