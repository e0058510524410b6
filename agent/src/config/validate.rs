//! Validation helpers for the resolved configuration, with Consul's error
//! texts where Consul has one.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;

use serde_json::Value;

use super::keys::{def_get, Key, CHECK, SERVICE};
use super::{ConfigError, RuntimeConfig};

/// A service or check definition with the source it came from.
pub(crate) struct Def {
    /// The definition as written.
    pub value: Value,
    /// The file (or `flags-N.hcl`) it came from.
    pub origin: PathBuf,
}

pub(crate) fn invalid(msg: impl Into<String>) -> ConfigError {
    ConfigError::Invalid(msg.into())
}

/// Consul's `validateBasicName`: lowercase alphanumerics, `-` and `_`.
pub(crate) fn validate_basic_name(
    field: &str,
    value: &str,
    allow_empty: bool,
) -> Result<(), ConfigError> {
    if value.is_empty() {
        if allow_empty {
            return Ok(());
        }
        return Err(invalid(format!("{field} cannot be empty")));
    }
    let ok = value
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !ok {
        return Err(invalid(format!(
            "{field} can only contain lowercase alphanumeric, - or _ characters. received: {value:?}"
        )));
    }
    Ok(())
}

pub(crate) fn validate_node_id(id: &str) -> Result<String, ConfigError> {
    let dashes_ok = id.len() == 36 && [8, 13, 18, 23].iter().all(|&i| id.as_bytes()[i] == b'-');
    if !dashes_ok || uuid::Uuid::parse_str(id).is_err() {
        return Err(invalid(format!(
            "node_id: invalid node ID {id:?}: must be a UUID like 8b1d1f88-7b1e-4c0b-9a3f-6c2d1e0a5b77"
        )));
    }
    Ok(id.to_lowercase())
}

pub(crate) fn parse_ip(name: &str, addr: &str) -> Result<IpAddr, ConfigError> {
    if addr.contains("{{") {
        return Err(invalid(format!(
            "{name}: go-sockaddr templates are not supported: {addr:?}"
        )));
    }
    let bare = addr.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>()
        .map_err(|_| invalid(format!("{name}: invalid ip address: {addr}")))
}

pub(crate) fn validate_bind_addr(addr: &str) -> Result<(), ConfigError> {
    if addr.contains("{{") {
        return parse_ip("bind_addr", addr).map(|_| ());
    }
    let parts: Vec<&str> = addr.split_whitespace().collect();
    match parts.as_slice() {
        [] => Err(invalid("bind_addr cannot be empty")),
        [one] if one.starts_with("unix://") => Err(invalid("bind_addr cannot be a unix socket")),
        [one] => parse_ip("bind_addr", one).map(|_| ()),
        _ => Err(invalid(
            "bind_addr cannot contain multiple addresses. Use 'addresses.{dns,http,https}' instead.",
        )),
    }
}

/// A space-separated list of IP addresses and `unix://` sockets.
pub(crate) fn validate_addr_list(name: &str, list: &str) -> Result<(), ConfigError> {
    if list.contains("{{") {
        return parse_ip(name, list).map(|_| ());
    }
    for a in list.split_whitespace() {
        if !a.starts_with("unix://") {
            parse_ip(name, a)?;
        }
    }
    Ok(())
}

/// Checks that no two enabled listeners share an address and port.
pub(crate) fn validate_listeners(rt: &RuntimeConfig) -> Result<(), ConfigError> {
    let mut inuse: Vec<(String, i32, &str)> = Vec::new();
    let bind = [rt.bind_addr.clone()];
    let listeners: [(&str, Vec<String>, i32); 7] = [
        ("DNS", rt.client_side("dns"), rt.ports.dns),
        ("HTTP", rt.client_side("http"), rt.ports.http),
        ("HTTPS", rt.client_side("https"), rt.ports.https),
        ("gRPC", rt.client_side("grpc"), rt.ports.grpc),
        ("RPC", bind.to_vec(), rt.ports.server),
        (
            "Serf LAN",
            vec![rt
                .serf_lan_bind
                .clone()
                .unwrap_or_else(|| rt.bind_addr.clone())],
            rt.ports.serf_lan,
        ),
        (
            "Serf WAN",
            vec![rt
                .serf_wan_bind
                .clone()
                .unwrap_or_else(|| rt.bind_addr.clone())],
            rt.ports.serf_wan,
        ),
    ];
    for (name, addrs, port) in listeners {
        if port <= 0 {
            continue;
        }
        for addr in addrs {
            if addr.starts_with("unix://") {
                continue;
            }
            let any = |a: &str| matches!(a, "0.0.0.0" | "::" | "[::]");
            if let Some((_, _, other)) = inuse
                .iter()
                .find(|(a, p, _)| *p == port && (*a == addr || any(a) || any(&addr)))
            {
                return Err(invalid(format!(
                    "{name} address {} already configured for {other}",
                    super::join_host_port(&addr, port)
                )));
            }
            inuse.push((addr, port, name));
        }
    }
    Ok(())
}

