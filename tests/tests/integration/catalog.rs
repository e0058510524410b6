//! Catalog API: external (SaaS) nodes and services, filters, deregistration, health.

use crate::http_util::*;
use integration_tests::harness::Node;
use serde_json::json;

#[test]
fn external_service_register_query_deregister() {
    let n = Node::dev();
    let r = put_json(
        &n,
        "/v1/catalog/register",
        &json!({
            "Node": "google", "Address": "www.google.com", "NodeMeta": {"external-node": "true", "env": "prod"},
            "Service": {"Service": "search", "Port": 443, "Tags": ["saas", "v1"]},
            "Check": {"CheckID": "search-ok", "Name": "search alive", "Status": "passing", "ServiceID": "search"}
        }),
    );
    assert_eq!((r.status, r.body.as_str()), (200, "true"));
    let svcs = get(&n, "/v1/catalog/services").json();
    assert_eq!(svcs["search"], json!(["saas", "v1"]));
    assert!(svcs.get("consul").is_none() || svcs["consul"].is_array());
    let s = get(&n, "/v1/catalog/service/search?tag=saas").json();
    assert_eq!(s[0]["Node"], "google");
    assert_eq!(s[0]["Address"], "www.google.com");
    assert_eq!(s[0]["ServicePort"], 443);
    assert_eq!(s[0]["ServiceID"], "search");
    assert_eq!(s[0]["NodeMeta"]["env"], "prod");
    assert_eq!(
        get(&n, "/v1/catalog/service/search?tag=nope").json(),
        json!([])
    );
    assert_eq!(
        get(&n, "/v1/catalog/service/search?tag=saas&tag=v1")
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let nodes = get(&n, "/v1/catalog/nodes?node-meta=env:prod").json();
    assert_eq!(nodes.as_array().unwrap().len(), 1);
    assert_eq!(nodes[0]["Node"], "google");
    assert_eq!(
        get(&n, "/v1/catalog/nodes")
            .json()
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let node = get(&n, "/v1/catalog/node/google").json();
    assert_eq!(node["Services"]["search"]["Port"], 443);
    let ns = get(&n, "/v1/catalog/node-services/google").json();
    assert_eq!(ns["Services"][0]["ID"], "search");
    assert_eq!(get(&n, "/v1/catalog/node/nobody").status, 404);
    let h = get(&n, "/v1/health/service/search?passing").json();
    assert_eq!(h[0]["Checks"][0]["CheckID"], "search-ok");
    assert_eq!(get(&n, "/v1/catalog/datacenters").json(), json!(["dc1"]));

    // service index only moves for its own service
    let idx = get(&n, "/v1/catalog/service/search").index();
    put_json(
        &n,
        "/v1/catalog/register",
        &json!({"Node": "other", "Address": "1.2.3.4", "Service": {"Service": "db"}}),
    );
    assert_eq!(get(&n, "/v1/catalog/service/search").index(), idx);

    let r = put_json(
        &n,
        "/v1/catalog/deregister",
        &json!({"Node": "google", "ServiceID": "search"}),
    );
    assert_eq!(r.body, "true");
    assert_eq!(get(&n, "/v1/catalog/service/search").json(), json!([]));
    put_json(&n, "/v1/catalog/deregister", &json!({"Node": "google"}));
    assert_eq!(get(&n, "/v1/catalog/node/google").status, 404);
}

#[test]
fn catalog_bad_input() {
    let n = Node::dev();
    let r = put(&n, "/v1/catalog/register", "{not json");
    assert_eq!(r.status, 400);
    assert!(r.body.starts_with("Request decode failed"), "{}", r.body);
    let r = put_json(&n, "/v1/catalog/register", &json!({"Address": "1.1.1.1"}));
    assert_eq!(r.status, 400);
    let r = put_json(
        &n,
        "/v1/catalog/register",
        &json!({"Node": "x", "Address": "1.1.1.1", "Service": {"Service": "s", "Port": "eighty"}}),
    );
    assert_eq!(r.status, 400);
    let r = put_json(
        &n,
        "/v1/catalog/register",
        &json!({"Node": "x", "Address": "1.1.1.1", "Check": {"CheckID": "c", "ServiceID": "ghost"}}),
    );
    assert_eq!(r.status, 500);
    assert_eq!(r.body, "Missing service registration");
    assert_eq!(
        get(&n, "/v1/catalog/node/x").status,
        404,
        "nothing written on a rejected registration"
    );
}

#[test]
fn health_state_and_checks() {
    let n = Node::dev();
    put_json(
        &n,
        "/v1/catalog/register",
        &json!({
            "Node": "ext", "Address": "10.1.1.1",
            "Service": {"Service": "api", "ID": "api1"},
            "Checks": [{"CheckID": "c1", "Name": "c1", "Status": "critical", "ServiceID": "api1"}]
        }),
    );
    let crit = get(&n, "/v1/health/state/critical").json();
    assert!(crit
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["CheckID"] == "c1"));
    assert_eq!(get(&n, "/v1/health/service/api?passing").json(), json!([]));
    assert_eq!(
        get(&n, "/v1/health/service/api")
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        get(&n, "/v1/health/checks/api").json()[0]["ServiceName"],
        "api"
    );
    assert_eq!(get(&n, "/v1/health/state/bogus").status, 400);
    let node = get(&n, "/v1/health/node/node1").json();
    assert_eq!(node[0]["CheckID"], "serfHealth");
}

#[test]
fn unknown_datacenter_is_refused() {
    let n = Node::dev();
    let r = get(&n, "/v1/catalog/nodes?dc=dc9");
    assert_eq!((r.status, r.body.as_str()), (500, "No path to datacenter"));
    let r = put(&n, "/v1/kv/x?dc=dc9", "v");
    assert_eq!((r.status, r.body.as_str()), (500, "No path to datacenter"));
    assert_eq!(get(&n, "/v1/catalog/nodes?dc=dc1").status, 200);
}

/// Repeated health reads (answered from the agent's read cache while nothing changed) see
/// every write at once, and each token its own answer.
#[test]
fn repeated_health_reads_see_every_write() {
    let n = Node::dev();
    let reg = |node: &str, status: &str| {
        let body = serde_json::json!({"Node": node, "Address": "10.1.1.1",
            "Service": {"Service": "cached", "Port": 1},
            "Check": {"CheckID": "c", "Name": "c", "ServiceID": "cached", "Status": status}});
        assert_eq!(
            put(&n, "/v1/catalog/register", body.to_string()).status,
            200
        );
    };
    let count = |path: &str| get(&n, path).json().as_array().unwrap().len();
    reg("a", "passing");
    for _ in 0..3 {
        assert_eq!(count("/v1/health/service/cached?passing"), 1);
    }
    reg("b", "passing");
    assert_eq!(count("/v1/health/service/cached?passing"), 2);
    reg("b", "critical");
    assert_eq!(count("/v1/health/service/cached?passing"), 1);
    assert_eq!(count("/v1/health/service/cached"), 2);
    let r1 = get(&n, "/v1/health/service/cached");
    let r2 = get(&n, "/v1/health/service/cached?pretty");
    assert_eq!(r1.index(), r2.index());
    assert!(
        r2.body.contains("\n  "),
        "?pretty is part of the cached answer's key"
    );
    assert_eq!(
        count("/v1/health/service/cached?filter=Node.Node%20%3D%3D%20a"),
        1
    );
}
