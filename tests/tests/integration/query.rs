//! Prepared queries: CRUD, execute with tag exclusions and OnlyPassing, templates,
//! explain, DNS `.query.` lookups with the query's TTL, and failover to a second
//! datacenter when the first has no healthy instance.

use crate::http_util::*;
use integration_tests::harness::{wait_until, Node, NodeOptions};
use serde_json::json;
use std::process::Command;
use std::time::Duration;

fn register(n: &Node, body: serde_json::Value) {
    let r = put_json(n, "/v1/agent/service/register", &body);
    assert_eq!(r.status, 200, "{}", r.body);
}

fn post(n: &Node, path: &str, body: &serde_json::Value) -> Resp {
    let c = reqwest::blocking::Client::new();
    let r = c.post(n.url(path)).body(body.to_string()).send().unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    Resp {
        status,
        headers,
        body: r.text().unwrap(),
    }
}

fn ids(v: &serde_json::Value) -> Vec<String> {
    let mut out: Vec<String> = v["Nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["Service"]["ID"].as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

#[test]
fn prepared_query_crud_execute_templates_and_dns() {
    let n = Node::dev();
    register(
        &n,
        json!({"ID": "db1", "Name": "db", "Tags": ["primary"], "Port": 5432, "Address": "127.0.6.1"}),
    );
    register(
        &n,
        json!({"ID": "db2", "Name": "db", "Tags": ["primary", "canary"], "Port": 5432, "Address": "127.0.6.2"}),
    );
    register(
        &n,
        json!({"ID": "db3", "Name": "db", "Tags": ["primary"], "Port": 5432, "Address": "127.0.6.3", "Check": {"TTL": "60s", "Status": "warning"}}),
    );
    register(
        &n,
        json!({"ID": "east1", "Name": "db-east", "Tags": ["replica"], "Port": 1, "Address": "127.0.6.4"}),
    );

    let r = post(
        &n,
        "/v1/query",
        &json!({"Name": "prod-db", "Service": {"Service": "db", "Tags": ["primary", "!canary"], "OnlyPassing": true}, "DNS": {"TTL": "10s"}}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let id = r.json()["ID"].as_str().unwrap().to_string();
    assert_eq!(get(&n, "/v1/query").json().as_array().unwrap().len(), 1);
    assert_eq!(
        get(&n, &format!("/v1/query/{id}")).json()[0]["Name"],
        "prod-db"
    );
    let by_name = get(&n, "/v1/query/prod-db/execute").json();
    assert_eq!(
        ids(&by_name),
        vec!["db1"],
        "canary excluded, warning excluded by OnlyPassing"
    );
    assert_eq!(by_name["Datacenter"], "dc1");
    assert_eq!(by_name["DNS"]["TTL"], "10s");
    assert_eq!(
        ids(&get(&n, &format!("/v1/query/{id}/execute")).json()),
        vec!["db1"]
    );

    // update: without OnlyPassing the warning instance comes back
    let r = put_json(
        &n,
        &format!("/v1/query/{id}"),
        &json!({"Name": "prod-db", "Service": {"Service": "db", "Tags": ["!canary"]}, "DNS": {"TTL": "10s"}}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        ids(&get(&n, "/v1/query/prod-db/execute").json()),
        vec!["db1", "db3"]
    );

    // DNS
    let (host, port) = n.dns.rsplit_once(':').unwrap();
    let dig = |args: &[&str]| {
        let out = Command::new("dig")
            .args([&format!("@{host}"), "-p", port, "+time=2", "+tries=1"])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let a = dig(&["+noall", "+answer", "prod-db.query.consul"]);
    assert!(
        a.contains("127.0.6.1") && a.contains("127.0.6.3") && !a.contains("127.0.6.2"),
        "{a}"
    );
    assert!(a.contains("\t10\tIN\tA"), "the query's DNS TTL: {a}");
    let srv = dig(&["+short", "_prod-db._tcp.query.consul", "SRV"]);
    assert_eq!(srv.lines().count(), 2, "{srv}");

    // template
    let r = post(
        &n,
        "/v1/query",
        &json!({
            "Name": "geo-", "Template": {"Type": "name_prefix_match", "Regexp": "^geo-(.+)$"},
            "Service": {"Service": "db-${match(1)}"}
        }),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let e = get(&n, "/v1/query/geo-east/execute").json();
    assert_eq!(e["Service"], "db-east");
    assert_eq!(ids(&e), vec!["east1"]);
    assert_eq!(
        get(&n, "/v1/query/geo-east/explain").json()["Query"]["Service"]["Service"],
        "db-east"
    );
    let a = dig(&["+short", "geo-east.query.consul"]);
    assert_eq!(a.trim(), "127.0.6.4");

    // errors and delete
    assert_eq!(post(&n, "/v1/query", &json!({"Name": "bad"})).status, 400);
    assert_eq!(
        post(
            &n,
            "/v1/query",
            &json!({"Name": "prod-db", "Service": {"Service": "x"}})
        )
        .status,
        400,
        "names are unique"
    );
    assert_eq!(get(&n, "/v1/query/nope/execute").status, 404);
    assert_eq!(delete(&n, &format!("/v1/query/{id}")).status, 200);
    assert_eq!(get(&n, &format!("/v1/query/{id}")).status, 404);
}

#[test]
fn failover_to_a_second_datacenter() {
    let a = Node::start(NodeOptions {
        name: Some("qa".into()),
        ..Default::default()
    });
    let b = Node::start(NodeOptions {
        name: Some("qb".into()),
        extra: vec!["-datacenter=dc2".into()],
        ..Default::default()
    });
    assert_eq!(
        put(&b, &format!("/v1/agent/join/{}?wan=1", a.wan), "").status,
        200
    );
    wait_until(Duration::from_secs(30), "both datacenters", || {
        (get(&a, "/v1/catalog/datacenters").json().as_array()?.len() == 2).then_some(())
    });
    register(
        &a,
        json!({"Name": "api", "Port": 1, "Address": "127.0.7.1", "Check": {"TTL": "60s", "CheckID": "api-a"}}),
    );
    register(
        &b,
        json!({"Name": "api", "Port": 2, "Address": "127.0.7.2"}),
    );
    let r = post(
        &a,
        "/v1/query",
        &json!({"Name": "api-q", "Service": {"Service": "api", "Failover": {"Datacenters": ["dc2"]}}}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let e = get(&a, "/v1/query/api-q/execute").json();
    assert_eq!(
        e["Datacenter"], "dc2",
        "dc1's only instance is critical: {e}"
    );
    assert_eq!(e["Failovers"], 1);
    assert_eq!(e["Nodes"][0]["Service"]["Port"], 2);
    put(&a, "/v1/agent/check/pass/api-a", "");
    let e = get(&a, "/v1/query/api-q/execute").json();
    assert_eq!(
        (e["Datacenter"].as_str(), e["Failovers"].as_u64()),
        (Some("dc1"), Some(0)),
        "healthy again locally"
    );
}
