//! The UDP listener, with a fast path in front of hickory's request handling.
//!
//! Most DNS traffic asks the same few service names again and again. Their answers are
//! cached per store generation (`handler.rs`), together with the records in wire form; a
//! packet asking one of them (one plain question, at most an EDNS OPT record) is answered
//! by copying its header and question and the cached records, re-shuffled and limited as
//! every answer is, without decoding or encoding a message. Everything else (other names,
//! answers not cached yet or stale, NODATA, malformed packets) goes through hickory's
//! decoder and the agent's `RequestHandler` as before, so the fast path only answers what
//! the regular path would have answered: records of the same instances, the same header
//! and EDNS, cut with the TC bit when they do not fit the packet (see [`write_answer`] for
//! how the cut differs from hickory's encoder: a truncated answer may hold a record or two
//! fewer).

use super::handler::{Cached, DnsHandler, Group};
use super::lookup::DnsLookup;
use hickory_proto::op::MessageType;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncoder};
use hickory_proto::xfer::{BufDnsStreamHandle, DnsStreamHandle, SerialMessage};
use hickory_server::authority::{MessageRequest, MessageResponse};
use hickory_server::server::{Protocol, Request, RequestHandler, ResponseHandler, ResponseInfo};
use rand::Rng;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::UdpSocket;

/// The largest UDP message read (as hickory's UDP stream).
const MAX_PACKET: usize = 4096;
/// The UDP payload size without EDNS.
const PLAIN_UDP: usize = 512;

/// A question the fast path can answer: one question of class IN whose name is plain
/// labels, no answer or authority records, at most one additional record (an EDNS OPT).
#[derive(Debug, PartialEq)]
pub struct SimpleQuery {
    /// The name in lower case with the final dot, as the answer cache keys it.
    pub key: String,
    pub qtype: RecordType,
    /// Where the question ends: the answer copies the packet up to here.
    pub question_end: usize,
    /// The requester's EDNS UDP payload size (at least 512), if it sent an OPT record.
    pub edns_payload: Option<u16>,
}

fn u16_at(p: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*p.get(i)?, *p.get(i + 1)?]))
}

/// Recognize a [`SimpleQuery`]; None for anything else (which the regular path answers).
pub fn parse_simple(p: &[u8]) -> Option<SimpleQuery> {
    let flags = *p.get(2)?;
    // A response (QR) or an opcode other than QUERY.
    if flags & 0x80 != 0 || (flags >> 3) & 0x0f != 0 {
        return None;
    }
    let (qd, an, ns, ar) = (u16_at(p, 4)?, u16_at(p, 6)?, u16_at(p, 8)?, u16_at(p, 10)?);
    if qd != 1 || an != 0 || ns != 0 || ar > 1 {
        return None;
    }
    let mut i = 12;
    let mut key = String::with_capacity(64);
    loop {
        let len = *p.get(i)? as usize;
        i += 1;
        if len == 0 {
            break;
        }
        // Longer labels do not exist; 0xC0 and up are compression pointers.
        if len > 63 {
            return None;
        }
        let label = p.get(i..i + len)?;
        // Names of other characters are written escaped in the cache's keys.
        if !label
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
        {
            return None;
        }
        key.extend(label.iter().map(|b| b.to_ascii_lowercase() as char));
        key.push('.');
        i += len;
    }
    if key.is_empty() || i - 12 > 255 {
        return None;
    }
    let qtype = RecordType::from(u16_at(p, i)?);
    if u16_at(p, i + 2)? != 1 {
        return None; // class IN only
    }
    let question_end = i + 4;
    let edns_payload = if ar == 1 {
        // root name, type OPT, class = payload size, extended rcode, version, flags, rdlen
        let opt = p.get(question_end..question_end + 11)?;
        if opt[0] != 0 || u16_at(opt, 1)? != 41 || opt[6] != 0 {
            return None; // not an OPT, or an EDNS version hickory answers with BADVERS
        }
        let rdlen = u16_at(opt, 9)? as usize;
        if question_end + 11 + rdlen != p.len() {
            return None;
        }
        Some(u16_at(opt, 3)?.max(PLAIN_UDP as u16))
    } else {
        if question_end != p.len() {
            return None;
        }
        None
    };
    Some(SimpleQuery {
        key,
        qtype,
        question_end,
        edns_payload,
    })
}

