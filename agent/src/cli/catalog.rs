//! `catalog datacenters|nodes|services` with Consul's flags and table formats.

use super::output::{columnize_delim, tabwrite};
use super::verb::{flag, map};
use super::{connect_agent, dispatch, load_data_source, Sub, Verb};
use crate::api::{Node, QueryOptions};
use std::collections::BTreeMap;

const HELP: &str = "
Usage: praetor catalog <subcommand> [options] [args]

  Subcommands for reading the catalog (the cluster-wide registry of nodes and
  services, as opposed to one agent's local state). For example:

      $ praetor catalog datacenters
      $ praetor catalog nodes
      $ praetor catalog services

  Ask a subcommand for help for its flags and more examples.
";

const SUBS: &[Sub] = &[
    ("datacenters", "Lists all known datacenters", datacenters),
    ("nodes", "Lists all nodes in the given datacenter", nodes),
    (
        "services",
        "Lists all registered services in a datacenter",
        services,
    ),
];

/// `catalog <subcommand>`
pub(super) fn run(args: &[String]) -> i32 {
    dispatch(args, HELP, SUBS)
}

fn no_positional(p: &crate::flags::Parsed) -> Result<(), i32> {
    match p.positional().len() {
        0 => Ok(()),
        n => {
            eprintln!("Too many arguments (expected 0, got {n})");
            Err(1)
        }
    }
}

const DC_HELP: &str = "
Usage: praetor catalog datacenters [options]

  Lists all known datacenters, sorted by estimated round-trip time from the
  servers of this datacenter:

      $ praetor catalog datacenters
";

fn datacenters(args: &[String]) -> i32 {
    let mut v = Verb::new(DC_HELP);
    v.client_flags().server_flags();
    let p = or_exit!(v.parse(args));
    or_exit!(no_positional(&p));
    let c = or_exit!(connect_agent(&p));
    match c.catalog_datacenters() {
        Ok(dcs) => {
            for dc in dcs {
                println!("{dc}");
            }
            0
        }
        Err(e) => {
            eprintln!("Error listing datacenters: {e}");
            1
        }
    }
}

/// Consul's `mapToKV`: `k=v` pairs sorted by key, joined with `joiner`.
fn map_to_kv(m: &BTreeMap<String, String>, joiner: &str) -> String {
    m.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(joiner)
}

/// The `catalog nodes` table (without the trailing newline the UI adds).
pub(super) fn nodes_table(nodes: &[Node], detailed: bool) -> String {
    let mut lines = Vec::with_capacity(nodes.len() + 1);
    if detailed {
        lines.push("Node|ID|Address|DC|TaggedAddresses|Meta".to_string());
        for n in nodes {
            lines.push(format!(
                "{}|{}|{}|{}|{}|{}",
                n.node,
                n.id,
                n.address,
                n.datacenter,
                map_to_kv(&n.tagged_addresses, ", "),
                map_to_kv(&n.meta, ", ")
            ));
        }
    } else {
        lines.push("Node|ID|Address|DC".to_string());
        for n in nodes {
            // Only the first group of the ID, as Consul prints it.
            let id = match n.id.find('-') {
                Some(i) if i > 0 => &n.id[..i],
                _ => n.id.as_str(),
            };
            lines.push(format!("{}|{}|{}|{}", n.node, id, n.address, n.datacenter));
        }
    }
    columnize_delim(&lines, "|")
}

const NODES_HELP: &str = "
Usage: praetor catalog nodes [options]

  Lists the nodes registered in the datacenter (the agent's by default):

      $ praetor catalog nodes
      $ praetor catalog nodes -detailed
      $ praetor catalog nodes -service=web
      $ praetor catalog nodes -node-meta=\"foo=bar\"
      $ praetor catalog nodes -near=node-web
";

fn nodes(args: &[String]) -> i32 {
    let mut v = Verb::new(NODES_HELP);
    v.client_flags().server_flags();
    v.bool("detailed", "Output detailed information about the nodes including their addresses and metadata.")
        .string("filter", None, "Filter to use with the request (a go-bexpr expression, \"@file\" or \"-\").")
        .string("near", None, "Node name to sort the node list in ascending order based on estimated round-trip time from that node. Passing \"_agent\" will use this agent's node for sorting.")
        .map("node-meta", "Metadata to filter nodes with the given key=value pairs. This flag may be specified multiple times to filter on multiple sources of metadata.")
        .string("service", None, "Service id or name to filter nodes. Only nodes which are providing the given service will be returned.");
    let p = or_exit!(v.parse(args));
    or_exit!(no_positional(&p));
    let c = or_exit!(connect_agent(&p));
    let filter = match p.get_str("filter").filter(|f| !f.is_empty()) {
        None => None,
        Some(f) => match load_data_source(f) {
            Ok(d) => Some(String::from_utf8_lossy(&d).into_owned()),
            Err(e) => {
                eprintln!("Could not process filter argument: {e}");
                return 1;
            }
        },
    };
    let opts = QueryOptions {
        near: p.get_str("near").map(str::to_string),
        node_meta: map(&p, "node-meta"),
        filter,
    };
    let nodes: Vec<Node> = match p.get_str("service").filter(|s| !s.is_empty()) {
        Some(svc) => match c.catalog_service(svc, None, &opts) {
            Ok(list) => list
                .into_iter()
                .map(|s| Node {
                    id: s.id,
                    node: s.node,
                    address: s.address,
                    datacenter: s.datacenter,
                    tagged_addresses: s.tagged_addresses,
                    meta: s.node_meta,
                    create_index: s.create_index,
                    modify_index: s.modify_index,
                })
                .collect(),
            Err(e) => {
                eprintln!("Error listing nodes for service: {e}");
                return 1;
            }
        },
        None => match c.catalog_nodes(&opts) {
            Ok(n) => n,
            Err(e) => {
                eprintln!("Error listing nodes: {e}");
                return 1;
            }
        },
    };
    if nodes.is_empty() {
        eprintln!("No nodes match the given query - try expanding your search.");
        return 0;
    }
    println!("{}", nodes_table(&nodes, flag(&p, "detailed")));
    0
}

/// The `catalog services` output: names, or with `tags` a tabwriter table of
/// `name  tag,tag` (trimmed as Consul trims it).
pub(super) fn services_output(services: &BTreeMap<String, Vec<String>>, tags: bool) -> String {
    if !tags {
        return services.keys().map(|s| format!("{s}\n")).collect();
    }
    let mut input = String::new();
    for (name, t) in services {
        let mut t = t.clone();
        t.sort();
        input.push_str(&format!("{name}\t{}\n", t.join(",")));
    }
    let out = String::from_utf8_lossy(&tabwrite(input.as_bytes(), 0, 6)).into_owned();
    format!("{}\n", out.trim())
}

const SERVICES_HELP: &str = "
Usage: praetor catalog services [options]

  Lists the services registered in the datacenter (the agent's by default):

      $ praetor catalog services
      $ praetor catalog services -tags
      $ praetor catalog services -node=web
      $ praetor catalog services -node-meta=\"foo=bar\"
";

fn services(args: &[String]) -> i32 {
    let mut v = Verb::new(SERVICES_HELP);
    v.client_flags().server_flags().tenancy_flags();
    v.string("node", None, "Node id or name for which to list services.")
        .map("node-meta", "Metadata to filter nodes with the given key=value pairs. If specified, only services running on nodes matching the given metadata will be returned. This flag may be specified multiple times to filter on multiple sources of metadata.")
        .bool("tags", "Display each service's tags as a comma-separated list beside each service entry.");
    let p = or_exit!(v.parse(args));
    or_exit!(no_positional(&p));
    let c = or_exit!(connect_agent(&p));
    let opts = QueryOptions {
        node_meta: map(&p, "node-meta"),
        ..Default::default()
    };
    let services: BTreeMap<String, Vec<String>> = match p.get_str("node").filter(|n| !n.is_empty())
    {
        Some(node) => match c.catalog_node(node, &opts) {
            Ok(found) => {
                let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
                for s in found.map(|n| n.services).unwrap_or_default().into_values() {
                    m.entry(s.service).or_default().extend(s.tags);
                }
                m
            }
            Err(e) => {
                eprintln!("Error listing services for node: {e}");
                return 1;
            }
        },
        None => match c.catalog_services(&opts) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("Error listing services: {e}");
                return 1;
            }
        },
    };
    if services.is_empty() {
        eprintln!("No services match the given query - try expanding your search.");
        return 0;
    }
    print!("{}", services_output(&services, flag(&p, "tags")));
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, id: &str) -> Node {
        Node {
            id: id.into(),
            node: name.into(),
            address: "127.0.0.1".into(),
            datacenter: "dc1".into(),
            ..Default::default()
        }
    }

    #[test]
    fn nodes_tables() {
        let mut a = node("node1", "2f8d4c1e-1b2c-4d3e-8f9a-0b1c2d3e4f5a");
        a.tagged_addresses.insert("lan".into(), "127.0.0.1".into());
        a.tagged_addresses.insert("wan".into(), "10.0.0.1".into());
        a.meta.insert("rack".into(), "r1".into());
        let b = node("a-much-longer-node", "");
        let t = nodes_table(&[a.clone(), b.clone()], false);
        assert_eq!(
            t,
            "Node                ID        Address    DC\n\
             node1               2f8d4c1e  127.0.0.1  dc1\n\
             a-much-longer-node            127.0.0.1  dc1"
        );
        let t = nodes_table(&[a], true);
        assert_eq!(
            t,
            "Node   ID                                    Address    DC   TaggedAddresses              Meta\n\
             node1  2f8d4c1e-1b2c-4d3e-8f9a-0b1c2d3e4f5a  127.0.0.1  dc1  lan=127.0.0.1, wan=10.0.0.1  rack=r1"
        );
    }

    #[test]
    fn services_listings() {
        let mut m = BTreeMap::new();
        m.insert(
            "web".to_string(),
            vec!["v2".to_string(), "rails".to_string()],
        );
        m.insert("consul".to_string(), vec![]);
        assert_eq!(services_output(&m, false), "consul\nweb\n");
        assert_eq!(
            services_output(&m, true),
            "consul      \nweb         rails,v2\n"
        );
        let mut one = BTreeMap::new();
        one.insert("consul".to_string(), vec![]);
        assert_eq!(services_output(&one, true), "consul\n");
    }

    #[test]
    fn argument_errors() {
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(datacenters(&a(&["extra"])), 1);
        assert_eq!(nodes(&a(&["-node-meta", "nokv"])), 1);
        assert_eq!(services(&a(&["x"])), 1);
        assert_eq!(nodes(&a(&["-http-addr=127.0.0.1:1"])), 1);
    }
}
