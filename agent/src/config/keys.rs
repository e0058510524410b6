//! Tables of the configuration keys Consul knows: the agent configuration
//! (`agent/config.Config`), its nested sections, and service and check
//! definitions. Keys match case-insensitively with underscores ignored
//! ([`norm`]), so `NodeName`, `node_name` and `nodename` are the same key;
//! aliases cover Consul's other spellings (`ScriptArgs` → `args`, `CheckID` → `id`).

use serde_json::{Map, Value};

/// Expected shape of a configuration value.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    /// Anything; kept as written.
    Any,
    Bool,
    Int,
    Str,
    /// A string holding a Go duration (`"30s"`).
    Duration,
    StrList,
    /// An object with string values (`node_meta`).
    StrMap,
    /// An object with arbitrary content, kept as written.
    Object,
    /// An object whose keys are known; keys are renamed to canonical spelling.
    Section(&'static [Key]),
    /// A single service definition (keys kept as written).
    Service,
    /// One or more service definitions (object or array).
    Services,
    /// One or more check definitions (object or array).
    Checks,
}

/// A known key: canonical name, value kind and accepted aliases.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Key {
    pub name: &'static str,
    pub kind: Kind,
    pub aliases: &'static [&'static str],
}

const fn k(name: &'static str, kind: Kind) -> Key {
    Key {
        name,
        kind,
        aliases: &[],
    }
}

