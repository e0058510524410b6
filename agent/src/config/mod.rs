//! Consul-compatible agent configuration.
//!
//! [`load`] builds a [`RuntimeConfig`] from the sources named by
//! [`AgentFlags`], later sources overriding earlier ones:
//!
//! 1. built-in defaults (Consul's),
//! 2. `-dev` defaults (server, bind 127.0.0.1, UI, debug logging, gRPC 8502, ...),
//! 3. config files: each `-config-file`/`-config-dir` in command-line order; a
//!    directory contributes its `*.json` and `*.hcl` files in lexical order
//!    (every file if `-config-format` is given), sub-directories are ignored,
//! 4. `-hcl` snippets (named `flags-0.hcl`, `flags-1.hcl`, ... in errors),
//! 5. the other command-line flags.
//!
//! Scalars override, arrays (`services`, `checks`, `retry_join`, `recursors`,
//! ...) are concatenated and objects (`node_meta`, `ports`, `addresses`,
//! `dns_config`, `acl`, ...) are merged key by key. Files are JSON or HCL
//! (parsed with `hcl-rs`). Unknown keys are rejected with Consul's message,
//! e.g. `failed to parse /etc/praetor.d/a.json: invalid config key servie` or
//! `... invalid config key services[0].prot`; every key Consul knows is
//! accepted, and the ones Praetor does not use are kept in
//! [`RuntimeConfig::raw`]. Keys match case-insensitively with underscores
//! ignored, so `NodeName`, `node_name` and `DeregisterCriticalServiceAfter`
//! work as in Consul.
//!
//! Service and check definitions (`service`/`services`, `check`/`checks`, as
//! one object, an array, or repeated HCL blocks) end up in
//! [`RuntimeConfig::services`] / [`RuntimeConfig::checks`] as JSON objects
//! with the user's key spellings, for the HTTP layer's case-insensitive decoder.
//!
//! Deviations from Consul: go-sockaddr templates (`{{ GetPrivateIP }}`) are
//! rejected; `0` is a valid port meaning "any free port" (Consul treats it as
//! disabled); `start_join` stays separate from `retry_join`; command-line
//! flags override `-hcl` snippets.

mod agent_flags;
mod build;
pub mod hcl_bounded;
mod keys;
mod normalize;
mod source;
#[cfg(test)]
mod tests;
mod validate;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Map, Value};

pub use agent_flags::AgentFlags;

use crate::flags::FlagError;

/// Errors from loading the configuration. Each displays as one line suitable
/// for the CLI's `==> {error}` output.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A config file or directory could not be read.
    #[error("config: failed to read {}: {source}", path.display())]
    ReadFile {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A source is not valid JSON/HCL or holds a value of the wrong type.
    #[error("failed to parse {}: {message}", path.display())]
    Parse {
        /// The file, `flags-N.hcl` or `command-line flags`.
        path: PathBuf,
        /// What is wrong, on one line.
        message: String,
    },
    /// A key Consul does not know, with its path (`servie`, `services[0].prot`).
    #[error("failed to parse {}: invalid config key {key}", path.display())]
    UnknownKey {
        /// The file, `flags-N.hcl` or `command-line flags`.
        path: PathBuf,
        /// Dotted path of the key.
        key: String,
    },
    /// The merged configuration is invalid (e.g. `data_dir cannot be empty`).
    #[error("{0}")]
    Invalid(String),
    /// Command-line flag error.
    #[error("{0}")]
    Flags(#[from] FlagError),
}

/// Listener ports. `-1` disables a listener, `0` binds any free port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    /// HTTP API (default 8500).
    pub http: i32,
    /// HTTPS API (default disabled).
    pub https: i32,
    /// DNS over UDP and TCP (default 8600).
    pub dns: i32,
    /// Server RPC (default 8300).
    pub server: i32,
    /// Serf LAN gossip (default 8301).
    pub serf_lan: i32,
    /// Serf WAN gossip (default 8302).
    pub serf_wan: i32,
    /// gRPC (default disabled, 8502 in `-dev`).
    pub grpc: i32,
    /// gRPC with TLS (default disabled).
    pub grpc_tls: i32,
}