/// One record in wire form. Names are compressed as hickory's encoder would find them
/// compressible within our answers: against the question name (at offset 12, whose labels
/// are the cache key's), and an additional's owner against the answer target naming it.
#[derive(Debug)]
pub struct WireRecord {
    /// The owner name, compressed against the question name (answers leave it out: their
    /// owner is the question, a pointer to offset 12).
    owner: Vec<u8>,
    /// Type, class, TTL, RDLENGTH and RDATA.
    rest: Vec<u8>,
    /// An answer's SRV or CNAME target written out at this offset of `rest` (at least its
    /// first label), so additionals owned by that name can point to it.
    target_at: Option<usize>,
    /// An additional owned by the target of this answer of its group.
    owner_is_target_of: Option<usize>,
}

/// The records one instance contributes, in wire form.
#[derive(Debug, Default)]
pub struct WireGroup {
    answers: Vec<WireRecord>,
    additionals: Vec<WireRecord>,
}

/// Write `name` in wire form into `out`, ending in a pointer to the longest suffix it
/// shares with the question name (`question`: labels and their offsets). Returns whether
/// a label was written out before the pointer (or the end).
fn write_name(out: &mut Vec<u8>, name: &Name, question: &[(&str, u16)]) -> bool {
    let labels: Vec<&[u8]> = name.iter().collect();
    let n = labels.len();
    let shared = (0..n).find(|&i| {
        let len = n - i;
        len <= question.len()
            && labels[i..]
                .iter()
                .zip(&question[question.len() - len..])
                .all(|(l, (q, _))| l.eq_ignore_ascii_case(q.as_bytes()))
    });
    let written = shared.unwrap_or(n);
    for l in &labels[..written] {
        out.push(l.len() as u8);
        out.extend_from_slice(l);
    }
    match shared {
        Some(i) => {
            let at = question[question.len() - (n - i)].1;
            out.extend_from_slice(&(0xC000 | at).to_be_bytes());
        }
        None => out.push(0),
    }
    written > 0
}

/// Type, class, TTL, RDLENGTH and RDATA of `r`, and where a target name starts in them.
fn record_rest(r: &Record, question: &[(&str, u16)]) -> Option<(Vec<u8>, Option<usize>)> {
    let mut rest = Vec::with_capacity(32);
    rest.extend_from_slice(&u16::from(r.record_type()).to_be_bytes());
    rest.extend_from_slice(&u16::from(r.dns_class()).to_be_bytes());
    rest.extend_from_slice(&r.ttl().to_be_bytes());
    rest.extend_from_slice(&[0, 0]); // RDLENGTH, below
    let mut target_at = None;
    match r.data()? {
        RData::A(a) => rest.extend_from_slice(&a.0.octets()),
        RData::AAAA(a) => rest.extend_from_slice(&a.0.octets()),
        RData::CNAME(c) => {
            let at = rest.len();
            target_at = write_name(&mut rest, &c.0, question).then_some(at);
        }
        RData::SRV(srv) => {
            rest.extend_from_slice(&srv.priority().to_be_bytes());
            rest.extend_from_slice(&srv.weight().to_be_bytes());
            rest.extend_from_slice(&srv.port().to_be_bytes());
            let at = rest.len();
            target_at = write_name(&mut rest, srv.target(), question).then_some(at);
        }
        RData::TXT(txt) => {
            for s in txt.iter() {
                rest.push(u8::try_from(s.len()).ok()?);
                rest.extend_from_slice(s);
            }
        }
        _ => return None,
    }
    let rdlen = u16::try_from(rest.len() - 10).ok()?;
    rest[8..10].copy_from_slice(&rdlen.to_be_bytes());
    Some((rest, target_at))
}

