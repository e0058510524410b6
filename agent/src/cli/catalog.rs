//! `catalog datacenters|nodes|services` and `services register|deregister`.

use super::output::columnize;
use super::{client, connect, http_flags, parse};
use crate::flags::FlagSet;
use serde_json::{json, Value};

const USAGE: &str = "Usage: praetor catalog <subcommand> [options] [args]\n\n  Subcommands: datacenters, nodes, services";

pub(super) fn run(args: &[String]) -> i32 {
    let rest = if args.is_empty() { &[][..] } else { &args[1..] };
    match args.first().map(String::as_str) {
        Some("datacenters") => datacenters(rest),
        Some("nodes") => nodes(rest),
        Some("services") => list_services(rest),
        Some("-h") | Some("-help") | Some("--help") => {
            println!("{USAGE}");
            0
        }
        _ => {
            eprintln!("{USAGE}");
            1
        }
    }
}

fn fail(e: impl std::fmt::Display) -> i32 {
    eprintln!("Error listing: {e}");
    1
}

fn datacenters(args: &[String]) -> i32 {
    let mut fs = FlagSet::new("catalog datacenters");
    http_flags(&mut fs);
    let p = or_exit!(parse(
        &fs,
        args,
        "Usage: praetor catalog datacenters [options]"
    ));
    let c = match client(&p) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    match c.get_json::<Vec<String>>("/v1/catalog/datacenters", &[]) {
        Ok(dcs) if dcs.is_empty() => {
            eprintln!("No datacenters found");
            1
        }
        Ok(dcs) => {
            for d in dcs {
                println!("{d}");
            }
            0
        }
        Err(e) => {
            eprintln!("Error listing datacenters: {e}");
            1
        }
    }
}

