//! `operator raft list-peers|remove-peer` and `snapshot save|restore|inspect`.

use super::output::columnize;
use super::{connect, http_flags, parse};
use crate::flags::FlagSet;
use serde_json::Value;

/// `operator raft ...`
pub(super) fn run(args: &[String]) -> i32 {
    let usage = "Usage: praetor operator raft <subcommand> [options]\n\n  Subcommands: list-peers, remove-peer, transfer-leader";
    if args.first().map(String::as_str) != Some("raft") {
        eprintln!("{usage}");
        return 1;
    }
    let rest = if args.len() > 2 { &args[2..] } else { &[][..] };
    match args.get(1).map(String::as_str) {
        Some("list-peers") => list_peers(rest),
        Some("remove-peer") => remove_peer(rest),
        Some("transfer-leader") => transfer_leader(rest),
        _ => {
            eprintln!("{usage}");
            1
        }
    }
}

fn list_peers(args: &[String]) -> i32 {
    let mut fs = FlagSet::new("operator raft list-peers");
    http_flags(&mut fs);
    let p = match parse(
        &fs,
        args,
        "Usage: praetor operator raft list-peers [options]",
    ) {
        Ok(p) => p,
        Err(c) => return c,
    };
    let c = or_exit!(connect(&p, "Error initializing client"));
    let conf: Value = match c.get_json("/v1/operator/raft/configuration", &[]) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("Error getting peers: Failed to retrieve raft configuration: {e}");
            return 1;
        }
    };
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let mut rows = vec![["Node", "ID", "Address", "State", "Voter", "RaftProtocol"]
        .map(String::from)
        .to_vec()];
    for srv in conf["Servers"].as_array().cloned().unwrap_or_default() {
        rows.push(vec![
            s(&srv["Node"]),
            s(&srv["ID"]),
            s(&srv["Address"]),
            if srv["Leader"] == true {
                "leader"
            } else {
                "follower"
            }
            .into(),
            srv["Voter"].as_bool().unwrap_or(false).to_string(),
            s(&srv["ProtocolVersion"]),
        ]);
    }
    print!("{}", columnize(&rows));
    0
}

fn remove_peer(args: &[String]) -> i32 {
    let mut fs = FlagSet::new("operator raft remove-peer");
    http_flags(&mut fs);
    fs.string(
        "address",
        "The address to remove from the Raft configuration.",
    )
    .string("id", "The ID to remove from the Raft configuration.");
    let p = match parse(
        &fs,
        args,
        "Usage: praetor operator raft remove-peer [options]",
    ) {
        Ok(p) => p,
        Err(c) => return c,
    };
    let (q, what) = match (p.get_str("address"), p.get_str("id")) {
        (Some(a), None) => (vec![("address", a.to_string())], format!("address \"{a}\"")),
        (None, Some(i)) => (vec![("id", i.to_string())], format!("id \"{i}\"")),
        (Some(_), Some(_)) => {
            eprintln!("Error removing peer: Only one of -address or -id is allowed");
            return 1;
        }
        (None, None) => {
            eprintln!("Error removing peer: an address or id is required for the peer to remove");
            return 1;
        }
    };
    let c = or_exit!(connect(&p, "Error initializing client"));
    match c.call("DELETE", "/v1/operator/raft/peer", &q, None, &[]) {
        Ok(_) => {
            println!("Removed peer with {what}");
            0
        }
        Err(e) => {
            eprintln!("Error removing peer: {e}");
            1
        }
    }
}

fn transfer_leader(args: &[String]) -> i32 {
    let mut fs = FlagSet::new("operator raft transfer-leader");
    http_flags(&mut fs);
    fs.string(
        "id",
        "The ID of the server to transfer leadership to (default: any up-to-date voter).",
    );
    let p = match parse(
        &fs,
        args,
        "Usage: praetor operator raft transfer-leader [options]",
    ) {
        Ok(p) => p,
        Err(c) => return c,
    };
    let c = or_exit!(connect(&p, "Error initializing client"));
    let q: Vec<(&str, String)> = p
        .get_str("id")
        .map(|i| vec![("id", i.to_string())])
        .unwrap_or_default();
    match c.call("POST", "/v1/operator/raft/transfer-leader", &q, None, &[]) {
        Ok(_) => {
            println!("Success");
            0
        }
        Err(e) => {
            eprintln!("Error transferring leadership: {e}");
            1
        }
    }
}