/// The wire form of the groups of an answer to `owner` (see [`WireGroup`]); None when a
/// record is not of a kind written here, which leaves the answer to the regular path.
pub fn wire_groups(owner: &Name, groups: &[Group]) -> Option<Vec<WireGroup>> {
    let key = owner.to_string();
    let mut question = Vec::new();
    let mut at = 12u16;
    for label in key
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        question.push((label, at));
        at += label.len() as u16 + 1;
    }
    let mut out = Vec::with_capacity(groups.len());
    for (answers, additionals) in groups {
        let mut w = WireGroup::default();
        let mut targets = Vec::new();
        for r in answers {
            if r.name() != owner {
                return None;
            }
            let (rest, target_at) = record_rest(r, &question)?;
            targets.push(match r.data()? {
                RData::SRV(s) => Some(s.target().clone()),
                RData::CNAME(c) => Some(c.0.clone()),
                _ => None,
            });
            w.answers.push(WireRecord {
                owner: Vec::new(),
                rest,
                target_at,
                owner_is_target_of: None,
            });
        }
        for r in additionals {
            let mut name = Vec::with_capacity(32);
            write_name(&mut name, r.name(), &question);
            let (rest, _) = record_rest(r, &question)?;
            let owner_is_target_of = targets
                .iter()
                .position(|t| t.as_ref() == Some(r.name()))
                .filter(|&i| w.answers[i].target_at.is_some());
            w.additionals.push(WireRecord {
                owner: name,
                rest,
                target_at: None,
                owner_is_target_of,
            });
        }
        out.push(w);
    }
    Some(out)
}

/// Write the answer to `q` (parsed from `p`) from `cached` into `out`, as the regular path
/// writes it: authoritative, instances drawn at random as [`DnsHandler::limited`] allows,
/// an OPT record when the query had one; within the requester's payload size, with the TC
/// bit when records were cut for it (the regular path cuts within a section at the first
/// record that does not fit; here an instance's answers go in whole or not at all, and the
/// OPT record keeps its place). False when the answer has no wire form or would be NODATA
/// (which carries an SOA).
pub fn write_answer<L: DnsLookup>(
    h: &DnsHandler<L>,
    p: &[u8],
    q: &SimpleQuery,
    cached: &Cached,
    out: &mut Vec<u8>,
) -> bool {
    let Some(wire) = &cached.wire else {
        return false;
    };
    if wire.is_empty() {
        return false; // NODATA
    }
    let n = wire.len();
    let (take, mut truncated) = h.limited(n, true);
    // The OPT record (11 bytes) keeps its place when records are cut (RFC 6891 6.1.1).
    let max = match q.edns_payload {
        Some(payload) => usize::from(payload) - 11,
        None => PLAIN_UDP,
    };
    out.clear();
    out.extend_from_slice(&p[..q.question_end]);
    // Instances are drawn at random one by one (a Fisher-Yates shuffle that stops when the
    // answer is full); `targets` holds where each written answer's target landed.
    let mut order: Vec<u32> = (0..n as u32).collect();
    let mut targets: Vec<usize> = Vec::with_capacity(take * 2);
    let mut rng = rand::thread_rng();
    let mut written = 0;
    let mut answers = 0u16;
    'draw: while written < take {
        let j = rng.gen_range(written..n);
        order.swap(written, j);
        let g = &wire[order[written] as usize];
        let mark = (out.len(), targets.len(), answers);
        for r in &g.answers {
            if out.len() + 2 + r.rest.len() > max {
                // An instance goes in whole or not at all.
                out.truncate(mark.0);
                targets.truncate(mark.1);
                answers = mark.2;
                truncated = true;
                break 'draw;
            }
            let start = out.len() + 2;
            out.extend_from_slice(&[0xC0, 0x0C]);
            out.extend_from_slice(&r.rest);
            targets.push(r.target_at.map_or(0, |t| start + t));
            answers += 1;
        }
        written += 1;
    }
    // The additionals of the instances answered, until one does not fit.
    let mut additionals = 0u16;
    let mut base = 0;
    'extra: for &g in &order[..written] {
        let g = &wire[g as usize];
        for r in &g.additionals {
            let pointer = r
                .owner_is_target_of
                .map(|i| targets[base + i])
                .filter(|&at| at > 0 && at < 0x4000)
                .map(|at| (0xC000 | at as u16).to_be_bytes());
            let owner: &[u8] = match &pointer {
                Some(ptr) => ptr,
                None => &r.owner,
            };
            if out.len() + owner.len() + r.rest.len() > max {
                truncated = true;
                break 'extra;
            }
            out.extend_from_slice(owner);
            out.extend_from_slice(&r.rest);
            additionals += 1;
        }
        base += g.answers.len();
    }
    if let Some(payload) = q.edns_payload {
        // root, OPT, our payload size (the requester's, at least 512), version 0
        out.extend_from_slice(&[0, 0, 41]);
        out.extend_from_slice(&payload.to_be_bytes());
        out.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        additionals += 1;
    }
    // QR, opcode QUERY, AA, TC, RD as asked; RA when recursors are set, CD as asked,
    // NOERROR.
    out[2] = 0x80 | 0x04 | if truncated { 0x02 } else { 0 } | (p[2] & 0x01);
    out[3] = if h.settings().recursors.is_empty() {
        0
    } else {
        0x80
    } | (p[3] & 0x10);
    out[6..8].copy_from_slice(&answers.to_be_bytes());
    out[8..10].copy_from_slice(&0u16.to_be_bytes());
    out[10..12].copy_from_slice(&additionals.to_be_bytes());
    true
}

