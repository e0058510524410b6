//! Clusters of real processes on loopback: three servers bootstrapped with
//! `-bootstrap-expect=3` through `-retry-join`, two client agents, writes and reads through
//! every member, leader failover (timed), a restarted server catching up, a client failing
//! and leaving, and a minority that refuses writes.

use crate::http_util::*;
use integration_tests::harness::{wait_until, Node, NodeOptions};
use serde_json::json;
use std::time::{Duration, Instant};

const LONG: Duration = Duration::from_secs(45);

fn server(name: &str, join: Option<&str>) -> Node {
    cluster_server(name, join, Vec::new())
}

fn client(name: &str, join: &str) -> Node {
    Node::start(NodeOptions {
        name: Some(name.into()),
        client: true,
        extra: vec!["-retry-interval=1s".into(), format!("-retry-join={join}")],
        ..Default::default()
    })
}

fn leader_of(nodes: &[&Node]) -> Option<usize> {
    let leader = nodes.iter().find_map(|n| {
        let l = get(n, "/v1/status/leader").json();
        l.as_str().filter(|s| !s.is_empty()).map(str::to_string)
    })?;
    nodes.iter().position(|n| rpc_addr(n) == leader)
}

/// The node name of the leader in `n`'s view of the Raft configuration.
fn raft_leader_name(n: &Node) -> Option<String> {
    let c = get(n, "/v1/operator/raft/configuration").json();
    let l = c["Servers"]
        .as_array()?
        .iter()
        .find(|s| s["Leader"] == true)?["Node"]
        .as_str()?
        .to_string();
    Some(l)
}

fn alive_members(n: &Node) -> usize {
    get(n, "/v1/agent/members")
        .json()
        .as_array()
        .map(|a| a.iter().filter(|m| m["Status"] == 1).count())
        .unwrap_or(0)
}