/// `snapshot save|restore|inspect FILE`
pub(super) fn snapshot(args: &[String]) -> i32 {
    let usage = "Usage: praetor snapshot <subcommand> [options] FILE\n\n  Subcommands: inspect, restore, save";
    let sub = args.first().map(String::as_str).unwrap_or("");
    let rest = if args.is_empty() { &[][..] } else { &args[1..] };
    let mut fs = FlagSet::new("snapshot");
    if sub != "inspect" {
        http_flags(&mut fs);
    }
    let p = or_exit!(parse(&fs, rest, usage));
    let Some(file) = p.positional().first().cloned() else {
        eprintln!("Missing FILE argument\n\n{usage}");
        return 1;
    };
    match sub {
        "save" => {
            let c = or_exit!(connect(&p, "Error connecting to Consul agent"));
            let a = match c.call("GET", "/v1/snapshot", &[], None, &[]) {
                Ok(a) => a,
                Err(e) => {
                    eprintln!("Error saving snapshot: {e}");
                    return 1;
                }
            };
            let doc: Value = match a.json() {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("Error verifying snapshot file: {e}");
                    return 1;
                }
            };
            let tmp = format!("{file}.tmp");
            if let Err(e) = std::fs::write(&tmp, &a.body).and_then(|_| std::fs::rename(&tmp, &file))
            {
                eprintln!("Error writing snapshot file: {e}");
                return 1;
            }
            println!(
                "Saved and verified snapshot to index {}",
                doc["Index"].as_u64().unwrap_or(0)
            );
            0
        }
        "restore" => {
            let body = match std::fs::read(&file) {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("Error opening snapshot file: {e}");
                    return 1;
                }
            };
            let c = or_exit!(connect(&p, "Error connecting to Consul agent"));
            match c.call("PUT", "/v1/snapshot", &[], Some(body), &[]) {
                Ok(_) => {
                    println!("Restored snapshot");
                    0
                }
                Err(e) => {
                    eprintln!("Error restoring snapshot: {e}");
                    1
                }
            }
        }
        "inspect" => {
            let body = match std::fs::read(&file) {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("Error opening snapshot file: {e}");
                    return 1;
                }
            };
            let doc: Value = match serde_json::from_slice(&body) {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("Error inspecting snapshot: {e}");
                    return 1;
                }
            };
            if doc["Format"] != "praetor-snapshot" {
                eprintln!("Error inspecting snapshot: not a Praetor snapshot");
                return 1;
            }
            let d = &doc["Data"];
            let count = |v: &Value| v.as_object().map(|o| o.len()).unwrap_or(0);
            let nested = |v: &Value| {
                v.as_object()
                    .map(|o| o.values().map(count).sum::<usize>())
                    .unwrap_or(0)
            };
            let rows = vec![
                vec!["Index".to_string(), doc["Index"].to_string()],
                vec![
                    "Datacenter".into(),
                    doc["Datacenter"].as_str().unwrap_or_default().into(),
                ],
                vec!["Version".into(), doc["Version"].to_string()],
                vec!["Size".into(), body.len().to_string()],
                vec![],
                vec!["Type".into(), "Count".into()],
                vec!["KVS".into(), count(&d["kv"]).to_string()],
                vec!["Register (nodes)".into(), count(&d["nodes"]).to_string()],
                vec![
                    "Register (services)".into(),
                    nested(&d["services"]).to_string(),
                ],
                vec!["Register (checks)".into(), nested(&d["checks"]).to_string()],
                vec!["Sessions".into(), count(&d["sessions"]).to_string()],
                vec!["Tombstones".into(), count(&d["tombstones"]).to_string()],
            ];
            print!("{}", columnize(&rows));
            0
        }
        _ => {
            eprintln!("{usage}");
            1
        }
    }
}
