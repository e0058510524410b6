//! Fuzzing entry points: each takes arbitrary bytes and runs one decoder that faces
//! untrusted input, the way the agent runs it, discarding the result. None of them may
//! panic, whatever the input: a panic is a bug in the decoder, found by the libFuzzer
//! targets in `fuzz/` (see `docs/fuzzing.md`) or by the corpus test below.
//!
//! | entry point | what it decodes |
//! | --- | --- |
//! | [`http_params`] | a request path and query string: percent-decoding, flags, integers, `?wait`, `?filter` (parsed and applied), tokens |
//! | [`catalog_register`] | a `PUT /v1/catalog/register` body |
//! | [`definitions`] | a service or check definition body (`/v1/agent/service/register`, `/v1/agent/check/register`) |
//! | [`txn_ops`] | a `PUT /v1/txn` body |
//! | [`acl_rules`] | ACL policy rules (HCL or JSON) |
//! | [`dns_name`] | a query name under the Consul domain |
//! | [`dns_message`] | a DNS message through the real request handler, over a fake catalog |
//! | [`config_json`], [`config_hcl`] | a configuration source, through the whole config build |
//! | [`raft_command`] | a Raft log entry's `Command`, then applied to an empty store |
//! | [`rpc_messages`] | the server RPC bodies: forwarded writes and their answers, append-entries, vote and snapshot requests and responses |

use crate::config::{AgentFlags, RuntimeConfig};
use crate::dns::handler::DnsHandler;
use crate::dns::lookup::{DnsLookup, Instance, LookupError, QueryAnswer};
use crate::dns::DnsSettings;
use crate::raft::typ::NodeId;
use crate::raft::{Command, CommandResponse, TypeConfig};
use crate::types::{HealthCheck, Node, NodeService};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncoder};
use hickory_server::authority::{MessageRequest, MessageResponse};
use hickory_server::server::{Protocol, Request, RequestHandler, ResponseHandler, ResponseInfo};
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};

/// The input as text, as a server sees a request that is not UTF-8 (lossily).
fn text(data: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(data)
}

/// Run a future whose every await is ready at once (the fakes below never wait).
/// Gives up after a bounded number of polls instead of spinning.
fn run_ready<F: Future>(f: F) -> Option<F::Output> {
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..1000 {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return Some(v);
        }
    }
    None
}

/// Request path and query string: `<path>[?<query>]`, then optional header lines
/// (`Name: value`) after a newline.
pub fn http_params(data: &[u8]) {
    let s = text(data);
    let (target, header_lines) = s.split_once('\n').unwrap_or((&s, ""));
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let mut headers = HeaderMap::new();
    for line in header_lines.lines() {
        if let Some((k, v)) = line.split_once(':') {
            if let (Ok(k), Ok(v)) = (
                HeaderName::from_bytes(k.trim().as_bytes()),
                HeaderValue::from_str(v.trim()),
            ) {
                headers.append(k, v);
            }
        }
    }
    let p = crate::http::params::Params::from_parts(path, query, &headers);
    let _ = p.rest("/v1/kv/");
    let _ = p.all("tag");
    let _ = p.flag("recurse");
    let _ = p.u64("index", "index");
    let _ = p.token();
    let _ = crate::http::catalog::node_meta_filter(&p);
    if let Ok(q) = p.query_options() {
        let _ = q.effective_wait(std::time::Duration::ZERO, std::time::Duration::from_secs(1));
        if let Some(expr) = &q.filter {
            let _ = crate::http::filter::apply(expr, sample_listing());
        }
    }
    if let Some(w) = p.get("wait") {
        let _ = crate::types::parse_duration(w);
    }
}

/// A listing for `?filter=` expressions to run over.
fn sample_listing() -> serde_json::Value {
    serde_json::json!([
        {"Node": "n1", "Address": "10.0.0.1", "ServiceName": "web", "ServiceTags": ["a", "b"],
         "ServiceMeta": {"v": "1"}, "ServicePort": 80, "Checks": [{"Status": "passing"}],
         "Weights": {"Passing": 1, "Warning": 1}, "Empty": null},
        {"Node": "n2", "Address": "::1", "ServiceName": "db", "ServiceTags": [],
         "ServiceMeta": {}, "ServicePort": 5432, "Checks": [], "Nested": {"a": {"b": [1, 2.5, true]}}}
    ])
}

/// A `PUT /v1/catalog/register` body.
pub fn catalog_register(data: &[u8]) {
    if let Ok(v) = crate::http::catalog::parse_body(data) {
        let _ = crate::http::catalog::decode_register(&v, "dc1");
    }
}

