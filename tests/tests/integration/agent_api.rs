//! Agent API: self, services and checks registered through the agent, TTL updates,
//! maintenance mode, local health, and what the catalog shows for them.

use crate::http_util::*;
use integration_tests::harness::{wait_until, Node, TIMEOUT};
use serde_json::json;
use std::time::Duration;

#[test]
fn agent_self_and_members() {
    let n = Node::dev();
    let s = get(&n, "/v1/agent/self").json();
    assert_eq!(s["Config"]["Datacenter"], "dc1");
    assert_eq!(s["Config"]["NodeName"], "node1");
    assert_eq!(s["Config"]["Server"], true);
    for path in [
        "/v1/agent/self",
        "/v1/agent/members",
        "/v1/agent/services",
        "/v1/agent/checks",
        "/v1/status/leader",
        "/v1/status/peers",
    ] {
        let r = get(&n, path);
        assert!(r.index() >= 1, "{path} carries X-Consul-Index");
        assert_eq!(r.header("X-Consul-KnownLeader"), "true", "{path}");
    }
    let m = get(&n, "/v1/agent/members").json();
    assert_eq!(m[0]["Name"], "node1");
    assert_eq!(m[0]["Status"], 1);
    assert!(get(&n, "/v1/agent/self?pretty").body.lines().count() > 5);
}

