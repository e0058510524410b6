//! `members [-detailed] [-status REGEX] [-wan] [-segment S] [-filter F]`: the gossip
//! pool as Consul prints it (servers first, then by segment, partition and name); exit
//! code 2 when no member matches.

use super::output::columnize_delim;
use super::verb::flag;
use super::{connect_agent, Verb};
use crate::api::{AgentMember, MembersOpts};
use std::net::{IpAddr, SocketAddr};

const HELP: &str = "
Usage: praetor members [options]

  Outputs the members of a running agent's gossip pool.
";

const ALL_SEGMENTS: &str = "_all";
const ROLE_SERVER: &str = "consul";
const ROLE_CLIENT: &str = "node";

/// Go's `net.TCPAddr{IP: net.ParseIP(addr), Port: port}.String()`.
fn tcp_addr(addr: &str, port: u16) -> String {
    match addr.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("{v4}:{port}"),
            None => SocketAddr::new(IpAddr::V6(v6), port).to_string(),
        },
        Ok(ip) => SocketAddr::new(ip, port).to_string(),
        Err(_) => format!(":{port}"),
    }
}

fn is_default_partition(p: &str) -> bool {
    p.is_empty() || p.eq_ignore_ascii_case("default")
}

/// Fills in the partition (`ap`) and segment tags the way Consul's command does before
/// filtering and printing.
fn normalize_tags(m: &mut AgentMember, segment_flag: &str) {
    let ap = m.tags.entry("ap".into()).or_default();
    if ap.is_empty() {
        *ap = "default".into();
    }
    if is_default_partition(&m.tags["ap"]) {
        let server = m.tags.get("role").map(String::as_str) == Some(ROLE_SERVER);
        let seg = m.tags.entry("segment".into()).or_default();
        if segment_flag == ALL_SEGMENTS && server {
            *seg = "<all>".into();
        } else if seg.is_empty() {
            *seg = "<default>".into();
        }
    } else {
        m.tags.insert("segment".into(), String::new());
    }
}

fn tag<'a>(m: &'a AgentMember, k: &str) -> &'a str {
    m.tags.get(k).map(String::as_str).unwrap_or("")
}

/// Consul's `ByMemberNamePartitionAndSegment` order.
fn sort_members(members: &mut [AgentMember]) {
    members.sort_by(|a, b| {
        let server = |m: &AgentMember| tag(m, "role") == ROLE_SERVER;
        let default = |m: &AgentMember| is_default_partition(tag(m, "ap"));
        server(b)
            .cmp(&server(a))
            .then(default(b).cmp(&default(a)))
            .then(tag(a, "segment").cmp(tag(b, "segment")))
            .then(tag(a, "ap").cmp(tag(b, "ap")))
            .then(a.name.cmp(&b.name))
    });
}

/// The table (without the UI's trailing newline), from already normalized and sorted
/// members.
pub(super) fn members_table(members: &[AgentMember], detailed: bool) -> String {
    let mut lines = Vec::with_capacity(members.len() + 1);
    let d = "\x1f";
    if detailed {
        lines.push(["Node", "Address", "Status", "Tags"].join(d));
        for m in members {
            let tags: Vec<String> = m.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
            lines.push(
                [
                    m.name.clone(),
                    tcp_addr(&m.addr, m.port),
                    m.status_string(),
                    tags.join(","),
                ]
                .join(d),
            );
        }
    } else {
        lines.push(
            [
                "Node",
                "Address",
                "Status",
                "Type",
                "Build",
                "Protocol",
                "DC",
                "Partition",
                "Segment",
            ]
            .join(d),
        );
        for m in members {
            let addr = tcp_addr(&m.addr, m.port);
            let build = match tag(m, "build") {
                "" => "< 0.3",
                b => b.split(':').next().unwrap_or(b),
            };
            let kind = match tag(m, "role") {
                ROLE_CLIENT => "client",
                ROLE_SERVER => "server",
                _ => {
                    lines.push(
                        [
                            &m.name,
                            &addr,
                            &m.status_string(),
                            "unknown",
                            "",
                            "",
                            "",
                            "",
                            "",
                        ]
                        .join(d),
                    );
                    continue;
                }
            };
            lines.push(
                [
                    m.name.as_str(),
                    &addr,
                    &m.status_string(),
                    kind,
                    build,
                    tag(m, "vsn"),
                    tag(m, "dc"),
                    tag(m, "ap"),
                    tag(m, "segment"),
                ]
                .join(d),
            );
        }
    }
    columnize_delim(&lines, d)
}