/// Answer `p` on the fast path into `out` if it can be; see the module documentation.
pub fn fast_answer<L: DnsLookup>(h: &DnsHandler<L>, p: &[u8], out: &mut Vec<u8>) -> bool {
    let Some(q) = parse_simple(p) else {
        return false;
    };
    let Some(cached) = h.cached_local(&q.key, q.qtype) else {
        return false;
    };
    write_answer(h, p, &q, &cached, out)
}

/// The regular path for one packet: hickory's decoder and the agent's handler, or a
/// FORMERR when only the header could be read (as hickory's server answers).
async fn regular<L: DnsLookup>(
    h: Arc<DnsHandler<L>>,
    bytes: Vec<u8>,
    src: SocketAddr,
    mut reply: BufDnsStreamHandle,
) {
    let mut decoder = BinDecoder::new(&bytes);
    match MessageRequest::read(&mut decoder) {
        Ok(m) if m.message_type() == MessageType::Response => {} // no reflection
        Ok(m) => {
            let request = Request::new(m, src, Protocol::Udp);
            h.handle_request(&request, UdpReply { dst: src, reply })
                .await;
        }
        Err(_) => {
            if let Some(resp) = form_error(&bytes) {
                let _ = reply.send(SerialMessage::new(resp, src));
            }
        }
    }
}

/// hickory's UDP `ResponseHandle`, except that an answer to a requester without EDNS is
/// cut to RFC 1035's 512 bytes (hickory allows 4096), as Consul trims its UDP answers.
#[derive(Clone)]
struct UdpReply {
    dst: SocketAddr,
    reply: BufDnsStreamHandle,
}

#[async_trait::async_trait]
impl ResponseHandler for UdpReply {
    async fn send_response<'a>(
        &mut self,
        response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> std::io::Result<ResponseInfo> {
        let max = response
            .get_edns()
            .as_ref()
            .map_or(PLAIN_UDP as u16, |e| e.max_payload().max(PLAIN_UDP as u16));
        let mut buffer = Vec::with_capacity(PLAIN_UDP);
        let info = {
            let mut encoder = BinEncoder::new(&mut buffer);
            encoder.set_max_size(max);
            response.destructive_emit(&mut encoder)
        }
        .map_err(|e| std::io::Error::other(format!("error encoding message: {e}")))?;
        self.reply
            .send(SerialMessage::new(buffer, self.dst))
            .map_err(|_| std::io::Error::other("the DNS UDP listener has stopped"))?;
        Ok(info)
    }
}

/// A header-only FORMERR answer to a query whose header is readable.
fn form_error(p: &[u8]) -> Option<Vec<u8>> {
    let h = p.get(..12)?;
    if h[2] & 0x80 != 0 {
        return None;
    }
    let mut r = vec![0u8; 12];
    r[..2].copy_from_slice(&h[..2]);
    r[2] = 0x80 | (h[2] & 0x78) | (h[2] & 0x01);
    r[3] = (h[3] & 0x10) | 1;
    Some(r)
}

/// Serve DNS over UDP on `socket` until the task is dropped: one receiving loop per core
/// (at most 4) on the shared socket, as NSD runs a server process per core.
pub async fn serve_udp<L: DnsLookup>(socket: UdpSocket, h: Arc<DnsHandler<L>>) {
    let socket = Arc::new(socket);
    // Answers of the regular path come back through this channel and leave from here.
    let (reply, mut replies) = BufDnsStreamHandle::new(([127, 255, 255, 254], 0).into());
    let mut tasks = tokio::task::JoinSet::new();
    let sender = socket.clone();
    tasks.spawn(async move {
        use futures_util::StreamExt;
        while let Some(m) = replies.next().await {
            if let Err(e) = sender.send_to(m.bytes(), m.addr()).await {
                tracing::debug!(error = %e, to = %m.addr(), "sending DNS response");
            }
        }
    });
    let loops = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    for _ in 0..loops {
        tasks.spawn(receive(socket.clone(), h.clone(), reply.clone()));
    }
    // The tasks end only when the socket fails; dropping this future aborts them all.
    let _ = tasks.join_next().await;
}

