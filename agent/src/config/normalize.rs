//! Per-source normalization of parsed configuration.
//!
//! Every parsed source (file, `-hcl` snippet, command-line flags) goes through
//! [`normalize`], which
//!
//! * rejects unknown keys like Consul does (`invalid config key servie`,
//!   `invalid config key services[0].prot`),
//! * matches keys with [`super::keys::lookup`] (any case, underscores ignored,
//!   aliases),
//! * renames keys of the agent configuration to their canonical snake_case
//!   spelling so later sources merge onto earlier ones, while service and
//!   check definitions keep the spelling the user wrote,
//! * type-checks the values it knows (`ports.http` must be an integer, ...),
//! * unwraps the single-element arrays HCL produces for blocks and merges
//!   repeated blocks, and turns `service`/`services` (object or array) into one
//!   `services` array (same for `check`/`checks`).

use serde_json::{Map, Value};

use super::keys::Kind::*;
use super::keys::{lookup, Key, Kind, CHECK, SERVICE, TOP};
use crate::flags::parse_duration;

/// Why a source was rejected by [`normalize`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NormError {
    /// Unknown key, with its full path (`services[0].prot`).
    UnknownKey(String),
    /// Wrong value type or invalid value, one-line message.
    Invalid(String),
}

/// Validates and canonicalizes one parsed source (see the module docs).
pub(crate) fn normalize(root: Map<String, Value>) -> Result<Map<String, Value>, NormError> {
    let mut out = normalize_section(TOP, root, "")?;
    // `service`/`services` → `services`, `check`/`checks` → `checks`; the plural
    // form comes first, as in Consul.
    for (single, plural) in [("service", "services"), ("check", "checks")] {
        let mut list = take_array(&mut out, plural);
        list.extend(take_array(&mut out, single));
        if !list.is_empty() {
            out.insert(plural.to_string(), Value::Array(list));
        }
    }
    Ok(out)
}

