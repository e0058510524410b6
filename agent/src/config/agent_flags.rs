//! Command-line flags of `praetor agent` (Consul's `agent/config/flags.go`).
//!
//! Flags that correspond to configuration keys are collected into
//! [`AgentFlags::values`], a configuration fragment in file form (e.g.
//! `-http-port=8501` becomes `{"ports": {"http": 8501}}`) that is applied last,
//! after config files and `-hcl` snippets.

use std::path::PathBuf;

use serde_json::{Map, Value};

use crate::flags::{FlagError, FlagKind, FlagSet, Parsed};

/// Parsed `praetor agent` command line. Keep it around: reloading the
/// configuration means calling [`super::load`] with the same flags again.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentFlags {
    /// `-dev`: development mode (in-memory server with dev defaults).
    pub dev: bool,
    /// `-config-file` and `-config-dir` values in command-line order. Like
    /// Consul, either flag accepts a file or a directory.
    pub config_paths: Vec<PathBuf>,
    /// `-config-format`: `json` or `hcl`, forced for every config file.
    pub config_format: Option<String>,
    /// `-hcl` snippets in order.
    pub hcl: Vec<String>,
    /// All other flags as a configuration fragment using config-file keys.
    pub values: Map<String, Value>,
}

/// (flag, kind, config key path, help). Kinds: `b` bool, `i` int, `s` string,
/// `d` duration, `l` repeated list, `m` key:value map.
#[rustfmt::skip]
const AGENT_FLAGS: &[(&str, char, &str, &str)] = &[
    ("advertise", 's', "advertise_addr", "Sets the advertise address to use."),
    ("advertise-wan", 's', "advertise_addr_wan", "Sets address to advertise on WAN instead of -advertise address."),
    ("allow-write-http-from", 'l', "http_config.allow_write_http_from", "Only allow write endpoint calls from given network. CIDR format, can be specified multiple times."),
    ("alt-domain", 's', "alt_domain", "Alternate domain to use for DNS interface."),
    ("auto-reload-config", 'b', "auto_reload_config", "Watches config files for changes and auto reloads the files when modified."),
    ("bind", 's', "bind_addr", "Sets the bind address for cluster communication."),
    ("bootstrap", 'b', "bootstrap", "Sets server to bootstrap mode."),
    ("bootstrap-expect", 'i', "bootstrap_expect", "Sets server to expect bootstrap mode."),
    ("check_output_max_size", 'i', "check_output_max_size", "Sets the maximum output size for checks on this agent"),
    ("client", 's', "client_addr", "Sets the address to bind for client access. This includes RPC, DNS, HTTP, HTTPS and gRPC (if configured)."),
    ("data-dir", 's', "data_dir", "Path to a data directory to store agent state."),
    ("datacenter", 's', "datacenter", "Datacenter of the agent."),
    ("default-query-time", 'd', "default_query_time", "the amount of time a blocking query will wait before Praetor will force a response. This value can be overridden by the 'wait' query parameter."),
    ("disable-host-node-id", 'b', "disable_host_node_id", "Setting this to true will prevent Praetor from using information from the host to generate a node ID, and will cause Praetor to generate a random node ID instead."),
    ("disable-keyring-file", 'b', "disable_keyring_file", "Disables the backing up of the keyring to a file."),
    ("dns-port", 'i', "ports.dns", "DNS port to use."),
    ("domain", 's', "domain", "Domain to use for DNS interface."),
    ("enable-local-script-checks", 'b', "enable_local_script_checks", "Enables health check scripts from configuration file."),
    ("enable-script-checks", 'b', "enable_script_checks", "Enables health check scripts."),
    ("encrypt", 's', "encrypt", "Provides the gossip encryption key."),
    ("grpc-port", 'i', "ports.grpc", "Sets the gRPC API port to listen on."),
    ("grpc-tls-port", 'i', "ports.grpc_tls", "Sets the gRPC-TLS API port to listen on."),
    ("http-port", 'i', "ports.http", "Sets the HTTP API port to listen on."),
    ("https-port", 'i', "ports.https", "Sets the HTTPS API port to listen on."),
    ("join", 'l', "start_join", "Address of an agent to join at start time. Can be specified multiple times."),
    ("join-wan", 'l', "start_join_wan", "Address of an agent to join -wan at start time. Can be specified multiple times."),
    ("log-file", 's', "log_file", "Path to the file the logs get written to"),
    ("log-json", 'b', "log_json", "Output logs in JSON format."),
    ("log-level", 's', "log_level", "Log level of the agent."),
    ("log-rotate-bytes", 'i', "log_rotate_bytes", "Maximum number of bytes that should be written to a log file"),
    ("log-rotate-duration", 'd', "log_rotate_duration", "Time after which log rotation needs to be performed"),
    ("log-rotate-max-files", 'i', "log_rotate_max_files", "Maximum number of log file archives to keep"),
    ("max-query-time", 'd', "max_query_time", "the maximum amount of time a blocking query can wait before Praetor will force a response. Praetor applies jitter to the wait time. The jittered time will be capped to MaxQueryTime."),
    ("node", 's', "node_name", "Name of this node. Must be unique in the cluster."),
    ("node-id", 's', "node_id", "A unique ID for this node across space and time. Defaults to a randomly-generated ID that persists in the data-dir."),
    ("node-meta", 'm', "node_meta", "An arbitrary metadata key/value pair for this node, of the format `key:value`. Can be specified multiple times."),
    ("non-voting-server", 'b', "read_replica", "(Enterprise-only) DEPRECATED: -read-replica should be used instead"),
    ("partition", 's', "partition", "(Enterprise-only) Sets the admin partition of the agent."),
    ("pid-file", 's', "pid_file", "Path to file to store agent PID."),
    ("primary-datacenter", 's', "primary_datacenter", "Datacenter that is authoritative for ACLs and intentions. Defaults to the agent's datacenter."),
    ("primary-gateway", 'l', "primary_gateways", "Address of a mesh gateway in the primary datacenter to use to bootstrap WAN federation at start time with retries enabled. Can be specified multiple times."),
    ("protocol", 'i', "protocol", "Sets the protocol version. Defaults to latest."),
    ("raft-protocol", 'i', "raft_protocol", "Sets the Raft protocol version. Defaults to latest."),
    ("read-replica", 'b', "read_replica", "(Enterprise-only) This flag is used to make the server not participate in the Raft quorum, and have it only receive the data replication stream."),
    ("recursor", 'l', "recursors", "Address of an upstream DNS server. Can be specified multiple times."),
    ("rejoin", 'b', "rejoin_after_leave", "Ignores a previous leave and attempts to rejoin the cluster."),
    ("retry-interval", 'd', "retry_interval", "Time to wait between join attempts."),
    ("retry-interval-wan", 'd', "retry_interval_wan", "Time to wait between join -wan attempts."),
    ("retry-join", 'l', "retry_join", "Address of an agent to join at start time with retries enabled. Can be specified multiple times."),
    ("retry-join-wan", 'l', "retry_join_wan", "Address of an agent to join -wan at start time with retries enabled. Can be specified multiple times."),
    ("retry-max", 'i', "retry_max", "Maximum number of join attempts. Defaults to 0, which will retry indefinitely."),
    ("retry-max-wan", 'i', "retry_max_wan", "Maximum number of join -wan attempts. Defaults to 0, which will retry indefinitely."),
    ("segment", 's', "segment", "(Enterprise-only) Sets the network segment to join."),
    ("serf-lan-allowed-cidrs", 'l', "serf_lan_allowed_cidrs", "Networks (eg: 192.168.1.0/24) allowed for Serf LAN. Can be specified multiple times."),
    ("serf-lan-bind", 's', "serf_lan", "Address to bind Serf LAN listeners to."),
    ("serf-lan-port", 'i', "ports.serf_lan", "Sets the Serf LAN port to listen on."),
    ("serf-wan-allowed-cidrs", 'l', "serf_wan_allowed_cidrs", "Networks (eg: 192.168.1.0/24) allowed for Serf WAN (other datacenters). Can be specified multiple times."),
    ("serf-wan-bind", 's', "serf_wan", "Address to bind Serf WAN listeners to."),
    ("serf-wan-port", 'i', "ports.serf_wan", "Sets the Serf WAN port to listen on."),
    ("server", 'b', "server", "Switches agent to server mode."),
    ("server-port", 'i', "ports.server", "Sets the server port to listen on."),
    ("syslog", 'b', "enable_syslog", "Enables logging to syslog."),
    ("ui", 'b', "ui_config.enabled", "Enables the built-in static web UI server."),
    ("ui-content-path", 's', "ui_config.content_path", "Sets the external UI path to a string. Defaults to: /ui/ "),
    ("ui-dir", 's', "ui_config.dir", "Path to directory containing the web UI resources."),
];

