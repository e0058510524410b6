//! Consul's ACL rule language, in HCL or JSON:
//!
//! ```hcl
//! key_prefix "app/" { policy = "write" }
//! service "web" { policy = "read" }
//! operator = "read"
//! ```
//!
//! Both forms decode to the same JSON value, which is turned into a flat list of rules.

use super::authz::{Access, Resource};
use serde_json::{Map, Value};

/// The rules of the built-in global-management policy (Consul's text).
pub const MANAGEMENT_RULES: &str = r#"
acl = "write"
agent_prefix "" {
  policy = "write"
}
event_prefix "" {
  policy = "write"
}
key_prefix "" {
  policy = "write"
}
keyring = "write"
node_prefix "" {
  policy = "write"
}
operator = "write"
mesh = "write"
peering = "write"
query_prefix "" {
  policy = "write"
}
service_prefix "" {
  policy = "write"
  intentions = "write"
}
session_prefix "" {
  policy = "write"
}"#;

/// One rule: an access level on a resource name (exact) or every name with a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub resource: Resource,
    pub name: String,
    pub prefix: bool,
    pub access: Access,
}

/// A parsed policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    pub rules: Vec<Rule>,
}

/// Why a rules text is rejected (the text Consul's policy API answers with).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RuleError {
    #[error("Failed to parse ACL rules: {0}")]
    Syntax(String),
    #[error("Failed to parse ACL rules: unknown rule type {0:?}")]
    UnknownKey(String),
    #[error("Invalid {0} policy: {1:?}")]
    BadAccess(String, String),
}

const SCALARS: &[(&str, Resource)] = &[
    ("operator", Resource::Operator),
    ("acl", Resource::Acl),
    ("keyring", Resource::Keyring),
    ("mesh", Resource::Mesh),
    ("peering", Resource::Peering),
];

const NAMED: &[(&str, Resource)] = &[
    ("key", Resource::Key),
    ("service", Resource::Service),
    ("node", Resource::Node),
    ("session", Resource::Session),
    ("agent", Resource::Agent),
    ("event", Resource::Event),
    ("query", Resource::Query),
];

/// Parse a policy's rules: JSON when the text is a JSON object, HCL otherwise.
pub fn parse_rules(text: &str) -> Result<Rules, RuleError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Ok(Rules::default());
    }
    let v: Value = if trimmed.starts_with('{') {
        serde_json::from_str(trimmed).map_err(|e| RuleError::Syntax(e.to_string()))?
    } else {
        crate::config::hcl_bounded::from_str(trimmed).map_err(|e| {
            RuleError::Syntax(e.to_string().lines().next().unwrap_or("").to_string())
        })?
    };
    let Value::Object(top) = v else {
        return Err(RuleError::Syntax("rules must be an object".into()));
    };
    let mut rules = Vec::new();
    for (key, val) in top {
        if let Some((_, res)) = SCALARS.iter().find(|(n, _)| *n == key) {
            let access = access_of(&key, &val, false)?;
            rules.push(Rule {
                resource: *res,
                name: String::new(),
                prefix: true,
                access,
            });
            continue;
        }
        let (base, prefix) = match key.strip_suffix("_prefix") {
            Some(b) => (b, true),
            None => (key.as_str(), false),
        };
        let Some((_, res)) = NAMED.iter().find(|(n, _)| *n == base) else {
            return Err(RuleError::UnknownKey(key));
        };
        for (name, body) in blocks(&key, val)? {
            let p = body
                .get("policy")
                .ok_or_else(|| RuleError::BadAccess(key.clone(), String::new()))?;
            let access = access_of(&key, p, *res == Resource::Key)?;
            rules.push(Rule {
                resource: *res,
                name,
                prefix,
                access,
            });
        }
    }
    Ok(Rules { rules })
}

/// The labelled blocks of one rule type: `{"name": {...}}`, or a list of such objects
/// (HCL with repeated blocks).
/// One labelled rule block: its name and body.
type Block = (String, Map<String, Value>);

