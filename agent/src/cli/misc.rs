//! `join`, `force-leave`, `keygen`, `keyring`, `event`, `monitor`, `rtt`.

use super::{connect, http_flags, parse};
use crate::flags::FlagSet;
use base64::Engine;
use serde_json::Value;
use std::io::Read;

/// `join [-wan] address ...`
pub(super) fn join(args: &[String]) -> i32 {
    let mut fs = FlagSet::new("join");
    http_flags(&mut fs);
    fs.bool("wan", "Joins a server to another server in the WAN pool.");
    let p = or_exit!(parse(
        &fs,
        args,
        "Usage: praetor join [options] address ..."
    ));
    if p.positional().is_empty() {
        eprintln!("At least one address to join must be specified.");
        return 1;
    }
    let c = or_exit!(connect(&p, "Error connecting to Consul agent"));
    let q: Vec<(&str, String)> = if p.get_bool("wan").unwrap_or(false) {
        vec![("wan", "1".into())]
    } else {
        vec![]
    };
    let mut joined = 0;
    for a in p.positional() {
        match c.call("PUT", &format!("/v1/agent/join/{a}"), &q, None, &[]) {
            Ok(_) => joined += 1,
            Err(e) => eprintln!("Error joining address '{a}': {e}"),
        }
    }
    if joined == 0 {
        eprintln!("Failed to join any nodes.");
        return 1;
    }
    println!("Successfully joined cluster by contacting {joined} nodes.");
    0
}

/// `force-leave [-prune] node`
pub(super) fn force_leave(args: &[String]) -> i32 {
    let mut fs = FlagSet::new("force-leave");
    http_flags(&mut fs);
    fs.bool("prune", "Remove agent forcibly from list of members")
        .bool("wan", "Exclusively leave the agent from the WAN serf pool.");
    let p = or_exit!(parse(
        &fs,
        args,
        "Usage: praetor force-leave [options] name"
    ));
    let Some(node) = p.positional().first() else {
        eprintln!("A node name must be specified to force leave.");
        return 1;
    };
    let c = or_exit!(connect(&p, "Error connecting to Consul agent"));
    let q: Vec<(&str, String)> = if p.get_bool("prune").unwrap_or(false) {
        vec![("prune", "1".into())]
    } else {
        vec![]
    };
    match c.call(
        "PUT",
        &format!("/v1/agent/force-leave/{node}"),
        &q,
        None,
        &[],
    ) {
        Ok(_) => 0,
        Err(e) => {
            eprintln!("Error force leaving: {e}");
            1
        }
    }
}

/// `keygen`: a new 32-byte gossip encryption key, base64.
pub(super) fn keygen(args: &[String]) -> i32 {
    let fs = FlagSet::new("keygen");
    if let Err(c) = parse(&fs, args, "Usage: praetor keygen") {
        return c;
    }
    let mut key = [0u8; 32];
    match std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut key)) {
        Ok(()) => {
            println!("{}", base64::engine::general_purpose::STANDARD.encode(key));
            0
        }
        Err(e) => {
            eprintln!("Error reading random data: {e}");
            1
        }
    }
}

/// `event -name NAME [-node RE] [-service RE] [-tag RE] [payload]`
pub(super) fn event(args: &[String]) -> i32 {
    let mut fs = FlagSet::new("event");
    http_flags(&mut fs);
    fs.string("name", "Name of the event.")
        .string("node", "Regular expression to filter on node names.")
        .string(
            "service",
            "Regular expression to filter on service instances.",
        )
        .string("tag", "Regular expression to filter on service tags.");
    let p = or_exit!(parse(&fs, args, "Usage: praetor event [options] [payload]"));
    let Some(name) = p.get_str("name").filter(|n| !n.is_empty()) else {
        eprintln!("Event name must be specified");
        return 1;
    };
    let c = or_exit!(connect(&p, "Error connecting to Consul agent"));
    let mut q = Vec::new();
    for f in ["node", "service", "tag"] {
        if let Some(v) = p.get_str(f) {
            q.push((f, v.to_string()));
        }
    }
    let payload = p
        .positional()
        .first()
        .map(|s| s.as_bytes().to_vec())
        .unwrap_or_default();
    match c
        .call(
            "PUT",
            &format!("/v1/event/fire/{name}"),
            &q,
            Some(payload),
            &[],
        )
        .and_then(|a| a.json::<Value>())
    {
        Ok(ev) => {
            println!("Event ID: {}", ev["ID"].as_str().unwrap_or_default());
            0
        }
        Err(e) => {
            eprintln!("Error firing event: {e}");
            1
        }
    }
}

