//! The UDP listener, with a fast path in front of hickory's request handling.
//!
//! Most DNS traffic asks the same few service names again and again. Their answers are
//! cached per store generation (`handler.rs`), together with the records in wire form; a
//! packet asking one of them (one plain question, at most an EDNS OPT record) is answered
//! by copying its header and question and the cached records, re-shuffled and limited as
//! every answer is, without decoding or encoding a message. Everything else (other names,
//! answers not cached yet or stale, NODATA, answers too big for the packet, malformed
//! packets) goes through hickory's decoder and the agent's `RequestHandler` as before, so
//! the fast path only ever answers what the regular path would have answered.

use super::handler::{Cached, DnsHandler};
use super::lookup::DnsLookup;
use hickory_proto::op::MessageType;
use hickory_proto::rr::RecordType;
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use hickory_proto::xfer::{BufDnsStreamHandle, DnsStreamHandle, SerialMessage};
use hickory_server::authority::MessageRequest;
use hickory_server::server::{Protocol, Request, RequestHandler, ResponseHandle};
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

/// Write the answer to `q` (parsed from `p`) from `cached` into `out`, as the regular path
/// would write it: authoritative, the instances [`DnsHandler::pick`] chooses, an OPT
/// record when the query had one. False when it has no wire form, would be NODATA (which
/// carries an SOA) or does not fit the requester's payload size.
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
    let (order, truncated) = h.pick(wire.len(), true);
    let answers: u16 = order.iter().map(|&i| wire[i].answer_count).sum();
    if answers == 0 {
        return false;
    }
    let additionals: u16 = order.iter().map(|&i| wire[i].additional_count).sum();
    out.clear();
    out.extend_from_slice(&p[..q.question_end]);
    // QR, opcode QUERY, AA, TC as chosen, RD as asked; RA when recursors are set, CD as
    // asked, NOERROR.
    out[2] = 0x80 | 0x04 | if truncated { 0x02 } else { 0 } | (p[2] & 0x01);
    out[3] = if h.settings().recursors.is_empty() {
        0
    } else {
        0x80
    } | (p[3] & 0x10);
    out[6..8].copy_from_slice(&answers.to_be_bytes());
    out[8..10].copy_from_slice(&0u16.to_be_bytes());
    let extra = u16::from(q.edns_payload.is_some());
    out[10..12].copy_from_slice(&(additionals + extra).to_be_bytes());
    for &i in &order {
        out.extend_from_slice(&wire[i].answers);
    }
    for &i in &order {
        out.extend_from_slice(&wire[i].additionals);
    }
    if let Some(payload) = q.edns_payload {
        // root, OPT, our payload size (the requester's, at least 512), version 0, no flags
        out.extend_from_slice(&[0, 0, 41]);
        out.extend_from_slice(&payload.to_be_bytes());
        out.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    }
    out.len() <= usize::from(q.edns_payload.unwrap_or(PLAIN_UDP as u16))
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
            h.handle_request(&request, ResponseHandle::new(src, reply, Protocol::Udp))
                .await;
        }
        Err(_) => {
            if let Some(resp) = form_error(&bytes) {
                let _ = reply.send(SerialMessage::new(resp, src));
            }
        }
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

/// Serve DNS over UDP on `socket` until the task is dropped.
pub async fn serve_udp<L: DnsLookup>(socket: UdpSocket, h: Arc<DnsHandler<L>>) {
    let socket = Arc::new(socket);
    // Answers of the regular path come back through this channel and leave from here.
    let (reply, mut replies) = BufDnsStreamHandle::new(([127, 255, 255, 254], 0).into());
    let sender = socket.clone();
    let sending = tokio::spawn(async move {
        use futures_util::StreamExt;
        while let Some(m) = replies.next().await {
            if let Err(e) = sender.send_to(m.bytes(), m.addr()).await {
                tracing::debug!(error = %e, to = %m.addr(), "sending DNS response");
            }
        }
    });
    let _stop_sending = AbortOnDrop(sending);
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

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
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

    /// Six instances of any service (one critical, one behind a host name), cacheable
    /// answers while `generation` stays.
    struct Catalog {
        generation: AtomicU64,
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
            Ok((0..6).map(instance).collect())
        }
        async fn node(&self, _dc: &str, _node: &str) -> Result<Option<Node>, LookupError> {
            Ok(None)
        }
        async fn query(&self, _dc: &str, _name: &str) -> Result<Option<QueryAnswer>, LookupError> {
            Ok(None)
        }
    }

    fn handler() -> DnsHandler<Catalog> {
        let mut cfg = RuntimeConfig::for_test();
        cfg.dns_config = serde_json::json!({"enable_truncate": true});
        let mut settings = DnsSettings::from_config(&cfg);
        settings.recursors = vec!["192.0.2.53".into()];
        DnsHandler::new(
            Arc::new(Catalog {
                generation: AtomicU64::new(7),
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
        h.handle_request(&request, ResponseHandle::new(src, reply, protocol))
            .await;
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
        let h = handler();
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
        let p = packet("web.service.consul.", RecordType::AAAA, false);
        let nodata = regular_answer(&h, &p, Protocol::Udp).await;
        assert!(nodata.answers().is_empty() && !nodata.name_servers().is_empty());
        assert!(!fast_answer(&h, &p, &mut Vec::new()));
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
