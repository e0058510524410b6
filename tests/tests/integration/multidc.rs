//! Two datacenters joined over the WAN pool: datacenter listing, `?dc=` forwarding from
//! clients and servers, KV kept per datacenter, unknown datacenters refused.

use crate::http_util::*;
use integration_tests::harness::{wait_until, Node, NodeOptions};
use serde_json::json;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(30);

#[test]
fn two_datacenters_over_wan() {
    let a = Node::start(NodeOptions {
        name: Some("a1".into()),
        ..Default::default()
    });
    let b = Node::start(NodeOptions {
        name: Some("b1".into()),
        extra: vec!["-datacenter=dc2".into()],
        ..Default::default()
    });
    let client = Node::start(NodeOptions {
        name: Some("ac".into()),
        client: true,
        extra: vec![
            format!("-retry-join={}", a.serf),
            "-retry-interval=1s".into(),
        ],
        ..Default::default()
    });
    assert!(!a.wan.is_empty(), "servers print their WAN address");
    assert_eq!(
        put(&b, &format!("/v1/agent/join/{}?wan=1", a.wan), "").status,
        200
    );
    wait_until(LONG, "both datacenters listed", || {
        (get(&client, "/v1/catalog/datacenters").json() == json!(["dc1", "dc2"])).then_some(())
    });
    assert_eq!(
        get(&b, "/v1/catalog/datacenters").json(),
        json!(["dc2", "dc1"])
    );
    assert_eq!(
        get(&a, "/v1/agent/members?wan=1")
            .json()
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // KV is per datacenter; ?dc= reaches the other one from a client of dc1
    assert_eq!(put(&client, "/v1/kv/where?dc=dc2", "in-dc2").body, "true");
    assert_eq!(get(&b, "/v1/kv/where?raw").body, "in-dc2");
    assert_eq!(get(&a, "/v1/kv/where").status, 404, "dc1 has its own KV");
    assert_eq!(get(&client, "/v1/kv/where?dc=dc2&raw").body, "in-dc2");

    // a service in dc2 is found from dc1
    put_json(
        &b,
        "/v1/agent/service/register",
        &json!({"Name": "db", "Port": 5432}),
    );
    let s = get(&client, "/v1/catalog/service/db?dc=dc2").json();
    assert_eq!(s[0]["Datacenter"], "dc2");
    assert_eq!(s[0]["ServicePort"], 5432);
    assert_eq!(
        get(&a, "/v1/health/service/db?dc=dc2&passing")
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(get(&a, "/v1/catalog/service/db").json(), json!([]));

    let r = get(&client, "/v1/catalog/nodes?dc=dc9");
    assert_eq!((r.status, r.body.as_str()), (500, "No path to datacenter"));
}
