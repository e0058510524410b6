//! The hickory `RequestHandler`: a thin dispatcher. Parse the name, look it up, build the
//! records (A/AAAA/CNAME, SRV with target addresses in the additional section, TXT), and
//! answer authoritatively with the SOA in the authority section for NXDOMAIN and NODATA.
//! Names outside our domains go to the recursors.

use super::lookup::{DnsLookup, Instance, LookupError};
use super::parse::{encode_addr, parse, strip_domain, DnsQuery, ParseError};
use super::DnsSettings;
use crate::types::{HEALTH_CRITICAL, HEALTH_PASSING, HEALTH_WARNING};
use hickory_proto::op::{Header, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, SOA, SRV, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_server::authority::MessageResponseBuilder;
use hickory_server::server::{Protocol, Request, RequestHandler, ResponseHandler, ResponseInfo};
use std::collections::HashMap;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;

/// The records one service instance contributes: answers and additionals.
pub type Group = (Vec<Record>, Vec<Record>);

/// The records of a cached answer, and their wire form when every answer record is owned
/// by the question's name.
#[derive(Debug)]
pub struct Cached {
    pub groups: Vec<Group>,
    pub wire: Option<Vec<super::udp::WireGroup>>,
}

/// Instance records of recent service and query answers, by (question name, type), valid
/// while the lookup's generation stays the same; each answer shuffles and limits them anew.
type AnswerCache = std::sync::Mutex<HashMap<(String, RecordType), (u64, Arc<Cached>)>>;

/// Entries kept at most (the cache is cleared when it grows past this).
const CACHE_ENTRIES: usize = 4096;

/// The DNS request handler.
pub struct DnsHandler<L: DnsLookup> {
    lookup: Arc<L>,
    settings: DnsSettings,
    cache: AnswerCache,
}

/// A computed answer.
#[derive(Debug, Default)]
pub struct Answer {
    pub code: Option<ResponseCode>,
    pub answers: Vec<Record>,
    pub additionals: Vec<Record>,
    /// Put the SOA in the authority section (NXDOMAIN, NODATA).
    pub soa: bool,
    pub truncated: bool,
}

fn name(s: &str) -> Option<Name> {
    Name::from_str(s).ok()
}

fn addr_record(owner: &Name, ttl: u32, ip: IpAddr) -> Record {
    match ip {
        IpAddr::V4(v4) => Record::from_rdata(owner.clone(), ttl, RData::A(A(v4))),
        IpAddr::V6(v6) => Record::from_rdata(owner.clone(), ttl, RData::AAAA(AAAA(v6))),
    }
}

/// A node's meta as a TXT record (`key=value` strings; Consul's own keys left out).
fn meta_txt(owner: &Name, ttl: u32, n: &crate::types::Node) -> Option<Record> {
    let txt: Vec<String> = n
        .meta
        .iter()
        .filter(|(k, _)| !k.starts_with("consul-"))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    (!txt.is_empty()).then(|| Record::from_rdata(owner.clone(), ttl, RData::TXT(TXT::new(txt))))
}

fn wants(qtype: RecordType, ip: &IpAddr) -> bool {
    match qtype {
        RecordType::A => ip.is_ipv4(),
        RecordType::AAAA => ip.is_ipv6(),
        RecordType::ANY => true,
        _ => false,
    }
}

fn shuffle<T>(v: &mut [T]) {
    rand::seq::SliceRandom::shuffle(v, &mut rand::thread_rng());
}

impl<L: DnsLookup> DnsHandler<L> {
    /// A handler over `lookup`.
    pub fn new(lookup: Arc<L>, settings: DnsSettings) -> Self {
        DnsHandler {
            lookup,
            settings,
            cache: Default::default(),
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> &DnsSettings {
        &self.settings
    }

    /// The cached answer to (`qname`, `qtype`) about this datacenter, if still current.
    pub fn cached_local(&self, qname: &str, qtype: RecordType) -> Option<Arc<Cached>> {
        let local = self.lookup.generation(&self.lookup.datacenter());
        self.cached_name(qname, qtype, local)
    }

    #[cfg(test)]
    pub(crate) fn lookup_for_test(&self) -> &L {
        &self.lookup
    }

    /// The SOA record of a domain.
    pub fn soa(&self, domain: &str) -> Option<Record> {
        let zone = name(domain)?;
        let serial = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as u32)
            .unwrap_or(1);
        let soa = SOA::new(
            name(&format!("ns.{domain}"))?,
            name(&format!("hostmaster.{domain}"))?,
            serial,
            self.settings.soa_refresh,
            self.settings.soa_retry,
            self.settings.soa_expire,
            self.settings.soa_min_ttl,
        );
        Some(Record::from_rdata(
            zone,
            self.settings.soa_min_ttl,
            RData::SOA(soa),
        ))
    }

    /// Answer a question for a name under one of our domains.
    pub async fn answer(&self, qname: &str, qtype: RecordType, udp: bool) -> Answer {
        // A service or query answer of this datacenter computed since the last write: no
        // parsing and no lookup, only a new order and the limits.
        if let Some(c) = self.cached_local(qname, qtype) {
            let mut a = self.assemble(&c.groups, udp);
            if a.answers.is_empty() {
                a.soa = true; // NODATA
            }
            return a;
        }
        let (labels, domain) = match strip_domain(qname, &self.settings.domains) {
            Ok(x) => x,
            Err(_) => {
                return Answer {
                    code: Some(ResponseCode::Refused),
                    ..Default::default()
                }
            }
        };
        let q = match parse(&labels) {
            Ok(q) => q,
            Err(ParseError::NotOurs) | Err(ParseError::Invalid) => {
                let nodata = labels.is_empty() && matches!(qtype, RecordType::SOA | RecordType::NS);
                if nodata && qtype == RecordType::SOA {
                    let mut a = Answer::default();
                    if let Some(soa) = self.soa(&domain) {
                        a.answers.push(soa);
                    }
                    return a;
                }
                return Answer {
                    code: Some(if labels.is_empty() {
                        ResponseCode::NoError
                    } else {
                        ResponseCode::NXDomain
                    }),
                    soa: true,
                    ..Default::default()
                };
            }
        };
        let Some(owner) = name(qname) else {
            return Answer {
                code: Some(ResponseCode::FormErr),
                ..Default::default()
            };
        };
        let local_dc = self.lookup.datacenter();
        let result = match q {
            DnsQuery::Addr { ip } => {
                let mut a = Answer::default();
                if wants(qtype, &ip) {
                    a.answers.push(addr_record(&owner, 0, ip));
                }
                Ok(Some(a))
            }
            DnsQuery::Node { node, dc } => {
                let dc = dc.unwrap_or(local_dc);
                self.node_answer(&owner, &node, &dc, qtype).await
            }
            DnsQuery::Query { name, dc } => {
                let dc = dc.unwrap_or(local_dc);
                self.query_answer(&owner, &name, &dc, &domain, qtype, udp)
                    .await
            }
            DnsQuery::Service { service, tag, dc } => {
                let dc = dc.unwrap_or(local_dc);
                self.service_answer(&owner, &service, tag.as_deref(), &dc, &domain, qtype, udp)
                    .await
            }
        };
        match result {
            Ok(Some(mut a)) => {
                if a.answers.is_empty() && a.code.is_none() {
                    a.soa = true; // NODATA
                }
                a
            }
            Ok(None) | Err(LookupError::UnknownDatacenter(_)) => Answer {
                code: Some(ResponseCode::NXDomain),
                soa: true,
                ..Default::default()
            },
            Err(LookupError::Unavailable(e)) => {
                tracing::warn!(error = %e, name = qname, "DNS lookup failed");
                Answer {
                    code: Some(ResponseCode::ServFail),
                    ..Default::default()
                }
            }
        }
    }

    async fn node_answer(
        &self,
        owner: &Name,
        node: &str,
        dc: &str,
        qtype: RecordType,
    ) -> Result<Option<Answer>, LookupError> {
        let Some(n) = self.lookup.node(dc, node).await? else {
            return Ok(None);
        };
        let ttl = self.settings.node_ttl;
        let mut a = Answer::default();
        match IpAddr::from_str(&n.address) {
            Ok(ip) if wants(qtype, &ip) => a.answers.push(addr_record(owner, ttl, ip)),
            Ok(_) => {}
            Err(_) => {
                if let (Some(target), true) = (
                    name(&format!("{}.", n.address.trim_end_matches('.'))),
                    matches!(
                        qtype,
                        RecordType::A | RecordType::AAAA | RecordType::ANY | RecordType::CNAME
                    ),
                ) {
                    a.answers.push(Record::from_rdata(
                        owner.clone(),
                        ttl,
                        RData::CNAME(CNAME(target)),
                    ));
                }
            }
        }
        if matches!(qtype, RecordType::TXT | RecordType::ANY) {
            a.answers.extend(meta_txt(owner, ttl, &n));
        }
        Ok(Some(a))
    }

    #[allow(clippy::too_many_arguments)]
    async fn service_answer(
        &self,
        owner: &Name,
        service: &str,
        tag: Option<&str>,
        dc: &str,
        domain: &str,
        qtype: RecordType,
        udp: bool,
    ) -> Result<Option<Answer>, LookupError> {
        let generation = self.lookup.generation(dc);
        if let Some(c) = self.cached(owner, qtype, generation) {
            return Ok(Some(self.assemble(&c.groups, udp)));
        }
        let all = self.lookup.service(dc, service, tag).await?;
        if all.is_empty() {
            return Ok(None);
        }
        let healthy: Vec<Instance> = all
            .into_iter()
            .filter(|i| {
                i.status != HEALTH_CRITICAL
                    && !(self.settings.only_passing && i.status == HEALTH_WARNING)
            })
            .collect();
        if healthy.is_empty() {
            return Ok(None); // Consul answers NXDOMAIN when no instance is healthy
        }
        let ttl = self.settings.ttl_for_service(service);
        let groups = self.instance_groups(owner, &healthy, ttl, dc, domain, qtype);
        let c = self.remember(owner, qtype, generation, groups);
        Ok(Some(self.assemble(&c.groups, udp)))
    }

    /// A prepared query (`<name>.query[.<dc>].<domain>`): its own health filtering, its
    /// `DNS.TTL` (else the service TTL).
    #[allow(clippy::too_many_arguments)]
    async fn query_answer(
        &self,
        owner: &Name,
        name: &str,
        dc: &str,
        domain: &str,
        qtype: RecordType,
        udp: bool,
    ) -> Result<Option<Answer>, LookupError> {
        let generation = self.lookup.generation(dc);
        if let Some(c) = self.cached(owner, qtype, generation) {
            return Ok(Some(self.assemble(&c.groups, udp)));
        }
        let Some((service, nodes, ttl)) = self.lookup.query(dc, name).await? else {
            return Ok(None);
        };
        if nodes.is_empty() {
            return Ok(None);
        }
        let ttl = ttl.unwrap_or_else(|| self.settings.ttl_for_service(&service));
        let groups = self.instance_groups(owner, &nodes, ttl, dc, domain, qtype);
        let c = self.remember(owner, qtype, generation, groups);
        Ok(Some(self.assemble(&c.groups, udp)))
    }

    fn cached(
        &self,
        owner: &Name,
        qtype: RecordType,
        generation: Option<u64>,
    ) -> Option<Arc<Cached>> {
        self.cached_name(&owner.to_string(), qtype, generation)
    }

    /// The cached answer to (`qname`, lower case with the final dot, `qtype`) if it was
    /// computed at this `generation`.
    fn cached_name(
        &self,
        qname: &str,
        qtype: RecordType,
        generation: Option<u64>,
    ) -> Option<Arc<Cached>> {
        let g = generation?;
        let c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        c.get(&(qname.to_string(), qtype))
            .filter(|(at, _)| *at == g)
            .map(|(_, groups)| groups.clone())
    }

    fn remember(
        &self,
        owner: &Name,
        qtype: RecordType,
        generation: Option<u64>,
        groups: Vec<Group>,
    ) -> Arc<Cached> {
        let wire = generation.and_then(|_| super::udp::wire_groups(owner, &groups));
        let cached = Arc::new(Cached { groups, wire });
        if let Some(g) = generation {
            let mut c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if c.len() >= CACHE_ENTRIES {
                c.clear();
            }
            c.insert((owner.to_string(), qtype), (g, cached.clone()));
        }
        cached
    }

    /// How many of `n` instances an answer holds: all, or as many as the UDP answer limit
    /// (or `a_record_limit`, if lower) allows; and whether the answer is marked truncated
    /// for leaving some out (`enable_truncate`).
    pub fn limited(&self, n: usize, udp: bool) -> (usize, bool) {
        let mut limit = if udp {
            self.settings.udp_answer_limit
        } else {
            0
        };
        if self.settings.a_record_limit > 0 && (limit == 0 || self.settings.a_record_limit < limit)
        {
            limit = self.settings.a_record_limit;
        }
        if limit > 0 && n > limit {
            (limit, self.settings.enable_truncate)
        } else {
            (n, false)
        }
    }

    /// Which instances an answer holds, in a new random order, as [`Self::limited`] says.
    fn pick(&self, n: usize, udp: bool) -> (Vec<usize>, bool) {
        let mut order: Vec<usize> = (0..n).collect();
        shuffle(&mut order);
        let (take, truncated) = self.limited(n, udp);
        order.truncate(take);
        (order, truncated)
    }

    /// The answer: the instances' records as [`Self::pick`] chooses them.
    fn assemble(&self, groups: &[Group], udp: bool) -> Answer {
        let (order, truncated) = self.pick(groups.len(), udp);
        let mut a = Answer {
            truncated,
            ..Default::default()
        };
        for i in order {
            a.answers.extend(groups[i].0.iter().cloned());
            a.additionals.extend(groups[i].1.iter().cloned());
        }
        a
    }

    /// A/AAAA/CNAME/SRV/TXT records of each instance that has one of the type (one group
    /// per instance, in order).
    fn instance_groups(
        &self,
        owner: &Name,
        healthy: &[Instance],
        ttl: u32,
        dc: &str,
        domain: &str,
        qtype: RecordType,
    ) -> Vec<Group> {
        let node_ttl = self.settings.node_ttl;
        let mut groups = Vec::with_capacity(healthy.len());
        for i in healthy {
            let mut a = Answer::default();
            let svc_addr = if i.service.address.is_empty() {
                i.node.address.clone()
            } else {
                i.service.address.clone()
            };
            match qtype {
                RecordType::SRV => {
                    let weight = if i.status == HEALTH_PASSING {
                        i.service.weights.passing
                    } else {
                        i.service.weights.warning
                    };
                    let own_ip = (!i.service.address.is_empty()
                        && i.service.address != i.node.address)
                        .then(|| IpAddr::from_str(&i.service.address).ok())
                        .flatten();
                    let (target, target_ip) = match own_ip {
                        Some(ip) => (format!("{}.addr.{dc}.{domain}", encode_addr(&ip)), Some(ip)),
                        None => (
                            format!("{}.node.{dc}.{domain}", i.node.node),
                            IpAddr::from_str(&svc_addr).ok(),
                        ),
                    };
                    let Some(tname) = name(&target) else { continue };
                    let srv = SRV::new(
                        1,
                        weight.clamp(0, 65535) as u16,
                        i.service.port.clamp(0, 65535) as u16,
                        tname.clone(),
                    );
                    a.answers
                        .push(Record::from_rdata(owner.clone(), ttl, RData::SRV(srv)));
                    match target_ip {
                        Some(ip) => a.additionals.push(addr_record(&tname, node_ttl, ip)),
                        None => {
                            if let Some(cn) = name(&format!("{}.", svc_addr.trim_end_matches('.')))
                            {
                                a.additionals.push(Record::from_rdata(
                                    tname,
                                    node_ttl,
                                    RData::CNAME(CNAME(cn)),
                                ));
                            }
                        }
                    }
                }
                RecordType::A | RecordType::AAAA | RecordType::ANY => {
                    match IpAddr::from_str(&svc_addr) {
                        Ok(ip) if wants(qtype, &ip) => a.answers.push(addr_record(owner, ttl, ip)),
                        Ok(_) => {}
                        Err(_) => {
                            if let Some(cn) = name(&format!("{}.", svc_addr.trim_end_matches('.')))
                            {
                                a.answers.push(Record::from_rdata(
                                    owner.clone(),
                                    ttl,
                                    RData::CNAME(CNAME(cn)),
                                ));
                            }
                        }
                    }
                }
                RecordType::TXT => {
                    a.answers.extend(meta_txt(owner, ttl, &i.node));
                }
                _ => {}
            }
            // An instance without a record of this type takes no place in the answer
            // (the limits count the instances that have one).
            if !a.answers.is_empty() {
                groups.push((a.answers, a.additionals));
            }
        }
        groups
    }

    async fn recurse(&self, request: &Request) -> Option<Vec<u8>> {
        let q = request.query();
        let mut msg = hickory_proto::op::Message::new();
        msg.set_id(request.id())
            .set_message_type(MessageType::Query)
            .set_op_code(OpCode::Query)
            .set_recursion_desired(true)
            .add_query(q.original().clone());
        let bytes = msg.to_vec().ok()?;
        for r in &self.settings.recursors {
            let addr = if r.contains(':') && !r.starts_with('[') && r.matches(':').count() == 1 {
                r.clone()
            } else {
                format!("{r}:53")
            };
            let Ok(sock) = tokio::net::UdpSocket::bind("0.0.0.0:0").await else {
                continue;
            };
            if sock.send_to(&bytes, &addr).await.is_err() {
                continue;
            }
            let mut buf = vec![0u8; 4096];
            if let Ok(Ok((n, _))) =
                tokio::time::timeout(self.settings.recursor_timeout, sock.recv_from(&mut buf)).await
            {
                buf.truncate(n);
                return Some(buf);
            }
        }
        None
    }
}

#[async_trait::async_trait]
impl<L: DnsLookup> RequestHandler for DnsHandler<L> {
    async fn handle_request<R: ResponseHandler>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let builder = MessageResponseBuilder::from_message_request(request);
        let mut header = Header::response_from_request(request.header());
        if request.message_type() != MessageType::Query || request.op_code() != OpCode::Query {
            let resp = builder.error_msg(request.header(), ResponseCode::NotImp);
            return response_handle
                .send_response(resp)
                .await
                .unwrap_or_else(|_| header.into());
        }
        let q = request.query();
        let qname = q.name().to_string();
        let qtype = q.query_type();
        crate::metrics::incr("consul.dns.domain_query", 1);
        let udp = matches!(request.protocol(), Protocol::Udp);
        let started = std::time::Instant::now();
        let ans = self.answer(&qname, qtype, udp).await;
        if ans.code == Some(ResponseCode::Refused) && !self.settings.recursors.is_empty() {
            if let Some(raw) = self.recurse(request).await {
                if let Ok(msg) = hickory_proto::op::Message::from_vec(&raw) {
                    let mut h = header;
                    h.set_response_code(msg.response_code());
                    h.set_recursion_available(true);
                    h.set_authoritative(false);
                    let resp = builder.build(
                        h,
                        msg.answers().iter(),
                        msg.name_servers().iter(),
                        std::iter::empty(),
                        msg.additionals().iter(),
                    );
                    return response_handle
                        .send_response(resp)
                        .await
                        .unwrap_or_else(|_| h.into());
                }
            }
            let resp = builder.error_msg(request.header(), ResponseCode::ServFail);
            return response_handle
                .send_response(resp)
                .await
                .unwrap_or_else(|_| header.into());
        }
        header.set_authoritative(ans.code != Some(ResponseCode::Refused));
        header.set_recursion_available(!self.settings.recursors.is_empty());
        header.set_response_code(ans.code.unwrap_or(ResponseCode::NoError));
        header.set_truncated(ans.truncated);
        let soa: Vec<Record> = if ans.soa {
            strip_domain(&qname, &self.settings.domains)
                .ok()
                .and_then(|(_, d)| self.soa(&d))
                .into_iter()
                .collect()
        } else {
            Vec::new()
        };
        let mut builder = builder;
        if let Some(e) = request.edns() {
            let mut edns = hickory_proto::op::Edns::new();
            edns.set_max_payload(e.max_payload().max(512));
            builder.edns(edns);
        }
        let resp = builder.build(
            header,
            ans.answers.iter(),
            std::iter::empty(),
            soa.iter(),
            ans.additionals.iter(),
        );
        let info = response_handle
            .send_response(resp)
            .await
            .unwrap_or_else(|e| {
                tracing::debug!(error = %e, "sending DNS response");
                header.into()
            });
        crate::metrics::sample("consul.dns.domain_query", started.elapsed());
        info
    }
}
