//! Hostile clients: Consul's per-client HTTP connection limit (429 with Consul's text),
//! slowloris connections closed by the request-header deadline while normal requests go
//! on, a flood of mixed valid and garbage HTTP requests over raw TCP (every well-formed
//! one answered correctly, memory bounded), and a DNS flood over UDP.

use crate::http_util::*;
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use integration_tests::harness::{wait_until, Node, NodeOptions};
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream, UdpSocket};
use std::os::fd::FromRawFd;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TOO_MANY: &str =
    "Your IP is issuing too many concurrent connections, please rate limit your calls\n";

fn http_addr(n: &Node) -> SocketAddr {
    n.http
        .trim_start_matches("http://")
        .parse()
        .expect("HTTP address")
}

/// A TCP connection to `dst` from the source address `src` (any 127.0.0.0/8 address
/// works on Linux's loopback).
fn connect_from(src: Ipv4Addr, dst: SocketAddr) -> std::io::Result<TcpStream> {
    let SocketAddr::V4(dst) = dst else {
        return Err(std::io::Error::other("IPv4 only"));
    };
    fn sockaddr(a: SocketAddrV4) -> libc::sockaddr_in {
        libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: a.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(*a.ip()).to_be(),
            },
            sin_zero: [0; 8],
        }
    }
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: plain socket calls on a descriptor this function owns; the sockaddr
    // structures live across the calls; the descriptor goes to TcpStream or is closed.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let local = sockaddr(SocketAddrV4::new(src, 0));
        let remote = sockaddr(dst);
        if libc::bind(fd, &local as *const _ as *const libc::sockaddr, len) != 0
            || libc::connect(fd, &remote as *const _ as *const libc::sockaddr, len) != 0
        {
            let e = std::io::Error::last_os_error();
            libc::close(fd);
            return Err(e);
        }
        Ok(TcpStream::from_raw_fd(fd))
    }
}

/// Send a whole request on a new connection and read the answer to EOF: the status and
/// the body (None when the server closed without an answer).
fn raw_from(
    src: Ipv4Addr,
    addr: SocketAddr,
    req: &[u8],
    half_close: bool,
) -> Option<(u16, String)> {
    let mut s = connect_from(src, addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(15))).unwrap();
    let _ = s.write_all(req);
    if half_close {
        let _ = s.shutdown(std::net::Shutdown::Write);
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")?
        .get(..3)?
        .parse::<u16>()
        .ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}

fn raw(addr: SocketAddr, req: &[u8]) -> Option<(u16, String)> {
    raw_from(Ipv4Addr::LOCALHOST, addr, req, false)
}

fn get_req(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: praetor\r\nConnection: close\r\n\r\n").into_bytes()
}

fn put_req(path: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "PUT {path} HTTP/1.1\r\nHost: praetor\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

/// Whether the server closed `s` (EOF or reset) rather than leaving it open.
fn closed_by_server(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let mut b = [0u8; 256];
    match s.read(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
    }
}

fn vm_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}

fn alive(n: &Node) -> bool {
    n.pid()
        .is_some_and(|p| std::path::Path::new(&format!("/proc/{p}")).exists())
        && get(n, "/v1/status/leader").status == 200
}

fn limited_node(limit: u32, header_timeout: &str) -> Node {
    Node::start(NodeOptions {
        dev: true,
        config: vec![(
            "limits.hcl".into(),
            format!("limits {{\n  http_max_conns_per_client = {limit}\n}}\n"),
        )],
        env: vec![("PRAETOR_HTTP_HEADER_TIMEOUT".into(), header_timeout.into())],
        ..Default::default()
    })
}