/// A service or check definition body, decoded both ways (and a check as a service's).
pub fn definitions(data: &[u8]) {
    if let Ok(v) = crate::http::catalog::parse_body(data) {
        let _ = crate::definition::decode_service(&v);
        let _ = crate::definition::decode_check(&v, None);
        let _ = crate::definition::decode_check(&v, Some(("web", "web")));
    }
}

/// A `PUT /v1/txn` body.
pub fn txn_ops(data: &[u8]) {
    if let Ok(ops) = crate::http::txn::decode_ops(data) {
        let _ = crate::store::Store::txn_is_read_only(&ops);
    }
}

/// ACL policy rules, HCL or JSON; a parsed policy is evaluated for a few names.
pub fn acl_rules(data: &[u8]) {
    use crate::acl::{Access, Authorizer, Resource};
    let Ok(rules) = crate::acl::rules::parse_rules(&text(data)) else {
        return;
    };
    for default_allow in [false, true] {
        let a = Authorizer::from_rules(
            crate::acl::authz::Identity::Anonymous,
            std::slice::from_ref(&rules),
            default_allow,
        );
        for res in [
            Resource::Key,
            Resource::Service,
            Resource::Node,
            Resource::Operator,
        ] {
            for name in ["", "a", "web", "foo/bar", "secret"] {
                for need in [Access::Read, Access::List, Access::Write] {
                    let _ = a.check(res, name, need);
                }
            }
        }
    }
}

/// A query name (`web.service.consul.`, `_db._tcp.service.dc1.consul`, ...).
pub fn dns_name(data: &[u8]) {
    let name = text(data);
    let domains = ["consul.".to_string(), "example.org.".to_string()];
    if let Ok((labels, _)) = crate::dns::parse::strip_domain(&name, &domains) {
        let _ = crate::dns::parse::parse(&labels);
    }
    let _ = crate::dns::parse::parse(&name.split('.').map(str::to_string).collect::<Vec<_>>());
    if let Some(ip) = crate::dns::parse::decode_addr(&name) {
        let _ = crate::dns::parse::encode_addr(&ip);
    }
}

/// A catalog that knows every name: hostile names flow into the answers (CNAME targets,
/// SRV targets, TXT meta).
struct FakeLookup;

fn fake_node(name: &str, address: &str) -> Node {
    Node {
        id: String::new(),
        node: name.to_string(),
        address: address.to_string(),
        datacenter: "dc1".into(),
        meta: [("rack".to_string(), name.to_string())].into(),
        ..Default::default()
    }
}

fn fake_instances(service: &str) -> Vec<Instance> {
    let addrs = [
        ("n1", "10.0.0.1", ""),
        ("n2", "10.0.0.2", "fe80::1"),
        ("n3", "node3.example", "10.1.1.1"),
        ("n4", service, service),
        ("n5", "10.0.0.5", "service.example."),
    ];
    addrs
        .iter()
        .enumerate()
        .map(|(i, (node, naddr, saddr))| Instance {
            node: fake_node(node, naddr),
            service: NodeService {
                id: format!("{service}-{i}"),
                service: service.to_string(),
                address: saddr.to_string(),
                port: [80, 0, 65535, 8080, 443][i],
                ..Default::default()
            },
            status: [
                crate::types::HEALTH_PASSING,
                crate::types::HEALTH_WARNING,
                crate::types::HEALTH_PASSING,
                crate::types::HEALTH_PASSING,
                crate::types::HEALTH_CRITICAL,
            ][i],
            checks: Vec::<HealthCheck>::new(),
        })
        .collect()
}

impl DnsLookup for FakeLookup {
    fn datacenter(&self) -> String {
        "dc1".into()
    }

    /// Never changes: answers are cached, so the UDP fast path answers repeated questions.
    fn generation(&self, dc: &str) -> Option<u64> {
        (dc == "dc1").then_some(1)
    }

    async fn service(
        &self,
        dc: &str,
        service: &str,
        _tag: Option<&str>,
    ) -> Result<Vec<Instance>, LookupError> {
        match (dc, service) {
            ("dc1", "missing") => Ok(Vec::new()),
            ("dc1", "broken") => Err(LookupError::Unavailable("no servers".into())),
            ("dc1", _) => Ok(fake_instances(service)),
            (other, _) => Err(LookupError::UnknownDatacenter(other.to_string())),
        }
    }