#[test]
fn three_servers_two_clients_failover_and_catch_up() {
    let s1 = server("s1", None);
    let s2 = server("s2", Some(&s1.serf));
    let s3 = server("s3", Some(&s1.serf));
    let servers = [&s1, &s2, &s3];
    for s in servers {
        s.wait_ready();
    }
    wait_until(LONG, "three raft peers", || {
        (get(&s2, "/v1/status/peers").json().as_array()?.len() == 3).then_some(())
    });
    let c1 = client("c1", &s2.serf);
    let c2 = client("c2", &s3.serf);
    wait_until(LONG, "five alive members", || {
        (alive_members(&c1) == 5).then_some(())
    });

    // writes and reads through every member
    let mut written = Vec::new();
    for (i, n) in [&s1, &s2, &s3, &c1, &c2].iter().enumerate() {
        let key = format!("cluster/k{i}");
        assert_eq!(
            put(n, &format!("/v1/kv/{key}"), format!("v{i}")).body,
            "true",
            "write via member {i}"
        );
        written.push(key);
    }
    for n in [&s1, &s2, &s3, &c1, &c2] {
        assert_eq!(
            get(n, "/v1/kv/cluster/?recurse")
                .json()
                .as_array()
                .unwrap()
                .len(),
            5,
            "read-your-writes on every member"
        );
        assert_eq!(get(n, "/v1/kv/cluster/k4?consistent").status, 200);
    }
    // a service on a client is visible cluster-wide and healthy
    put_json(
        &c1,
        "/v1/agent/service/register",
        &json!({"Name": "web", "Port": 80}),
    );
    wait_until(LONG, "web on c1 visible through s3", || {
        let h = get(&s3, "/v1/health/service/web?passing").json();
        (h.as_array()?.len() == 1 && h[0]["Node"]["Node"] == "c1").then_some(())
    });
    assert_eq!(
        get(&c2, "/v1/catalog/nodes")
            .json()
            .as_array()
            .unwrap()
            .len(),
        5
    );

    // replication is timed as Consul times it: round trips on the leader, handling on
    // the followers
    let li = wait_until(LONG, "a leader", || leader_of(&servers)).to_owned();
    let samples = |n: &Node| -> Vec<String> {
        get(n, "/v1/agent/metrics").json()["Samples"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s["Name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert!(samples(servers[li]).contains(&"consul.raft.replication.appendEntries.rpc".to_string()));
    let follower = servers[(li + 1) % 3];
    assert!(samples(follower).contains(&"consul.raft.rpc.appendEntries".to_string()));

    // kill the leader: a new one takes writes
    let mut nodes = vec![s1, s2, s3];
    let mut old_leader = nodes.remove(li);
    old_leader.kill();
    let t0 = Instant::now();
    let survivor = &nodes[0];
    let mut i = 0;
    wait_until(LONG, "a write accepted after the leader died", || {
        i += 1;
        let r = put(survivor, &format!("/v1/kv/after/{i}"), "x");
        (r.status == 200 && r.body == "true").then_some(())
    });
    let failover = t0.elapsed();
    eprintln!("failover: writes accepted again {failover:?} after killing the leader");
    written.push(format!("after/{i}"));
    for k in &written {
        assert_eq!(
            get(&nodes[1], &format!("/v1/kv/{k}")).status,
            200,
            "{k} survived the failover"
        );
    }
    assert_eq!(
        put(&c2, "/v1/kv/after/client", "y").body,
        "true",
        "clients keep writing"
    );

    // the old leader restarts on its data dir and catches up
    old_leader.restart();
    let t = Instant::now();
    while get(&old_leader, "/v1/kv/after/client?stale").status != 200 {
        assert!(
            t.elapsed() < LONG,
            "restarted server did not catch up; its log:\n{}\nsurvivor log:\n{}",
            old_leader.log(),
            nodes[0].log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_until(LONG, "three raft peers again", || {
        (get(&old_leader, "/v1/status/peers")
            .json()
            .as_array()?
            .len()
            == 3)
            .then_some(())
    });

    // a client dies: its node check turns critical and its service leaves healthy results
    let mut c1 = c1;
    c1.kill();
    wait_until(LONG, "c1's serfHealth critical", || {
        let checks = get(&c2, "/v1/health/node/c1").json();
        checks
            .as_array()?
            .iter()
            .any(|c| c["CheckID"] == "serfHealth" && c["Status"] == "critical")
            .then_some(())
    });
    assert_eq!(get(&c2, "/v1/health/service/web?passing").json(), json!([]));
    // force-leave removes it from the catalog
    assert_eq!(put(&c2, "/v1/agent/force-leave/c1", "").status, 200);
    wait_until(LONG, "c1 deregistered after force-leave", || {
        (get(&c2, "/v1/catalog/node/c1").status == 404).then_some(())
    });

    // graceful leave of c2
    let mut c2 = c2;
    assert_eq!(put(&c2, "/v1/agent/leave", "").status, 200);
    c2.wait_exit();
    wait_until(LONG, "c2 left", || {
        let ms = get(&old_leader, "/v1/agent/members").json();
        ms.as_array()?
            .iter()
            .any(|m| m["Name"] == "c2" && m["Status"] == 3)
            .then_some(())
    });
    wait_until(LONG, "c2 deregistered", || {
        (get(&old_leader, "/v1/catalog/node/c2").status == 404).then_some(())
    });

    // a minority refuses writes: stop the two other servers
    let lone = &old_leader;
    for n in &nodes {
        n.signal("STOP");
    }
    let t0 = Instant::now();
    let r = put(lone, "/v1/kv/minority", "no");
    assert_ne!(r.body, "true", "a minority must not accept a write");
    assert!(t0.elapsed() < Duration::from_secs(30));
    let r = get(lone, "/v1/kv/cluster/k0?consistent");
    assert_ne!(r.status, 200, "a minority cannot serve a consistent read");
    for n in &nodes {
        n.signal("CONT");
    }
    wait_until(LONG, "writes again once the majority is back", || {
        (put(lone, "/v1/kv/majority", "yes").body == "true").then_some(())
    });
    assert_eq!(
        get(lone, "/v1/kv/minority").status,
        404,
        "the refused write never appeared"
    );
}

#[test]
fn operator_raft_configuration_and_remove_peer() {
    let s1 = server("o1", None);
    let s2 = server("o2", Some(&s1.serf));
    let s3 = server("o3", Some(&s1.serf));
    for s in [&s1, &s2, &s3] {
        s.wait_ready();
    }
    wait_until(LONG, "three voters", || {
        let c = get(&s2, "/v1/operator/raft/configuration").json();
        (c["Servers"].as_array()?.len() == 3).then_some(c)
    });
    let c = get(&s1, "/v1/operator/raft/configuration").json();
    let servers = c["Servers"].as_array().unwrap();
    assert_eq!(servers.iter().filter(|s| s["Leader"] == true).count(), 1);
    assert!(servers.iter().all(|s| s["Voter"] == true));
    let mut names: Vec<&str> = servers
        .iter()
        .map(|s| s["Node"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, vec!["o1", "o2", "o3"]);

    // remove a follower, asking another server (the request goes to the leader)
    let mut nodes = vec![s1, s2, s3];
    let leader = servers.iter().find(|s| s["Leader"] == true).unwrap()["Node"]
        .as_str()
        .unwrap()
        .to_string();
    let victim_i = nodes.iter().position(|n| n.name() != leader).unwrap();
    let mut victim = nodes.remove(victim_i);
    let victim_addr = rpc_addr(&victim);
    victim.kill();
    let asker = nodes
        .iter()
        .find(|n| n.name() != leader)
        .unwrap_or(&nodes[0]);
    let r = delete(
        asker,
        &format!("/v1/operator/raft/peer?address={victim_addr}"),
    );
    assert!(
        r.status == 200 || r.body.contains("not found"),
        "{} {}",
        r.status,
        r.body
    );
    wait_until(
        LONG,
        "the removed server gone from the configuration",
        || {
            let c = get(&nodes[0], "/v1/operator/raft/configuration").json();
            (c["Servers"].as_array()?.len() == 2).then_some(())
        },
    );
    assert_eq!(
        put(&nodes[0], "/v1/kv/still", "writable").body,
        "true",
        "two of two voters keep a quorum"
    );
    assert_eq!(delete(&nodes[0], "/v1/operator/raft/peer").status, 400);
    assert_eq!(
        delete(
            &nodes[0],
            "/v1/operator/raft/peer?id=00000000-0000-0000-0000-000000000000"
        )
        .status,
        500
    );
}

#[test]
fn transfer_leadership() {
    let s1 = server("t1", None);
    let s2 = server("t2", Some(&s1.serf));
    let s3 = server("t3", Some(&s1.serf));
    for s in [&s1, &s2, &s3] {
        s.wait_ready();
    }
    let conf = wait_until(LONG, "three voters", || {
        let c = get(&s1, "/v1/operator/raft/configuration").json();
        (c["Servers"].as_array()?.len() == 3).then_some(c)
    });
    let servers = conf["Servers"].as_array().unwrap().clone();
    let leader = servers.iter().find(|s| s["Leader"] == true).unwrap()["Node"]
        .as_str()
        .unwrap()
        .to_string();
    let target = servers
        .iter()
        .find(|s| s["Node"] != leader.as_str())
        .unwrap();
    let (target_name, target_id) = (
        target["Node"].as_str().unwrap().to_string(),
        target["ID"].as_str().unwrap().to_string(),
    );
    let nodes = [&s1, &s2, &s3];
    let asker = nodes
        .iter()
        .find(|n| n.name() != leader && n.name() != target_name)
        .unwrap();
    let (code, out, err) = asker.cli(&[
        "operator",
        "raft",
        "transfer-leader",
        &format!("-id={target_id}"),
    ]);
    assert_eq!((code, out.trim()), (0, "Success"), "{err}");
    wait_until(LONG, "the target to lead", || {
        let l = raft_leader_name(&s1)?;
        (l == target_name).then_some(())
    });
    assert_eq!(put(&s1, "/v1/kv/after-transfer", "ok").body, "true");
    // without an id: any up-to-date voter
    let (code, _, err) = s1.cli(&["operator", "raft", "transfer-leader"]);
    assert_eq!(code, 0, "{err}");
    wait_until(LONG, "a new leader", || {
        let l = raft_leader_name(&s2)?;
        (l != target_name).then_some(())
    });
    assert_eq!(put(&s3, "/v1/kv/after-second-transfer", "ok").body, "true");
}