#[test]
fn per_client_connection_limit() {
    let n = limited_node(20, "60s");
    let addr = http_addr(&n);
    // Let the readiness probes' connections go.
    std::thread::sleep(Duration::from_millis(300));
    let mut idle: Vec<TcpStream> = (0..20)
        .map(|_| connect_from(Ipv4Addr::LOCALHOST, addr).expect("connect"))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    for (i, s) in idle.iter_mut().enumerate() {
        assert!(!closed_by_server(s), "idle connection {i} was refused");
    }
    // The 21st from the same IP: Consul's 429, then closed.
    let (status, body) = raw(addr, &get_req("/v1/status/leader")).expect("an answer");
    assert_eq!(status, 429);
    assert_eq!(body, TOO_MANY);
    // Another client IP is not affected.
    let (status, body) = raw_from(
        Ipv4Addr::new(127, 0, 0, 2),
        addr,
        &get_req("/v1/status/leader"),
        false,
    )
    .expect("an answer");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("127.0.0.1:"), "{body}");
    // The refused ones did not use up slots: still refused, still 20 held.
    let (status, _) = raw(addr, &get_req("/v1/agent/self")).expect("an answer");
    assert_eq!(status, 429);
    for s in idle.iter_mut() {
        assert!(!closed_by_server(s));
    }
    // Closing the idle connections frees the slots.
    drop(idle);
    let (status, _) = wait_until(Duration::from_secs(10), "127.0.0.1 served again", || {
        raw(addr, &get_req("/v1/status/leader")).filter(|(s, _)| *s == 200)
    });
    assert_eq!(status, 200);
    // Let the server drop the probes' connections (it closes them after answering).
    std::thread::sleep(Duration::from_millis(300));
    // 20 concurrent keep-alive connections are fine again, and requests on them work.
    let mut conns: Vec<TcpStream> = (0..20)
        .map(|_| connect_from(Ipv4Addr::LOCALHOST, addr).unwrap())
        .collect();
    for s in conns.iter_mut() {
        s.write_all(b"GET /v1/status/leader HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut b = [0u8; 512];
        let k = s.read(&mut b).unwrap();
        assert!(
            String::from_utf8_lossy(&b[..k]).starts_with("HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&b[..k])
        );
    }
    let (status, _) = raw(addr, &get_req("/v1/status/leader")).expect("an answer");
    assert_eq!(status, 429);
}

#[test]
fn slow_clients_do_not_hold_the_server() {
    let timeout = Duration::from_secs(6);
    let n = limited_node(200, "6s");
    let addr = http_addr(&n);
    // 200 slowloris connections from four client addresses (50 each), each trickling a
    // request line one byte at a time.
    let mut slow: Vec<TcpStream> = (0..200)
        .map(|i| connect_from(Ipv4Addr::new(127, 0, 1, 10 + (i % 4) as u8), addr).expect("connect"))
        .collect();
    let opened = Instant::now();
    let line = b"GET /v1/agent/self?pretty HTTP/1.1\r\nHost: praetor\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let stop = Arc::new(AtomicBool::new(false));
    let clones: Vec<TcpStream> = slow.iter().map(|s| s.try_clone().unwrap()).collect();
    let trickle = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut clones = clones;
            let mut pos = 0;
            while !stop.load(Ordering::Relaxed) && pos < line.len() {
                for s in clones.iter_mut() {
                    let _ = s.write(&line[pos..pos + 1]);
                }
                pos += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    // Normal requests are served promptly meanwhile.
    for i in 0..20 {
        let started = Instant::now();
        let r = put(&n, &format!("/v1/kv/slow/{i}"), format!("v{i}"));
        assert_eq!(r.status, 200, "{}", r.body);
        let r = get(&n, &format!("/v1/kv/slow/{i}?raw"));
        assert_eq!((r.status, r.body.as_str()), (200, format!("v{i}").as_str()));
        // Well under the header deadline: not waiting for slow clients to be dropped.
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "request {i} took {:?}",
            started.elapsed()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Every slow connection is closed once the header deadline passes, though it is
    // still sending (the trickle lasts longer than the deadline).
    let mut open: Vec<usize> = (0..slow.len()).collect();
    let deadline = opened + timeout + Duration::from_secs(5);
    while !open.is_empty() && Instant::now() < deadline {
        open.retain(|&i| !closed_by_server(&mut slow[i]));
        std::thread::sleep(Duration::from_millis(100));
    }
    let closed_after = opened.elapsed();
    stop.store(true, Ordering::Relaxed);
    trickle.join().unwrap();
    assert!(
        open.is_empty(),
        "{} slow connections still open after {closed_after:?}",
        open.len()
    );
    assert!(
        closed_after >= timeout - Duration::from_millis(500),
        "closed before the deadline: {closed_after:?}"
    );
    // A slow client that then completes its headers in time is served.
    let mut s = connect_from(Ipv4Addr::LOCALHOST, addr).unwrap();
    for b in b"GET /v1/status/leader HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".chunks(8) {
        s.write_all(b).unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(alive(&n));
}

/// What a flood request is, and what a correct answer to it is.
enum Expect {
    /// Exactly this status and body.
    Exact(u16, String),
    /// Exactly this status.
    Status(u16),
    /// A 4xx answer or a closed connection, never a 5xx.
    Refused,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn flood_request(rng: &mut Rng, thread: usize, i: usize) -> (Vec<u8>, Expect, bool) {
    match rng.below(14) {
        0..=3 => {
            let k = rng.below(20);
            (
                get_req(&format!("/v1/kv/flood/k{k}?raw")),
                Expect::Exact(200, format!("value-{k}")),
                false,
            )
        }
        4 => (
            put_req(
                &format!("/v1/kv/flood/t{thread}/{i}"),
                format!("w{thread}-{i}").as_bytes(),
            ),
            Expect::Exact(200, "true".into()),
            false,
        ),
        5 => (get_req("/v1/catalog/services"), Expect::Status(200), false),
        6 => {
            // Random bytes.
            let n = 1 + rng.below(2048);
            let junk: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            (junk, Expect::Refused, true)
        }
        7 => {
            // A huge header: hyper's limit answers 431 (or resets while we still send).
            let mut r = b"GET /v1/agent/self HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
            r.extend(std::iter::repeat_n(b'a', 600 * 1024));
            r.extend_from_slice(b"\r\n\r\n");
            (r, Expect::Refused, true)
        }
        8 => {
            let bodies: [&[u8]; 4] = [
                b"{\"Node\": ",
                b"{\"Node\": \"n\", \"Address\": 5, \"Service\": []}",
                b"\xff\xfe\x00garbage",
                b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
            ];
            let b = bodies[rng.below(bodies.len())];
            (
                put_req("/v1/catalog/register", b),
                Expect::Status(400),
                false,
            )
        }
        9 => (
            get_req("/v1/kv/flood/k1?index=abc"),
            Expect::Exact(400, "Invalid index".into()),
            false,
        ),
        10 => (
            get_req("/v1/catalog/services?wait=forever&index=1"),
            Expect::Exact(400, "Invalid wait time".into()),
            false,
        ),
        11 => (
            get_req("/v1/kv/%zz%?recurse=%%%&keys&separator=%ff"),
            Expect::Refused,
            false,
        ),
        12 => {
            let ops: Vec<String> = (0..65)
                .map(|k| format!("{{\"KV\":{{\"Verb\":\"get\",\"Key\":\"k{k}\"}}}}"))
                .collect();
            (
                put_req("/v1/txn", format!("[{}]", ops.join(",")).as_bytes()),
                Expect::Status(413),
                false,
            )
        }
        _ => {
            // A declared body over the route's limit (8 MiB; 512 KiB for KV values), never
            // sent: refused before it is read.
            let (path, len, max, hint) = if rng.below(2) == 0 {
                ("/v1/catalog/register", 9437184, 8388608, "")
            } else {
                ("/v1/kv/big", 600_000, 524288, " See https://developer.hashicorp.com/docs/agent/config/config-files#kv_max_value_size.")
            };
            (
                format!("PUT {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {len}\r\n\r\n{{").into_bytes(),
                Expect::Exact(
                    413,
                    format!("Request body({len} bytes) too large, max size: {max} bytes.{hint}"),
                ),
                false,
            )
        }
    }
}

#[test]
fn http_flood_of_mixed_requests() {
    let n = limited_node(200, "2s");
    let addr = http_addr(&n);
    for k in 0..20 {
        assert_eq!(
            put(&n, &format!("/v1/kv/flood/k{k}"), format!("value-{k}")).status,
            200
        );
    }
    // Too many headers: 431 from hyper, whole request read so the answer is not lost.
    let mut many = b"GET /v1/agent/self HTTP/1.1\r\nHost: x\r\nConnection: close\r\n".to_vec();
    for h in 0..120 {
        many.extend_from_slice(format!("X-H{h}: v\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    assert_eq!(raw(addr, &many).map(|r| r.0), Some(431));
    // Deeply nested and very long filters are refused, not a stack overflow that
    // aborts the agent.
    for f in [
        "%28".repeat(8_000) + "Node%20%3D%3D%20a" + &"%29".repeat(8_000),
        "not%20".repeat(8_000) + "Node%20%3D%3D%20a",
        vec!["Node%20%3D%3D%20a"; 2_000].join("%20and%20"),
    ] {
        let (status, body) =
            raw(addr, &get_req(&format!("/v1/catalog/services?filter={f}"))).expect("an answer");
        assert_eq!(status, 400, "{body}");
        assert!(
            body.starts_with("Failed to create boolean expression evaluator: "),
            "{body}"
        );
    }
    assert!(alive(&n));
    let pid = n.pid().expect("pid");
    let rss_before = vm_rss_kib(pid);
    let served = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let threads: Vec<_> = (0..20)
        .map(|t| {
            let served = served.clone();
            std::thread::spawn(move || {
                let mut rng = Rng(0x2545_F491_4F6C_DD1D ^ ((t as u64 + 1) << 20));
                let mut failures = Vec::new();
                for i in 0..500 {
                    if started.elapsed() > Duration::from_secs(120) {
                        failures.push("flood took over 120 s".to_string());
                        break;
                    }
                    let (req, expect, half_close) = flood_request(&mut rng, t, i);
                    let got = raw_from(Ipv4Addr::LOCALHOST, addr, &req, half_close);
                    let ok = match (&expect, &got) {
                        (Expect::Exact(s, b), Some((gs, gb))) => s == gs && b == gb,
                        (Expect::Status(s), Some((gs, _))) => s == gs,
                        (Expect::Refused, None) => true,
                        (Expect::Refused, Some((gs, _))) => (400..500).contains(gs),
                        _ => false,
                    };
                    if ok {
                        served.fetch_add(1, Ordering::Relaxed);
                    } else if failures.len() < 5 {
                        let head = String::from_utf8_lossy(&req[..req.len().min(80)]).into_owned();
                        failures.push(format!("{head:?} -> {got:?}"));
                    }
                }
                failures
            })
        })
        .collect();
    let failures: Vec<String> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("flood thread"))
        .collect();
    let elapsed = started.elapsed();
    assert!(failures.is_empty(), "wrong answers: {failures:#?}");
    assert_eq!(served.load(Ordering::Relaxed), 20 * 500);
    assert!(alive(&n), "agent died in the flood");
    let rss_after = vm_rss_kib(pid);
    assert!(
        rss_after < rss_before + 256 * 1024,
        "RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
    // Still correct afterwards.
    let r = get(&n, "/v1/kv/flood/k7?raw");
    assert_eq!((r.status, r.body.as_str()), (200, "value-7"));
    eprintln!("flood: 10000 requests in {elapsed:?}, RSS {rss_before} -> {rss_after} KiB");
}

fn dns_query(name: &str, qtype: RecordType, id: u16) -> Vec<u8> {
    let mut m = Message::new();
    m.set_id(id)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true);
    m.add_query(Query::query(Name::from_str(name).unwrap(), qtype));
    m.to_vec().unwrap()
}

/// Ask for `web.service.consul` A from `client` until an answer with records comes back.
fn resolve(client: &UdpSocket, dns: SocketAddr, id: u16) -> (Vec<String>, Message) {
    let q = dns_query("web.service.consul.", RecordType::A, id);
    let mut buf = [0u8; 4096];
    let m = wait_until(Duration::from_secs(10), "a DNS answer", || {
        client.send_to(&q, dns).ok()?;
        let deadline = Instant::now() + Duration::from_millis(500);
        while Instant::now() < deadline {
            let (k, _) = client.recv_from(&mut buf).ok()?;
            if let Ok(m) = Message::from_vec(&buf[..k]) {
                if m.id() == id && !m.answers().is_empty() {
                    return Some(m);
                }
            }
        }
        None
    });
    let ips = m
        .answers()
        .iter()
        .filter_map(|r| r.data().map(|d| d.to_string()))
        .collect();
    (ips, m)
}

#[test]
fn dns_flood_over_udp() {
    let n = Node::start(NodeOptions {
        dev: true,
        ..Default::default()
    });
    let dns: SocketAddr = n.dns.parse().expect("DNS address");
    let r = put_json(
        &n,
        "/v1/agent/service/register",
        &serde_json::json!({"Name": "web", "Port": 80, "Address": "10.1.2.3"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let (before, _) = resolve(&client, dns, 7776);
    assert_eq!(before, vec!["10.1.2.3".to_string()]);
    let pid = n.pid().expect("pid");
    let rss_before = vm_rss_kib(pid);
    let flood = UdpSocket::bind("127.0.0.1:0").unwrap();
    flood.set_nonblocking(true).unwrap();
    let valid = dns_query("web.service.consul.", RecordType::A, 1);
    let mut rng = Rng(0xDEAD_BEEF_CAFE_F00D);
    let mut sent = 0usize;
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    for i in 0..40_000usize {
        let pkt: Vec<u8> = match i % 6 {
            0 => valid.clone(),
            1 => {
                // Random bytes.
                let k = rng.below(600);
                (0..k).map(|_| rng.next() as u8).collect()
            }
            2 => valid[..rng.below(valid.len())].to_vec(),
            3 => {
                // A label longer than 63 bytes and a name over 255: not even valid names.
                let mut p = valid[..12].to_vec();
                p.push(200);
                p.extend(std::iter::repeat_n(b'a', 200));
                p.extend_from_slice(&[0, 0, 1, 0, 1]);
                p
            }
            4 => {
                // A compression pointer loop.
                let mut p = valid[..12].to_vec();
                p.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
                p
            }
            _ => {
                // A valid header claiming many questions and records that are not there.
                let mut p = valid.clone();
                p[4..12].copy_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
                p
            }
        };
        match flood.send_to(&pkt, dns) {
            Ok(_) => sent += 1,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => panic!("send: {e}"),
        }
        // Drain answers so our own socket buffer does not matter.
        while flood.recv_from(&mut buf).is_ok() {}
        if i % 2000 == 1999 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    assert!(sent > 30_000, "only {sent} packets sent");
    let flood_time = started.elapsed();
    // A normal query from another socket is answered.
    let (answer, _) = resolve(&client, dns, 7777);
    assert_eq!(answer, vec!["10.1.2.3".to_string()]);
    assert!(alive(&n), "agent stopped serving HTTP after the DNS flood");
    let rss_after = vm_rss_kib(pid);
    assert!(
        rss_after < rss_before + 256 * 1024,
        "RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
    eprintln!("dns flood: {sent} packets in {flood_time:?}, RSS {rss_before} -> {rss_after} KiB");
}