#[test]
fn service_with_ttl_check_lifecycle() {
    let n = Node::dev();
    // lower-case keys as Python clients send them; service ID containing a slash
    let r = put_json(
        &n,
        "/v1/agent/service/register",
        &json!({
            "name": "web", "id": "web/1", "port": 8080, "tags": ["rails"], "address": "127.0.0.1",
            "check": {"ttl": "30s", "check_id": "web-ttl", "name": "web ttl"}
        }),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let svcs = get(&n, "/v1/agent/services").json();
    assert_eq!(svcs["web/1"]["Port"], 8080);
    assert_eq!(get(&n, "/v1/agent/service/web/1").json()["Service"], "web");
    let checks = get(&n, "/v1/agent/checks").json();
    assert_eq!(
        checks["web-ttl"]["Status"], "critical",
        "checks start critical"
    );
    assert_eq!(checks["web-ttl"]["ServiceName"], "web");
    assert_eq!(get(&n, "/v1/health/service/web?passing").json(), json!([]));
    assert_eq!(get(&n, "/v1/agent/health/service/name/web").status, 503);

    assert_eq!(
        put(&n, "/v1/agent/check/pass/web-ttl?note=all+good", "").status,
        200
    );
    let h = get(&n, "/v1/health/service/web?passing").json();
    assert_eq!(h.as_array().unwrap().len(), 1);
    assert_eq!(h[0]["Service"]["ID"], "web/1");
    let c = h[0]["Checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["CheckID"] == "web-ttl")
        .unwrap()
        .clone();
    assert_eq!(c["Output"], "all good");
    assert_eq!(get(&n, "/v1/agent/health/service/id/web/1").status, 200);

    put(&n, "/v1/agent/check/warn/web-ttl", "");
    assert_eq!(
        get(&n, "/v1/agent/checks").json()["web-ttl"]["Status"],
        "warning"
    );
    assert_eq!(get(&n, "/v1/agent/health/service/name/web").status, 429);
    let r = put_json(
        &n,
        "/v1/agent/check/update/web-ttl",
        &json!({"Status": "passing", "Output": "fine"}),
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        get(&n, "/v1/agent/checks").json()["web-ttl"]["Output"],
        "fine"
    );
    let r = put_json(
        &n,
        "/v1/agent/check/update/web-ttl",
        &json!({"Status": "sideways"}),
    );
    assert_eq!(r.status, 400);
    put(&n, "/v1/agent/check/fail/web-ttl", "");
    assert_eq!(get(&n, "/v1/health/service/web?passing").json(), json!([]));
    assert_eq!(put(&n, "/v1/agent/check/pass/nosuch", "").status, 404);

    // maintenance mode hides the instance
    put(&n, "/v1/agent/check/pass/web-ttl", "");
    assert_eq!(
        put(
            &n,
            "/v1/agent/service/maintenance/web/1?enable=true&reason=upgrade",
            ""
        )
        .status,
        200
    );
    assert_eq!(get(&n, "/v1/health/service/web?passing").json(), json!([]));
    put(&n, "/v1/agent/service/maintenance/web/1?enable=false", "");
    assert_eq!(
        get(&n, "/v1/health/service/web?passing")
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    put(&n, "/v1/agent/maintenance?enable=true", "");
    let crit = get(&n, "/v1/health/state/critical").json();
    assert!(crit
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["CheckID"] == "_node_maintenance"));
    assert_eq!(get(&n, "/v1/health/service/web?passing").json(), json!([]));
    put(&n, "/v1/agent/maintenance?enable=false", "");
    assert_eq!(put(&n, "/v1/agent/maintenance", "").status, 400);

    assert_eq!(
        put(&n, "/v1/agent/service/deregister/web/1", "").status,
        200
    );
    assert_eq!(get(&n, "/v1/catalog/service/web").json(), json!([]));
    assert!(
        get(&n, "/v1/agent/checks").json().get("web-ttl").is_none(),
        "service checks go with it"
    );
    assert_eq!(
        put(&n, "/v1/agent/service/deregister/web/1", "").status,
        404
    );
    assert_eq!(
        request(&n, "GET", "/v1/agent/service/deregister/web").status,
        405
    );
}

#[test]
fn ttl_check_expires_to_critical() {
    let n = Node::dev();
    put_json(
        &n,
        "/v1/agent/check/register",
        &json!({"Name": "heartbeat", "TTL": "1s", "Status": "passing"}),
    );
    assert_eq!(
        get(&n, "/v1/agent/checks").json()["heartbeat"]["Status"],
        "passing"
    );
    wait_until(TIMEOUT, "TTL expiry", || {
        let c = get(&n, "/v1/agent/checks").json();
        (c["heartbeat"]["Status"] == "critical").then_some(())
    });
    let c = get(&n, "/v1/agent/checks").json();
    assert!(c["heartbeat"]["Output"]
        .as_str()
        .unwrap()
        .contains("TTL expired"));
    assert_eq!(
        put(&n, "/v1/agent/check/deregister/heartbeat", "").status,
        200
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(get(&n, "/v1/health/state/any")
        .json()
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["CheckID"] != "heartbeat"));
}

#[test]
fn agent_rejects_bad_definitions() {
    let n = Node::dev();
    let r = put(&n, "/v1/agent/service/register", "{\"Name\":");
    assert_eq!(r.status, 400);
    let r = put_json(&n, "/v1/agent/service/register", &json!({"Port": 80}));
    assert_eq!((r.status, r.body.as_str()), (400, "Missing service name"));
    let r = put_json(
        &n,
        "/v1/agent/check/register",
        &json!({"Name": "s", "Args": ["/bin/true"], "Interval": "10s"}),
    );
    assert_eq!(r.status, 400);
    assert!(r.body.contains("Scripts are disabled"), "{}", r.body);
    let r = put_json(
        &n,
        "/v1/agent/check/register",
        &json!({"Name": "c", "TTL": "5s", "ServiceID": "ghost"}),
    );
    assert_eq!(r.status, 404);
}

#[test]
fn health_service_blocking_query_wakes_on_registration() {
    let n = Node::dev();
    let idx = get(&n, "/v1/health/service/late").index();
    let http = n.http.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        reqwest::blocking::Client::new()
            .put(format!("{http}/v1/agent/service/register"))
            .body(json!({"Name": "late", "Port": 1}).to_string())
            .send()
            .unwrap();
    });
    let r = get(&n, &format!("/v1/health/service/late?index={idx}&wait=10s"));
    t.join().unwrap();
    assert!(r.index() > idx);
    assert_eq!(r.json().as_array().unwrap().len(), 1);
}
