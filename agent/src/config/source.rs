//! Configuration sources: built-in defaults, files and directories, inline
//! HCL, plus the merge rules that combine them.
//!
//! Merge rules (Consul's): later scalars replace earlier ones, arrays are
//! concatenated, objects are merged key by key.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use super::normalize::{normalize, NormError};
use super::ConfigError;

/// Format of a configuration source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Json,
    Hcl,
}

impl Format {
    /// Parses the value of `-config-format`.
    pub(crate) fn from_flag(s: &str) -> Option<Format> {
        match s {
            "json" => Some(Format::Json),
            "hcl" => Some(Format::Hcl),
            _ => None,
        }
    }

    fn from_extension(path: &Path) -> Option<Format> {
        let name = path.file_name()?.to_string_lossy();
        if name.ends_with(".json") {
            Some(Format::Json)
        } else if name.ends_with(".hcl") {
            Some(Format::Hcl)
        } else {
            None
        }
    }
}

/// One unparsed configuration source.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    /// Name used in error messages: the file path, or `flags-N.hcl`.
    pub name: PathBuf,
    pub format: Format,
    pub data: String,
}

/// Reads a `-config-file`/`-config-dir` argument. A file is read directly; a
/// directory contributes its `*.json` and `*.hcl` files (all files if `forced`
/// is set) in lexical order, without recursing. Skipped files produce warnings.
pub(crate) fn sources_from_path(
    path: &Path,
    forced: Option<Format>,
    warnings: &mut Vec<String>,
) -> Result<Vec<Source>, ConfigError> {
    let meta = fs::metadata(path).map_err(|source| ConfigError::ReadFile {
        path: path.to_path_buf(),
        source,
    })?;
    if !meta.is_dir() {
        return Ok(read_source(path, forced, warnings)?.into_iter().collect());
    }
    let entries = fs::read_dir(path).map_err(|source| ConfigError::ReadFile {
        path: path.to_path_buf(),
        source,
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| ConfigError::ReadFile {
            path: path.to_path_buf(),
            source,
        })?;
        files.push(entry.path());
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    let mut out = Vec::new();
    for file in files {
        // `metadata` follows symlinks; sub-directories are not read.
        let is_dir = fs::metadata(&file)
            .map_err(|source| ConfigError::ReadFile {
                path: file.clone(),
                source,
            })?
            .is_dir();
        if !is_dir {
            out.extend(read_source(&file, forced, warnings)?);
        }
    }
    Ok(out)
}

fn read_source(
    path: &Path,
    forced: Option<Format>,
    warnings: &mut Vec<String>,
) -> Result<Option<Source>, ConfigError> {
    let Some(format) = forced.or_else(|| Format::from_extension(path)) else {
        warnings.push(format!(
            "skipping file {}, extension must be .hcl or .json, or config format must be set",
            path.display()
        ));
        return Ok(None);
    };
    let data = fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(Some(Source {
        name: path.to_path_buf(),
        format,
        data,
    }))
}

/// Parses and normalizes a source. Returns `None` for an empty source.
pub(crate) fn parse_source(src: &Source) -> Result<Option<Map<String, Value>>, ConfigError> {
    if src.data.trim().is_empty() {
        return Ok(None);
    }
    let parse_err = |message: String| ConfigError::Parse {
        path: src.name.clone(),
        message,
    };
    let value: Value = match src.format {
        Format::Json => serde_json::from_str(&src.data).map_err(|e| parse_err(e.to_string()))?,
        Format::Hcl => match super::hcl_bounded::from_str(&src.data) {
            Ok(v) => v,
            Err(super::hcl_bounded::HclError::Parse(e)) => return Err(parse_err(hcl_error(&e))),
            Err(e) => return Err(parse_err(e.to_string())),
        },
    };
    let Value::Object(map) = value else {
        return Err(parse_err("configuration must be an object".to_string()));
    };
    if map.is_empty() {
        return Ok(None);
    }
    match normalize(map) {
        Ok(m) => Ok(Some(m)),
        Err(NormError::UnknownKey(key)) => Err(ConfigError::UnknownKey {
            path: src.name.clone(),
            key,
        }),
        Err(NormError::Invalid(message)) => Err(parse_err(message)),
    }
}

/// One-line rendering of an hcl-rs error (its Display is a multi-line snippet).
fn hcl_error(err: &hcl::Error) -> String {
    match err {
        hcl::Error::Parse(p) => format!(
            "line {}, column {}: {}",
            p.location().line(),
            p.location().column(),
            p.message()
        ),
        other => other.to_string().replace('\n', " "),
    }
}

/// Merges `overlay` into `base`: objects key by key, arrays appended, other
/// values replaced.
pub(crate) fn merge_value(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Object(b), Value::Object(o)) => merge_map(b, o),
        (Value::Array(b), Value::Array(o)) => b.extend(o),
        (b, o) => *b = o,
    }
}

