//! The DNS interface (Consul's port 8600) on hickory-server: UDP and TCP listeners, the
//! `dns_config` settings, and the pipeline parse (pure, `parse.rs`) → lookup (a trait over
//! the agent, `lookup.rs`) → records (`handler.rs`).

pub mod handler;
pub mod lookup;
pub mod parse;
pub mod udp;

use crate::config::RuntimeConfig;
use crate::types::parse_duration;
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// `dns_config` and the related top-level keys, resolved.
#[derive(Debug, Clone)]
pub struct DnsSettings {
    /// `domain` and `alt_domain`, each like `consul.`.
    pub domains: Vec<String>,
    pub node_ttl: u32,
    /// Service TTLs by name; `*` and `prefix*` wildcards.
    pub service_ttl: BTreeMap<String, u32>,
    pub only_passing: bool,
    /// Most A/AAAA/SRV answers in a UDP response (0: no limit).
    pub udp_answer_limit: usize,
    /// Most A/AAAA answers in any response (0: no limit).
    pub a_record_limit: usize,
    pub enable_truncate: bool,
    pub soa_min_ttl: u32,
    pub soa_refresh: i32,
    pub soa_retry: i32,
    pub soa_expire: i32,
    pub recursors: Vec<String>,
    pub recursor_timeout: Duration,
    pub disable_compression: bool,
}

fn secs(v: Option<&Value>) -> Option<u32> {
    match v? {
        Value::String(s) => parse_duration(s).ok().map(|d| d.as_secs() as u32),
        Value::Number(n) => n.as_u64().map(|n| n as u32),
        _ => None,
    }
}

impl DnsSettings {
    /// From the runtime config (defaults as Consul's).
    pub fn from_config(cfg: &RuntimeConfig) -> DnsSettings {
        let d = &cfg.dns_config;
        let get = |k: &str| d.get(k);
        let mut domains = vec![normalize_domain(&cfg.domain)];
        if let Some(alt) = cfg.alt_domain.as_deref().filter(|a| !a.is_empty()) {
            domains.push(normalize_domain(alt));
        }
        let mut service_ttl = BTreeMap::new();
        if let Some(Value::Object(m)) = get("service_ttl") {
            for (k, v) in m {
                if let Some(s) = secs(Some(v)) {
                    service_ttl.insert(k.clone(), s);
                }
            }
        }
        let soa = get("soa").cloned().unwrap_or(Value::Null);
        DnsSettings {
            domains,
            node_ttl: secs(get("node_ttl")).unwrap_or(0),
            service_ttl,
            only_passing: get("only_passing")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            udp_answer_limit: get("udp_answer_limit").and_then(Value::as_u64).unwrap_or(3) as usize,
            a_record_limit: get("a_record_limit").and_then(Value::as_u64).unwrap_or(0) as usize,
            enable_truncate: get("enable_truncate")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            soa_min_ttl: soa.get("min_ttl").and_then(Value::as_u64).unwrap_or(0) as u32,
            soa_refresh: soa.get("refresh").and_then(Value::as_i64).unwrap_or(3600) as i32,
            soa_retry: soa.get("retry").and_then(Value::as_i64).unwrap_or(600) as i32,
            soa_expire: soa.get("expire").and_then(Value::as_i64).unwrap_or(86400) as i32,
            recursors: cfg.recursors.clone(),
            recursor_timeout: get("recursor_timeout")
                .and_then(Value::as_str)
                .and_then(|s| parse_duration(s).ok())
                .unwrap_or(Duration::from_secs(2)),
            disable_compression: get("disable_compression")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        }
    }

    /// The TTL for a service: exact name, then the longest `prefix*`, then `*`, else 0.
    pub fn ttl_for_service(&self, name: &str) -> u32 {
        if let Some(t) = self.service_ttl.get(name) {
            return *t;
        }
        let mut best: Option<(usize, u32)> = None;
        for (k, v) in &self.service_ttl {
            if let Some(prefix) = k.strip_suffix('*') {
                if name.starts_with(prefix) && best.map(|(l, _)| prefix.len() > l).unwrap_or(true) {
                    best = Some((prefix.len(), *v));
                }
            }
        }
        best.map(|(_, v)| v).unwrap_or(0)
    }
}

fn normalize_domain(d: &str) -> String {
    let d = d.trim().trim_matches('.');
    format!("{}.", d.to_ascii_lowercase())
}

/// Bind UDP and TCP on the same port. With port 0 the UDP port is picked first and TCP
/// may find it taken by someone else: then try again with another port.
async fn bind_pair(
    addr: &str,
) -> std::io::Result<(tokio::net::UdpSocket, tokio::net::TcpListener, SocketAddr)> {
    let ephemeral = addr.ends_with(":0");
    let mut last = None;
    for _ in 0..(if ephemeral { 50 } else { 1 }) {
        let udp = tokio::net::UdpSocket::bind(addr).await?;
        let bound = udp.local_addr()?;
        match tokio::net::TcpListener::bind(bound).await {
            Ok(tcp) => return Ok((udp, tcp, bound)),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free port for DNS")))
}

/// Bind UDP and TCP on `addr` (port 0 picks one, the same for both) and serve until the
/// agent shuts down. Returns the bound address.
pub async fn serve<L: lookup::DnsLookup>(
    lookup: Arc<L>,
    settings: DnsSettings,
    addr: &str,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<SocketAddr> {
    let (udp, tcp, bound) = bind_pair(addr).await?;
    let handler = Arc::new(handler::DnsHandler::new(lookup, settings));
    let mut server = hickory_server::ServerFuture::new(Shared(handler.clone()));
    server.register_listener(tcp, Duration::from_secs(5));
    let udp = udp::serve_udp(udp, handler);
    tokio::spawn(async move {
        tokio::select! {
            _ = udp => {}
            r = server.block_until_done() => {
                if let Err(e) = r {
                    tracing::error!(error = %e, "DNS server stopped");
                }
            }
            _ = shutdown.wait_for(|v| *v) => {}
        }
    });
    Ok(bound)
}

/// The handler shared by the UDP loop (`udp.rs`) and hickory's TCP server.
struct Shared<L: lookup::DnsLookup>(Arc<handler::DnsHandler<L>>);

#[async_trait::async_trait]
impl<L: lookup::DnsLookup> hickory_server::server::RequestHandler for Shared<L> {
    async fn handle_request<R: hickory_server::server::ResponseHandler>(
        &self,
        request: &hickory_server::server::Request,
        response_handle: R,
    ) -> hickory_server::server::ResponseInfo {
        self.0.handle_request(request, response_handle).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_and_ttls() {
        let mut cfg = RuntimeConfig::for_test();
        cfg.dns_config = serde_json::json!({
            "node_ttl": "10s", "service_ttl": {"*": "5s", "web": "30s", "db*": "7s"},
            "only_passing": true, "udp_answer_limit": 5, "soa": {"min_ttl": 3}
        });
        cfg.alt_domain = Some("Example.Org".into());
        let s = DnsSettings::from_config(&cfg);
        assert_eq!(
            s.domains,
            vec!["consul.".to_string(), "example.org.".to_string()]
        );
        assert_eq!((s.node_ttl, s.udp_answer_limit, s.soa_min_ttl), (10, 5, 3));
        assert!(s.only_passing);
        assert_eq!(s.ttl_for_service("web"), 30);
        assert_eq!(s.ttl_for_service("dbmaster"), 7);
        assert_eq!(s.ttl_for_service("api"), 5);
    }
}