impl AgentFlags {
    /// The flag set of `praetor agent` (Consul's full agent flag list).
    pub fn flag_set() -> FlagSet {
        let mut fs = FlagSet::new("agent");
        fs.bool("dev", "Starts the agent in development mode.")
            .repeated("config-file", "Path to a file in JSON or HCL format with a matching file extension. Can be specified multiple times.")
            .repeated("config-dir", "Path to a directory to read configuration files from. This will read every file ending in '.json' or '.hcl' as configuration in this directory in alphabetical order. Can be specified multiple times.")
            .string("config-format", "Config files are in this format irrespective of their extension. Must be 'hcl' or 'json'")
            .repeated("hcl", "hcl config fragment. Can be specified multiple times.");
        for (name, kind, _, help) in AGENT_FLAGS {
            let kind = match kind {
                'b' => FlagKind::Bool,
                'i' => FlagKind::Int,
                'd' => FlagKind::Duration,
                'l' => FlagKind::Repeated,
                'm' => FlagKind::KeyValue,
                _ => FlagKind::String,
            };
            fs.add(name, kind, help);
        }
        fs
    }

    /// Usage text listing every agent flag.
    pub fn usage() -> String {
        Self::flag_set().usage()
    }

    /// Parses the arguments after `praetor agent`. Positional arguments are
    /// rejected ([`FlagError::ExtraArguments`]).
    pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<AgentFlags, FlagError> {
        let parsed = Self::flag_set().parse(args)?;
        parsed.expect_no_positional()?;
        Ok(Self::from_parsed(&parsed))
    }

