//! `/v1/txn`: atomic KV and catalog operations, 409 with the failing op, read-only
//! transactions, and the operation limit.

use crate::http_util::*;
use base64::Engine;
use integration_tests::harness::Node;
use serde_json::json;

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn txn_is_all_or_nothing() {
    let n = Node::dev();
    let r = put_json(
        &n,
        "/v1/txn",
        &json!([
            {"KV": {"Verb": "set", "Key": "t/a", "Value": b64("1")}},
            {"KV": {"Verb": "set", "Key": "t/b", "Value": b64("2"), "Flags": 5}},
            {"Node": {"Verb": "set", "Node": {"Node": "ext", "Address": "10.0.0.5"}}},
            {"Service": {"Verb": "set", "Node": "ext", "Service": {"Service": "svc", "Port": 99}}},
            {"Check": {"Verb": "set", "Check": {"Node": "ext", "CheckID": "ok", "Name": "ok", "Status": "passing", "ServiceID": "svc"}}}
        ]),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let out = r.json();
    assert_eq!(out["Errors"], serde_json::Value::Null);
    assert_eq!(out["Results"][1]["KV"]["Flags"], 5);
    assert_eq!(
        get(&n, "/v1/health/service/svc?passing").json()[0]["Node"]["Node"],
        "ext"
    );
    let mi = get(&n, "/v1/kv/t/a").json()[0]["ModifyIndex"]
        .as_u64()
        .unwrap();

    // the second op fails: nothing of the first is applied
    let r = put_json(
        &n,
        "/v1/txn",
        &json!([
            {"KV": {"Verb": "set", "Key": "t/c", "Value": b64("3")}},
            {"KV": {"Verb": "cas", "Key": "t/a", "Value": b64("x"), "Index": mi + 100}}
        ]),
    );
    assert_eq!(r.status, 409, "{}", r.body);
    let e = r.json();
    assert_eq!(e["Errors"][0]["OpIndex"], 1);
    assert!(e["Errors"][0]["What"]
        .as_str()
        .unwrap()
        .contains("index is stale"));
    assert_eq!(get(&n, "/v1/kv/t/c").status, 404);

    // read-only transaction
    let r = put_json(
        &n,
        "/v1/txn",
        &json!([
            {"KV": {"Verb": "get", "Key": "t/a"}},
            {"KV": {"Verb": "check-index", "Key": "t/a", "Index": mi}},
            {"KV": {"Verb": "get-tree", "Key": "t/"}}
        ]),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.index() >= 1);
    assert_eq!(r.json()["Results"].as_array().unwrap().len(), 4);
    assert_eq!(r.json()["Results"][0]["KV"]["Value"], b64("1"));

    // delete-tree, check-not-exists
    let r = put_json(
        &n,
        "/v1/txn",
        &json!([
            {"KV": {"Verb": "delete-tree", "Key": "t/"}},
            {"KV": {"Verb": "check-not-exists", "Key": "t/a"}}
        ]),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(get(&n, "/v1/kv/t/?recurse").status, 404);
}

#[test]
fn txn_limits_and_bad_input() {
    let n = Node::dev();
    let ops: Vec<_> = (0..65)
        .map(|i| json!({"KV": {"Verb": "set", "Key": format!("k{i}"), "Value": b64("v")}}))
        .collect();
    let r = put_json(&n, "/v1/txn", &json!(ops));
    assert_eq!(r.status, 413);
    assert_eq!(r.body, "Transaction contains too many operations (65 > 64)");
    assert_eq!(put(&n, "/v1/txn", "{").status, 400);
    assert_eq!(put_json(&n, "/v1/txn", &json!([{"Bogus": {}}])).status, 400);
    assert_eq!(
        put_json(
            &n,
            "/v1/txn",
            &json!([{"KV": {"Verb": "set", "Key": "k", "Value": "!!notbase64"}}])
        )
        .status,
        400
    );
    let r = put_json(
        &n,
        "/v1/txn",
        &json!([{"KV": {"Verb": "explode", "Key": "k"}}]),
    );
    assert_eq!(r.status, 409);
    let ok: Vec<_> = (0..64)
        .map(|i| json!({"KV": {"Verb": "set", "Key": format!("k{i}"), "Value": b64("v")}}))
        .collect();
    assert_eq!(put_json(&n, "/v1/txn", &json!(ok)).status, 200);
}
