//! Gossip encryption: members with the same key form a pool, a member with a wrong key
//! cannot join, and keys rotate across the cluster with `keyring`.

use crate::http_util::*;
use integration_tests::harness::{wait_until, Node, NodeOptions};
use std::time::Duration;

const K1: &str = "cg8StVXbQJ0gPvMd9o7yrg==";
const K2: &str = "ZdcsKbcE8xrwcvcB1U4b2WWQ7Ijp8p0I9czXFl1N2DQ=";
const WRONG: &str = "HbUIvN5lSpFWnJWp4IqzvYkmbZ9Fv5ugeQ1HqaR3TJI=";

fn member(name: &str, join: Option<&str>, key: &str) -> Node {
    let mut extra = vec![format!("-encrypt={key}"), "-retry-interval=1s".into()];
    if let Some(j) = join {
        extra.push(format!("-retry-join={j}"));
    }
    Node::start(NodeOptions {
        name: Some(name.into()),
        client: join.is_some(),
        extra,
        ..Default::default()
    })
}

fn alive(n: &Node) -> usize {
    get(n, "/v1/agent/members")
        .json()
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["Status"] == 1)
        .count()
}

#[test]
fn encrypted_pool_rejects_wrong_keys_and_rotates() {
    let s = member("enc-s", None, K1);
    let c = member("enc-c", Some(&s.serf), K1);
    wait_until(Duration::from_secs(20), "two encrypted members", || {
        (alive(&s) == 2).then_some(())
    });

    // a wrong key cannot join
    let bad = Node::start(NodeOptions {
        name: Some("enc-bad".into()),
        client: true,
        no_wait: true,
        extra: vec![format!("-encrypt={WRONG}")],
        ..Default::default()
    });
    let r = put(&bad, &format!("/v1/agent/join/{}", s.serf), "");
    assert_ne!(r.status, 200, "joined with a wrong key: {}", r.body);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(alive(&s), 2, "the wrong-key member is not in the pool");

    // rotate: install K2, use it, remove K1
    let (code, out, err) = c.cli(&["keyring", "-list"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("{K1} [2/2]")), "{out}");
    assert_eq!(c.cli(&["keyring", &format!("-install={K2}")]).0, 0);
    wait_until(Duration::from_secs(10), "K2 installed everywhere", || {
        c.cli(&["keyring", "-list"])
            .1
            .contains(&format!("{K2} [2/2]"))
            .then_some(())
    });
    assert_eq!(c.cli(&["keyring", &format!("-use={K2}")]).0, 0);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(c.cli(&["keyring", &format!("-remove={K1}")]).0, 0);
    wait_until(Duration::from_secs(10), "K1 removed everywhere", || {
        let out = c.cli(&["keyring", "-list"]).1;
        (out.contains(&format!("{K2} [2/2]")) && !out.contains(K1)).then_some(())
    });
    // the pool keeps working on the new key: a fresh member with K2 joins
    let late = member("enc-late", Some(&s.serf), K2);
    wait_until(Duration::from_secs(20), "the K2 member joins", || {
        (alive(&s) == 3).then_some(())
    });
    assert_eq!(put(&late, "/v1/kv/encrypted", "ok").body, "true");
    assert_eq!(c.cli(&["keyring", "-install=not-base64"]).0, 1);
}