    /// Flags for `-dev` and nothing else.
    pub fn dev() -> AgentFlags {
        AgentFlags {
            dev: true,
            ..Default::default()
        }
    }

    fn from_parsed(p: &Parsed) -> AgentFlags {
        let mut out = AgentFlags {
            dev: p.get_bool("dev").unwrap_or(false),
            config_format: p.get_str("config-format").map(str::to_string),
            hcl: p.get_all("hcl").into_iter().map(str::to_string).collect(),
            ..Default::default()
        };
        for (name, value) in p.occurrences() {
            if name == "config-file" || name == "config-dir" {
                out.config_paths.push(PathBuf::from(value));
            }
        }
        for (name, kind, path, _) in AGENT_FLAGS {
            if !p.is_set(name) {
                continue;
            }
            let value = match kind {
                'b' => p.get_bool(name).map(Value::Bool),
                'i' => p.get_int(name).map(Value::from),
                'l' => Some(Value::from(p.get_all(name))),
                'm' => Some(Value::Object(
                    p.get_map(name)
                        .into_iter()
                        .map(|(k, v)| (k, Value::String(v)))
                        .collect(),
                )),
                _ => p.get_str(name).map(Value::from),
            };
            if let Some(value) = value {
                insert_path(&mut out.values, path, value);
            }
        }
        out
    }
}