/// [`merge_value`] for two objects.
pub(crate) fn merge_map(base: &mut Map<String, Value>, overlay: Map<String, Value>) {
    for (k, v) in overlay {
        match base.get_mut(&k) {
            Some(existing) => merge_value(existing, v),
            None => {
                base.insert(k, v);
            }
        }
    }
}

/// Built-in defaults (Consul's `DefaultSource`).
pub(crate) fn defaults() -> Map<String, Value> {
    // Split in parts: one `json!` this large exceeds the macro recursion limit.
    let top = json!({
        "acl": {
            "token_ttl": "30s",
            "policy_ttl": "30s",
            "default_policy": "allow",
            "down_policy": "extend-cache"
        },
        "bind_addr": "0.0.0.0",
        "bootstrap": false,
        "bootstrap_expect": 0,
        "check_output_max_size": 4096,
        "check_update_interval": "5m",
        "client_addr": "127.0.0.1",
        "datacenter": "dc1",
        "default_query_time": "300s",
        "disable_coordinates": false,
        "disable_host_node_id": true,
        "disable_remote_exec": true,
        "domain": "consul.",
        "enable_central_service_config": true,
        "encrypt_verify_incoming": true,
        "encrypt_verify_outgoing": true,
        "log_level": "INFO",
        "max_query_time": "600s",
        "primary_gateways_interval": "30s",
        "protocol": 2,
        "retry_interval": "30s",
        "retry_interval_wan": "30s",
        "server": false,
        "syslog_facility": "LOCAL0",
        "raft_protocol": 3,
        "tls": { "defaults": { "tls_min_version": "TLSv1_2" } },
        "telemetry": { "metrics_prefix": "consul", "filter_default": true },
        "connect": { "enabled": true },
        "peering": { "enabled": true }
    });
    let sections = json!({
        "autopilot": {
            "cleanup_dead_servers": true,
            "last_contact_threshold": "200ms",
            "max_trailing_logs": 250,
            "server_stabilization_time": "10s"
        },
        "dns_config": {
            "allow_stale": true,
            "a_record_limit": 0,
            "udp_answer_limit": 3,
            "max_stale": "87600h",
            "recursor_timeout": "2s"
        },
        "limits": {
            "http_max_conns_per_client": 200,
            "https_handshake_timeout": "5s",
            "rpc_handshake_timeout": "5s",
            "rpc_client_timeout": "60s",
            "rpc_rate": -1,
            "rpc_max_burst": 1000,
            "rpc_max_conns_per_client": 100,
            "kv_max_value_size": 524288,
            "txn_max_req_len": 524288
        },
        "performance": {
            "leave_drain_time": "5s",
            "raft_multiplier": 5,
            "rpc_hold_timeout": "7s"
        },
        "ports": {
            "dns": 8600,
            "http": 8500,
            "https": -1,
            "grpc": -1,
            "grpc_tls": -1,
            "serf_lan": 8301,
            "serf_wan": 8302,
            "server": 8300,
            "proxy_min_port": 20000,
            "proxy_max_port": 20255,
            "sidecar_min_port": 21000,
            "sidecar_max_port": 21255,
            "expose_min_port": 21500,
            "expose_max_port": 21755
        }
    });
    let mut out = Map::new();
    for part in [top, sections] {
        if let Value::Object(m) = part {
            merge_map(&mut out, m);
        }
    }
    out
}

