//! Network coordinates: members measure round trips, the catalog keeps every node's
//! coordinate, `?near=` sorts by estimated RTT, `rtt` estimates between nodes, and the WAN
//! coordinates of each datacenter are listed.

use crate::http_util::*;
use integration_tests::harness::{wait_until, Node, NodeOptions};
use serde_json::json;
use std::time::Duration;

#[test]
fn coordinates_near_sorting_and_rtt() {
    let s = Node::start(NodeOptions {
        name: Some("co-s".into()),
        ..Default::default()
    });
    let c1 = Node::start(NodeOptions {
        name: Some("co-c1".into()),
        client: true,
        extra: vec![
            format!("-retry-join={}", s.serf),
            "-retry-interval=1s".into(),
        ],
        ..Default::default()
    });
    let c2 = Node::start(NodeOptions {
        name: Some("co-c2".into()),
        client: true,
        extra: vec![
            format!("-retry-join={}", s.serf),
            "-retry-interval=1s".into(),
        ],
        ..Default::default()
    });
    wait_until(
        Duration::from_secs(30),
        "coordinates of all three nodes",
        || (get(&s, "/v1/coordinate/nodes").json().as_array()?.len() == 3).then_some(()),
    );
    let one = get(&c1, "/v1/coordinate/node/co-c2").json();
    assert_eq!(one[0]["Coord"]["Vec"].as_array().unwrap().len(), 8);
    assert_eq!(get(&s, "/v1/coordinate/node/nobody").status, 404);

    // near=_agent puts the asking node first
    for n in [&c1, &c2] {
        put_json(
            n,
            "/v1/agent/service/register",
            &json!({"Name": "spread", "Port": 1}),
        );
    }
    let h = get(&c2, "/v1/health/service/spread?near=_agent").json();
    assert_eq!(h[0]["Node"]["Node"], "co-c2", "{h}");
    let h = get(&c1, "/v1/catalog/service/spread?near=_agent").json();
    assert_eq!(h[0]["Node"], "co-c1", "{h}");
    let nodes = get(&s, "/v1/catalog/nodes?near=co-c1").json();
    assert_eq!(nodes[0]["Node"], "co-c1");

    // a prepared query with Near = _agent answers the local instance first
    let c = reqwest::blocking::Client::new();
    let r = c
        .post(c1.url("/v1/query"))
        .body(
            json!({"Name": "near-q", "Service": {"Service": "spread", "Near": "_agent"}})
                .to_string(),
        )
        .send()
        .unwrap();
    assert!(r.status().is_success());
    let e = get(&s, "/v1/query/near-q/execute").json();
    assert_eq!(e["Nodes"].as_array().unwrap().len(), 2);
    let (code, out, err) = c1.cli(&["rtt", "co-c2"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("Estimated co-c2 <-> co-c1 rtt: ")
            && out.contains("ms (using LAN coordinates)"),
        "{out}"
    );
    let (code, _, _) = c1.cli(&["rtt", "ghost"]);
    assert_eq!(code, 1);

    let dcs = get(&s, "/v1/coordinate/datacenters").json();
    assert_eq!(dcs[0]["Datacenter"], "dc1");
    assert_eq!(dcs[0]["AreaID"], "wan");
}