    async fn node(&self, dc: &str, node: &str) -> Result<Option<Node>, LookupError> {
        match (dc, node) {
            ("dc1", "missing") => Ok(None),
            ("dc1", "v6") => Ok(Some(fake_node(node, "2001:db8::1"))),
            ("dc1", "v4") => Ok(Some(fake_node(node, "192.0.2.1"))),
            ("dc1", _) => Ok(Some(fake_node(node, node))),
            (other, _) => Err(LookupError::UnknownDatacenter(other.to_string())),
        }
    }

    async fn query(&self, dc: &str, name: &str) -> Result<Option<QueryAnswer>, LookupError> {
        match (dc, name) {
            ("dc1", "missing") => Ok(None),
            ("dc1", _) => Ok(Some((name.to_string(), fake_instances(name), Some(7)))),
            (other, _) => Err(LookupError::UnknownDatacenter(other.to_string())),
        }
    }
}

/// Where the handler's answer goes: encoded to wire format, as the server would send it.
#[derive(Clone)]
struct Capture;

#[async_trait::async_trait]
impl ResponseHandler for Capture {
    async fn send_response<'a>(
        &mut self,
        response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a hickory_proto::rr::Record> + Send + 'a,
            impl Iterator<Item = &'a hickory_proto::rr::Record> + Send + 'a,
            impl Iterator<Item = &'a hickory_proto::rr::Record> + Send + 'a,
            impl Iterator<Item = &'a hickory_proto::rr::Record> + Send + 'a,
        >,
    ) -> std::io::Result<ResponseInfo> {
        let mut buf = Vec::with_capacity(512);
        let mut enc = BinEncoder::new(&mut buf);
        let info = response
            .destructive_emit(&mut enc)
            .map_err(std::io::Error::other)?;
        let _ = hickory_proto::op::Message::from_vec(&buf);
        Ok(info)
    }
}

fn dns_handler() -> &'static DnsHandler<FakeLookup> {
    static H: OnceLock<DnsHandler<FakeLookup>> = OnceLock::new();
    H.get_or_init(|| {
        let mut cfg = RuntimeConfig::for_test();
        cfg.alt_domain = Some("example.org".into());
        cfg.dns_config = serde_json::json!({"udp_answer_limit": 3, "enable_truncate": true});
        let mut settings = DnsSettings::from_config(&cfg);
        settings.recursors.clear();
        DnsHandler::new(Arc::new(FakeLookup), settings)
    })
}

/// A DNS message as received over UDP (first byte even) or TCP (odd), through the
/// hickory decoder and the agent's request handler, its answer encoded; then through the
/// UDP fast path, whose answer must decode.
pub fn dns_message(data: &[u8]) {
    let protocol = match data.first() {
        Some(b) if b & 1 == 1 => Protocol::Tcp,
        _ => Protocol::Udp,
    };
    let mut decoder = BinDecoder::new(data);
    let Ok(msg) = MessageRequest::read(&mut decoder) else {
        return;
    };
    let src = std::net::SocketAddr::from(([127, 0, 0, 1], 5353));
    let request = Request::new(msg, src, protocol);
    let _ = run_ready(dns_handler().handle_request(&request, Capture));
    // The same packet again over UDP: now through the fast path if its answer was cached.
    let mut out = Vec::new();
    if crate::dns::udp::fast_answer(dns_handler(), data, &mut out) {
        hickory_proto::op::Message::from_vec(&out).expect("a fast answer decodes");
    }
}

/// Re-encode a decoded value: what a server does with what it accepted.
fn decode<T: DeserializeOwned + Serialize>(data: &[u8]) -> Option<T> {
    let v: T = serde_json::from_slice(data).ok()?;
    let _ = serde_json::to_vec(&v);
    Some(v)
}

/// A Raft log entry's payload (a `Command`, or a JSON list of them), applied in order
/// to an empty store as a follower would.
pub fn raft_command(data: &[u8]) {
    let cmds = match decode::<Command>(data) {
        Some(c) => vec![c],
        None => match decode::<Vec<Command>>(data) {
            Some(list) => list,
            None => return,
        },
    };
    let mut store = crate::store::Store::new(crate::store::WatchHub::new());
    for (i, c) in cmds.iter().take(64).enumerate() {
        let _ = c.apply(&mut store, i as u64 + 1);
    }
    store.flush_watches();
    let _ = decode::<CommandResponse>(data);
}