/// Per-listener bind addresses (`addresses { }`), overriding `client_addr`.
/// Each may hold several space-separated IPs or `unix://` paths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Addresses {
    /// HTTP listener address(es).
    pub http: Option<String>,
    /// HTTPS listener address(es).
    pub https: Option<String>,
    /// DNS listener address(es).
    pub dns: Option<String>,
    /// gRPC listener address(es).
    pub grpc: Option<String>,
}

/// `performance { }` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Performance {
    /// Raft timing scale factor, 1 (fastest, dev default) to 10; default 5.
    pub raft_multiplier: u32,
    /// Time to wait after leaving before shutting down (default 5s).
    pub leave_drain_time: Duration,
    /// How long to retry RPCs during leader elections (default 7s).
    pub rpc_hold_timeout: Duration,
}

/// The resolved, validated agent configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeConfig {
    /// Datacenter name, lowercased (default `dc1`).
    pub datacenter: String,
    /// Primary datacenter (defaults to `datacenter`).
    pub primary_datacenter: String,
    /// Node name (default: the hostname).
    pub node_name: String,
    /// Node ID (lowercase UUID) if configured; otherwise the agent generates one.
    pub node_id: Option<String>,
    /// Data directory; required unless `dev_mode`.
    pub data_dir: Option<PathBuf>,
    /// `-dev` was given.
    pub dev_mode: bool,
    /// Server mode (true in `-dev`).
    pub server: bool,
    /// Bootstrap mode (also set by `bootstrap_expect = 1`).
    pub bootstrap: bool,
    /// Number of servers to wait for before bootstrapping (0 = off).
    pub bootstrap_expect: u32,
    /// Cluster bind address (default `0.0.0.0`, `127.0.0.1` in `-dev`).
    pub bind_addr: String,
    /// LAN advertise address, if configured.
    pub advertise_addr: Option<String>,
    /// WAN advertise address, if configured.
    pub advertise_addr_wan: Option<String>,
    /// Serf LAN bind address (`serf_lan`), defaults to `bind_addr`.
    pub serf_lan_bind: Option<String>,
    /// Serf WAN bind address (`serf_wan`), defaults to `bind_addr`.
    pub serf_wan_bind: Option<String>,
    /// Client listener address(es), space-separated (default `127.0.0.1`).
    pub client_addr: String,
    /// Per-listener overrides of `client_addr`.
    pub addresses: Addresses,
    /// Listener ports.
    pub ports: Ports,
    /// `retry_join` / `-retry-join`.
    pub retry_join: Vec<String>,
    /// `retry_join_wan` / `-retry-join-wan`.
    pub retry_join_wan: Vec<String>,
    /// `start_join` / `-join`.
    pub start_join: Vec<String>,
    /// `start_join_wan` / `-join-wan`.
    pub start_join_wan: Vec<String>,
    /// Go duration between join attempts (default `30s`, validated).
    pub retry_interval: String,
    /// Go duration between WAN join attempts (default `30s`, validated).
    pub retry_interval_wan: String,
    /// Maximum join attempts, 0 = unlimited.
    pub retry_max: u32,
    /// Maximum WAN join attempts, 0 = unlimited.
    pub retry_max_wan: u32,
    /// `-rejoin`: ignore a previous leave.
    pub rejoin_after_leave: bool,
    /// Lowercase log level: `trace`, `debug`, `info` (default), `warn` or `error`
    /// (`debug` in `-dev`).
    pub log_level: String,
    /// JSON log output.
    pub log_json: bool,
    /// Log file path, if any.
    pub log_file: Option<PathBuf>,
    /// Log to syslog.
    pub enable_syslog: bool,
    /// Serve the web UI (`ui_config.enabled`, `-ui`; true in `-dev`).
    pub ui_enabled: bool,
    /// Custom UI directory.
    pub ui_dir: Option<PathBuf>,
    /// UI URL prefix, with leading and trailing `/` (default `/ui/`).
    pub ui_content_path: String,
    /// Allow script checks registered over HTTP and in config.
    pub enable_script_checks: bool,
    /// Allow script checks from config files and local registrations
    /// (defaults to `enable_script_checks`).
    pub enable_local_script_checks: bool,
    /// `enable_debug` (true in `-dev`).
    pub enable_debug: bool,
    /// `disable_remote_exec` (default true).
    pub disable_remote_exec: bool,
    /// `disable_update_check`.
    pub disable_update_check: bool,
    /// `disable_host_node_id` (default true).
    pub disable_host_node_id: bool,
    /// DNS domain as configured (default `consul.`).
    pub domain: String,
    /// Alternate DNS domain.
    pub alt_domain: Option<String>,
    /// Upstream DNS servers, de-duplicated.
    pub recursors: Vec<String>,
    /// Node metadata.
    pub node_meta: BTreeMap<String, String>,
    /// Gossip encryption key (base64), if any. Secret.
    pub encrypt: Option<String>,
    /// `dns_config { }` as merged (defaults included).
    pub dns_config: Value,
    /// `acl { }` as merged, deprecated top-level ACL keys folded in. Holds secrets.
    pub acl: Value,
    /// `tls { }` as merged, deprecated top-level TLS keys folded in.
    pub tls: Value,
    /// `limits { }` as merged.
    pub limits: Value,
    /// `telemetry { }` as merged.
    pub telemetry: Value,
    /// `connect { }` as merged.
    pub connect: Value,
    /// `http_config { }` as merged.
    pub http_config: Value,
    /// `performance { }`.
    pub performance: Performance,
    /// Leave the cluster on SIGTERM (default: not server).
    pub leave_on_terminate: bool,
    /// Skip leaving on SIGINT (default: server).
    pub skip_leave_on_interrupt: bool,
    /// Default blocking-query wait (default 300s).
    pub default_query_time: Duration,
    /// Maximum blocking-query wait (default 600s).
    pub max_query_time: Duration,
    /// Check status sync interval (default 5m).
    pub check_update_interval: Duration,
    /// Maximum check output size in bytes (default 4096).
    pub check_output_max_size: usize,
    /// RPC protocol version (default 2).
    pub protocol: u32,
    /// Raft protocol version (always 3).
    pub raft_protocol: u32,
    /// PID file path, if any.
    pub pid_file: Option<PathBuf>,
    /// Network segment (enterprise), if any.
    pub segment: Option<String>,
    /// `watches` definitions as written.
    pub watches: Vec<Value>,
    /// Service definitions as written (original key spellings, nested
    /// `check`/`checks` kept), in source order.
    pub services: Vec<Value>,
    /// Node-level check definitions as written, in source order.
    pub checks: Vec<Value>,
    /// The whole merged configuration with canonical top-level keys, including
    /// keys Praetor does not use. Holds secrets; see [`RuntimeConfig::sanitized`].
    pub raw: Map<String, Value>,
    /// Config files read, in load order.
    pub config_files_loaded: Vec<PathBuf>,
    /// Non-fatal problems (deprecated keys, skipped files, ...) for the caller to log.
    pub warnings: Vec<String>,
    /// The flags this config was built from; pass them to [`load`] to reload.
    pub flags: AgentFlags,
}