/// `monitor [-log-level=info] [-log-json]`: stream the agent's logs.
pub(super) fn monitor(args: &[String]) -> i32 {
    let mut fs = FlagSet::new("monitor");
    http_flags(&mut fs);
    fs.string("log-level", "Log level of the agent.")
        .bool("log-json", "Output logs in JSON format.");
    let p = or_exit!(parse(&fs, args, "Usage: praetor monitor [options]"));
    let addr = p
        .get_str("http-addr")
        .map(str::to_string)
        .or_else(|| std::env::var("CONSUL_HTTP_ADDR").ok())
        .unwrap_or_else(|| "127.0.0.1:8500".into());
    let base = match crate::api::base_url(&addr) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("Error starting monitor: {e}");
            return 1;
        }
    };
    let mut url = format!(
        "{base}/v1/agent/monitor?loglevel={}",
        p.get_str("log-level").unwrap_or("info")
    );
    if p.get_bool("log-json").unwrap_or(false) {
        url.push_str("&logjson");
    }
    let resp = reqwest::blocking::Client::builder()
        .timeout(None)
        .build()
        .and_then(|c| c.get(&url).send());
    match resp {
        Ok(mut r) if r.status().is_success() => {
            let _ = std::io::copy(&mut r, &mut std::io::stdout());
            0
        }
        Ok(r) => {
            eprintln!(
                "Error starting monitor: Unexpected response code: {}",
                r.status().as_u16()
            );
            1
        }
        Err(e) => {
            eprintln!("Error starting monitor: {e}");
            1
        }
    }
}

/// `keyring -list | -install KEY | -use KEY | -remove KEY`
pub(super) fn keyring(args: &[String]) -> i32 {
    let mut fs = FlagSet::new("keyring");
    http_flags(&mut fs);
    fs.bool("list", "List all keys currently in use within the cluster.")
        .string("install", "Install a new encryption key.")
        .string("use", "Change the primary encryption key.")
        .string("remove", "Remove the given key from the cluster.")
        .bool(
            "list-primary",
            "List all primary keys currently in use within the cluster.",
        )
        .int("relay-factor", "Accepted for compatibility.")
        .bool("local-only", "Accepted for compatibility.");
    let p = or_exit!(parse(&fs, args, "Usage: praetor keyring [options]"));
    let c = or_exit!(super::connect(&p, "Error connecting to Consul agent"));
    let ops = [
        ("install", "POST", "Installing new gossip encryption key..."),
        ("use", "PUT", "Changing primary gossip encryption key..."),
        ("remove", "DELETE", "Removing gossip encryption key..."),
    ];
    let chosen: Vec<_> = ops
        .iter()
        .filter(|(f, ..)| p.get_str(f).is_some())
        .collect();
    let list = p.get_bool("list").unwrap_or(false) || p.get_bool("list-primary").unwrap_or(false);
    if chosen.len() + usize::from(list) != 1 {
        eprintln!("Exactly one of -list, -install, -use, or -remove must be provided");
        return 1;
    }
    if let Some((flag, method, msg)) = chosen.first() {
        println!("==> {msg}");
        let body = serde_json::json!({ "Key": p.get_str(flag).unwrap_or("") })
            .to_string()
            .into_bytes();
        return match c.call(method, "/v1/operator/keyring", &[], Some(body), &[]) {
            Ok(_) => 0,
            Err(e) => {
                eprintln!("error: {e}");
                1
            }
        };
    }
    println!("==> Gathering installed encryption keys...");
    let pools: Vec<Value> = match c.get_json("/v1/operator/keyring", &[]) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    let primary_only = p.get_bool("list-primary").unwrap_or(false);
    for pool in pools {
        let n = pool["NumNodes"].as_u64().unwrap_or(0);
        let title = if pool["WAN"] == true {
            "WAN".to_string()
        } else {
            format!("{} (LAN)", pool["Datacenter"].as_str().unwrap_or(""))
        };
        println!("\n{title}:");
        let keys = if primary_only {
            &pool["PrimaryKeys"]
        } else {
            &pool["Keys"]
        };
        for (k, count) in keys.as_object().cloned().unwrap_or_default() {
            println!("  {k} [{}/{n}]", count.as_u64().unwrap_or(0));
        }
    }
    0
}