fn nodes(args: &[String]) -> i32 {
    let mut fs = FlagSet::new("catalog nodes");
    http_flags(&mut fs);
    fs.bool("detailed", "Output detailed information about the nodes.")
        .string("service", "Service id or name to filter nodes.")
        .repeated("node-meta", "Metadata to filter nodes with (key=value).")
        .string(
            "near",
            "Node name to sort the node list by estimated round-trip time.",
        );
    let p = or_exit!(parse(&fs, args, "Usage: praetor catalog nodes [options]"));
    let c = match client(&p) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let meta: Vec<(&str, String)> = p
        .get_all("node-meta")
        .into_iter()
        .map(|m| ("node-meta", m.replacen('=', ":", 1)))
        .collect();
    let nodes: Result<Vec<Value>, _> = match p.get_str("service") {
        Some(svc) => c
            .get_json::<Vec<Value>>(&format!("/v1/catalog/service/{svc}"), &meta)
            .map(|v| v.into_iter().map(|s| json!({"Node": s["Node"], "ID": s["ID"], "Address": s["Address"], "Datacenter": s["Datacenter"], "TaggedAddresses": s["TaggedAddresses"], "Meta": s["NodeMeta"]})).collect()),
        None => c.get_json("/v1/catalog/nodes", &meta),
    };
    let nodes = match nodes {
        Ok(n) => n,
        Err(e) => {
            eprintln!("Error listing nodes: {e}");
            return 1;
        }
    };
    if nodes.is_empty() {
        eprintln!("No nodes match the given query - try expanding your search.");
        return 0;
    }
    let detailed = p.get_bool("detailed").unwrap_or(false);
    let mut rows = vec![if detailed {
        vec!["Node", "ID", "Address", "DC", "TaggedAddresses", "Meta"]
    } else {
        vec!["Node", "ID", "Address", "DC"]
    }
    .into_iter()
    .map(String::from)
    .collect::<Vec<_>>()];
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let kvs = |v: &Value| {
        v.as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    for n in &nodes {
        let id = s(&n["ID"]);
        let mut row = vec![
            s(&n["Node"]),
            if detailed {
                id
            } else {
                id.chars().take(8).collect()
            },
            s(&n["Address"]),
            s(&n["Datacenter"]),
        ];
        if detailed {
            row.push(kvs(&n["TaggedAddresses"]));
            row.push(kvs(&n["Meta"]));
        }
        rows.push(row);
    }
    print!("{}", columnize(&rows));
    0
}

fn list_services(args: &[String]) -> i32 {
    let mut fs = FlagSet::new("catalog services");
    http_flags(&mut fs);
    fs.bool(
        "tags",
        "Display each service's tags as a comma-separated list.",
    )
    .string("node", "Node id or name for which to list services.")
    .repeated("node-meta", "Metadata to filter nodes with (key=value).");
    let p = or_exit!(parse(
        &fs,
        args,
        "Usage: praetor catalog services [options]"
    ));
    let c = match client(&p) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let services: Vec<(String, Vec<String>)> = match p.get_str("node") {
        Some(node) => match c.get_json::<Value>(&format!("/v1/catalog/node/{node}"), &[]) {
            Ok(v) => v["Services"]
                .as_object()
                .map(|m| {
                    m.values()
                        .map(|s| {
                            (
                                s["Service"].as_str().unwrap_or_default().to_string(),
                                s["Tags"]
                                    .as_array()
                                    .map(|t| {
                                        t.iter()
                                            .filter_map(|x| x.as_str().map(String::from))
                                            .collect()
                                    })
                                    .unwrap_or_default(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
            Err(e) => {
                eprintln!("Error listing services for node: {e}");
                return 1;
            }
        },
        None => {
            let meta: Vec<(&str, String)> = p
                .get_all("node-meta")
                .into_iter()
                .map(|m| ("node-meta", m.replacen('=', ":", 1)))
                .collect();
            match c.get_json::<std::collections::BTreeMap<String, Vec<String>>>(
                "/v1/catalog/services",
                &meta,
            ) {
                Ok(m) => m.into_iter().collect(),
                Err(e) => {
                    eprintln!("Error listing services: {e}");
                    return 1;
                }
            }
        }
    };
    let mut services = services;
    services.sort();
    services.dedup();
    if services.is_empty() {
        eprintln!("No services match the given query - try expanding your search.");
        return 0;
    }
    if p.get_bool("tags").unwrap_or(false) {
        let rows: Vec<Vec<String>> = services
            .iter()
            .map(|(n, t)| vec![n.clone(), t.join(",")])
            .collect();
        print!("{}", columnize(&rows));
    } else {
        for (n, _) in services {
            println!("{n}");
        }
    }
    0
}

fn definitions_from_file(path: &str) -> Result<Vec<Value>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("Error reading {path}: {e}"))?;
    let v: Value = if path.ends_with(".hcl") {
        hcl::from_str(&text).map_err(|e| format!("Error parsing {path}: {e}"))?
    } else {
        serde_json::from_str(&text).map_err(|e| format!("Error parsing {path}: {e}"))?
    };
    let mut out = Vec::new();
    for key in ["service", "services"] {
        match v.get(key) {
            Some(Value::Array(a)) => out.extend(a.iter().cloned()),
            Some(o @ Value::Object(_)) => out.push(o.clone()),
            _ => {}
        }
    }
    if out.is_empty() {
        return Err(format!("No service definitions found in {path}"));
    }
    Ok(out)
}

/// `services register|deregister`
pub(super) fn services(args: &[String]) -> i32 {
    let rest = if args.is_empty() { &[][..] } else { &args[1..] };
    let register = match args.first().map(String::as_str) {
        Some("register") => true,
        Some("deregister") => false,
        _ => {
            eprintln!("Usage: praetor services <subcommand> [options] [args]\n\n  Subcommands: deregister, register");
            return 1;
        }
    };
    let mut fs = FlagSet::new("services");
    http_flags(&mut fs);
    fs.string("id", "ID of the service.")
        .string("name", "Name of the service.")
        .string("address", "Address of the service.")
        .int("port", "Port of the service.")
        .repeated("tag", "Tag to add to the service (repeatable).")
        .repeated(
            "meta",
            "Metadata to set on the service, as key=value (repeatable).",
        );
    let usage = if register {
        "Usage: praetor services register [options] [FILE...]"
    } else {
        "Usage: praetor services deregister [options] [FILE...]"
    };
    let p = or_exit!(parse(&fs, rest, usage));
    let mut defs: Vec<Value> = Vec::new();
    for f in p.positional() {
        match definitions_from_file(f) {
            Ok(d) => defs.extend(d),
            Err(e) => {
                eprintln!("{e}");
                return 1;
            }
        }
    }
    if defs.is_empty() {
        let name = p.get_str("name").unwrap_or("");
        let id = p.get_str("id").unwrap_or("");
        if register && name.is_empty() {
            eprintln!("Service name must be specified via -name or a configuration file.");
            return 1;
        }
        if !register && id.is_empty() {
            eprintln!("Service deregistration requires at least one argument or -id.");
            return 1;
        }
        let meta: serde_json::Map<String, Value> = p
            .get_all("meta")
            .into_iter()
            .filter_map(|m| {
                m.split_once('=')
                    .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            })
            .collect();
        defs.push(json!({
            "ID": id, "Name": name, "Address": p.get_str("address").unwrap_or(""),
            "Port": p.get_int("port").unwrap_or(0), "Tags": p.get_all("tag"), "Meta": meta,
        }));
    }
    let c = or_exit!(connect(&p, "Error"));
    for d in defs {
        let name = d
            .get("Name")
            .or_else(|| d.get("name"))
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string();
        let id = d
            .get("ID")
            .or_else(|| d.get("id"))
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| name.clone());
        if register {
            if let Err(e) = c.put_json("/v1/agent/service/register", &[], &d) {
                eprintln!("Error registering service {name:?}: {e}");
                return 1;
            }
            println!("Registered service: {name}");
        } else {
            if let Err(e) = c.call(
                "PUT",
                &format!("/v1/agent/service/deregister/{id}"),
                &[],
                None,
                &[],
            ) {
                eprintln!("Error deregistering service {id:?}: {e}");
                return 1;
            }
            println!("Deregistered service: {id}");
        }
    }
    0
}