const fn ka(name: &'static str, kind: Kind, aliases: &'static [&'static str]) -> Key {
    Key {
        name,
        kind,
        aliases,
    }
}

use Kind::*;

/// Every top-level key of Consul's `agent/config.Config` (including
/// deprecated, enterprise-only and non-user keys).
pub(crate) const TOP: &[Key] = &[
    k("acl", Section(ACL)),
    k("acl_agent_master_token", Str),
    k("acl_agent_token", Str),
    k("acl_datacenter", Str),
    k("acl_default_policy", Str),
    k("acl_disabled_ttl", Any),
    k("acl_down_policy", Str),
    k("acl_enable_key_list_policy", Bool),
    k("acl_enforce_version_8", Any),
    k("acl_master_token", Str),
    k("acl_replication_token", Str),
    k("acl_token", Str),
    k("acl_ttl", Duration),
    k("addresses", Section(ADDRESSES)),
    k("advertise_addr", Str),
    k("advertise_addr_ipv4", Str),
    k("advertise_addr_ipv6", Str),
    k("advertise_addr_wan", Str),
    k("advertise_addr_wan_ipv4", Str),
    k("advertise_addr_wan_ipv6", Str),
    k("advertise_reconnect_timeout", Duration),
    k("alt_domain", Str),
    k("audit", Object),
    k("auto_config", Object),
    k("auto_encrypt", Object),
    k("auto_reload_config", Bool),
    k("autopilot", Section(AUTOPILOT)),
    k("bind_addr", Str),
    k("bootstrap", Bool),
    k("bootstrap_expect", Int),
    k("ca_file", Str),
    k("ca_path", Str),
    k("cache", Object),
    k("cert_file", Str),
    k("check", Checks),
    k("check_output_max_size", Int),
    k("check_update_interval", Duration),
    k("checks", Checks),
    k("client_addr", Str),
    k("cloud", Object),
    k("config_entries", Object),
    k("connect", Object),
    k("data_dir", Str),
    k("datacenter", Str),
    k("default_query_time", Duration),
    k("disable_anonymous_signature", Bool),
    k("disable_coordinates", Bool),
    k("disable_host_node_id", Bool),
    k("disable_http_unprintable_char_filter", Bool),
    k("disable_keyring_file", Bool),
    k("disable_remote_exec", Bool),
    k("disable_update_check", Bool),
    k("discard_check_output", Bool),
    k("discovery_max_stale", Duration),
    k("dns_config", Section(DNS_CONFIG)),
    k("domain", Str),
    k("enable_acl_replication", Bool),
    k("enable_agent_tls_for_checks", Bool),
    k("enable_central_service_config", Bool),
    k("enable_debug", Bool),
    k("enable_local_script_checks", Bool),
    k("enable_script_checks", Bool),
    k("enable_syslog", Bool),
    k("encrypt", Str),
    k("encrypt_verify_incoming", Bool),
    k("encrypt_verify_outgoing", Bool),
    k("experiments", StrList),
    k("gossip_lan", Object),
    k("gossip_wan", Object),
    k("http_config", Section(HTTP_CONFIG)),
    k("key_file", Str),
    k("leave_on_terminate", Bool),
    k("license_path", Str),
    k("limits", Object),
    k("locality", Object),
    k("log_file", Str),
    k("log_json", Bool),
    k("log_level", Str),
    k("log_rotate_bytes", Int),
    k("log_rotate_duration", Duration),
    k("log_rotate_max_files", Int),
    k("log_sublevels", StrMap),
    k("max_query_time", Duration),
    k("node_id", Str),
    k("node_meta", StrMap),
    k("node_name", Str),
    k("non_voting_server", Bool),
    k("partition", Str),
    k("peering", Object),
    k("performance", Section(PERFORMANCE)),
    k("pid_file", Str),
    k("ports", Section(PORTS)),
    k("primary_datacenter", Str),
    k("primary_gateways", StrList),
    k("primary_gateways_interval", Duration),
    k("protocol", Int),
    k("raft_boltdb", Object),
    k("raft_logstore", Object),
    k("raft_protocol", Int),
    k("raft_snapshot_interval", Duration),
    k("raft_snapshot_threshold", Int),
    k("raft_trailing_logs", Int),
    k("read_replica", Bool),
    k("reconnect_timeout", Duration),
    k("reconnect_timeout_wan", Duration),
    k("recursors", StrList),
    k("rejoin_after_leave", Bool),
    k("reporting", Object),
    k("retry_interval", Duration),
    k("retry_interval_wan", Duration),
    k("retry_join", StrList),
    k("retry_join_wan", StrList),
    k("retry_max", Int),
    k("retry_max_wan", Int),
    k("rpc", Object),
    k("segment", Str),
    k("segments", Any),
    k("serf_lan", Str),
    k("serf_lan_allowed_cidrs", StrList),
    k("serf_wan", Str),
    k("serf_wan_allowed_cidrs", StrList),
    k("server", Bool),
    k("server_name", Str),
    k("server_rejoin_age_max", Duration),
    k("service", Services),
    k("services", Services),
    k("session_ttl_min", Duration),
    k("skip_leave_on_interrupt", Bool),
    k("snapshot_agent", Object),
    k("start_join", StrList),
    k("start_join_wan", StrList),
    k("syslog_facility", Str),
    k("tagged_addresses", StrMap),
    k("telemetry", Object),
    k("tls", Object),
    k("tls_cipher_suites", Str),
    k("tls_min_version", Str),
    k("tls_prefer_server_cipher_suites", Bool),
    k("translate_wan_addrs", Bool),
    k("ui", Bool),
    k("ui_config", Section(UI_CONFIG)),
    k("ui_content_path", Str),
    k("ui_dir", Str),
    k("unix_sockets", Object),
    k("use_streaming_backend", Bool),
    k("verify_incoming", Bool),
    k("verify_incoming_https", Bool),
    k("verify_incoming_rpc", Bool),
    k("verify_outgoing", Bool),
    k("verify_server_hostname", Bool),
    k("watches", Any),
    k("xds", Object),
    // Values Consul sets itself; accepted so copied configs keep working.
    k("ae_interval", Any),
    k("build_date", Any),
    k("check_deregister_interval_min", Any),
    k("check_reap_interval", Any),
    k("consul", Any),
    k("license_poll_base_time", Any),
    k("license_poll_max_time", Any),
    k("license_update_base_time", Any),
    k("license_update_max_time", Any),
    k("revision", Any),
    k("segment_limit", Any),
    k("segment_name_limit", Any),
    k("sync_coordinate_interval_min", Any),
    k("sync_coordinate_rate_target", Any),
    k("version", Any),
    k("version_metadata", Any),
    k("version_prerelease", Any),
];

const PORTS: &[Key] = &[
    k("dns", Int),
    k("http", Int),
    k("https", Int),
    k("serf_lan", Int),
    k("serf_wan", Int),
    k("server", Int),
    k("grpc", Int),
    k("grpc_tls", Int),
    k("proxy_min_port", Int),
    k("proxy_max_port", Int),
    k("sidecar_min_port", Int),
    k("sidecar_max_port", Int),
    k("expose_min_port", Int),
    k("expose_max_port", Int),
];

const ADDRESSES: &[Key] = &[
    k("dns", Str),
    k("http", Str),
    k("https", Str),
    k("grpc", Str),
    k("grpc_tls", Str),
];

const PERFORMANCE: &[Key] = &[
    k("leave_drain_time", Duration),
    k("raft_multiplier", Int),
    k("rpc_hold_timeout", Duration),
    k("grpc_keepalive_interval", Duration),
    k("grpc_keepalive_timeout", Duration),
];

const DNS_CONFIG: &[Key] = &[
    k("allow_stale", Bool),
    k("a_record_limit", Int),
    k("disable_compression", Bool),
    k("enable_truncate", Bool),
    k("max_stale", Duration),
    k("node_ttl", Duration),
    k("only_passing", Bool),
    k("recursor_strategy", Str),
    k("recursor_timeout", Duration),
    k("service_ttl", StrMap),
    k("udp_answer_limit", Int),
    k("enable_additional_node_meta_txt", Bool),
    k("soa", Object),
    k("use_cache", Bool),
    k("cache_max_age", Duration),
    k("prefer_namespace", Bool),
];

const ACL: &[Key] = &[
    k("enabled", Bool),
    k("enable_token_replication", Bool),
    k("policy_ttl", Duration),
    k("role_ttl", Duration),
    k("token_ttl", Duration),
    k("disabled_ttl", Any),
    k("down_policy", Str),
    k("default_policy", Str),
    k("enable_key_list_policy", Bool),
    k("tokens", Section(ACL_TOKENS)),
    k("enable_token_persistence", Bool),
    k("msp_disable_bootstrap", Bool),
];

const ACL_TOKENS: &[Key] = &[
    k("initial_management", Str),
    k("replication", Str),
    k("agent_recovery", Str),
    k("default", Str),
    k("agent", Str),
    k("config_file_service_registration", Str),
    k("dns", Str),
    k("managed_service_provider", Any),
    k("master", Str),
    k("agent_master", Str),
];

const UI_CONFIG: &[Key] = &[
    k("enabled", Bool),
    k("dir", Str),
    k("content_path", Str),
    k("metrics_provider", Str),
    k("metrics_provider_files", StrList),
    k("metrics_provider_options_json", Str),
    k("metrics_proxy", Object),
    k("dashboard_url_templates", StrMap),
];

const HTTP_CONFIG: &[Key] = &[
    k("block_endpoints", StrList),
    k("allow_write_http_from", StrList),
    k("response_headers", StrMap),
    k("use_cache", Bool),
    k("max_header_bytes", Int),
];

const AUTOPILOT: &[Key] = &[
    k("cleanup_dead_servers", Bool),
    k("last_contact_threshold", Duration),
    k("max_trailing_logs", Int),
    k("min_quorum", Int),
    k("server_stabilization_time", Duration),
    k("disable_upgrade_migration", Bool),
    k("redundancy_zone_tag", Str),
    k("upgrade_version_tag", Str),
];

/// Fields of a service definition (`agent/config.ServiceDefinition` plus the
/// API spellings Consul accepts).
pub(crate) const SERVICE: &[Key] = &[
    k("kind", Str),
    k("id", Str),
    k("name", Str),
    k("tags", StrList),
    k("address", Str),
    k("tagged_addresses", Object),
    k("meta", StrMap),
    k("port", Int),
    k("socket_path", Str),
    k("enable_tag_override", Bool),
    k("check", Checks),
    k("checks", Checks),
    k("token", Str),
    k("weights", Section(WEIGHTS)),
    k("proxy", Object),
    k("connect", Section(SERVICE_CONNECT)),
    k("namespace", Str),
    k("partition", Str),
    k("locality", Object),
];

const WEIGHTS: &[Key] = &[k("passing", Int), k("warning", Int)];

const SERVICE_CONNECT: &[Key] = &[
    k("native", Bool),
    k("sidecar_service", Service),
    k("proxy", Object),
];

/// Fields of a check definition (`agent/config.CheckDefinition`, legacy and
/// API spellings).
pub(crate) const CHECK: &[Key] = &[
    ka("id", Str, &["check_id"]),
    k("name", Str),
    k("notes", Str),
    k("service_id", Str),
    k("token", Str),
    k("status", Str),
    ka("args", StrList, &["script_args"]),
    k("script", Str),
    k("http", Str),
    k("header", Object),
    k("method", Str),
    k("body", Str),
    k("disable_redirects", Bool),
    k("output_max_size", Int),
    k("tcp", Str),
    k("tcp_use_tls", Bool),
    k("udp", Str),
    k("interval", Duration),
    k("docker_container_id", Str),
    k("shell", Str),
    k("grpc", Str),
    k("grpc_use_tls", Bool),
    k("tls_server_name", Str),
    k("tls_skip_verify", Bool),
    k("alias_node", Str),
    k("alias_service", Str),
    k("timeout", Duration),
    k("ttl", Duration),
    k("h2ping", Str),
    k("h2ping_use_tls", Bool),
    k("os_service", Str),
    k("success_before_passing", Int),
    k("failures_before_warning", Int),
    k("failures_before_critical", Int),
    k("deregister_critical_service_after", Duration),
    k("type", Str),
    k("namespace", Str),
    k("partition", Str),
];

/// Key comparison form: lowercase with underscores removed.
pub(crate) fn norm(key: &str) -> String {
    key.chars()
        .filter(|c| *c != '_')
        .flat_map(char::to_lowercase)
        .collect()
}

/// Finds the known key matching `key` (any case, underscores ignored, aliases).
pub(crate) fn lookup(table: &'static [Key], key: &str) -> Option<&'static Key> {
    let n = norm(key);
    table
        .iter()
        .find(|e| norm(e.name) == n || e.aliases.iter().any(|a| norm(a) == n))
}

/// Finds the value stored under the canonical key `name` of a definition whose
/// keys keep their original spelling (`Name`, `name`, `service_name`, ...).
pub(crate) fn def_get<'a>(
    def: &'a Map<String, Value>,
    table: &'static [Key],
    name: &str,
) -> Option<&'a Value> {
    def.iter()
        .find(|(k, _)| lookup(table, k).is_some_and(|e| e.name == name))
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn tables_have_no_colliding_spellings() {
        for table in [
            TOP,
            PORTS,
            ADDRESSES,
            PERFORMANCE,
            DNS_CONFIG,
            ACL,
            ACL_TOKENS,
            UI_CONFIG,
        ]
        .into_iter()
        .chain([
            HTTP_CONFIG,
            AUTOPILOT,
            SERVICE,
            CHECK,
            WEIGHTS,
            SERVICE_CONNECT,
        ]) {
            let mut seen = std::collections::HashSet::new();
            for e in table {
                assert!(seen.insert(norm(e.name)), "duplicate {}", e.name);
                for a in e.aliases {
                    assert!(seen.insert(norm(a)), "duplicate alias {a}");
                }
            }
        }
    }

    #[test]
    fn def_get_finds_any_spelling() {
        let def = obj(json!({"Name": "web", "ID": "w"}));
        assert_eq!(def_get(&def, SERVICE, "name"), Some(&json!("web")));
        assert_eq!(def_get(&def, SERVICE, "id"), Some(&json!("w")));
        assert_eq!(def_get(&def, SERVICE, "port"), None);
    }
}