/// The server RPC bodies, requests and answers both.
pub fn rpc_messages(data: &[u8]) {
    let _ = decode::<crate::rpc::ForwardResult>(data);
    let _ = decode::<AppendEntriesRequest<TypeConfig>>(data);
    let _ = decode::<VoteRequest<NodeId>>(data);
    let _ = decode::<InstallSnapshotRequest<TypeConfig>>(data);
    let _ = decode::<Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>>(data);
    let _ = decode::<Result<VoteResponse<NodeId>, RaftError<NodeId>>>(data);
    let _ = decode::<
        Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
    >(data);
    let _ = decode::<crate::rpc::NodeView>(data);
    let _ = decode::<Option<crate::rpc::RaftState>>(data);
    let _ = decode::<Option<crate::types::Session>>(data);
    let _ = decode::<Result<u64, String>>(data);
}

fn config(data: &[u8], json: bool) {
    let flags = AgentFlags::dev();
    let name = if json { "fuzz.json" } else { "fuzz.hcl" };
    if let Ok(rt) = crate::config::load_with_source(&flags, name, json, &text(data)) {
        let _ = rt.sanitized();
        let _ = DnsSettings::from_config(&rt);
        let _ = crate::http::limits::max_conns_per_client(&rt.limits);
    }
}

/// A JSON configuration source, through the whole build (merge, resolve, validate).
pub fn config_json(data: &[u8]) {
    config(data, true);
}

/// An HCL configuration source, through the whole build.
pub fn config_hcl(data: &[u8]) {
    config(data, false);
}

/// A fuzzing entry point.
pub type Target = fn(&[u8]);

