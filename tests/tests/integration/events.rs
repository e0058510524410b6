//! User events: fired on one agent, received by the others through gossip, filtered by
//! node and service, listed with blocking queries.

use crate::http_util::*;
use base64::Engine;
use integration_tests::harness::{wait_until, Node, NodeOptions};
use serde_json::json;
use std::time::Duration;

#[test]
fn events_propagate_and_filter() {
    let s = Node::start(NodeOptions {
        name: Some("ev-s".into()),
        ..Default::default()
    });
    let c = Node::start(NodeOptions {
        name: Some("ev-c".into()),
        client: true,
        extra: vec![
            format!("-retry-join={}", s.serf),
            "-retry-interval=1s".into(),
        ],
        ..Default::default()
    });
    put_json(
        &c,
        "/v1/agent/service/register",
        &json!({"Name": "worker", "Tags": ["blue"]}),
    );
    let idx = get(&s, "/v1/event/list").index();
    let url = s.url(&format!("/v1/event/list?index={idx}&wait=10s"));
    let waiter = std::thread::spawn(move || {
        reqwest::blocking::get(url)
            .unwrap()
            .json::<serde_json::Value>()
            .unwrap()
    });
    std::thread::sleep(Duration::from_millis(200));
    let r = put(&c, "/v1/event/fire/deploy", "v1.2.3");
    assert_eq!(r.status, 200, "{}", r.body);
    let ev = r.json();
    assert_eq!(ev["Name"], "deploy");
    assert_eq!(
        ev["Payload"],
        base64::engine::general_purpose::STANDARD.encode("v1.2.3")
    );
    let woke = waiter.join().unwrap();
    assert!(
        woke.as_array().unwrap().iter().any(|e| e["ID"] == ev["ID"]),
        "blocking list woke with the event: {woke}"
    );
    assert_eq!(
        get(&c, "/v1/event/list?name=deploy")
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(get(&c, "/v1/event/list?name=other").json(), json!([]));

    // a node filter that matches only the server; a service filter that matches the client
    let only_server = put(&c, "/v1/event/fire/maint?node=^ev-s$", "").json();
    let only_workers = put(&s, "/v1/event/fire/restart?service=worker&tag=blue", "").json();
    wait_until(Duration::from_secs(10), "events delivered", || {
        let on_s = get(&s, "/v1/event/list").json();
        let on_c = get(&c, "/v1/event/list").json();
        let has = |v: &serde_json::Value, id: &serde_json::Value| {
            v.as_array().unwrap().iter().any(|e| &e["ID"] == id)
        };
        (has(&on_s, &only_server["ID"]) && has(&on_c, &only_workers["ID"])).then_some((on_s, on_c))
    });
    std::thread::sleep(Duration::from_millis(300));
    let on_s = get(&s, "/v1/event/list").json();
    let on_c = get(&c, "/v1/event/list").json();
    assert!(
        !on_c
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["ID"] == only_server["ID"]),
        "node filter excludes the client"
    );
    assert!(
        !on_s
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["ID"] == only_workers["ID"]),
        "service filter excludes the server"
    );
    assert_eq!(
        put(&s, "/v1/event/fire/x?node=(", "").status,
        400,
        "bad regex"
    );
}
