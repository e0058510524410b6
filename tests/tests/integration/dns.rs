//! The DNS interface, queried with `dig` (Debian's dnsutils) and with hickory-proto
//! messages sent over UDP: A, SRV (plain and RFC 2782), tags, datacenter names, NXDOMAIN
//! and NODATA with the SOA, authoritative answers, TCP, node lookups, health filtering,
//! TTL configuration, the UDP answer limit, EDNS0, and hostile packets.

use crate::http_util::*;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use integration_tests::harness::{wait_until, Node, NodeOptions, TIMEOUT};
use serde_json::json;
use std::net::UdpSocket;
use std::process::Command;
use std::str::FromStr;
use std::time::Duration;

fn dig(n: &Node, args: &[&str]) -> String {
    let (host, port) = n.dns.rsplit_once(':').unwrap();
    let out = Command::new("dig")
        .args([&format!("@{host}"), "-p", port, "+time=2", "+tries=1"])
        .args(args)
        .output()
        .expect("dig (dnsutils) is installed by scripts/deps.sh");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn short(n: &Node, args: &[&str]) -> Vec<String> {
    let mut a = vec!["+short"];
    a.extend_from_slice(args);
    let mut v: Vec<String> = dig(n, &a)
        .lines()
        .map(str::to_string)
        .filter(|l| !l.is_empty())
        .collect();
    v.sort();
    v
}

fn status(n: &Node, args: &[&str]) -> String {
    dig(n, args)
        .lines()
        .find_map(|l| {
            l.split("status: ")
                .nth(1)
                .map(|s| s.split(',').next().unwrap_or("").to_string())
        })
        .unwrap_or_default()
}

fn query(n: &Node, name: &str, qtype: RecordType, edns: bool) -> Message {
    let mut m = Message::new();
    m.set_id(4242)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true);
    m.add_query(Query::query(Name::from_str(name).unwrap(), qtype));
    if edns {
        let mut e = Edns::new();
        e.set_max_payload(4096);
        m.set_edns(e);
    }
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    sock.send_to(&m.to_vec().unwrap(), &n.dns).unwrap();
    let mut buf = [0u8; 4096];
    let (k, _) = sock.recv_from(&mut buf).unwrap();
    Message::from_vec(&buf[..k]).unwrap()
}