/// Every entry point by name, as the fuzz targets and the corpus directories call them.
pub const TARGETS: &[(&str, Target)] = &[
    ("http_params", http_params),
    ("catalog_register", catalog_register),
    ("definitions", definitions),
    ("txn_ops", txn_ops),
    ("acl_rules", acl_rules),
    ("dns_name", dns_name),
    ("dns_message", dns_message),
    ("config_json", config_json),
    ("config_hcl", config_hcl),
    ("raft_command", raft_command),
    ("rpc_messages", rpc_messages),
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// xorshift64: deterministic pseudo-random numbers without a dependency.
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
            (self.next() % n.max(1) as u64) as usize
        }
    }

    /// Bytes that matter to the decoders, to splice into inputs.
    const TOKENS: &[&[u8]] = &[
        b"{",
        b"}",
        b"[",
        b"]",
        b"\"",
        b":",
        b",",
        b"%",
        b"%zz",
        b"%ff",
        b"+",
        b"&",
        b"=",
        b"?",
        b".",
        b"..",
        b"\\",
        b"\\u0000",
        b"\\ud800",
        b"null",
        b"true",
        b"-1",
        b"1e999",
        b"18446744073709551616",
        b"9223372036854775807",
        b"-9223372036854775808",
        b"0x",
        b"\n",
        b"\r\n",
        b"\0",
        b"\xff\xfe",
        b"\xc3\x28",
        b"service",
        b"node",
        b"addr",
        b"query",
        b"consul",
        b"_tcp",
        b"${",
        b"<<EOF\n",
        b"/*",
        b"#",
        b"==",
        b"!=",
        b" in ",
        b" matches ",
        b"Service",
        b"Check",
        b"Checks",
        b"KV",
        b"Verb",
        b"Interval",
        b"TTL",
        b"Port",
        b"\"Definition\"",
        b"key_prefix",
        b"policy",
        b"deny",
        b"write",
        b"ports",
        b"limits",
    ];

    fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
        let mut v = seed.to_vec();
        for _ in 0..1 + rng.below(8) {
            match rng.below(7) {
                0 if !v.is_empty() => {
                    let i = rng.below(v.len());
                    v[i] ^= 1 << rng.below(8);
                }
                1 if !v.is_empty() => {
                    let i = rng.below(v.len());
                    v[i] = rng.next() as u8;
                }
                2 if !v.is_empty() => {
                    let i = rng.below(v.len());
                    let n = rng.below(v.len() - i + 1);
                    v.drain(i..i + n);
                }
                3 => {
                    let i = rng.below(v.len() + 1);
                    let t = TOKENS[rng.below(TOKENS.len())];
                    v.splice(i..i, t.iter().copied());
                }
                4 if !v.is_empty() => {
                    // Duplicate a slice (nesting, repetition).
                    let i = rng.below(v.len());
                    let n = rng.below((v.len() - i).min(64) + 1);
                    let chunk: Vec<u8> = v[i..i + n].to_vec();
                    let at = rng.below(v.len() + 1);
                    v.splice(at..at, chunk);
                }
                5 => v.truncate(rng.below(v.len() + 1)),
                _ => {
                    let i = rng.below(v.len() + 1);
                    let n = rng.below(16);
                    let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                    v.splice(i..i, bytes);
                }
            }
        }
        v
    }

    fn corpus(target: &str) -> Vec<Vec<u8>> {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/corpus")
            .join(target);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("seed corpus {}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files.iter().map(|p| std::fs::read(p).unwrap()).collect()
    }

    /// Every entry point over its seed corpus, the other targets' seeds, pure noise and
    /// a few thousand mutations of the seeds: none may panic.
    #[test]
    fn entry_points_survive_corpus_and_mutations() {
        let all: Vec<(&str, Vec<Vec<u8>>)> = TARGETS
            .iter()
            .map(|(name, _)| (*name, corpus(name)))
            .collect();
        for (name, seeds) in &all {
            assert!(seeds.len() >= 3, "{name}: seed corpus too small");
        }
        let iterations = |name: &str| match name {
            // The whole config build and the DNS handler are slower per input.
            "config_json" | "config_hcl" => 400,
            _ => 2500,
        };
        for (i, (name, f)) in TARGETS.iter().enumerate() {
            let seeds = &all[i].1;
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (i as u64 + 1));
            for s in seeds {
                f(s);
            }
            for (_, other) in &all {
                for s in other {
                    f(s);
                }
            }
            f(b"");
            for _ in 0..iterations(name) {
                let input = if rng.below(10) == 0 {
                    let n = rng.below(256);
                    (0..n).map(|_| rng.next() as u8).collect()
                } else {
                    let pick = rng.below(seeds.len());
                    mutate(&mut rng, &seeds[pick])
                };
                f(&input);
            }
        }
    }

    /// Real encodings for the Raft and RPC seeds. Run with `--ignored` to rewrite
    /// `fuzz/corpus/raft_command/gen_*` and `fuzz/corpus/rpc_messages/gen_*`.
    #[test]
    #[ignore]
    fn write_generated_seeds() {
        use crate::store::kv::KvOp;
        use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, Vote};
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
        let reg = crate::http::catalog::decode_register(
            &serde_json::from_slice(&corpus("catalog_register")[1]).unwrap(),
            "dc1",
        )
        .unwrap();
        let ops = crate::http::txn::decode_ops(&corpus("txn_ops")[1]).unwrap();
        let cmds = vec![
            Command::KvSet {
                key: "a/b".into(),
                value: b"hello".to_vec(),
                flags: 7,
                op: KvOp::Cas(3),
            },
            Command::KvDelete {
                key: "a".into(),
                cas: Some(2),
            },
            Command::Register(Box::new(reg)),
            Command::Txn(ops),
            Command::SessionDestroy { id: "abc".into() },
            Command::ReapTombstones { upto: 10 },
            Command::Noop,
        ];
        let write = |dir: &str, name: &str, bytes: Vec<u8>| {
            std::fs::write(root.join(dir).join(name), bytes).unwrap();
        };
        write(
            "raft_command",
            "gen_register",
            serde_json::to_vec(&cmds[2]).unwrap(),
        );
        write(
            "raft_command",
            "gen_txn",
            serde_json::to_vec(&cmds[3]).unwrap(),
        );
        write(
            "raft_command",
            "gen_list",
            serde_json::to_vec(&cmds).unwrap(),
        );
        let log_id = |term, index| LogId::new(CommittedLeaderId::new(term, 1), index);
        let entries: Vec<Entry<TypeConfig>> = cmds
            .iter()
            .enumerate()
            .map(|(i, c)| Entry {
                log_id: log_id(2, i as u64 + 1),
                payload: EntryPayload::Normal(c.clone()),
            })
            .collect();
        let append = AppendEntriesRequest::<TypeConfig> {
            vote: Vote::new_committed(2, 1),
            prev_log_id: Some(log_id(1, 0)),
            entries,
            leader_commit: Some(log_id(2, 3)),
        };
        write(
            "rpc_messages",
            "gen_append",
            serde_json::to_vec(&append).unwrap(),
        );
        let vote = VoteRequest::<NodeId>::new(Vote::new(3, 2), Some(log_id(2, 7)));
        write(
            "rpc_messages",
            "gen_vote",
            serde_json::to_vec(&vote).unwrap(),
        );
        let fwd = crate::rpc::ForwardResult::Applied(CommandResponse::Bool(true));
        write(
            "rpc_messages",
            "gen_forward",
            serde_json::to_vec(&fwd).unwrap(),
        );
    }

    /// Inputs the fuzzers found (crashes, timeouts), kept in `fuzz/regressions/<target>/`:
    /// each must now be handled quickly.
    #[test]
    fn fuzzer_findings_stay_fixed() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions");
        let mut ran = 0;
        for (name, f) in TARGETS {
            let Ok(dir) = std::fs::read_dir(root.join(name)) else {
                continue;
            };
            for entry in dir {
                let path = entry.unwrap().path();
                let data = std::fs::read(&path).unwrap();
                let started = std::time::Instant::now();
                f(&data);
                assert!(
                    started.elapsed() < std::time::Duration::from_secs(5),
                    "{} took {:?}",
                    path.display(),
                    started.elapsed()
                );
                ran += 1;
            }
        }
        assert!(
            ran > 0,
            "no regression inputs found under {}",
            root.display()
        );
    }

    fn seed(target: &str, name: &str) -> Vec<u8> {
        let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/corpus")
            .join(target)
            .join(name);
        std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    /// The well-formed seeds decode: the entry points reach the code past the parsers.
    #[test]
    fn good_seeds_decode() {
        let v = crate::http::catalog::parse_body(&seed("catalog_register", "full")).unwrap();
        let r = crate::http::catalog::decode_register(&v, "dc1").unwrap();
        assert_eq!((r.checks.len(), r.service.unwrap().port), (2, 80));
        assert_eq!(
            crate::http::txn::decode_ops(&seed("txn_ops", "mixed"))
                .unwrap()
                .len(),
            6
        );
        assert!(crate::http::txn::decode_ops(&seed("txn_ops", "too_many")).is_err());
        let svc = serde_json::from_slice(&seed("definitions", "service")).unwrap();
        assert_eq!(
            crate::definition::decode_service(&svc)
                .unwrap()
                .checks
                .len(),
            3
        );
        for name in ["hcl", "json", "repeated"] {
            let text = String::from_utf8(seed("acl_rules", name)).unwrap();
            crate::acl::rules::parse_rules(&text).unwrap();
        }
        let flags = AgentFlags::dev();
        let hcl = String::from_utf8(seed("config_hcl", "basic")).unwrap();
        let rt = crate::config::load_with_source(&flags, "a.hcl", false, &hcl).unwrap();
        assert_eq!(
            (
                rt.datacenter.as_str(),
                rt.limits["http_max_conns_per_client"].as_u64()
            ),
            ("east", Some(20))
        );
        let json = String::from_utf8(seed("config_json", "basic")).unwrap();
        let rt = crate::config::load_with_source(&flags, "a.json", true, &json).unwrap();
        assert_eq!(rt.services.len(), 1);
        let e = crate::config::load_with_source(&flags, "bad.json", true, r#"{"servie": 1}"#)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "failed to parse bad.json: invalid config key servie"
        );
        let cmds: Vec<Command> = serde_json::from_slice(&seed("raft_command", "gen_list")).unwrap();
        assert_eq!(cmds.len(), 7);
        let append: AppendEntriesRequest<TypeConfig> =
            serde_json::from_slice(&seed("rpc_messages", "gen_append")).unwrap();
        assert_eq!(append.entries.len(), 7);
        let _: VoteRequest<NodeId> =
            serde_json::from_slice(&seed("rpc_messages", "gen_vote")).unwrap();
        let labels: Vec<String> = ["web", "service"].iter().map(|s| s.to_string()).collect();
        assert!(crate::dns::parse::parse(&labels).is_ok());
    }

    #[test]
    fn dns_handler_answers_over_the_fake_catalog() {
        use hickory_proto::op::{Message, Query};
        use hickory_proto::rr::{Name, RecordType};
        use std::str::FromStr;
        let handler = dns_handler();
        let a = run_ready(handler.answer("web.service.consul.", RecordType::SRV, true)).unwrap();
        assert_eq!(a.answers.len(), 3, "udp_answer_limit applies: {a:?}");
        let a = run_ready(handler.answer("missing.node.consul.", RecordType::A, true)).unwrap();
        assert_eq!(a.code, Some(hickory_proto::op::ResponseCode::NXDomain));
        // A whole message through the handler.
        let mut m = Message::new();
        m.add_query(Query::query(
            Name::from_str("v4.node.consul.").unwrap(),
            RecordType::A,
        ));
        dns_message(&m.to_vec().unwrap());
    }
}
