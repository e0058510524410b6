//! KV API: values, flags, CAS, recurse/keys/separator, raw, deletes, errors, blocking.

use crate::http_util::*;
use base64::Engine;
use integration_tests::harness::Node;
use std::time::{Duration, Instant};

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn kv_roundtrip_flags_cas_and_headers() {
    let n = Node::dev();
    assert_eq!(put(&n, "/v1/kv/app/config?flags=42", "hello").body, "true");
    let r = get(&n, "/v1/kv/app/config");
    assert_eq!(r.status, 200);
    assert!(r.index() >= 1);
    assert_eq!(r.header("X-Consul-KnownLeader"), "true");
    assert!(r.header("X-Consul-LastContact").parse::<u64>().is_ok());
    assert_eq!(r.header("X-Consul-Effective-Consistency"), "leader");
    let e = &r.json()[0];
    assert_eq!(e["Key"], "app/config");
    assert_eq!(e["Flags"], 42);
    assert_eq!(e["Value"], b64("hello"));
    let mi = e["ModifyIndex"].as_u64().unwrap();
    assert_eq!(
        put(&n, "/v1/kv/app/config?cas=0", "x").body,
        "false",
        "cas=0 on existing key"
    );
    assert_eq!(
        put(&n, &format!("/v1/kv/app/config?cas={mi}"), "v2").body,
        "true"
    );
    assert_eq!(
        put(&n, &format!("/v1/kv/app/config?cas={mi}"), "v3").body,
        "false",
        "stale cas"
    );
    assert_eq!(get(&n, "/v1/kv/app/config?raw").body, "v2");
    assert_eq!(
        put(&n, "/v1/kv/new?cas=0", "x").body,
        "true",
        "cas=0 creates"
    );
}

