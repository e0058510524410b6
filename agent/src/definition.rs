//! Service and check definitions as users write them: in `/v1/agent/service/register`
//! bodies, `/v1/agent/check/register` bodies and config files. Keys are matched
//! case-insensitively with underscores ignored (`ID`, `id`, `service_id`, `ServiceID`), as
//! Consul does, because Python clients send lower-case keys; map-valued fields (`Meta`,
//! `Header`, `TaggedAddresses`) keep their keys as written.

use crate::types::{
    parse_duration, CheckDefinition, HealthCheck, NodeService, ServiceAddress, Weights,
    HEALTH_CRITICAL,
};
use serde_json::Value;
use std::collections::BTreeMap;

/// A bad definition; the text is what the HTTP layer returns with a 400.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{0}")]
pub struct DefinitionError(pub String);

fn bad(msg: impl Into<String>) -> DefinitionError {
    DefinitionError(msg.into())
}

fn norm(k: &str) -> String {
    k.chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(|c| c.to_lowercase())
        .collect()
}

/// Case- and underscore-insensitive view of a JSON object.
struct Obj<'a> {
    map: BTreeMap<String, &'a Value>,
    what: &'static str,
}

impl<'a> Obj<'a> {
    fn new(v: &'a Value, what: &'static str) -> Result<Self, DefinitionError> {
        let o = v.as_object().ok_or_else(|| {
            bad(format!(
                "Request decode failed: {what} must be a JSON object"
            ))
        })?;
        Ok(Obj {
            map: o.iter().map(|(k, v)| (norm(k), v)).collect(),
            what,
        })
    }

    fn get(&self, names: &[&str]) -> Option<&'a Value> {
        names
            .iter()
            .find_map(|n| self.map.get(&norm(n)).copied())
            .filter(|v| !v.is_null())
    }

    fn string(&self, names: &[&str]) -> Result<String, DefinitionError> {
        match self.get(names) {
            None => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(Value::Number(n)) => Ok(n.to_string()),
            Some(_) => Err(bad(format!(
                "Request decode failed: {}.{} must be a string",
                self.what, names[0]
            ))),
        }
    }

    /// A duration field: a Go duration string or a number of nanoseconds.
    fn duration(&self, names: &[&str]) -> Result<String, DefinitionError> {
        match self.get(names) {
            None => Ok(String::new()),
            Some(Value::String(s)) if s.is_empty() => Ok(String::new()),
            Some(Value::String(s)) => {
                parse_duration(s)
                    .map_err(|e| bad(format!("Request decode failed: {}: {e}", names[0])))?;
                Ok(s.clone())
            }
            Some(Value::Number(n)) => {
                let ns = n.as_f64().unwrap_or(0.0).max(0.0) as u64;
                Ok(crate::types::format_duration(
                    std::time::Duration::from_nanos(ns),
                ))
            }
            Some(_) => Err(bad(format!(
                "Request decode failed: {} must be a duration",
                names[0]
            ))),
        }
    }

    fn int(&self, names: &[&str]) -> Result<i64, DefinitionError> {
        match self.get(names) {
            None => Ok(0),
            Some(Value::Number(n)) => n
                .as_i64()
                .or_else(|| n.as_f64().map(|f| f as i64))
                .ok_or_else(|| {
                    bad(format!(
                        "Request decode failed: {} must be an integer",
                        names[0]
                    ))
                }),
            Some(Value::String(s)) => s.trim().parse().map_err(|_| {
                bad(format!(
                    "Request decode failed: {} must be an integer",
                    names[0]
                ))
            }),
            Some(_) => Err(bad(format!(
                "Request decode failed: {} must be an integer",
                names[0]
            ))),
        }
    }

    fn boolean(&self, names: &[&str]) -> Result<bool, DefinitionError> {
        match self.get(names) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::String(s)) => Ok(matches!(s.as_str(), "true" | "1" | "True")),
            Some(_) => Err(bad(format!(
                "Request decode failed: {} must be a boolean",
                names[0]
            ))),
        }
    }

    fn strings(&self, names: &[&str]) -> Result<Vec<String>, DefinitionError> {
        match self.get(names) {
            None => Ok(Vec::new()),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| {
                    v.as_str().map(str::to_string).ok_or_else(|| {
                        bad(format!(
                            "Request decode failed: {} must be a list of strings",
                            names[0]
                        ))
                    })
                })
                .collect(),
            Some(_) => Err(bad(format!(
                "Request decode failed: {} must be a list of strings",
                names[0]
            ))),
        }
    }

    fn string_map(&self, names: &[&str]) -> Result<BTreeMap<String, String>, DefinitionError> {
        match self.get(names) {
            None => Ok(BTreeMap::new()),
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    other => Ok((k.clone(), other.to_string())),
                })
                .collect(),
            Some(_) => Err(bad(format!(
                "Request decode failed: {} must be an object",
                names[0]
            ))),
        }
    }
}

