//! Sessions and locks: create/info/list/node/renew/destroy, TTL validation, acquire and
//! release, behaviors, TTL expiry.

use crate::http_util::*;
use integration_tests::harness::{wait_until, Node};
use serde_json::json;
use std::time::Duration;

fn create(n: &Node, body: serde_json::Value) -> String {
    let r = put_json(n, "/v1/session/create", &body);
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["ID"].as_str().unwrap().to_string()
}

#[test]
fn session_lifecycle_and_locks() {
    let n = Node::dev();
    let s1 = create(
        &n,
        json!({"Name": "one", "TTL": "15s", "Behavior": "delete", "LockDelay": "0s"}),
    );
    let s2 = create(&n, json!({"name": "two", "lockdelay": 0}));
    let info = get(&n, &format!("/v1/session/info/{s1}")).json();
    assert_eq!(info[0]["Name"], "one");
    assert_eq!(info[0]["TTL"], "15s");
    assert_eq!(info[0]["Behavior"], "delete");
    assert_eq!(info[0]["Node"], "node1");
    assert_eq!(info[0]["NodeChecks"], json!(["serfHealth"]));
    assert_eq!(
        get(&n, "/v1/session/list").json().as_array().unwrap().len(),
        2
    );
    assert_eq!(
        get(&n, "/v1/session/node/node1")
            .json()
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        get(&n, &format!("/v1/session/renew/{s1}")).status,
        405,
        "renew is PUT"
    );
    assert_eq!(
        put(&n, &format!("/v1/session/renew/{s1}"), "").json()[0]["ID"],
        s1.as_str()
    );
    let r = put(
        &n,
        "/v1/session/renew/00000000-0000-0000-0000-000000000000",
        "",
    );
    assert_eq!(r.status, 404);

    assert_eq!(
        put(&n, &format!("/v1/kv/lock?acquire={s1}"), "me").body,
        "true"
    );
    assert_eq!(
        put(&n, &format!("/v1/kv/lock?acquire={s2}"), "you").body,
        "false"
    );
    let e = get(&n, "/v1/kv/lock").json();
    assert_eq!(e[0]["Session"], s1.as_str());
    assert_eq!(e[0]["LockIndex"], 1);
    assert_eq!(
        put(&n, &format!("/v1/kv/lock?release={s2}"), "").body,
        "false"
    );
    assert_eq!(
        put(&n, &format!("/v1/kv/lock?release={s1}"), "me").body,
        "true"
    );
    assert!(get(&n, "/v1/kv/lock").json()[0].get("Session").is_none());
    assert_eq!(
        put(&n, &format!("/v1/kv/lock?acquire={s2}"), "you").body,
        "true"
    );
    assert_eq!(get(&n, "/v1/kv/lock").json()[0]["LockIndex"], 2);
    let r = put(&n, "/v1/kv/lock2?acquire=not-a-session", "x");
    assert_eq!(r.status, 500);
    assert!(r.body.contains("invalid session"), "{}", r.body);

    // release behaviour keeps the key; delete behaviour removes it
    assert_eq!(
        put(&n, &format!("/v1/session/destroy/{s2}"), "").body,
        "true"
    );
    assert!(get(&n, "/v1/kv/lock").json()[0].get("Session").is_none());
    assert_eq!(
        put(&n, &format!("/v1/kv/held?acquire={s1}"), "x").body,
        "true"
    );
    put(&n, &format!("/v1/session/destroy/{s1}"), "");
    assert_eq!(get(&n, "/v1/kv/held").status, 404);
    assert_eq!(get(&n, &format!("/v1/session/info/{s1}")).json(), json!([]));
}

#[test]
fn session_validation_errors() {
    let n = Node::dev();
    let r = put_json(&n, "/v1/session/create", &json!({"TTL": "5s"}));
    assert_eq!(r.status, 400);
    assert!(r.body.starts_with("Invalid Session TTL"), "{}", r.body);
    let r = put_json(&n, "/v1/session/create", &json!({"TTL": "25h"}));
    assert!(r.body.starts_with("Invalid Session TTL"), "{}", r.body);
    let r = put_json(&n, "/v1/session/create", &json!({"Behavior": "explode"}));
    assert_eq!(r.status, 400);
    let r = put_json(&n, "/v1/session/create", &json!({"Node": "ghost"}));
    assert_eq!(r.status, 500);
    let r = put_json(&n, "/v1/session/create", &json!({"Checks": ["nope"]}));
    assert_eq!(r.status, 500);
    let r = put_json(
        &n,
        "/v1/session/create",
        &json!({"TTL": "10s", "LockDelay": "0.001s"}),
    );
    assert_eq!(r.status, 200, "fractional durations as Patroni sends them");
}

#[test]
fn lock_delay_blocks_reacquire() {
    let n = Node::dev();
    let s1 = create(&n, json!({"LockDelay": "2s"}));
    assert_eq!(
        put(&n, &format!("/v1/kv/ld?acquire={s1}"), "x").body,
        "true"
    );
    put(&n, &format!("/v1/session/destroy/{s1}"), "");
    let s2 = create(&n, json!({}));
    assert_eq!(
        put(&n, &format!("/v1/kv/ld?acquire={s2}"), "y").body,
        "false",
        "lock delay in force"
    );
    wait_until(Duration::from_secs(5), "lock delay to pass", || {
        (put(&n, &format!("/v1/kv/ld?acquire={s2}"), "y").body == "true").then_some(())
    });
}

#[test]
fn session_ttl_expires() {
    let n = Node::dev();
    let s = create(
        &n,
        json!({"TTL": "10s", "Behavior": "delete", "LockDelay": "0s"}),
    );
    assert_eq!(
        put(&n, &format!("/v1/kv/eph?acquire={s}"), "x").body,
        "true"
    );
    // expires between TTL and 2 x TTL
    std::thread::sleep(Duration::from_secs(9));
    assert_eq!(
        get(&n, &format!("/v1/session/info/{s}"))
            .json()
            .as_array()
            .unwrap()
            .len(),
        1,
        "not before TTL"
    );
    wait_until(Duration::from_secs(15), "session expiry", || {
        get(&n, &format!("/v1/session/info/{s}"))
            .json()
            .as_array()
            .unwrap()
            .is_empty()
            .then_some(())
    });
    assert_eq!(
        get(&n, "/v1/kv/eph").status,
        404,
        "delete behaviour applied on expiry"
    );
}