/// Receive and answer queries on `socket` until it fails.
async fn receive<L: DnsLookup>(
    socket: Arc<UdpSocket>,
    h: Arc<DnsHandler<L>>,
    reply: BufDnsStreamHandle,
) {
    let mut buf = vec![0u8; MAX_PACKET];
    let mut out = Vec::with_capacity(MAX_PACKET);
    loop {
        let (n, src) = match socket.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                use std::io::ErrorKind::*;
                // ICMP errors of earlier sends surface here on some systems: keep going.
                if matches!(e.kind(), ConnectionReset | ConnectionRefused | Interrupted) {
                    continue;
                }
                tracing::error!(error = %e, "DNS over UDP stopped");
                return;
            }
        };
        if src.port() == 0 || src.ip().is_unspecified() || src.ip().is_multicast() {
            continue; // cannot be answered
        }
        let packet = &buf[..n];
        let started = std::time::Instant::now();
        if fast_answer(&h, packet, &mut out) {
            crate::metrics::incr("consul.dns.domain_query", 1);
            if let Err(e) = socket.send_to(&out, src).await {
                tracing::debug!(error = %e, to = %src, "sending DNS response");
            }
            crate::metrics::sample("consul.dns.domain_query", started.elapsed());
            continue;
        }
        tokio::spawn(regular(
            h.clone(),
            packet.to_vec(),
            src,
            reply.with_remote_addr(src),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RuntimeConfig;
    use crate::dns::lookup::{Instance, LookupError, QueryAnswer};
    use crate::dns::DnsSettings;
    use crate::types::{Node, NodeService, HEALTH_CRITICAL, HEALTH_PASSING};
    use futures_util::StreamExt;
    use hickory_proto::op::{Edns, Message, OpCode, Query};
    use hickory_proto::rr::{Name, Record};
    use std::collections::HashSet;
    use std::str::FromStr;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// `instances` instances of any service (the sixth critical, the third behind a host
    /// name), cacheable answers while `generation` stays.
    struct Catalog {
        generation: AtomicU64,
        instances: usize,
    }

    fn instance(i: usize) -> Instance {
        let svc_addr = match i {
            1 => "10.9.9.2",
            2 => "db.example",
            _ => "",
        };
        Instance {
            node: Node {
                node: format!("Node-{i}"),
                address: format!("10.0.0.{}", i + 1),
                datacenter: "dc1".into(),
                ..Default::default()
            },
            service: NodeService {
                id: format!("web-{i}"),
                service: "web".into(),
                address: svc_addr.into(),
                port: 8000 + i as i64,
                ..Default::default()
            },
            status: if i == 5 {
                HEALTH_CRITICAL
            } else {
                HEALTH_PASSING
            },
            checks: Vec::new(),
        }
    }

    impl DnsLookup for Catalog {
        fn datacenter(&self) -> String {
            "dc1".into()
        }
        fn generation(&self, dc: &str) -> Option<u64> {
            (dc == "dc1").then(|| self.generation.load(Ordering::SeqCst))
        }
        async fn service(
            &self,
            _dc: &str,
            _service: &str,
            _tag: Option<&str>,
        ) -> Result<Vec<Instance>, LookupError> {
            Ok((0..self.instances).map(instance).collect())
        }
        async fn node(&self, _dc: &str, _node: &str) -> Result<Option<Node>, LookupError> {
            Ok(None)
        }
        async fn query(&self, _dc: &str, _name: &str) -> Result<Option<QueryAnswer>, LookupError> {
            Ok(None)
        }
    }

    fn handler(instances: usize, dns_config: serde_json::Value) -> DnsHandler<Catalog> {
        let mut cfg = RuntimeConfig::for_test();
        cfg.dns_config = dns_config;
        let mut settings = DnsSettings::from_config(&cfg);
        settings.recursors = vec!["192.0.2.53".into()];
        DnsHandler::new(
            Arc::new(Catalog {
                generation: AtomicU64::new(7),
                instances,
            }),
            settings,
        )
    }

    fn packet(name: &str, qtype: RecordType, edns: bool) -> Vec<u8> {
        let mut m = Message::new();
        m.set_id(0x4242)
            .set_op_code(OpCode::Query)
            .set_recursion_desired(true)
            .set_checking_disabled(true);
        m.add_query(Query::query(Name::from_str(name).unwrap(), qtype));
        if edns {
            let mut e = Edns::new();
            e.set_max_payload(1232);
            m.set_edns(e);
        }
        m.to_vec().unwrap()
    }

    /// The regular path's answer, as sent over `protocol`.
    async fn regular_answer(h: &DnsHandler<Catalog>, p: &[u8], protocol: Protocol) -> Message {
        let src: SocketAddr = "127.0.0.1:5353".parse().unwrap();
        let (reply, mut replies) = BufDnsStreamHandle::new(src);
        let request = Request::new(MessageRequest::from_bytes(p).unwrap(), src, protocol);
        if matches!(protocol, Protocol::Udp) {
            h.handle_request(&request, UdpReply { dst: src, reply })
                .await;
        } else {
            let handle = hickory_server::server::ResponseHandle::new(src, reply, protocol);
            h.handle_request(&request, handle).await;
        }
        let sent = replies.next().await.unwrap();
        Message::from_vec(sent.bytes()).unwrap()
    }

    fn set(records: &[Record]) -> HashSet<String> {
        records
            .iter()
            .map(|r| r.to_string().to_lowercase())
            .collect()
    }

    #[test]
    fn simple_queries_are_recognized_and_others_left_alone() {
        let mut p = packet("web.service.consul.", RecordType::SRV, false);
        p[13..16].copy_from_slice(b"WeB");
        let q = parse_simple(&p).unwrap();
        assert_eq!(q.key, "web.service.consul.");
        assert_eq!((q.qtype, q.edns_payload), (RecordType::SRV, None));
        let p = packet("_web._tcp.service.consul.", RecordType::SRV, true);
        let q = parse_simple(&p).unwrap();
        assert_eq!(q.key, "_web._tcp.service.consul.");
        assert_eq!(q.edns_payload, Some(1232));
        assert_eq!(q.question_end, p.len() - 11);

        let plain = packet("web.service.consul.", RecordType::A, false);
        let mut response = plain.clone();
        response[2] |= 0x80;
        let mut notify = plain.clone();
        notify[2] |= 4 << 3;
        let mut two_questions = plain.clone();
        two_questions[5] = 2;
        let mut trailing = plain.clone();
        trailing.push(0);
        let mut chaos = plain.clone();
        let n = chaos.len();
        chaos[n - 1] = 3;
        let mut edns1 = packet("web.service.consul.", RecordType::A, true);
        let n = edns1.len();
        edns1[n - 5] = 1; // EDNS version 1
        let mut pointer = plain.clone();
        pointer.splice(12..16, [0xC0, 0x0C]);
        let odd_label = packet("we\\.b.service.consul.", RecordType::A, false);
        for (what, p) in [
            ("a response", response),
            ("NOTIFY", notify),
            ("two questions", two_questions),
            ("trailing bytes", trailing),
            ("class CH", chaos),
            ("EDNS version 1", edns1),
            ("a compression pointer", pointer),
            ("an escaped label", odd_label),
            ("the root", packet(".", RecordType::A, false)),
            ("a truncated packet", plain[..plain.len() - 2].to_vec()),
            ("a header alone", plain[..12].to_vec()),
        ] {
            assert_eq!(parse_simple(&p), None, "{what}");
        }
    }

    #[tokio::test]
    async fn fast_answers_are_the_regular_answers_reshuffled() {
        let h = handler(6, serde_json::json!({"enable_truncate": true}));
        for qtype in [RecordType::A, RecordType::SRV] {
            for edns in [false, true] {
                let mut p = packet("web.service.consul.", qtype, edns);
                p[13..16].copy_from_slice(b"WEB"); // as a resolver with 0x20 randomization
                let mut out = Vec::new();
                // The first query of a name and type finds nothing cached.
                assert_eq!(fast_answer(&h, &p, &mut out), edns, "{qtype} edns={edns}");
                let regular = regular_answer(&h, &p, Protocol::Udp).await;
                let all = regular_answer(&h, &p, Protocol::Tcp).await;
                assert_eq!(all.answers().len(), 5, "TCP answers are not limited");
                let mut seen = HashSet::new();
                for _ in 0..40 {
                    assert!(fast_answer(&h, &p, &mut out), "{qtype} edns={edns}");
                    let fast = Message::from_vec(&out).unwrap();
                    assert_eq!(fast.header(), regular.header(), "{qtype} edns={edns}");
                    assert!(fast.truncated() && fast.authoritative() && fast.checking_disabled());
                    assert_eq!(fast.queries(), regular.queries());
                    assert_eq!(fast.queries()[0].name().to_string(), "WEB.service.consul.");
                    assert_eq!(
                        fast.extensions().as_ref().map(Edns::max_payload),
                        regular.extensions().as_ref().map(Edns::max_payload)
                    );
                    assert!(fast.name_servers().is_empty());
                    let answers = set(fast.answers());
                    assert_eq!(answers.len(), 3, "the UDP answer limit");
                    assert!(answers.is_subset(&set(all.answers())), "{answers:?}");
                    assert!(set(fast.additionals()).is_subset(&set(all.additionals())));
                    if qtype == RecordType::SRV {
                        assert_eq!(fast.additionals().len(), 3, "one per SRV target");
                    }
                    seen.extend(answers);
                }
                assert_eq!(seen.len(), 5, "every healthy instance comes up in turn");
            }
        }
        // A write moves the generation: the cached answers no longer count.
        h.lookup_for_test()
            .generation
            .fetch_add(1, Ordering::SeqCst);
        let p = packet("web.service.consul.", RecordType::A, false);
        assert!(!fast_answer(&h, &p, &mut Vec::new()));
        regular_answer(&h, &p, Protocol::Udp).await;
        assert!(fast_answer(&h, &p, &mut Vec::new()));
        // NODATA carries an SOA: only the regular path writes it.
        let p = packet("web.service.consul.", RecordType::TXT, false);
        let nodata = regular_answer(&h, &p, Protocol::Udp).await;
        assert!(nodata.answers().is_empty() && !nodata.name_servers().is_empty());
        assert!(!fast_answer(&h, &p, &mut Vec::new()));
    }

    #[tokio::test]
    async fn answers_too_big_for_the_packet_are_truncated_within_it() {
        let h = handler(100, serde_json::json!({"udp_answer_limit": 100}));
        for (qtype, edns) in [
            (RecordType::SRV, false),
            (RecordType::SRV, true),
            (RecordType::A, false),
        ] {
            let p = packet("web.service.consul.", qtype, edns);
            let regular = regular_answer(&h, &p, Protocol::Udp).await;
            let all = regular_answer(&h, &p, Protocol::Tcp).await;
            assert_eq!(all.answers().len(), 99);
            assert!(regular.truncated());
            let mut out = Vec::new();
            assert!(fast_answer(&h, &p, &mut out));
            let max = if edns { 1232 } else { 512 };
            assert!(out.len() <= max, "{} bytes", out.len());
            let fast = Message::from_vec(&out).unwrap();
            assert!(fast.truncated() && fast.authoritative());
            assert_eq!(fast.extensions().is_some(), edns);
            let answers = set(fast.answers());
            assert!(answers.len() > 5, "{qtype}: {} answers", answers.len());
            assert!(
                answers.len() + 2 >= regular.answers().len(),
                "{qtype}: {} answers, hickory fits {}",
                answers.len(),
                regular.answers().len()
            );
            assert!(answers.is_subset(&set(all.answers())));
            assert!(set(fast.additionals()).is_subset(&set(all.additionals())));
            if qtype == RecordType::SRV {
                // The targets' addresses that fit follow, their owners pointing at the SRV
                // targets.
                let targets: HashSet<String> = fast
                    .answers()
                    .iter()
                    .map(|r| match r.data() {
                        Some(RData::SRV(s)) => s.target().to_string(),
                        other => panic!("{other:?}"),
                    })
                    .collect();
                for a in fast.additionals() {
                    assert!(targets.contains(&a.name().to_string()), "{a}");
                }
            }
        }
    }

    #[test]
    fn unreadable_queries_get_formerr_and_responses_nothing() {
        let r = form_error(b"\x12\x34\x01\x10\x00\x01\x00\x00\x00\x00\x00\x00\x3fabc").unwrap();
        let m = Message::from_vec(&r).unwrap();
        assert_eq!(m.id(), 0x1234);
        assert_eq!(m.response_code(), hickory_proto::op::ResponseCode::FormErr);
        assert!(m.recursion_desired() && m.checking_disabled());
        assert_eq!(m.message_type(), MessageType::Response);
        assert_eq!(form_error(&[0u8; 3]), None);
        assert_eq!(form_error(&[0xffu8; 12]), None);
    }
}