#[test]
fn kv_listing_keys_separator_and_404_index() {
    let n = Node::dev();
    for k in ["p/a", "p/b/c", "p/b/d", "q"] {
        put(&n, &format!("/v1/kv/{k}"), k);
    }
    let r = get(&n, "/v1/kv/p/?recurse");
    let keys: Vec<String> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["Key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(keys, vec!["p/a", "p/b/c", "p/b/d"]);
    for flag in ["recurse=1", "recurse=true", "recurse=True"] {
        assert_eq!(
            get(&n, &format!("/v1/kv/p/?{flag}"))
                .json()
                .as_array()
                .unwrap()
                .len(),
            3,
            "{flag}"
        );
    }
    assert_eq!(
        get(&n, "/v1/kv/p/?keys&separator=/").json(),
        serde_json::json!(["p/a", "p/b/"])
    );
    assert_eq!(
        get(&n, "/v1/kv/?keys").json(),
        serde_json::json!(["p/a", "p/b/c", "p/b/d", "q"])
    );
    let miss = get(&n, "/v1/kv/nope");
    assert_eq!(miss.status, 404);
    assert!(miss.index() >= 1, "404 still carries X-Consul-Index");
    assert_eq!(get(&n, "/v1/kv/zz/?recurse").status, 404);
    // percent-encoded key
    assert_eq!(put(&n, "/v1/kv/enc%2Fkey", "v").body, "true");
    assert_eq!(get(&n, "/v1/kv/enc/key?raw").body, "v");
}

#[test]
fn kv_delete_variants() {
    let n = Node::dev();
    for k in ["d/a", "d/b", "d/c/e", "keep"] {
        put(&n, &format!("/v1/kv/{k}"), "1");
    }
    let mi = get(&n, "/v1/kv/d/a").json()[0]["ModifyIndex"]
        .as_u64()
        .unwrap();
    assert_eq!(
        delete(&n, &format!("/v1/kv/d/a?cas={}", mi + 100)).body,
        "false"
    );
    assert_eq!(delete(&n, &format!("/v1/kv/d/a?cas={mi}")).body, "true");
    assert_eq!(get(&n, "/v1/kv/d/a").status, 404);
    assert_eq!(delete(&n, "/v1/kv/d/?recurse").body, "true");
    assert_eq!(get(&n, "/v1/kv/d/?recurse").status, 404);
    assert_eq!(get(&n, "/v1/kv/keep").status, 200);
}

#[test]
fn kv_bad_input_gets_consul_errors() {
    let n = Node::dev();
    let big = vec![b'x'; 512 * 1024 + 1];
    let r = put(&n, "/v1/kv/big", big);
    assert_eq!(r.status, 413, "{}", r.body);
    assert!(r.body.contains("too large"), "{}", r.body);
    assert_eq!(
        put(&n, "/v1/kv/ok", vec![b'x'; 512 * 1024]).body,
        "true",
        "exactly 512 KiB is allowed"
    );
    let r = get(&n, "/v1/kv/ok?index=abc");
    assert_eq!((r.status, r.body.as_str()), (400, "Invalid index"));
    let r = get(&n, "/v1/kv/ok?wait=soon&index=1");
    assert_eq!(r.status, 400);
    let r = get(&n, "/v1/kv/ok?stale&consistent");
    assert_eq!(r.status, 400);
    let r = put(&n, "/v1/kv/", "x");
    assert_eq!((r.status, r.body.as_str()), (400, "Missing key name"));
    let r = put(&n, "/v1/kv/f?flags=notanumber", "x");
    assert_eq!(r.status, 400);
    let r = get(&n, "/v1/nosuchendpoint");
    assert_eq!(r.status, 404);
    let r = request(&n, "PATCH", "/v1/kv/ok");
    assert_eq!(r.status, 405);
    // the agent is still healthy after all of it
    assert_eq!(get(&n, "/v1/kv/ok?raw").status, 200);
}

#[test]
fn kv_blocking_query_wakes_on_change_not_on_unrelated_writes() {
    let n = Node::dev();
    put(&n, "/v1/kv/watched", "0");
    let idx = get(&n, "/v1/kv/watched").index();
    let http = n.http.clone();
    let writer = std::thread::spawn(move || {
        let c = reqwest::blocking::Client::new();
        // unrelated writes first: they must not wake the watcher
        for i in 0..5 {
            c.put(format!("{http}/v1/kv/other/{i}"))
                .body("x")
                .send()
                .unwrap();
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_millis(500));
        c.put(format!("{http}/v1/kv/watched"))
            .body("1")
            .send()
            .unwrap();
    });
    let t0 = Instant::now();
    let r = get(&n, &format!("/v1/kv/watched?index={idx}&wait=10s"));
    let dt = t0.elapsed();
    writer.join().unwrap();
    assert_eq!(
        r.json()[0]["Value"],
        b64("1"),
        "woken by the write to the key itself"
    );
    assert!(
        dt >= Duration::from_millis(900),
        "returned after {dt:?}: woken by an unrelated write"
    );
    assert!(dt < Duration::from_secs(5), "took {dt:?}");

    // prefix watch wakes on a child write
    let idx = get(&n, "/v1/kv/other/?recurse").index();
    let http = n.http.clone();
    let w = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        reqwest::blocking::Client::new()
            .put(format!("{http}/v1/kv/other/new"))
            .body("x")
            .send()
            .unwrap();
    });
    let r = get(&n, &format!("/v1/kv/other/?recurse&index={idx}&wait=10s"));
    w.join().unwrap();
    assert!(r.index() > idx);
    assert_eq!(r.json().as_array().unwrap().len(), 6);

    // no change: wait is honoured
    let idx = get(&n, "/v1/kv/watched").index();
    let t0 = Instant::now();
    let r = get(&n, &format!("/v1/kv/watched?index={idx}&wait=1s"));
    let dt = t0.elapsed();
    assert!(
        dt >= Duration::from_millis(950) && dt < Duration::from_secs(3),
        "{dt:?}"
    );
    assert!(r.index() >= idx);
}

#[test]
fn tombstones_are_reaped_without_moving_indexes_back() {
    let n = integration_tests::harness::Node::start(integration_tests::harness::NodeOptions {
        dev: true,
        env: vec![("PRAETOR_TOMBSTONE_TTL".into(), "1s".into())],
        ..Default::default()
    });
    for i in 0..10 {
        put(&n, &format!("/v1/kv/gone/{i}"), "x");
    }
    put(&n, "/v1/kv/stay", "x");
    assert_eq!(delete(&n, "/v1/kv/gone/?recurse").body, "true");
    let idx = get(&n, "/v1/kv/gone/?recurse").index();
    let tombstones = |n: &Node| {
        let snap: serde_json::Value = reqwest::blocking::get(n.url("/v1/snapshot"))
            .unwrap()
            .json()
            .unwrap();
        snap["Data"]["tombstones"]
            .as_object()
            .map(|m| m.len())
            .unwrap_or(0)
    };
    assert_eq!(tombstones(&n), 10);
    integration_tests::harness::wait_until(Duration::from_secs(15), "tombstones reaped", || {
        (tombstones(&n) == 0).then_some(())
    });
    assert!(
        get(&n, "/v1/kv/gone/?recurse").index() >= idx,
        "the prefix index does not go backwards"
    );
    assert_eq!(get(&n, "/v1/kv/stay?raw").body, "x");
}