/// Consul's `structs.ValidateNodeMetadata`.
pub(crate) fn validate_node_meta(meta: &BTreeMap<String, String>) -> Result<(), String> {
    if meta.len() > 64 {
        return Err("Node metadata cannot contain more than 64 key/value pairs".into());
    }
    for (k, v) in meta {
        if k.is_empty() {
            return Err("Key cannot be blank".into());
        }
        if !k
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(format!("Key contains invalid characters: {k}"));
        }
        if k.len() > 128 {
            return Err(format!("Key is too long (limit: 128 characters): {k}"));
        }
        if k.starts_with("consul-") {
            return Err(format!(
                "Key prefix 'consul-' is reserved for internal use: {k}"
            ));
        }
        if v.len() > 512 {
            return Err(format!("Value is too long (limit: 512 characters): {v}"));
        }
    }
    Ok(())
}

/// A gossip key must be standard base64 of 16, 24 or 32 bytes.
pub(crate) fn validate_encrypt_key(key: &str) -> Result<(), String> {
    let bytes = key.as_bytes();
    let mut pad = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let valid = b.is_ascii_alphanumeric() || b == b'+' || b == b'/';
        if b == b'=' && i + 2 >= bytes.len() && bytes[i..].iter().all(|&c| c == b'=') {
            pad = bytes.len() - i;
            break;
        }
        if !valid {
            return Err(format!("illegal base64 data at input byte {i}"));
        }
    }
    if bytes.len() % 4 != 0 {
        return Err(format!("illegal base64 data at input byte {}", bytes.len()));
    }
    let len = bytes.len() / 4 * 3 - pad;
    if ![16, 24, 32].contains(&len) {
        return Err("key size must be 16, 24 or 32 bytes".into());
    }
    Ok(())
}

pub(crate) fn normalize_log_level(level: &str) -> Result<String, ConfigError> {
    let l = level.trim().to_lowercase();
    Ok(match l.as_str() {
        "trace" | "debug" | "info" | "warn" | "error" => l,
        "warning" => "warn".into(),
        "err" => "error".into(),
        _ => {
            return Err(invalid(format!(
                "Invalid log level: {level}. Valid log levels are: [trace debug info warn error]"
            )))
        }
    })
}

fn str_field<'a>(def: &'a Value, table: &'static [Key], name: &str) -> Option<&'a str> {
    def.as_object()
        .and_then(|m| def_get(m, table, name))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

pub(crate) fn validate_services(services: &[Def]) -> Result<(), ConfigError> {
    let mut seen: HashMap<String, &PathBuf> = HashMap::new();
    for def in services {
        let origin = def.origin.display();
        let Some(name) = str_field(&def.value, SERVICE, "name") else {
            return Err(invalid(format!(
                "service definition in {origin}: missing service name"
            )));
        };
        let id = str_field(&def.value, SERVICE, "id")
            .unwrap_or(name)
            .to_string();
        if let Some(first) = seen.insert(id.clone(), &def.origin) {
            return Err(invalid(format!(
                "service ID {id:?} is defined more than once (in {} and {origin}); give each service a unique \"id\"",
                first.display()
            )));
        }
        let obj = def.value.as_object();
        let has = |field: &str| obj.and_then(|m| def_get(m, SERVICE, field)).is_some();
        if has("socket_path") && (has("port") || has("address")) {
            return Err(invalid(format!(
                "service {name} cannot have both socket path {} and address/port",
                str_field(&def.value, SERVICE, "socket_path").unwrap_or("")
            )));
        }
        if let Some(w) = obj
            .and_then(|m| def_get(m, SERVICE, "weights"))
            .and_then(Value::as_object)
        {
            let field = |n: &str| {
                w.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(n))
                    .and_then(|(_, v)| v.as_i64())
            };
            if field("passing").is_some_and(|p| p < 1) {
                return Err(invalid(format!(
                    "Invalid weight definition for service {name}: Passing must be greater than 0"
                )));
            }
            if field("warning").is_some_and(|p| p < 0) {
                return Err(invalid(format!(
                    "Invalid weight definition for service {name}: Warning must be greater or equal than 0"
                )));
            }
        }
    }
    Ok(())
}