/// A service definition with its checks, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceDef {
    pub service: NodeService,
    pub checks: Vec<CheckDef>,
    pub token: String,
}

/// A check definition, decoded; `check` is the catalog record (status, IDs, names).
#[derive(Debug, Clone, PartialEq)]
pub struct CheckDef {
    pub check: HealthCheck,
    pub token: String,
}

impl CheckDef {
    /// The runner definition (HTTP, TCP, TTL, ...).
    pub fn definition(&self) -> &CheckDefinition {
        &self.check.definition
    }
}

/// Decode a service definition (`/v1/agent/service/register` body or a config `service`).
pub fn decode_service(v: &Value) -> Result<ServiceDef, DefinitionError> {
    let o = Obj::new(v, "service")?;
    let name = o.string(&["Name", "Service"])?;
    if name.is_empty() {
        return Err(bad("Missing service name"));
    }
    let mut id = o.string(&["ID", "ServiceID"])?;
    if id.is_empty() {
        id = name.clone();
    }
    let port = o.int(&["Port"])?;
    if !(0..=65535).contains(&port) {
        return Err(bad(format!("Invalid service port: {port}")));
    }
    let weights = match o.get(&["Weights"]) {
        None => Weights::default(),
        Some(w) => {
            let wo = Obj::new(w, "Weights")?;
            let passing = wo.int(&["Passing"])?;
            let warning = wo.int(&["Warning"])?;
            if passing < 1 {
                return Err(bad("Passing must be greater than 0"));
            }
            Weights { passing, warning }
        }
    };
    let mut tagged = BTreeMap::new();
    if let Some(Value::Object(m)) = o.get(&["TaggedAddresses"]) {
        for (k, v) in m {
            let a = Obj::new(v, "TaggedAddresses")?;
            tagged.insert(
                k.clone(),
                ServiceAddress {
                    address: a.string(&["Address"])?,
                    port: a.int(&["Port"])?,
                },
            );
        }
    }
    let service = NodeService {
        kind: o.string(&["Kind"])?,
        id: id.clone(),
        service: name.clone(),
        tags: o.strings(&["Tags"])?,
        address: o.string(&["Address"])?,
        tagged_addresses: tagged,
        meta: o.string_map(&["Meta"])?,
        port,
        weights,
        enable_tag_override: o.boolean(&["EnableTagOverride"])?,
        create_index: 0,
        modify_index: 0,
    };
    let mut checks = Vec::new();
    let mut raw: Vec<&Value> = Vec::new();
    if let Some(c) = o.get(&["Check"]) {
        raw.push(c);
    }
    match o.get(&["Checks"]) {
        Some(Value::Array(a)) => raw.extend(a.iter()),
        Some(_) => return Err(bad("Request decode failed: Checks must be a list")),
        None => {}
    }
    let n = raw.len();
    for (i, c) in raw.into_iter().enumerate() {
        let mut cd = decode_check(c, Some((&id, &name)))?;
        if cd.check.check_id.is_empty() {
            cd.check.check_id = if n > 1 {
                format!("service:{}:{}", id, i + 1)
            } else {
                format!("service:{id}")
            };
        }
        if cd.check.name.is_empty() {
            cd.check.name = format!("Service '{name}' check");
        }
        checks.push(cd);
    }
    Ok(ServiceDef {
        service,
        checks,
        token: o.string(&["Token"])?,
    })
}