/// The HTTP API also speaks HTTP/2 without TLS (prior knowledge): many blocking queries can
/// share one connection.
#[test]
fn http2_prior_knowledge_multiplexes_blocking_queries() {
    let n = Node::dev();
    put(&n, "/v1/kv/h2", "0");
    let idx = get(&n, "/v1/kv/h2").index();
    let client = reqwest::blocking::Client::builder()
        .http2_prior_knowledge()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let r = client.get(n.url("/v1/kv/h2?raw")).send().unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.text().unwrap(), "0");
    let waiters: Vec<_> = (0..20)
        .map(|_| {
            let c = client.clone();
            let url = n.url(&format!("/v1/kv/h2?index={idx}&wait=20s"));
            std::thread::spawn(move || c.get(url).send().unwrap().text().unwrap())
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    put(&n, "/v1/kv/h2", "1");
    for w in waiters {
        assert!(w.join().unwrap().contains("\"Value\":\"MQ==\""));
    }
}

/// Concurrent writers on a server with durable storage (the leader groups concurrent
/// writes into shared Raft entries): every acknowledged write is kept, the versions of one
/// key never share a ModifyIndex, and check-and-set increments of one shared counter lose
/// no update.
#[test]
fn concurrent_writes_are_kept_and_cas_increments_lose_no_update() {
    const THREADS: usize = 16;
    const ROUNDS: u64 = 10;
    let n = Node::server();
    assert_eq!(put(&n, "/v1/kv/counter", "0").body, "true");
    let base = n.url("/v1/kv/");
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let base = base.clone();
            std::thread::spawn(move || {
                let c = reqwest::blocking::Client::new();
                let entry = |key: &str| -> serde_json::Value {
                    c.get(format!("{base}{key}"))
                        .send()
                        .unwrap()
                        .json()
                        .unwrap()
                };
                let mut own = Vec::new();
                let mut retries = 0;
                for i in 0..ROUNDS {
                    let key = format!("w/{t}");
                    let ok = c.put(format!("{base}{key}")).body(i.to_string()).send();
                    assert_eq!(ok.unwrap().text().unwrap(), "true");
                    own.push(entry(&key)[0]["ModifyIndex"].as_u64().unwrap());
                    loop {
                        let e = &entry("counter")[0];
                        let v: u64 = String::from_utf8(
                            base64::engine::general_purpose::STANDARD
                                .decode(e["Value"].as_str().unwrap())
                                .unwrap(),
                        )
                        .unwrap()
                        .parse()
                        .unwrap();
                        let mi = e["ModifyIndex"].as_u64().unwrap();
                        let r = c
                            .put(format!("{base}counter?cas={mi}"))
                            .body((v + 1).to_string())
                            .send()
                            .unwrap()
                            .text()
                            .unwrap();
                        if r == "true" {
                            break;
                        }
                        assert_eq!(r, "false");
                        retries += 1;
                    }
                }
                (own, retries)
            })
        })
        .collect();
    let mut retries = 0;
    for w in workers {
        let (own, r) = w.join().unwrap();
        retries += r;
        assert!(
            own.windows(2).all(|p| p[0] < p[1]),
            "one key's versions have increasing ModifyIndex: {own:?}"
        );
    }
    assert_eq!(
        get(&n, "/v1/kv/counter?raw").body,
        (THREADS as u64 * ROUNDS).to_string(),
        "every successful CAS increment is kept ({retries} CAS attempts failed)"
    );
    for t in 0..THREADS {
        assert_eq!(
            get(&n, &format!("/v1/kv/w/{t}?raw")).body,
            (ROUNDS - 1).to_string()
        );
    }
}

/// `max_query_time` caps a blocking query's `?wait`; `default_query_time` applies without
/// one (both plus Consul's jitter of up to a sixteenth).
#[test]
fn query_time_settings_bound_blocking_queries() {
    let n = Node::start(integration_tests::harness::NodeOptions {
        dev: true,
        config: vec![(
            "q.hcl".into(),
            "max_query_time = \"1500ms\"\ndefault_query_time = \"1s\"\n".into(),
        )],
        ..Default::default()
    });
    put(&n, "/v1/kv/q", "1");
    let idx = get(&n, "/v1/kv/q").index();
    for (query, low, high) in [
        (format!("/v1/kv/q?index={idx}&wait=30s"), 1500, 2500),
        (format!("/v1/kv/q?index={idx}"), 1000, 2000),
    ] {
        let t = Instant::now();
        let r = get(&n, &query);
        let ms = t.elapsed().as_millis();
        assert_eq!(r.status, 200);
        assert!((low..high).contains(&ms), "{query}: {ms} ms");
    }
    let me = get(&n, "/v1/agent/self").json();
    assert_eq!(
        me["DebugConfig"]["MaxQueryTime"], "1.5s",
        "{}",
        me["DebugConfig"]
    );
}