/// Additional defaults for `-dev` (Consul's `DevSource`).
pub(crate) fn dev_defaults() -> Map<String, Value> {
    let v = json!({
        "bind_addr": "127.0.0.1",
        "disable_anonymous_signature": true,
        "disable_keyring_file": true,
        "enable_debug": true,
        "ui_config": { "enabled": true },
        "log_level": "DEBUG",
        "server": true,
        "performance": { "raft_multiplier": 1 },
        "ports": { "grpc": 8502 }
    });
    v.as_object().cloned().unwrap_or_default()
}

/// Deprecated top-level keys and the key that replaced them (Consul's
/// `applyDeprecatedConfig`). The old value is used only when the same source
/// does not also set the new key.
const DEPRECATED: &[(&str, &str)] = &[
    ("acl_agent_master_token", "acl.tokens.agent_recovery"),
    ("acl_agent_token", "acl.tokens.agent"),
    ("acl_token", "acl.tokens.default"),
    ("acl_master_token", "acl.tokens.initial_management"),
    ("acl_replication_token", "acl.tokens.replication"),
    ("enable_acl_replication", "acl.enable_token_replication"),
    ("acl_datacenter", "primary_datacenter"),
    ("acl_default_policy", "acl.default_policy"),
    ("acl_down_policy", "acl.down_policy"),
    ("acl_ttl", "acl.token_ttl"),
    ("acl_enable_key_list_policy", "acl.enable_key_list_policy"),
    ("ca_file", "tls.defaults.ca_file"),
    ("ca_path", "tls.defaults.ca_path"),
    ("cert_file", "tls.defaults.cert_file"),
    ("key_file", "tls.defaults.key_file"),
    ("tls_cipher_suites", "tls.defaults.tls_cipher_suites"),
    ("tls_min_version", "tls.defaults.tls_min_version"),
    ("verify_incoming", "tls.defaults.verify_incoming"),
    ("verify_incoming_https", "tls.https.verify_incoming"),
    ("verify_incoming_rpc", "tls.internal_rpc.verify_incoming"),
    ("verify_outgoing", "tls.defaults.verify_outgoing"),
    (
        "verify_server_hostname",
        "tls.internal_rpc.verify_server_hostname",
    ),
    ("non_voting_server", "read_replica"),
    ("ui", "ui_config.enabled"),
    ("ui_dir", "ui_config.dir"),
    ("ui_content_path", "ui_config.content_path"),
    ("acl.tokens.master", "acl.tokens.initial_management"),
    ("acl.tokens.agent_master", "acl.tokens.agent_recovery"),
];

fn get_path<'a>(map: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut cur = map.get(parts.next()?)?;
    for p in parts {
        cur = cur.as_object()?.get(p)?;
    }
    Some(cur)
}

fn remove_path(map: &mut Map<String, Value>, path: &str) -> Option<Value> {
    match path.split_once('.') {
        None => map.remove(path),
        Some((head, rest)) => remove_path(map.get_mut(head)?.as_object_mut()?, rest),
    }
}