/// Decode a check definition. `service` is `(id, name)` when the check is nested in a
/// service definition.
pub fn decode_check(v: &Value, service: Option<(&str, &str)>) -> Result<CheckDef, DefinitionError> {
    let o = Obj::new(v, "check")?;
    let mut header = BTreeMap::new();
    if let Some(Value::Object(m)) = o.get(&["Header"]) {
        for (k, v) in m {
            let vals = match v {
                Value::Array(a) => a
                    .iter()
                    .map(|x| x.as_str().unwrap_or_default().to_string())
                    .collect(),
                Value::String(s) => vec![s.clone()],
                _ => {
                    return Err(bad(
                        "Request decode failed: Header values must be lists of strings",
                    ))
                }
            };
            header.insert(k.clone(), vals);
        }
    }
    let def = CheckDefinition {
        http: o.string(&["HTTP"])?,
        header,
        method: o.string(&["Method"])?,
        body: o.string(&["Body"])?,
        tls_skip_verify: o.boolean(&["TLSSkipVerify"])?,
        tcp: o.string(&["TCP"])?,
        udp: o.string(&["UDP"])?,
        grpc: o.string(&["GRPC"])?,
        grpc_use_tls: o.boolean(&["GRPCUseTLS"])?,
        args: o.strings(&["Args", "ScriptArgs"])?,
        script: o.string(&["Script"])?,
        interval: o.duration(&["Interval"])?,
        timeout: o.duration(&["Timeout"])?,
        ttl: o.duration(&["TTL"])?,
        alias_node: o.string(&["AliasNode"])?,
        alias_service: o.string(&["AliasService"])?,
        deregister_critical_service_after: o.duration(&["DeregisterCriticalServiceAfter"])?,
        output_max_size: o.int(&["OutputMaxSize"])?.max(0) as u64,
        success_before_passing: o.int(&["SuccessBeforePassing"])?.max(0) as u64,
        failures_before_warning: o.int(&["FailuresBeforeWarning"])?.max(0) as u64,
        failures_before_critical: o.int(&["FailuresBeforeCritical"])?.max(0) as u64,
    };
    let kind = def.kind();
    if kind.is_empty() {
        return Err(bad(
            "Invalid check: TTL must be > 0 for TTL checks; or one of Args/Script, HTTP, TCP, UDP, GRPC, AliasService must be set with an Interval",
        ));
    }
    if matches!(kind, "http" | "tcp" | "udp" | "grpc" | "script") && def.interval.is_empty() {
        return Err(bad(format!(
            "Invalid check: {} checks require an interval",
            kind.to_uppercase()
        )));
    }
    let mut status = o.string(&["Status"])?;
    if status.is_empty() {
        status = HEALTH_CRITICAL.to_string();
    } else if crate::types::valid_status(&status).is_none() {
        return Err(bad(format!("Invalid check status: \"{status}\"")));
    }
    let mut service_id = o.string(&["ServiceID"])?;
    if let Some((sid, _)) = service {
        service_id = sid.to_string();
    }
    let mut name = o.string(&["Name"])?;
    let mut check_id = o.string(&["ID", "CheckID"])?;
    if service.is_none() {
        if name.is_empty() {
            return Err(bad("Missing check name"));
        }
        if check_id.is_empty() {
            check_id = name.clone();
        }
    } else if name.is_empty() && !check_id.is_empty() {
        name = check_id.clone();
    }
    let check = HealthCheck {
        node: String::new(),
        check_id,
        name,
        status,
        notes: o.string(&["Notes"])?,
        output: String::new(),
        service_id,
        service_name: service.map(|(_, n)| n.to_string()).unwrap_or_default(),
        service_tags: Vec::new(),
        check_type: kind.to_string(),
        interval: def.interval.clone(),
        timeout: def.timeout.clone(),
        definition: def,
        create_index: 0,
        modify_index: 0,
    };
    Ok(CheckDef {
        check,
        token: o.string(&["Token"])?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lower_and_camel_case_decode_the_same() {
        let a = decode_service(
            &json!({"name":"web","id":"web1","port":80,"tags":["rails"],"address":"127.0.0.1"}),
        )
        .unwrap();
        let b = decode_service(
            &json!({"Name":"web","ID":"web1","Port":80,"Tags":["rails"],"Address":"127.0.0.1"}),
        )
        .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.service.port, 80);
        assert_eq!(a.service.tags, vec!["rails"]);
    }

    #[test]
    fn id_defaults_to_name_and_meta_keys_are_kept() {
        let s = decode_service(&json!({"Name":"db","Meta":{"Env_Name":"x"}})).unwrap();
        assert_eq!(s.service.id, "db");
        assert_eq!(
            s.service.meta.get("Env_Name").map(String::as_str),
            Some("x")
        );
    }

    #[test]
    fn nested_checks_get_ids_and_names() {
        let s = decode_service(&json!({
            "name":"web",
            "check":{"ttl":"10s"},
            "checks":[{"http":"http://localhost","interval":"10s"}]
        }))
        .unwrap();
        assert_eq!(s.checks.len(), 2);
        assert_eq!(s.checks[0].check.check_id, "service:web:1");
        assert_eq!(s.checks[1].check.check_id, "service:web:2");
        assert_eq!(s.checks[0].check.service_id, "web");
        assert_eq!(s.checks[1].check.check_type, "http");
        assert_eq!(s.checks[0].check.status, "critical");
    }

    #[test]
    fn bad_definitions_are_rejected() {
        assert!(decode_service(&json!({"port":80})).is_err());
        assert!(decode_service(&json!({"name":"x","port":"abc"})).is_err());
        assert!(decode_service(&json!({"name":"x","port":70000})).is_err());
        assert!(decode_service(&json!("str")).is_err());
        assert!(
            decode_check(&json!({"name":"c","http":"http://x"}), None).is_err(),
            "interval required"
        );
        assert!(decode_check(&json!({"name":"c","ttl":"bogus"}), None).is_err());
        assert!(decode_check(&json!({"name":"c","ttl":"5s","status":"nope"}), None).is_err());
        assert!(
            decode_check(&json!({"ttl":"5s"}), None).is_err(),
            "name required"
        );
    }

    #[test]
    fn standalone_check_id_defaults_to_name() {
        let c = decode_check(&json!({"Name":"mem","TTL":"15s","ServiceID":"web"}), None).unwrap();
        assert_eq!(c.check.check_id, "mem");
        assert_eq!(c.check.service_id, "web");
        assert_eq!(c.check.check_type, "ttl");
    }
}