fn take_array(map: &mut Map<String, Value>, key: &str) -> Vec<Value> {
    match map.remove(key) {
        Some(Value::Array(a)) => a,
        Some(other) => vec![other],
        None => Vec::new(),
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Normalizes an object of known keys: canonical names, checked values.
fn normalize_section(
    table: &'static [Key],
    obj: Map<String, Value>,
    prefix: &str,
) -> Result<Map<String, Value>, NormError> {
    let mut out = Map::new();
    for (key, value) in obj {
        let Some(entry) = lookup(table, &key) else {
            return Err(NormError::UnknownKey(join(prefix, &key)));
        };
        if value.is_null() {
            continue;
        }
        let path = join(prefix, entry.name);
        let value = check_value(entry.kind, value, &path, true)?;
        match out.get_mut(entry.name) {
            // Two spellings of the same key in one object (`ID` and `id`): merge.
            Some(existing) => super::source::merge_value(existing, value),
            None => {
                out.insert(entry.name.to_string(), value);
            }
        }
    }
    Ok(out)
}

/// Normalizes a definition (service or check) whose key spellings are kept.
fn normalize_definition(
    table: &'static [Key],
    is_service: bool,
    value: Value,
    path: &str,
) -> Result<Value, NormError> {
    let value = unwrap_single(value);
    let Value::Object(obj) = value else {
        return Err(type_error(path, "object", &value));
    };
    let mut out = Map::new();
    for (key, value) in obj {
        let Some(entry) = lookup(table, &key) else {
            return Err(NormError::UnknownKey(join(path, &key)));
        };
        if value.is_null() {
            continue;
        }
        let value = check_value(entry.kind, value, &join(path, entry.name), false)?;
        out.insert(key, value);
    }
    // Repeated HCL `check { }` blocks inside a service arrive as an array under
    // `check`; the HTTP decoder expects `check` to be one object, so move extra
    // ones to `checks`.
    if is_service {
        let check_key = out
            .keys()
            .find(|k| lookup(SERVICE, k).is_some_and(|e| e.name == "check"))
            .cloned();
        if let Some(ck) = check_key {
            if let Some(Value::Array(mut items)) = out.get(&ck).cloned() {
                if items.len() == 1 {
                    out.insert(ck, items.remove(0));
                    return Ok(Value::Object(out));
                }
                out.remove(&ck);
                let checks_key = out
                    .keys()
                    .find(|k| lookup(SERVICE, k).is_some_and(|e| e.name == "checks"))
                    .cloned()
                    .unwrap_or_else(|| "checks".to_string());
                let mut list = match out.remove(&checks_key) {
                    Some(Value::Array(a)) => a,
                    _ => Vec::new(),
                };
                list.extend(items);
                out.insert(checks_key, Value::Array(list));
            }
        }
    }
    Ok(Value::Object(out))
}

/// HCL gives `[{...}]` for a block; unwrap one-element arrays where a single
/// value is expected (Consul's `HookWeakDecodeFromSlice`).
fn unwrap_single(value: Value) -> Value {
    match value {
        Value::Array(mut a) if a.len() == 1 => a.remove(0),
        other => other,
    }
}

/// Repeated HCL blocks (`ports { } ports { }`) arrive as an array of objects:
/// merge them in order.
fn merge_blocks(value: Value) -> Value {
    match value {
        Value::Array(items) if items.iter().all(Value::is_object) && !items.is_empty() => {
            let mut merged = Value::Object(Map::new());
            for item in items {
                super::source::merge_value(&mut merged, item);
            }
            merged
        }
        other => other,
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

fn type_error(path: &str, expected: &str, got: &Value) -> NormError {
    let shown = match got {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    NormError::Invalid(format!(
        "'{path}' expected type '{expected}', got unconvertible type '{}', value: '{shown}'",
        type_name(got)
    ))
}

fn check_value(kind: Kind, value: Value, path: &str, canonical: bool) -> Result<Value, NormError> {
    match kind {
        Any => Ok(value),
        Bool => match unwrap_single(value) {
            v @ Value::Bool(_) => Ok(v),
            v => Err(type_error(path, "bool", &v)),
        },
        Int => match unwrap_single(value) {
            Value::Number(n) if n.is_i64() || n.is_u64() => Ok(Value::Number(n)),
            Value::Number(n) => match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Value::from(f as i64)),
                _ => Err(type_error(path, "int", &Value::Number(n))),
            },
            v => Err(type_error(path, "int", &v)),
        },
        Str => match unwrap_single(value) {
            v @ Value::String(_) => Ok(v),
            v => Err(type_error(path, "string", &v)),
        },
        Duration => match unwrap_single(value) {
            Value::String(s) => match parse_duration(&s) {
                Ok(_) => Ok(Value::String(s)),
                Err(e) => Err(NormError::Invalid(format!(
                    "{path}: invalid duration: {s:?}: {e}"
                ))),
            },
            v => Err(type_error(path, "string", &v)),
        },
        StrList => match value {
            Value::Array(items) if items.iter().all(Value::is_string) => Ok(Value::Array(items)),
            v => Err(type_error(path, "[]string", &v)),
        },
        StrMap => match merge_blocks(value) {
            Value::Object(m) if m.values().all(Value::is_string) => Ok(Value::Object(m)),
            v => Err(type_error(path, "map[string]string", &v)),
        },
        Object => match merge_blocks(value) {
            v @ Value::Object(_) => Ok(v),
            v => Err(type_error(path, "map[string]interface {}", &v)),
        },
        Section(table) => match merge_blocks(value) {
            Value::Object(m) if canonical => Ok(Value::Object(normalize_section(table, m, path)?)),
            Value::Object(m) => Ok(Value::Object(normalize_keys_kept(table, m, path)?)),
            v => Err(type_error(path, "map[string]interface {}", &v)),
        },
        Service => normalize_definition(SERVICE, true, value, path),
        Services | Checks => {
            let is_service = matches!(kind, Services);
            let table = if is_service { SERVICE } else { CHECK };
            match value {
                Value::Array(items) => {
                    let mut out = Vec::with_capacity(items.len());
                    for (i, item) in items.into_iter().enumerate() {
                        let item_path = format!("{path}[{i}]");
                        out.push(normalize_definition(table, is_service, item, &item_path)?);
                    }
                    Ok(Value::Array(out))
                }
                single => normalize_definition(table, is_service, single, path),
            }
        }
    }
}

/// Like [`normalize_section`] but keeps key spellings (sections nested in definitions).
fn normalize_keys_kept(
    table: &'static [Key],
    obj: Map<String, Value>,
    prefix: &str,
) -> Result<Map<String, Value>, NormError> {
    let mut out = Map::new();
    for (key, value) in obj {
        let Some(entry) = lookup(table, &key) else {
            return Err(NormError::UnknownKey(join(prefix, &key)));
        };
        if value.is_null() {
            continue;
        }
        let value = check_value(entry.kind, value, &join(prefix, entry.name), false)?;
        out.insert(key, value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn canonicalizes_top_level_and_sections() {
        let m = normalize(obj(
            json!({"NodeName": "n", "Ports": {"HTTP": 1}, "datacenter": null}),
        ))
        .unwrap();
        assert_eq!(
            Value::Object(m),
            json!({"node_name": "n", "ports": {"http": 1}})
        );
    }

    #[test]
    fn unknown_keys_report_paths() {
        let cases = [
            (json!({"servie": {}}), "servie"),
            (json!({"ports": {"htp": 1}}), "ports.htp"),
            (json!({"service": {"name": "a", "prot": 1}}), "service.prot"),
            (
                json!({"services": [{"name": "a"}, {"prot": 1}]}),
                "services[1].prot",
            ),
            (
                json!({"service": {"check": {"intervl": "1s"}}}),
                "service.check.intervl",
            ),
            (
                json!({"checks": [{"ttl": "1s", "foo": 1}]}),
                "checks[0].foo",
            ),
            (
                json!({"acl": {"tokens": {"agnet": "x"}}}),
                "acl.tokens.agnet",
            ),
            (
                json!({"service": {"connect": {"sidecar_service": {"prot": 1}}}}),
                "service.connect.sidecar_service.prot",
            ),
        ];
        for (input, path) in cases {
            assert_eq!(
                normalize(obj(input)),
                Err(NormError::UnknownKey(path.into()))
            );
        }
    }

    #[test]
    fn definitions_keep_spelling_and_accept_aliases() {
        let m = normalize(obj(json!({"service": {
            "ID": "w1", "Name": "web", "Port": 80, "EnableTagOverride": true,
            "Check": {"CheckID": "c", "ScriptArgs": ["x"], "Interval": "10s",
                      "DeregisterCriticalServiceAfter": "1m", "TLSSkipVerify": true,
                      "DockerContainerID": "d", "ServiceID": "w1"}
        }})))
        .unwrap();
        let svc = &m["services"][0];
        assert_eq!(svc["ID"], "w1");
        assert_eq!(svc["Check"]["ScriptArgs"], json!(["x"]));
    }

    #[test]
    fn service_and_services_become_one_list() {
        let m = normalize(obj(json!({
            "services": [{"name": "a"}, {"name": "b"}],
            "service": {"name": "c"},
            "check": [{"name": "x"}, {"name": "y"}],
        })))
        .unwrap();
        let names: Vec<&str> = m["services"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(m["checks"].as_array().unwrap().len(), 2);
        assert!(!m.contains_key("service") && !m.contains_key("check"));
    }

    #[test]
    fn repeated_check_blocks_in_service_move_to_checks() {
        let m = normalize(obj(json!({"service": {"name": "a",
            "check": [{"ttl": "1s"}, {"ttl": "2s"}], "checks": [{"ttl": "3s"}]}})))
        .unwrap();
        let svc = &m["services"][0];
        assert!(svc.get("check").is_none());
        assert_eq!(svc["checks"].as_array().unwrap().len(), 3);
        let m = normalize(obj(
            json!({"service": {"name": "a", "check": [{"ttl": "1s"}]}}),
        ))
        .unwrap();
        assert_eq!(m["services"][0]["check"], json!({"ttl": "1s"}));
    }

    #[test]
    fn type_errors_name_the_key() {
        let err = normalize(obj(json!({"ports": {"http": "8500"}}))).unwrap_err();
        assert_eq!(
            err,
            NormError::Invalid(
                "'ports.http' expected type 'int', got unconvertible type 'string', value: '8500'"
                    .into()
            )
        );
        let err = normalize(obj(json!({"server": "yes"}))).unwrap_err();
        assert!(
            matches!(err, NormError::Invalid(m) if m.starts_with("'server' expected type 'bool'"))
        );
        let err = normalize(obj(json!({"retry_join": "1.2.3.4"}))).unwrap_err();
        assert!(matches!(err, NormError::Invalid(m) if m.contains("'[]string'")));
        let err = normalize(obj(json!({"services": [{"name": "a", "port": "80"}]}))).unwrap_err();
        assert!(matches!(err, NormError::Invalid(m) if m.starts_with("'services[0].port'")));
        let err = normalize(obj(json!({"retry_interval": "soon"}))).unwrap_err();
        assert_eq!(
            err,
            NormError::Invalid(
                "retry_interval: invalid duration: \"soon\": time: invalid duration \"soon\""
                    .into()
            )
        );
        let err = normalize(obj(json!({"check": {"interval": "5"}}))).unwrap_err();
        assert!(
            matches!(err, NormError::Invalid(m) if m.starts_with("check.interval: invalid duration"))
        );
    }

    #[test]
    fn hcl_shapes_are_unwrapped_and_merged() {
        let m = normalize(obj(json!({
            "ports": [{"http": 1}, {"dns": 2}],
            "server": [true],
            "http_port_float": null,
        })));
        assert_eq!(m, Err(NormError::UnknownKey("http_port_float".into())));
        let m = normalize(obj(
            json!({"ports": [{"http": 1}, {"dns": 2.0}], "server": [true]}),
        ))
        .unwrap();
        assert_eq!(m["ports"], json!({"http": 1, "dns": 2}));
        assert_eq!(m["server"], json!(true));
    }

    #[test]
    fn unknown_but_valid_consul_keys_are_accepted() {
        let m = normalize(obj(json!({
            "connect": {"enabled": true, "ca_config": {"x": 1}},
            "peering": {"enabled": true},
            "audit": {"enabled": false, "sink": {"a": {"type": "file"}}},
            "telemetry": {"prometheus_retention_time": "1m"},
            "ui_config": {"enabled": true, "metrics_proxy": {"base_url": "http://x"}},
            "watches": [{"type": "key", "key": "k"}],
            "limits": {"http_max_conns_per_client": 10},
            "tls": {"defaults": {"verify_incoming": true}},
        })))
        .unwrap();
        assert_eq!(m.len(), 8);
    }
}
