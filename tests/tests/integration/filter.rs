//! `?filter=` on catalog, health and agent listings, and Consul's error for a bad expression.

use crate::http_util::*;
use integration_tests::harness::Node;
use serde_json::json;

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[test]
fn filters_on_catalog_health_and_agent() {
    let n = Node::dev();
    for (id, port, tags, env) in [
        ("web1", 80, vec!["rails", "v1"], "prod"),
        ("web2", 81, vec!["v2"], "dev"),
        ("web3", 82, vec!["rails"], "dev"),
    ] {
        put_json(
            &n,
            "/v1/agent/service/register",
            &json!({"ID": id, "Name": "web", "Port": port, "Tags": tags, "Meta": {"env": env}}),
        );
    }
    put_json(
        &n,
        "/v1/agent/check/register",
        &json!({"Name": "web3-ttl", "ServiceID": "web3", "TTL": "60s", "Status": "critical"}),
    );
    let ids = |v: serde_json::Value, key: &str| -> Vec<String> {
        let mut out: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.pointer(key).unwrap().as_str().unwrap().to_string())
            .collect();
        out.sort();
        out
    };
    let f = |e: &str| enc(e);
    assert_eq!(
        ids(
            get(
                &n,
                &format!(
                    "/v1/catalog/service/web?filter={}",
                    f("\"rails\" in ServiceTags")
                )
            )
            .json(),
            "/ServiceID"
        ),
        vec!["web1", "web3"]
    );
    assert_eq!(
        ids(
            get(
                &n,
                &format!(
                    "/v1/catalog/service/web?filter={}",
                    f("ServiceMeta.env == prod or ServicePort == 81")
                )
            )
            .json(),
            "/ServiceID"
        ),
        vec!["web1", "web2"]
    );
    assert_eq!(
        ids(
            get(
                &n,
                &format!(
                    "/v1/health/service/web?filter={}",
                    f("Checks.Status == critical")
                )
            )
            .json(),
            "/Service/ID"
        ),
        vec!["web3"]
    );
    assert_eq!(
        ids(
            get(
                &n,
                &format!(
                    "/v1/health/service/web?filter={}",
                    f("Service.Tags not contains rails and Service.Port == 81")
                )
            )
            .json(),
            "/Service/ID"
        ),
        vec!["web2"]
    );
    let svcs = get(
        &n,
        &format!("/v1/agent/services?filter={}", f("Meta.env == dev")),
    )
    .json();
    let mut keys: Vec<&String> = svcs.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, vec!["web2", "web3"]);
    assert_eq!(
        get(
            &n,
            &format!("/v1/catalog/nodes?filter={}", f("Node matches \"^node\""))
        )
        .json()
        .as_array()
        .unwrap()
        .len(),
        1
    );
    assert_eq!(
        get(
            &n,
            &format!("/v1/catalog/nodes?filter={}", f("Node == nobody"))
        )
        .json(),
        json!([])
    );
    let r = get(
        &n,
        &format!("/v1/catalog/service/web?filter={}", f("ServicePort ==")),
    );
    assert_eq!(r.status, 400);
    assert!(
        r.body
            .starts_with("Failed to create boolean expression evaluator"),
        "{}",
        r.body
    );
}
