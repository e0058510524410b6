//! Query names to lookups (pure): `<node>.node[.<dc>].<domain>`,
//! `[<tag>.]<service>.service[.<dc>].<domain>`, RFC 2782
//! `_<service>._<tag|tcp|udp>.service[.<dc>].<domain>`, `<hex-ip>.addr[.<dc>].<domain>`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What a name under the Consul domain asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsQuery {
    /// A node by name.
    Node { node: String, dc: Option<String> },
    /// Healthy instances of a service, optionally with a tag.
    Service {
        service: String,
        tag: Option<String>,
        dc: Option<String>,
    },
    /// An address encoded in the name (SRV targets of services with their own address).
    Addr { ip: IpAddr },
    /// A prepared query by name or ID (`<name>.query`, RFC 2782 `_<name>._tcp.query`).
    Query { name: String, dc: Option<String> },
}

/// Why a name under the domain does not resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Not under any of our domains (hand it to a recursor).
    NotOurs,
    /// Under our domain but meaningless (NXDOMAIN).
    Invalid,
}

/// Labels of `name` below one of `domains` (each like `consul.`), lower-cased.
pub fn strip_domain(name: &str, domains: &[String]) -> Result<(Vec<String>, String), ParseError> {
    let n = name.trim_end_matches('.').to_ascii_lowercase();
    for d in domains {
        let d = d.trim_end_matches('.').to_ascii_lowercase();
        if d.is_empty() {
            continue;
        }
        if n == d {
            return Ok((Vec::new(), d));
        }
        if let Some(rest) = n.strip_suffix(&format!(".{d}")) {
            return Ok((rest.split('.').map(str::to_string).collect(), d));
        }
    }
    Err(ParseError::NotOurs)
}

/// Parse the labels below the domain.
pub fn parse(labels: &[String]) -> Result<DnsQuery, ParseError> {
    const KINDS: [&str; 4] = ["node", "service", "addr", "query"];
    let n = labels.len();
    let (kind_at, dc) = if n >= 1 && KINDS.contains(&labels[n - 1].as_str()) {
        (n - 1, None)
    } else if n >= 2 && KINDS.contains(&labels[n - 2].as_str()) {
        (n - 2, Some(labels[n - 1].clone()))
    } else {
        return Err(ParseError::Invalid);
    };
    let head = &labels[..kind_at];
    match labels[kind_at].as_str() {
        "node" => {
            // Node names may contain dots.
            if head.is_empty() {
                return Err(ParseError::Invalid);
            }
            Ok(DnsQuery::Node {
                node: head.join("."),
                dc,
            })
        }
        "service" => match head {
            [svc] if !svc.starts_with('_') => Ok(DnsQuery::Service {
                service: svc.clone(),
                tag: None,
                dc,
            }),
            [a, b] if a.starts_with('_') && b.starts_with('_') => {
                let service = a[1..].to_string();
                let tag = &b[1..];
                let tag = (!matches!(tag, "tcp" | "udp")).then(|| tag.to_string());
                if service.is_empty() {
                    return Err(ParseError::Invalid);
                }
                Ok(DnsQuery::Service { service, tag, dc })
            }
            [tag, svc] => Ok(DnsQuery::Service {
                service: svc.clone(),
                tag: Some(tag.clone()),
                dc,
            }),
            _ => Err(ParseError::Invalid),
        },
        "query" => match head {
            [n] if !n.starts_with('_') => Ok(DnsQuery::Query {
                name: n.clone(),
                dc,
            }),
            [a, b] if a.starts_with('_') && b.starts_with('_') && a.len() > 1 => {
                Ok(DnsQuery::Query {
                    name: a[1..].to_string(),
                    dc,
                })
            }
            _ => Err(ParseError::Invalid),
        },
        "addr" => match head {
            [hex] => decode_addr(hex)
                .map(|ip| DnsQuery::Addr { ip })
                .ok_or(ParseError::Invalid),
            _ => Err(ParseError::Invalid),
        },
        _ => Err(ParseError::Invalid),
    }
}

/// `7f000001` -> 127.0.0.1; 32 hex digits -> an IPv6 address.
pub fn decode_addr(hex: &str) -> Option<IpAddr> {
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|b| u8::from_str_radix(b, 16).ok())
        })
        .collect();
    match bytes?.as_slice() {
        [a, b, c, d] if hex.len() == 8 => Some(IpAddr::V4(Ipv4Addr::new(*a, *b, *c, *d))),
        b if hex.len() == 32 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(b);
            Some(IpAddr::V6(Ipv6Addr::from(a)))
        }
        _ => None,
    }
}

/// The `.addr` label of an IP.
pub fn encode_addr(ip: &IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.octets().iter().map(|b| format!("{b:02x}")).collect(),
        IpAddr::V6(v6) => v6.octets().iter().map(|b| format!("{b:02x}")).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(name: &str) -> Result<DnsQuery, ParseError> {
        let (labels, _) = strip_domain(name, &["consul.".to_string(), "alt.example.".to_string()])?;
        parse(&labels)
    }

    fn svc(s: &str, t: Option<&str>, dc: Option<&str>) -> DnsQuery {
        DnsQuery::Service {
            service: s.into(),
            tag: t.map(Into::into),
            dc: dc.map(Into::into),
        }
    }

    #[test]
    fn names() {
        assert_eq!(q("web.service.consul."), Ok(svc("web", None, None)));
        assert_eq!(q("WEB.Service.Consul"), Ok(svc("web", None, None)));
        assert_eq!(
            q("rails.web.service.consul."),
            Ok(svc("web", Some("rails"), None))
        );
        assert_eq!(
            q("web.service.dc2.consul."),
            Ok(svc("web", None, Some("dc2")))
        );
        assert_eq!(q("_web._tcp.service.consul."), Ok(svc("web", None, None)));
        assert_eq!(
            q("_web._rails.service.dc1.consul."),
            Ok(svc("web", Some("rails"), Some("dc1")))
        );
        assert_eq!(q("web.service.alt.example."), Ok(svc("web", None, None)));
        assert_eq!(
            q("node1.node.consul."),
            Ok(DnsQuery::Node {
                node: "node1".into(),
                dc: None
            })
        );
        assert_eq!(
            q("node1.node.dc1.consul."),
            Ok(DnsQuery::Node {
                node: "node1".into(),
                dc: Some("dc1".into())
            })
        );
        assert_eq!(
            q("7f000001.addr.dc1.consul."),
            Ok(DnsQuery::Addr {
                ip: "127.0.0.1".parse().unwrap()
            })
        );
        assert_eq!(
            q("geo-db-x.query.consul."),
            Ok(DnsQuery::Query {
                name: "geo-db-x".into(),
                dc: None
            })
        );
        assert_eq!(
            q("_pq._tcp.query.dc2.consul."),
            Ok(DnsQuery::Query {
                name: "pq".into(),
                dc: Some("dc2".into())
            })
        );
        assert_eq!(q("example.com."), Err(ParseError::NotOurs));
        assert_eq!(q("consul."), Err(ParseError::Invalid));
        assert_eq!(q("a.b.c.service.consul."), Err(ParseError::Invalid));
        assert_eq!(q("zz.addr.consul."), Err(ParseError::Invalid));
        assert_eq!(q("bogus.consul."), Err(ParseError::Invalid));
    }

    #[test]
    fn addr_roundtrip() {
        for ip in ["10.1.2.3", "::1", "fe80::1"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(decode_addr(&encode_addr(&ip)), Some(ip));
        }
    }
}