/// `rtt [-wan] node1 [node2]`: estimated round-trip time from network coordinates.
pub(super) fn rtt(args: &[String]) -> i32 {
    let mut fs = FlagSet::new("rtt");
    http_flags(&mut fs);
    fs.bool("wan", "Use WAN coordinates instead of LAN coordinates.")
        .string("partition", "Accepted for compatibility.");
    let p = or_exit!(parse(
        &fs,
        args,
        "Usage: praetor rtt [options] node1 [node2]"
    ));
    let pos = p.positional().to_vec();
    if pos.is_empty() || pos.len() > 2 {
        eprintln!("One or two node names must be specified");
        return 1;
    }
    let c = or_exit!(super::connect(&p, "Error connecting to Consul agent"));
    let wan = p.get_bool("wan").unwrap_or(false);
    let coords: std::collections::BTreeMap<String, crate::types::Coordinate> = if wan {
        let dcs: Vec<Value> = match c.get_json("/v1/coordinate/datacenters", &[]) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("Error getting coordinates: {e}");
                return 1;
            }
        };
        dcs.iter()
            .flat_map(|d| d["Coordinates"].as_array().cloned().unwrap_or_default())
            .filter_map(|e| {
                Some((
                    e["Node"].as_str()?.to_string(),
                    serde_json::from_value(e["Coord"].clone()).ok()?,
                ))
            })
            .collect()
    } else {
        let nodes: Vec<Value> = match c.get_json("/v1/coordinate/nodes", &[]) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("Error getting coordinates: {e}");
                return 1;
            }
        };
        nodes
            .iter()
            .filter_map(|e| {
                Some((
                    e["Node"].as_str()?.to_string(),
                    serde_json::from_value(e["Coord"].clone()).ok()?,
                ))
            })
            .collect()
    };
    let n1 = pos[0].clone();
    let n2 = match pos.get(1) {
        Some(n) => n.clone(),
        None => match c.get_json::<Value>("/v1/agent/self", &[]) {
            Ok(me) => {
                let name = me["Config"]["NodeName"].as_str().unwrap_or("").to_string();
                if wan {
                    format!(
                        "{name}.{}",
                        me["Config"]["Datacenter"].as_str().unwrap_or("")
                    )
                } else {
                    name
                }
            }
            Err(e) => {
                eprintln!("Unable to look up agent info: {e}");
                return 1;
            }
        },
    };
    let (Some(a), Some(b)) = (coords.get(&n1), coords.get(&n2)) else {
        let missing = if coords.contains_key(&n1) { &n2 } else { &n1 };
        eprintln!("Could not find a coordinate for node {missing:?}");
        return 1;
    };
    let ms = a.distance_to(b).as_secs_f64() * 1000.0;
    println!(
        "Estimated {n1} <-> {n2} rtt: {ms:.3} ms (using {} coordinates)",
        if wan { "WAN" } else { "LAN" }
    );
    0
}