/// Loads, merges and validates the configuration described by `flags`.
/// Call it again with the same flags to reload.
pub fn load(flags: &AgentFlags) -> Result<RuntimeConfig, ConfigError> {
    build::build(flags)
}

/// Loads the configuration described by `flags` plus one in-memory source holding
/// `data` (JSON when `json`, HCL otherwise) named `name` in errors. It is merged after
/// the config files and before the `-hcl` snippets.
pub fn load_with_source(
    flags: &AgentFlags,
    name: &str,
    json: bool,
    data: &str,
) -> Result<RuntimeConfig, ConfigError> {
    let src = source::Source {
        name: PathBuf::from(name),
        format: if json {
            source::Format::Json
        } else {
            source::Format::Hcl
        },
        data: data.to_string(),
    };
    build::build_with(flags, vec![src])
}

/// `host:port`, bracketing IPv6 hosts.
pub(crate) fn join_host_port(host: &str, port: i32) -> String {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

impl RuntimeConfig {
    /// A `-dev` configuration for tests: node `test-node`, datacenter `dc1`,
    /// no data dir, and every listener port set to 0 (bind any free port;
    /// HTTPS and gRPC disabled) so tests can run in parallel.
    pub fn for_test() -> RuntimeConfig {
        let mut flags = AgentFlags::dev();
        flags.values = json!({
            "node_name": "test-node",
            "ports": {"http": 0, "dns": 0, "server": 0, "serf_lan": 0, "serf_wan": 0,
                      "grpc": -1, "https": -1}
        })
        .as_object()
        .cloned()
        .unwrap_or_default();
        // The fixed input above is valid; failing here is a bug in this module.
        load(&flags).expect("RuntimeConfig::for_test: built-in test configuration is invalid")
    }

    /// Addresses of one client listener (`"http"`, `"https"`, `"dns"`, `"grpc"`):
    /// `addresses.<name>` if set, else `client_addr`, split on whitespace.
    fn client_side(&self, which: &str) -> Vec<String> {
        let over = match which {
            "http" => &self.addresses.http,
            "https" => &self.addresses.https,
            "dns" => &self.addresses.dns,
            _ => &self.addresses.grpc,
        };
        over.as_deref()
            .unwrap_or(&self.client_addr)
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }

    fn listen(&self, which: &str, port: i32) -> Vec<String> {
        if port < 0 {
            return Vec::new();
        }
        self.client_side(which)
            .into_iter()
            .map(|a| {
                if a.starts_with("unix://") {
                    a
                } else {
                    join_host_port(&a, port)
                }
            })
            .collect()
    }

    /// HTTP listen addresses (`ip:port` or `unix:///path`); empty if disabled.
    pub fn http_addrs(&self) -> Vec<String> {
        self.listen("http", self.ports.http)
    }

    /// HTTPS listen addresses; empty if disabled.
    pub fn https_addrs(&self) -> Vec<String> {
        self.listen("https", self.ports.https)
    }

    /// DNS listen addresses (serve both UDP and TCP); empty if disabled.
    pub fn dns_addrs(&self) -> Vec<String> {
        self.listen("dns", self.ports.dns)
    }

    /// gRPC listen addresses; empty if disabled.
    pub fn grpc_addrs(&self) -> Vec<String> {
        self.listen("grpc", self.ports.grpc)
    }

    /// The configuration without secrets (gossip key, ACL tokens, service and
    /// check tokens, ...), keyed like Consul's `DebugConfig` in `/v1/agent/self`.
    pub fn sanitized(&self) -> Value {
        let hide = |s: &Option<String>| match s {
            Some(v) if !v.is_empty() => json!("hidden"),
            _ => json!(""),
        };
        let p = &self.ports;
        let fields: Vec<(&str, Value)> = vec![
            ("Datacenter", json!(self.datacenter)),
            ("PrimaryDatacenter", json!(self.primary_datacenter)),
            ("NodeName", json!(self.node_name)),
            ("NodeID", json!(self.node_id.clone().unwrap_or_default())),
            (
                "DataDir",
                json!(self
                    .data_dir
                    .as_ref()
                    .map(|d| d.display().to_string())
                    .unwrap_or_default()),
            ),
            ("DevMode", json!(self.dev_mode)),
            ("ServerMode", json!(self.server)),
            ("Bootstrap", json!(self.bootstrap)),
            ("BootstrapExpect", json!(self.bootstrap_expect)),
            ("BindAddr", json!(self.bind_addr)),
            (
                "AdvertiseAddrLAN",
                json!(self.advertise_addr.clone().unwrap_or_default()),
            ),
            (
                "AdvertiseAddrWAN",
                json!(self.advertise_addr_wan.clone().unwrap_or_default()),
            ),
            (
                "ClientAddrs",
                json!(self.client_addr.split_whitespace().collect::<Vec<_>>()),
            ),
            ("HTTPAddrs", json!(self.http_addrs())),
            ("HTTPSAddrs", json!(self.https_addrs())),
            ("DNSAddrs", json!(self.dns_addrs())),
            ("GRPCAddrs", json!(self.grpc_addrs())),
            ("HTTPPort", json!(p.http)),
            ("HTTPSPort", json!(p.https)),
            ("DNSPort", json!(p.dns)),
            ("ServerPort", json!(p.server)),
            ("SerfPortLAN", json!(p.serf_lan)),
            ("SerfPortWAN", json!(p.serf_wan)),
            ("GRPCPort", json!(p.grpc)),
            ("GRPCTLSPort", json!(p.grpc_tls)),
            ("RetryJoinLAN", json!(self.retry_join)),
            ("RetryJoinWAN", json!(self.retry_join_wan)),
            ("StartJoinAddrsLAN", json!(self.start_join)),
            ("StartJoinAddrsWAN", json!(self.start_join_wan)),
            ("RetryJoinIntervalLAN", json!(self.retry_interval)),
            ("RetryJoinIntervalWAN", json!(self.retry_interval_wan)),
            ("RetryJoinMaxAttemptsLAN", json!(self.retry_max)),
            ("RetryJoinMaxAttemptsWAN", json!(self.retry_max_wan)),
            ("RejoinAfterLeave", json!(self.rejoin_after_leave)),
            ("LogLevel", json!(self.log_level.to_uppercase())),
            ("LogJSON", json!(self.log_json)),
            ("EnableSyslog", json!(self.enable_syslog)),
            (
                "UIConfig",
                json!({"Enabled": self.ui_enabled, "ContentPath": self.ui_content_path,
                         "Dir": self.ui_dir.as_ref().map(|d| d.display().to_string()).unwrap_or_default()}),
            ),
            ("EnableRemoteScriptChecks", json!(self.enable_script_checks)),
            (
                "EnableLocalScriptChecks",
                json!(self.enable_local_script_checks),
            ),
            ("EnableDebug", json!(self.enable_debug)),
            ("DisableRemoteExec", json!(self.disable_remote_exec)),
            ("DisableUpdateCheck", json!(self.disable_update_check)),
            ("DNSDomain", json!(self.domain)),
            (
                "DNSAltDomain",
                json!(self.alt_domain.clone().unwrap_or_default()),
            ),
            ("DNSRecursors", json!(self.recursors)),
            ("NodeMeta", json!(self.node_meta)),
            ("EncryptKey", json!(hide(&self.encrypt))),
            ("DNSConfig", json!(self.dns_config)),
            ("ACL", json!(self.acl)),
            ("TLS", json!(self.tls)),
            ("Limits", json!(self.limits)),
            ("Telemetry", json!(self.telemetry)),
            ("Connect", json!(self.connect)),
            ("HTTPConfig", json!(self.http_config)),
            ("RaftMultiplier", json!(self.performance.raft_multiplier)),
            ("LeaveOnTerm", json!(self.leave_on_terminate)),
            ("SkipLeaveOnInt", json!(self.skip_leave_on_interrupt)),
            (
                "DefaultQueryTime",
                json!(format!("{:?}", self.default_query_time)),
            ),
            ("MaxQueryTime", json!(format!("{:?}", self.max_query_time))),
            ("RPCProtocol", json!(self.protocol)),
            ("RaftProtocol", json!(self.raft_protocol)),
            (
                "PidFile",
                json!(self
                    .pid_file
                    .as_ref()
                    .map(|d| d.display().to_string())
                    .unwrap_or_default()),
            ),
            ("Services", json!(self.services)),
            ("Checks", json!(self.checks)),
            ("Watches", json!(self.watches)),
            (
                "ConfigFiles",
                json!(self
                    .config_files_loaded
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()),
            ),
        ];
        let mut out = Value::Object(
            fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        );
        redact(&mut out, false);
        out
    }
}

/// Replaces secret values with `"hidden"`: anything under `tokens`, keys named
/// like tokens/keys/secrets, in any spelling.
fn redact(v: &mut Value, all: bool) {
    match v {
        Value::Object(m) => {
            for (k, val) in m.iter_mut() {
                let n = keys::norm(k);
                let secret = all
                    || n == "token"
                    || n.ends_with("token")
                    || n == "tokens"
                    || n.contains("secret")
                    || n == "privatekey"
                    || n == "encrypt"
                    || n == "encryptkey";
                if secret && (val.is_string() || val.is_object() || val.is_array()) {
                    if val.is_string() {
                        if val.as_str().is_some_and(|s| !s.is_empty()) {
                            *val = json!("hidden");
                        }
                    } else {
                        redact(val, true);
                    }
                } else {
                    redact(val, false);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| redact(x, all)),
        Value::String(s) if all && !s.is_empty() => *v = json!("hidden"),
        _ => {}
    }
}