/// `members`
pub(super) fn run(args: &[String]) -> i32 {
    let mut v = Verb::new(HELP);
    v.client_flags();
    v.bool("detailed", "Provides detailed information about nodes.")
        .string("filter", None, "Filter to use with the request")
        .string("partition", None, "(Enterprise-only) Specifies the admin partition to query.")
        .string("segment", Some(ALL_SEGMENTS), "(Enterprise-only) If provided, output is filtered to only nodes in the given segment.")
        .string("status", Some(".*"), "If provided, output is filtered to only nodes matching the regular expression for status.")
        .bool("wan", "If the agent is in server mode, this can be used to return the other peers in the WAN pool.");
    let p = or_exit!(v.parse(args));
    let status_re = match regex_lite::Regex::new(p.get_str("status").unwrap_or(".*")) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("Failed to compile status regexp: {e}");
            return 1;
        }
    };
    let c = or_exit!(connect_agent(&p));
    let segment = p.get_str("segment").unwrap_or(ALL_SEGMENTS).to_string();
    let opts = MembersOpts {
        wan: flag(&p, "wan"),
        segment: p.is_set("segment").then(|| segment.clone()),
        partition: p.get_str("partition").map(str::to_string),
        filter: p.get_str("filter").map(str::to_string),
    };
    let mut members = match c.agent_members(&opts) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("Error retrieving members: {e}");
            return 1;
        }
    };
    for m in &mut members {
        normalize_tags(m, &segment);
    }
    members.retain(|m| status_re.is_match(&m.status_string()));
    if members.is_empty() {
        return 2;
    }
    sort_members(&mut members);
    println!("{}", members_table(&members, flag(&p, "detailed")));
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, role: &str, status: i64) -> AgentMember {
        let mut m = AgentMember {
            name: name.into(),
            addr: "127.0.0.1".into(),
            port: 8301,
            status,
            ..Default::default()
        };
        for (k, v) in [
            ("role", role),
            ("dc", "dc1"),
            ("vsn", "2"),
            ("build", "1.16.1:praetor"),
        ] {
            m.tags.insert(k.into(), v.into());
        }
        m
    }

    #[test]
    fn addresses_like_go() {
        assert_eq!(tcp_addr("10.0.0.1", 8301), "10.0.0.1:8301");
        assert_eq!(tcp_addr("::1", 8301), "[::1]:8301");
        assert_eq!(tcp_addr("::ffff:10.0.0.1", 1), "10.0.0.1:1");
        assert_eq!(tcp_addr("", 8301), ":8301");
    }

    #[test]
    fn standard_table() {
        let mut ms = vec![
            member("zeta", "node", 1),
            member("beta", "consul", 4),
            member("alpha", "node", 3),
            member("odd", "other", 1),
        ];
        for m in &mut ms {
            normalize_tags(m, ALL_SEGMENTS);
        }
        sort_members(&mut ms);
        let names: Vec<&str> = ms.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["beta", "alpha", "odd", "zeta"]);
        let t = members_table(&ms, false);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0],
            "Node   Address         Status  Type     Build   Protocol  DC   Partition  Segment"
        );
        assert_eq!(
            lines[1],
            "beta   127.0.0.1:8301  failed  server   1.16.1  2         dc1  default    <all>"
        );
        assert_eq!(
            lines[2],
            "alpha  127.0.0.1:8301  left    client   1.16.1  2         dc1  default    <default>"
        );
        // unknown roles print empty columns (with Go's trailing padding)
        assert!(lines[3].starts_with("odd    127.0.0.1:8301  alive   unknown  "));
        assert_eq!(
            lines[3].trim_end().len(),
            "odd    127.0.0.1:8301  alive   unknown".len()
        );
        assert_eq!(lines[3].len(), lines[0].len() - "Segment".len());
    }

    #[test]
    fn detailed_table_shows_normalized_tags() {
        let mut m = member("n1", "consul", 1);
        normalize_tags(&mut m, ALL_SEGMENTS);
        let t = members_table(&[m], true);
        assert_eq!(
            t,
            "Node  Address         Status  Tags\n\
             n1    127.0.0.1:8301  alive   ap=default,build=1.16.1:praetor,dc=dc1,role=consul,segment=<all>,vsn=2"
        );
    }

    #[test]
    fn segment_and_partition_tags() {
        let mut m = member("n", "consul", 1);
        normalize_tags(&mut m, "other");
        assert_eq!(m.tags["segment"], "<default>");
        let mut m = member("n", "node", 1);
        m.tags.insert("ap".into(), "team".into());
        m.tags.insert("segment".into(), "s".into());
        normalize_tags(&mut m, ALL_SEGMENTS);
        assert_eq!(m.tags["segment"], "");
    }

    #[test]
    fn bad_status_regexp_exits_1() {
        assert_eq!(run(&["-status=(".to_string()]), 1);
    }
}