fn blocks(key: &str, v: Value) -> Result<Vec<Block>, RuleError> {
    let objs = match v {
        Value::Object(m) => vec![m],
        Value::Array(a) => a
            .into_iter()
            .map(|x| match x {
                Value::Object(m) => Ok(m),
                _ => Err(RuleError::Syntax(format!("{key}: expected a block"))),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(RuleError::Syntax(format!("{key}: expected a block"))),
    };
    let mut out = Vec::new();
    for m in objs {
        for (name, body) in m {
            match body {
                Value::Object(b) => out.push((name, b)),
                Value::Array(list) => {
                    for b in list {
                        match b {
                            Value::Object(b) => out.push((name.clone(), b)),
                            _ => {
                                return Err(RuleError::Syntax(format!(
                                    "{key} {name:?}: expected a block"
                                )))
                            }
                        }
                    }
                }
                _ => {
                    return Err(RuleError::Syntax(format!(
                        "{key} {name:?}: expected a block with a policy"
                    )))
                }
            }
        }
    }
    Ok(out)
}

fn access_of(key: &str, v: &Value, list_ok: bool) -> Result<Access, RuleError> {
    let s = v.as_str().unwrap_or("");
    match s {
        "read" => Ok(Access::Read),
        "write" => Ok(Access::Write),
        "deny" => Ok(Access::Deny),
        "list" if list_ok => Ok(Access::List),
        _ => Err(RuleError::BadAccess(
            key.trim_end_matches("_prefix").to_string(),
            s.to_string(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hcl_and_json_give_the_same_rules() {
        let hcl = r#"
            key_prefix "app/" { policy = "write" }
            key_prefix "" { policy = "read" }
            key "secret" { policy = "deny" }
            service "web" { policy = "write" }
            operator = "read"
        "#;
        let json = r#"{"key_prefix": {"app/": {"policy": "write"}, "": {"policy": "read"}},
            "key": {"secret": {"policy": "deny"}}, "service": {"web": {"policy": "write"}},
            "operator": "read"}"#;
        let mut a = parse_rules(hcl).unwrap().rules;
        let mut b = parse_rules(json).unwrap().rules;
        let k = |r: &Rule| (format!("{:?}", r.resource), r.name.clone(), r.prefix);
        a.sort_by_key(k);
        b.sort_by_key(k);
        assert_eq!(a, b);
        assert_eq!(a.len(), 5);
        assert!(a.contains(&Rule {
            resource: Resource::Key,
            name: "app/".into(),
            prefix: true,
            access: Access::Write
        }));
    }

    #[test]
    fn management_rules_parse() {
        let r = parse_rules(MANAGEMENT_RULES).unwrap();
        assert_eq!(r.rules.len(), 12);
        assert!(r
            .rules
            .iter()
            .all(|r| r.access == Access::Write && r.name.is_empty()));
    }

    #[test]
    fn bad_rules_are_rejected() {
        assert_eq!(
            parse_rules(r#"kye "a" { policy = "read" }"#),
            Err(RuleError::UnknownKey("kye".into()))
        );
        assert_eq!(
            parse_rules(r#"key "a" { policy = "rw" }"#),
            Err(RuleError::BadAccess("key".into(), "rw".into()))
        );
        assert!(parse_rules(r#"service "a" { policy = "list" }"#).is_err());
        assert!(parse_rules("key \"a\" {").is_err());
        assert!(parse_rules("[1]").is_err());
        assert_eq!(parse_rules("  ").unwrap(), Rules::default());
    }
}

#[cfg(test)]
mod hostile_tests {
    use super::*;

    /// Deeply nested rule text is refused within a tokio worker's 2 MiB stack.
    #[test]
    fn deep_nesting_does_not_overflow_the_stack() {
        let t = std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(|| {
                for text in [
                    format!(
                        "key \"a\" {{ policy = {}\"read\"{} }}",
                        "[".repeat(50_000),
                        "]".repeat(50_000)
                    ),
                    format!("x = {}1{}", "(".repeat(50_000), ")".repeat(50_000)),
                    format!("x = {}", "{a = ".repeat(50_000)),
                    "key \"a\" { ".repeat(50_000),
                    format!("x = {}", vec!["1"; 50_000].join(" + ")),
                ] {
                    let e = parse_rules(&text).unwrap_err();
                    assert!(matches!(e, RuleError::Syntax(_)), "{e}");
                }
            })
            .unwrap();
        t.join().expect("no stack overflow");
    }
}