/// Sets `path` (creating intermediate objects) unless it is already set.
pub(crate) fn set_default_path(map: &mut Map<String, Value>, path: &str, value: Value) {
    match path.split_once('.') {
        None => {
            map.entry(path.to_string()).or_insert(value);
        }
        Some((head, rest)) => {
            let child = map
                .entry(head.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(child) = child {
                set_default_path(child, rest, value);
            }
        }
    }
}

/// Moves deprecated keys of one source to their replacements, with warnings.
pub(crate) fn apply_deprecations(map: &mut Map<String, Value>, warnings: &mut Vec<String>) {
    for (old, new) in DEPRECATED {
        if get_path(map, old).is_none() {
            continue;
        }
        let Some(value) = remove_path(map, old) else {
            continue;
        };
        if *old == "acl_datacenter" {
            // Setting acl_datacenter implicitly enabled ACLs.
            set_default_path(map, "acl.enabled", Value::Bool(true));
        }
        if *old == "acl_replication_token" {
            set_default_path(map, "acl.enable_token_replication", Value::Bool(true));
        }
        set_default_path(map, new, value);
        warnings.push(format!(
            "The '{old}' field is deprecated. Use the '{new}' field instead."
        ));
    }
    if map.remove("acl_enforce_version_8").is_some() {
        warnings.push(
            "config key \"acl_enforce_version_8\" is deprecated and should be removed".into(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(format: Format, data: &str) -> Source {
        Source {
            name: PathBuf::from("test.src"),
            format,
            data: data.to_string(),
        }
    }

    #[test]
    fn merge_rules() {
        let mut base = json!({"a": 1, "l": [1], "m": {"x": 1, "y": 1}})
            .as_object()
            .cloned()
            .unwrap();
        let overlay = json!({"a": 2, "l": [2], "m": {"y": 2, "z": 2}})
            .as_object()
            .cloned()
            .unwrap();
        merge_map(&mut base, overlay);
        assert_eq!(
            Value::Object(base),
            json!({"a": 2, "l": [1, 2], "m": {"x": 1, "y": 2, "z": 2}})
        );
    }

    #[test]
    fn parse_json_and_hcl() {
        let j = parse_source(&src(
            Format::Json,
            r#"{"datacenter": "x", "ports": {"http": 1}}"#,
        ))
        .unwrap()
        .unwrap();
        let h = parse_source(&src(
            Format::Hcl,
            "datacenter = \"x\"\nports {\n  http = 1\n}\n",
        ))
        .unwrap()
        .unwrap();
        assert_eq!(j, h);
        assert!(parse_source(&src(Format::Json, "  \n")).unwrap().is_none());
        assert!(parse_source(&src(Format::Hcl, "# just a comment\n"))
            .unwrap()
            .is_none());
    }

    #[test]
    fn parse_errors_are_one_line() {
        for (fmt, data) in [
            (Format::Json, "{\"a\": "),
            (Format::Hcl, "service { name = \"a\" port = 1 }"),
            (Format::Json, "[1, 2]"),
        ] {
            let err = parse_source(&src(fmt, data)).unwrap_err();
            let text = err.to_string();
            assert!(text.starts_with("failed to parse test.src: "), "{text}");
            assert!(!text.contains('\n'), "{text}");
        }
    }

    #[test]
    fn deprecated_keys_move() {
        let mut m = json!({"acl_datacenter": "dc9", "ui": true, "acl_token": "t",
                           "acl": {"tokens": {"master": "m"}}})
        .as_object()
        .cloned()
        .unwrap();
        let mut w = Vec::new();
        apply_deprecations(&mut m, &mut w);
        assert_eq!(m["primary_datacenter"], "dc9");
        assert_eq!(m["acl"]["enabled"], true);
        assert_eq!(m["acl"]["tokens"]["default"], "t");
        assert_eq!(m["acl"]["tokens"]["initial_management"], "m");
        assert!(m["acl"]["tokens"].get("master").is_none());
        assert_eq!(m["ui_config"]["enabled"], true);
        assert!(!m.contains_key("ui"));
        assert_eq!(w.len(), 4);
        assert!(w.contains(
            &"The 'ui' field is deprecated. Use the 'ui_config.enabled' field instead.".to_string()
        ));
    }

    #[test]
    fn deprecated_key_does_not_override_new_key_in_same_source() {
        let mut m = json!({"acl_datacenter": "old", "primary_datacenter": "new"})
            .as_object()
            .cloned()
            .unwrap();
        apply_deprecations(&mut m, &mut Vec::new());
        assert_eq!(m["primary_datacenter"], "new");
    }

    #[test]
    fn defaults_are_valid_config() {
        for d in [defaults(), dev_defaults()] {
            let normalized = normalize(d.clone()).unwrap();
            assert_eq!(normalized, d);
        }
    }
}
