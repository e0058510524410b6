//! `/v1/snapshot`: save from one agent, restore onto a fresh one; every key, session and
//! catalog entry comes back, and blocking queries wake on the restore.

use crate::http_util::*;
use integration_tests::harness::Node;
use serde_json::json;

#[test]
fn save_and_restore_onto_a_fresh_server() {
    let a = Node::server();
    for i in 0..50 {
        put(
            &a,
            &format!("/v1/kv/snap/{i:02}?flags={i}"),
            format!("value-{i}"),
        );
    }
    put_json(
        &a,
        "/v1/catalog/register",
        &json!({"Node": "ext", "Address": "10.9.9.9", "Service": {"Service": "legacy", "Port": 7}}),
    );
    let sid = put_json(&a, "/v1/session/create", &json!({"Name": "kept"})).json()["ID"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        put(&a, &format!("/v1/kv/snap/lock?acquire={sid}"), "held").body,
        "true"
    );
    let snap = reqwest::blocking::get(a.url("/v1/snapshot")).unwrap();
    assert_eq!(snap.status(), 200);
    assert!(snap.headers().get("X-Consul-Index").is_some());
    let bytes = snap.bytes().unwrap().to_vec();
    assert!(bytes.len() > 1000);

    let b = Node::server();
    put(&b, "/v1/kv/will-vanish", "x");
    let idx = get(&b, "/v1/kv/snap/00").index();
    let watcher = {
        let url = b.url(&format!("/v1/kv/snap/00?index={idx}&wait=20s"));
        std::thread::spawn(move || reqwest::blocking::get(url).unwrap().status().as_u16())
    };
    let r = put(&b, "/v1/snapshot", bytes);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        watcher.join().unwrap(),
        200,
        "a blocking query on a restored key wakes"
    );
    let all = get(&b, "/v1/kv/snap/?recurse").json();
    assert_eq!(all.as_array().unwrap().len(), 51);
    assert_eq!(get(&b, "/v1/kv/snap/07?raw").body, "value-7");
    assert_eq!(all[7]["Flags"], 7);
    assert_eq!(
        get(&b, "/v1/kv/will-vanish").status,
        404,
        "restore replaces the state"
    );
    assert_eq!(
        get(&b, "/v1/catalog/service/legacy").json()[0]["ServicePort"],
        7
    );
    assert_eq!(
        get(&b, &format!("/v1/session/info/{sid}")).json()[0]["Name"],
        "kept"
    );
    assert_eq!(
        get(&b, "/v1/kv/snap/lock").json()[0]["Session"],
        sid.as_str()
    );
    // the restored server keeps working and re-registers itself by anti-entropy
    assert_eq!(put(&b, "/v1/kv/after-restore", "ok").body, "true");

    let r = put(&b, "/v1/snapshot", "not a snapshot");
    assert_eq!(r.status, 400);
}
