//! Anti-entropy: the agent keeps its own services and checks in the catalog, repairing
//! drift (an outside deregistration, a stray registration for its node) and keeping API
//! registrations across a restart.

use crate::http_util::*;
use integration_tests::harness::{wait_until, Node, NodeOptions, TIMEOUT};
use serde_json::json;

fn fast_ae(dev: bool) -> Node {
    Node::start(NodeOptions {
        dev,
        extra: vec!["-hcl".into(), "ae_interval = \"1s\"".into()],
        ..Default::default()
    })
}

#[test]
fn catalog_drift_is_repaired() {
    let n = fast_ae(true);
    put_json(
        &n,
        "/v1/agent/service/register",
        &json!({"Name": "web", "Port": 80}),
    );
    assert_eq!(
        get(&n, "/v1/catalog/service/web")
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // someone removes it behind the agent's back
    put_json(
        &n,
        "/v1/catalog/deregister",
        &json!({"Node": "node1", "ServiceID": "web"}),
    );
    assert_eq!(get(&n, "/v1/catalog/service/web").json(), json!([]));
    wait_until(TIMEOUT, "anti-entropy to re-register web", || {
        (get(&n, "/v1/catalog/service/web").json().as_array()?.len() == 1).then_some(())
    });
    // a stray service registered for this node through the catalog is removed
    put_json(
        &n,
        "/v1/catalog/register",
        &json!({"Node": "node1", "Address": "127.0.0.1", "Service": {"Service": "stray"}}),
    );
    wait_until(TIMEOUT, "anti-entropy to remove the stray service", || {
        get(&n, "/v1/catalog/service/stray")
            .json()
            .as_array()?
            .is_empty()
            .then_some(())
    });
    // the whole node wiped from the catalog comes back with its checks
    put_json(&n, "/v1/catalog/deregister", &json!({"Node": "node1"}));
    wait_until(TIMEOUT, "node, service and serfHealth back", || {
        let ok = get(&n, "/v1/catalog/service/web").json().as_array()?.len() == 1
            && get(&n, "/v1/health/node/node1")
                .json()
                .as_array()?
                .iter()
                .any(|c| c["CheckID"] == "serfHealth");
        ok.then_some(())
    });
}

#[test]
fn api_registrations_survive_restart() {
    let mut n = fast_ae(false);
    put_json(
        &n,
        "/v1/agent/service/register",
        &json!({"Name": "api", "Port": 9000, "Check": {"TTL": "60s", "Status": "passing"}}),
    );
    n.kill();
    n.restart();
    assert_eq!(get(&n, "/v1/agent/services").json()["api"]["Port"], 9000);
    assert_eq!(
        get(&n, "/v1/agent/checks").json()["service:api"]["Status"],
        "passing"
    );
    // and the catalog still has it after a few anti-entropy rounds
    std::thread::sleep(std::time::Duration::from_millis(2500));
    assert_eq!(
        get(&n, "/v1/catalog/service/api")
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    put(&n, "/v1/agent/service/deregister/api", "");
    n.kill();
    n.restart();
    assert!(
        get(&n, "/v1/agent/services").json().get("api").is_none(),
        "deregistration is persisted too"
    );
    assert_eq!(get(&n, "/v1/catalog/service/api").json(), json!([]));
}