pub(crate) fn validate_checks(checks: &[Def]) -> Result<(), ConfigError> {
    let mut seen: HashMap<String, &PathBuf> = HashMap::new();
    for def in checks {
        let origin = def.origin.display();
        let id =
            str_field(&def.value, CHECK, "id").or_else(|| str_field(&def.value, CHECK, "name"));
        let Some(id) = id else {
            return Err(invalid(format!(
                "check definition in {origin}: missing check name"
            )));
        };
        if let Some(first) = seen.insert(id.to_string(), &def.origin) {
            return Err(invalid(format!(
                "check ID {id:?} is defined more than once (in {} and {origin}); give each check a unique \"id\"",
                first.display()
            )));
        }
    }
    Ok(())
}

/// The machine's hostname, used as the default node name.
pub(crate) fn hostname() -> Option<String> {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .chain(std::env::var("HOSTNAME").ok())
        .map(|s| s.trim().to_string())
        .find(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encrypt_keys() {
        assert!(validate_encrypt_key("pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=").is_ok());
        assert!(validate_encrypt_key("cg8StVXbQJ0gPvMd9o7yrg==").is_ok());
        assert_eq!(
            validate_encrypt_key("abc!").unwrap_err(),
            "illegal base64 data at input byte 3"
        );
        assert_eq!(
            validate_encrypt_key("abcd").unwrap_err(),
            "key size must be 16, 24 or 32 bytes"
        );
        assert!(validate_encrypt_key("abc").is_err());
    }

    #[test]
    fn log_levels() {
        assert_eq!(normalize_log_level("INFO").unwrap(), "info");
        assert_eq!(normalize_log_level("WARNING").unwrap(), "warn");
        assert_eq!(normalize_log_level("err").unwrap(), "error");
        assert_eq!(
            normalize_log_level("loud").unwrap_err().to_string(),
            "Invalid log level: loud. Valid log levels are: [trace debug info warn error]"
        );
    }

    #[test]
    fn node_ids() {
        assert_eq!(
            validate_node_id("8B1D1F88-7B1E-4C0B-9A3F-6C2D1E0A5B77").unwrap(),
            "8b1d1f88-7b1e-4c0b-9a3f-6c2d1e0a5b77"
        );
        assert!(validate_node_id("8b1d1f887b1e4c0b9a3f6c2d1e0a5b77").is_err());
        assert!(validate_node_id("zzzzzzzz-7b1e-4c0b-9a3f-6c2d1e0a5b77").is_err());
        assert!(validate_node_id("x").is_err());
    }

    #[test]
    fn node_meta_rules() {
        let m = |k: &str, v: &str| BTreeMap::from([(k.to_string(), v.to_string())]);
        assert!(validate_node_meta(&m("rack", "r1")).is_ok());
        assert!(validate_node_meta(&m("bad key", "v")).is_err());
        assert!(validate_node_meta(&m("consul-x", "v")).is_err());
        assert!(validate_node_meta(&m("k", &"v".repeat(513))).is_err());
    }

    #[test]
    fn addresses() {
        assert!(validate_bind_addr("10.0.0.1").is_ok());
        assert!(validate_bind_addr("::").is_ok());
        assert!(validate_bind_addr("[::]").is_ok());
        assert_eq!(
            validate_bind_addr("nope").unwrap_err().to_string(),
            "bind_addr: invalid ip address: nope"
        );
        assert!(validate_bind_addr("1.1.1.1 2.2.2.2").is_err());
        assert!(validate_bind_addr("unix:///tmp/x").is_err());
        assert!(validate_bind_addr("{{ GetPrivateIP }}")
            .unwrap_err()
            .to_string()
            .contains("templates are not supported"));
        assert!(validate_addr_list("client_addr", "127.0.0.1 unix:///tmp/s ::1").is_ok());
    }
}