fn register(n: &Node, body: serde_json::Value) {
    let r = put_json(n, "/v1/agent/service/register", &body);
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn dig_service_node_and_negative_answers() {
    let n = Node::dev();
    register(
        &n,
        json!({"ID": "web1", "Name": "web", "Tags": ["rails"], "Port": 80, "Address": "127.0.0.1"}),
    );
    assert_eq!(short(&n, &["web.service.consul", "A"]), vec!["127.0.0.1"]);
    let full = dig(&n, &["web.service.consul", "A"]);
    assert!(full.contains("flags: qr aa"), "authoritative: {full}");
    assert_eq!(short(&n, &["rails.web.service.consul"]), vec!["127.0.0.1"]);
    assert_eq!(short(&n, &["web.service.dc1.consul"]), vec!["127.0.0.1"]);
    for q in [
        "web.service.consul",
        "_web._tcp.service.consul",
        "_web._rails.service.consul",
    ] {
        let srv = short(&n, &[q, "SRV"]);
        assert_eq!(srv.len(), 1, "{q}: {srv:?}");
        let parts: Vec<&str> = srv[0].split_whitespace().collect();
        assert_eq!(parts[2], "80", "{q}: {srv:?}");
        assert!(parts[3].ends_with(".node.dc1.consul."), "{q}: {srv:?}");
        let add = dig(&n, &["+noall", "+additional", q, "SRV"]);
        assert!(
            add.contains(parts[3]) && add.contains("127.0.0.1"),
            "target resolves in the additional section: {add}"
        );
    }
    assert_eq!(status(&n, &["nosuchtag.web.service.consul"]), "NXDOMAIN");
    assert_eq!(status(&n, &["nosuch.service.consul"]), "NXDOMAIN");
    assert_eq!(status(&n, &["web.service.dc9.consul"]), "NXDOMAIN");
    assert!(dig(&n, &["+noall", "+authority", "nosuch.service.consul"]).contains("SOA"));
    // NODATA: the name exists, no AAAA record
    assert_eq!(status(&n, &["web.service.consul", "AAAA"]), "NOERROR");
    assert!(dig(&n, &["+noall", "+authority", "web.service.consul", "AAAA"]).contains("SOA"));
    assert_eq!(
        short(&n, &["+tcp", "web.service.consul"]),
        vec!["127.0.0.1"]
    );
    assert_eq!(short(&n, &["node1.node.consul"]), vec!["127.0.0.1"]);
    assert_eq!(short(&n, &["node1.node.dc1.consul"]), vec!["127.0.0.1"]);
    assert_eq!(status(&n, &["ghost.node.consul"]), "NXDOMAIN");
    assert_eq!(short(&n, &["7f000001.addr.dc1.consul"]), vec!["127.0.0.1"]);
    assert_eq!(
        status(&n, &["example.com"]),
        "REFUSED",
        "no recursors configured"
    );
    // deregistration is visible at once
    put(&n, "/v1/agent/service/deregister/web1", "");
    assert_eq!(status(&n, &["web.service.consul"]), "NXDOMAIN");
}

#[test]
fn health_filters_dns_answers() {
    let n = Node::dev();
    register(
        &n,
        json!({"ID": "api1", "Name": "api", "Port": 1, "Address": "127.0.0.10", "Check": {"TTL": "60s", "CheckID": "api1-ttl"}}),
    );
    register(
        &n,
        json!({"ID": "api2", "Name": "api", "Port": 2, "Address": "127.0.0.11", "Check": {"TTL": "60s", "CheckID": "api2-ttl", "Status": "passing"}}),
    );
    assert_eq!(
        short(&n, &["api.service.consul"]),
        vec!["127.0.0.11"],
        "the critical instance is left out"
    );
    put(&n, "/v1/agent/check/pass/api1-ttl", "");
    assert_eq!(
        short(&n, &["api.service.consul"]),
        vec!["127.0.0.10", "127.0.0.11"]
    );
    put(&n, "/v1/agent/check/warn/api1-ttl", "");
    assert_eq!(
        short(&n, &["api.service.consul"]).len(),
        2,
        "warning stays in without only_passing"
    );
    put(&n, "/v1/agent/check/fail/api2-ttl", "");
    put(&n, "/v1/agent/check/fail/api1-ttl", "");
    assert_eq!(
        status(&n, &["api.service.consul"]),
        "NXDOMAIN",
        "no healthy instance"
    );
}

#[test]
fn ttls_limits_edns_and_garbage() {
    let n = Node::start(NodeOptions {
        dev: true,
        config: vec![(
            "dns.json".into(),
            r#"{"dns_config": {"node_ttl": "7s", "service_ttl": {"*": "5s", "big": "9s"}}}"#.into(),
        )],
        ..Default::default()
    });
    for i in 0..5 {
        register(
            &n,
            json!({"ID": format!("big{i}"), "Name": "big", "Port": 1000 + i, "Address": format!("127.0.1.{i}")}),
        );
    }
    register(
        &n,
        json!({"Name": "small", "Port": 1, "Address": "127.0.2.1"}),
    );
    let a = dig(&n, &["+noall", "+answer", "big.service.consul"]);
    assert_eq!(
        a.lines()
            .filter(|l| l.contains("\tA\t") || l.contains(" A "))
            .count(),
        3,
        "UDP answers are limited to 3: {a}"
    );
    assert!(
        a.contains("\t9\tIN\tA") || a.contains(" 9 IN A"),
        "service_ttl for big: {a}"
    );
    assert_eq!(
        short(&n, &["+tcp", "big.service.consul"]).len(),
        5,
        "TCP answers are not limited"
    );
    let s = dig(&n, &["+noall", "+answer", "small.service.consul"]);
    assert!(s.contains("\t5\tIN\tA"), "wildcard service_ttl: {s}");
    let nd = dig(&n, &["+noall", "+answer", "node1.node.consul"]);
    assert!(nd.contains("\t7\tIN\tA"), "node_ttl: {nd}");

    // EDNS0 queries get an OPT record back; plain ones do not
    let m = query(&n, "small.service.consul.", RecordType::A, true);
    assert!(m.extensions().is_some(), "EDNS answered with OPT");
    assert!(m.authoritative());
    let m = query(&n, "small.service.consul.", RecordType::SRV, false);
    assert_eq!(m.answers().len(), 1);
    assert_eq!(m.additionals().len(), 1);

    // hostile packets do not take the server down
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    for junk in [
        vec![0u8; 3],
        vec![0xffu8; 512],
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x3fabc".to_vec(),
    ] {
        sock.send_to(&junk, &n.dns).unwrap();
    }
    wait_until(TIMEOUT, "DNS still answering", || {
        (short(&n, &["small.service.consul"]) == vec!["127.0.2.1"]).then_some(())
    });
}

#[test]
fn client_agent_answers_through_servers() {
    let s = Node::start(NodeOptions {
        name: Some("dns-s".into()),
        ..Default::default()
    });
    let c = Node::start(NodeOptions {
        name: Some("dns-c".into()),
        client: true,
        extra: vec![
            format!("-retry-join={}", s.serf),
            "-retry-interval=1s".into(),
        ],
        ..Default::default()
    });
    register(
        &c,
        json!({"Name": "cache", "Port": 6379, "Address": "127.0.3.1"}),
    );
    assert_eq!(short(&c, &["cache.service.consul"]), vec!["127.0.3.1"]);
    assert_eq!(short(&s, &["cache.service.consul"]), vec!["127.0.3.1"]);
    assert_eq!(short(&c, &["dns-s.node.consul"]), vec!["127.0.0.1"]);
    assert_eq!(status(&c, &["nope.service.consul"]), "NXDOMAIN");
}

#[test]
fn other_names_go_to_the_recursors() {
    // Agent A answers `consul.`; agent B serves `b.test.` and recurses to A for the rest.
    let a = Node::dev();
    register(
        &a,
        json!({"Name": "remote", "Port": 1, "Address": "127.0.4.4"}),
    );
    let b = Node::start(NodeOptions {
        dev: true,
        name: Some("b".into()),
        config: vec![(
            "dns.json".into(),
            format!(r#"{{"domain": "b.test", "recursors": ["{}"]}}"#, a.dns),
        )],
        ..Default::default()
    });
    assert_eq!(
        short(&b, &["remote.service.consul"]),
        vec!["127.0.4.4"],
        "forwarded to the recursor"
    );
    assert_eq!(
        short(&b, &["b.node.b.test"]),
        vec!["127.0.0.1"],
        "own domain answered locally"
    );
    let full = dig(&b, &["remote.service.consul"]);
    assert!(
        full.contains(" ra"),
        "recursion available on recursed answers: {full}"
    );
}

#[test]
fn only_passing_and_truncation_settings() {
    let n = Node::start(NodeOptions {
        dev: true,
        config: vec![(
            "dns.json".into(),
            r#"{"dns_config": {"only_passing": true, "enable_truncate": true, "udp_answer_limit": 2}, "alt_domain": "alt.test"}"#.into(),
        )],
        ..Default::default()
    });
    register(
        &n,
        json!({"ID": "w1", "Name": "w", "Port": 1, "Address": "127.0.5.1", "Check": {"TTL": "60s", "CheckID": "w1-ttl", "Status": "passing"}}),
    );
    register(
        &n,
        json!({"ID": "w2", "Name": "w", "Port": 2, "Address": "127.0.5.2", "Check": {"TTL": "60s", "CheckID": "w2-ttl", "Status": "warning"}}),
    );
    assert_eq!(
        short(&n, &["w.service.consul"]),
        vec!["127.0.5.1"],
        "only_passing drops the warning instance"
    );
    assert_eq!(
        short(&n, &["w.service.alt.test"]),
        vec!["127.0.5.1"],
        "alt_domain answers too"
    );
    for i in 3..6 {
        register(
            &n,
            json!({"ID": format!("w{i}"), "Name": "w", "Port": i, "Address": format!("127.0.5.{i}")}),
        );
    }
    let full = dig(&n, &["+ignore", "w.service.consul"]);
    assert!(
        full.contains(" tc"),
        "truncation is flagged with enable_truncate: {full}"
    );
}

/// Answers larger than the packet: without EDNS a UDP answer stays within 512 bytes (TC
/// set), with EDNS within the requester's size; repeated questions (answered from the
/// cached wire form) keep to the same rules, and TCP gets every instance.
#[test]
fn big_answers_fit_the_packet_and_repeat_the_same_way() {
    let n = Node::start(NodeOptions {
        dev: true,
        config: vec![(
            "dns.json".into(),
            r#"{"dns_config": {"udp_answer_limit": 100}}"#.into(),
        )],
        ..Default::default()
    });
    let mut body = Vec::new();
    for i in 1..=60 {
        body.push(json!({"Node": {"Verb": "set", "Node": {"Node": format!("big-{i}"), "Address": format!("10.1.0.{i}")}}}));
        body.push(json!({"Service": {"Verb": "set", "Node": format!("big-{i}"), "Service": {"ID": "api", "Service": "api", "Port": 9000 + i}}}));
    }
    for chunk in body.chunks(64) {
        assert_eq!(put_json(&n, "/v1/txn", &json!(chunk)).status, 200);
    }
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let ask = |qtype: RecordType, edns: Option<u16>| -> (usize, Message) {
        let mut m = Message::new();
        m.set_id(7)
            .set_message_type(MessageType::Query)
            .set_op_code(OpCode::Query);
        m.add_query(Query::query(
            Name::from_str("api.service.consul.").unwrap(),
            qtype,
        ));
        if let Some(size) = edns {
            let mut e = Edns::new();
            e.set_max_payload(size);
            m.set_edns(e);
        }
        sock.send_to(&m.to_vec().unwrap(), &n.dns).unwrap();
        let mut buf = [0u8; 65535];
        let (k, _) = sock.recv_from(&mut buf).unwrap();
        (k, Message::from_vec(&buf[..k]).unwrap())
    };
    for round in 0..3 {
        for qtype in [RecordType::A, RecordType::SRV] {
            let (size, m) = ask(qtype, None);
            assert!(size <= 512, "round {round} {qtype}: {size} bytes");
            assert!(m.truncated(), "round {round} {qtype}");
            assert!(m.answers().len() >= 10, "round {round} {qtype}: {m:?}");
            let (size, m) = ask(qtype, Some(4096));
            assert!(size <= 4096 && m.extensions().is_some());
            if qtype == RecordType::A {
                assert_eq!(m.answers().len(), 60, "round {round}: all fit in 4096");
                assert!(!m.truncated());
            } else {
                assert!(!m.answers().is_empty() && m.answers().len() <= 60);
            }
        }
    }
    assert_eq!(short(&n, &["+tcp", "api.service.consul"]).len(), 60);
}