/// Sets `path` (dot-separated) to `value`, merging with what is there.
fn insert_path(map: &mut Map<String, Value>, path: &str, value: Value) {
    let mut overlay = value;
    for part in path.rsplit('.') {
        let mut m = Map::new();
        m.insert(part.to_string(), overlay);
        overlay = Value::Object(m);
    }
    if let Value::Object(o) = overlay {
        super::source::merge_map(map, o);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_common_agent_flags() {
        let f = AgentFlags::parse(&[
            "-dev",
            "-server",
            "-bootstrap-expect",
            "3",
            "-data-dir=/tmp/d",
            "-node",
            "n1",
            "-http-port=8501",
            "-dns-port",
            "8601",
            "-retry-join=a",
            "-retry-join",
            "b",
            "-join=c",
            "-node-meta",
            "rack:r1",
            "-node-meta=zone:z",
            "-recursor=8.8.8.8",
            "-ui",
            "-log-level=debug",
            "-hcl",
            "log_json = true",
            "-config-format=hcl",
        ])
        .unwrap();
        assert!(f.dev);
        assert_eq!(f.config_format.as_deref(), Some("hcl"));
        assert_eq!(f.hcl, ["log_json = true"]);
        assert_eq!(
            Value::Object(f.values),
            json!({
                "server": true,
                "bootstrap_expect": 3,
                "data_dir": "/tmp/d",
                "node_name": "n1",
                "ports": {"http": 8501, "dns": 8601},
                "retry_join": ["a", "b"],
                "start_join": ["c"],
                "node_meta": {"rack": "r1", "zone": "z"},
                "recursors": ["8.8.8.8"],
                "ui_config": {"enabled": true},
                "log_level": "debug",
            })
        );
    }

    #[test]
    fn config_paths_keep_relative_order() {
        let f = AgentFlags::parse(&[
            "-config-dir=d1",
            "-config-file",
            "f1.json",
            "-config-dir",
            "d2",
            "-config-file=f2.hcl",
        ])
        .unwrap();
        let paths: Vec<String> = f
            .config_paths
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        assert_eq!(paths, ["d1", "f1.json", "d2", "f2.hcl"]);
    }

    #[test]
    fn bool_flag_false_is_recorded() {
        let f = AgentFlags::parse(&["-server=false", "-dev=false"]).unwrap();
        assert!(!f.dev);
        assert_eq!(f.values["server"], json!(false));
    }

    #[test]
    fn errors() {
        assert_eq!(
            AgentFlags::parse(&["-foo"]).unwrap_err().to_string(),
            "flag provided but not defined: -foo"
        );
        assert_eq!(
            AgentFlags::parse(&["-http-port", "x"])
                .unwrap_err()
                .to_string(),
            "invalid value \"x\" for flag -http-port: parse error"
        );
        assert_eq!(
            AgentFlags::parse(&["-data-dir"]).unwrap_err().to_string(),
            "flag needs an argument: -data-dir"
        );
        assert_eq!(
            AgentFlags::parse(&["-dev", "false"]).unwrap_err(),
            FlagError::ExtraArguments(vec!["false".into()])
        );
        assert!(AgentFlags::parse(&["-retry-interval=abc"]).is_err());
    }

    #[test]
    fn every_consul_flag_is_accepted() {
        let fs = AgentFlags::flag_set();
        for name in [
            "advertise",
            "advertise-wan",
            "bind",
            "server-port",
            "bootstrap",
            "bootstrap-expect",
            "client",
            "check_output_max_size",
            "config-dir",
            "config-file",
            "config-format",
            "data-dir",
            "datacenter",
            "default-query-time",
            "dev",
            "disable-host-node-id",
            "disable-keyring-file",
            "dns-port",
            "domain",
            "alt-domain",
            "enable-script-checks",
            "enable-local-script-checks",
            "allow-write-http-from",
            "encrypt",
            "grpc-port",
            "grpc-tls-port",
            "http-port",
            "https-port",
            "join",
            "join-wan",
            "log-level",
            "log-json",
            "log-file",
            "log-rotate-bytes",
            "log-rotate-duration",
            "log-rotate-max-files",
            "max-query-time",
            "node",
            "node-id",
            "node-meta",
            "non-voting-server",
            "read-replica",
            "pid-file",
            "protocol",
            "raft-protocol",
            "recursor",
            "primary-gateway",
            "rejoin",
            "auto-reload-config",
            "retry-interval",
            "retry-interval-wan",
            "retry-join",
            "retry-join-wan",
            "retry-max",
            "retry-max-wan",
            "serf-lan-allowed-cidrs",
            "serf-wan-allowed-cidrs",
            "serf-lan-bind",
            "serf-lan-port",
            "segment",
            "serf-wan-bind",
            "serf-wan-port",
            "server",
            "syslog",
            "ui",
            "ui-content-path",
            "ui-dir",
            "hcl",
            "primary-datacenter",
        ] {
            assert!(fs.spec(name).is_some(), "missing flag -{name}");
        }
        let usage = AgentFlags::usage();
        assert!(usage.contains("  -retry-join=<value>\n"));
        assert!(usage.contains("  -dev\n"));
    }

    #[test]
    fn every_flag_maps_to_a_known_config_key() {
        let mut args = Vec::new();
        for (name, kind, _, _) in AGENT_FLAGS {
            let v = match kind {
                'b' => None,
                'i' => Some("1"),
                'd' => Some("1s"),
                'm' => Some("k:v"),
                _ => Some("x"),
            };
            args.push(format!("-{name}"));
            if let Some(v) = v {
                args.push(v.to_string());
            }
        }
        let f = AgentFlags::parse(&args).unwrap();
        super::super::normalize::normalize(f.values).unwrap();
    }
}
