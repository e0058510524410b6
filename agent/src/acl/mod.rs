//! Access control lists, as Consul's: tokens, policies and roles (replicated through Raft
//! by the store), the rule language (HCL or JSON, [`rules`]) and the authorizer that
//! answers "may this token do that" ([`authz`]). Pure: no I/O; the agent facade resolves a
//! token's secret to an [`Authorizer`] from the store and the HTTP and DNS layers ask it.

pub mod authz;
pub mod rules;

pub use authz::{Access, Authorizer, Resource};
pub use rules::{parse_rules, RuleError, Rules};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The built-in policy that grants everything.
pub const GLOBAL_MANAGEMENT_ID: &str = "00000000-0000-0000-0000-000000000001";
/// Its name.
pub const GLOBAL_MANAGEMENT_NAME: &str = "global-management";
/// The anonymous token's accessor ID (used when a request carries no token).
pub const ANONYMOUS_ID: &str = "00000000-0000-0000-0000-000000000002";
/// The anonymous token's secret.
pub const ANONYMOUS_SECRET: &str = "anonymous";

/// A link from a token or role to a policy (by ID or, on input, by name).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "PascalCase", default)]
pub struct Link {
    #[serde(rename = "ID", alias = "id", alias = "Id")]
    pub id: String,
    #[serde(alias = "name")]
    pub name: String,
}

/// A service identity: `service:write` on the service and its sidecar, read on every
/// service and node (Consul's templated policy).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct ServiceIdentity {
    #[serde(alias = "service_name")]
    pub service_name: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub datacenters: Vec<String>,
}

/// A node identity: `node:write` on the node, `service:read` everywhere.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodeIdentity {
    #[serde(alias = "node_name")]
    pub node_name: String,
    #[serde(alias = "datacenter")]
    pub datacenter: String,
}

/// An ACL token.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct AclToken {
    #[serde(rename = "AccessorID", alias = "accessor_id", alias = "AccessorId")]
    pub accessor_id: String,
    #[serde(rename = "SecretID", alias = "secret_id", alias = "SecretId")]
    pub secret_id: String,
    #[serde(alias = "description")]
    pub description: String,
    #[serde(alias = "policies")]
    pub policies: Vec<Link>,
    #[serde(alias = "roles")]
    pub roles: Vec<Link>,
    #[serde(alias = "service_identities", skip_serializing_if = "Vec::is_empty")]
    pub service_identities: Vec<ServiceIdentity>,
    #[serde(alias = "node_identities", skip_serializing_if = "Vec::is_empty")]
    pub node_identities: Vec<NodeIdentity>,
    #[serde(alias = "local")]
    pub local: bool,
    #[serde(alias = "create_time")]
    pub create_time: String,
    pub create_index: u64,
    pub modify_index: u64,
}

/// An ACL policy.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct AclPolicy {
    #[serde(rename = "ID", alias = "id", alias = "Id")]
    pub id: String,
    #[serde(alias = "name")]
    pub name: String,
    #[serde(alias = "description")]
    pub description: String,
    #[serde(alias = "rules")]
    pub rules: String,
    #[serde(alias = "datacenters")]
    pub datacenters: Option<Vec<String>>,
    pub create_index: u64,
    pub modify_index: u64,
}

/// An ACL role: a named set of policies and identities tokens can link to.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct AclRole {
    #[serde(rename = "ID", alias = "id", alias = "Id")]
    pub id: String,
    #[serde(alias = "name")]
    pub name: String,
    #[serde(alias = "description")]
    pub description: String,
    #[serde(alias = "policies")]
    pub policies: Vec<Link>,
    #[serde(alias = "service_identities", skip_serializing_if = "Vec::is_empty")]
    pub service_identities: Vec<ServiceIdentity>,
    #[serde(alias = "node_identities", skip_serializing_if = "Vec::is_empty")]
    pub node_identities: Vec<NodeIdentity>,
    pub create_index: u64,
    pub modify_index: u64,
}

/// The `acl { }` configuration block, deprecated top-level keys folded in.
#[derive(Debug, Clone, PartialEq)]
pub struct AclConfig {
    pub enabled: bool,
    /// `allow` (the default) or `deny`: what a token may do that no rule covers.
    pub default_allow: bool,
    /// `extend-cache` (default), `allow`, `deny`, `async-cache`.
    pub down_policy: String,
    /// Key listing (`?keys`, `?recurse`) needs `list` on the prefix.
    pub enable_key_list_policy: bool,
    /// How long a client agent caches a resolved token.
    pub token_ttl: std::time::Duration,
    /// `tokens.initial_management` (or `master`): a management token created by the leader.
    pub initial_management: Option<String>,
    /// `tokens.default`: used for requests without a token (instead of anonymous).
    pub default_token: Option<String>,
    /// `tokens.agent`: the agent's own operations.
    pub agent_token: Option<String>,
    /// `tokens.agent_recovery` (or `agent_master`): agent endpoints when servers are down.
    pub agent_recovery: Option<String>,
    /// `tokens.dns`: DNS answers (falls back to the default token).
    pub dns_token: Option<String>,
}

impl Default for AclConfig {
    fn default() -> Self {
        AclConfig {
            enabled: false,
            default_allow: true,
            down_policy: "extend-cache".into(),
            enable_key_list_policy: false,
            token_ttl: std::time::Duration::from_secs(30),
            initial_management: None,
            default_token: None,
            agent_token: None,
            agent_recovery: None,
            dns_token: None,
        }
    }
}

/// Errors in the `acl` configuration block.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AclConfigError {
    #[error("acl.default_policy must be \"allow\" or \"deny\", got {0:?}")]
    DefaultPolicy(String),
    #[error("acl.down_policy must be one of allow, deny, extend-cache, async-cache, got {0:?}")]
    DownPolicy(String),
    #[error("acl.token_ttl: {0}")]
    TokenTtl(String),
}

impl AclConfig {
    /// Read the merged `acl` configuration value.
    pub fn from_value(v: &Value) -> Result<AclConfig, AclConfigError> {
        let mut c = AclConfig::default();
        let s = |path: &[&str]| -> Option<String> {
            let mut cur = v;
            for p in path {
                cur = cur.get(*p)?;
            }
            cur.as_str().filter(|s| !s.is_empty()).map(str::to_string)
        };
        c.enabled = v.get("enabled").and_then(Value::as_bool).unwrap_or(false);
        c.enable_key_list_policy = v
            .get("enable_key_list_policy")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if let Some(p) = s(&["default_policy"]) {
            c.default_allow = match p.as_str() {
                "allow" => true,
                "deny" => false,
                _ => return Err(AclConfigError::DefaultPolicy(p)),
            };
        }
        if let Some(p) = s(&["down_policy"]) {
            if !["allow", "deny", "extend-cache", "async-cache"].contains(&p.as_str()) {
                return Err(AclConfigError::DownPolicy(p));
            }
            c.down_policy = p;
        }
        if let Some(t) = s(&["token_ttl"]) {
            c.token_ttl = crate::types::parse_duration(&t)
                .map_err(|e| AclConfigError::TokenTtl(e.to_string()))?;
        }
        c.initial_management =
            s(&["tokens", "initial_management"]).or_else(|| s(&["tokens", "master"]));
        c.default_token = s(&["tokens", "default"]);
        c.agent_token = s(&["tokens", "agent"]);
        c.agent_recovery =
            s(&["tokens", "agent_recovery"]).or_else(|| s(&["tokens", "agent_master"]));
        c.dns_token = s(&["tokens", "dns"]);
        Ok(c)
    }
}

/// The current time as RFC 3339 in UTC with nanoseconds (Go's `time.Time` JSON form).
pub fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(d.as_secs() as i64, d.subsec_nanos())
}

/// Format seconds since the epoch as RFC 3339 UTC with nanoseconds.
pub fn rfc3339(secs: i64, nanos: u32) -> String {
    let (y, mo, d, h, mi, s) = crate::types::utc_parts(secs);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{nanos:09}Z")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.000000005Z");
        assert_eq!(rfc3339(1_795_000_000, 0), "2026-11-18T11:06:40.000000000Z");
    }

    #[test]
    fn config_block() {
        let c = AclConfig::from_value(&json!({
            "enabled": true, "default_policy": "deny",
            "tokens": {"master": "m", "agent": "a", "default": ""}
        }))
        .unwrap();
        assert!(c.enabled && !c.default_allow);
        assert_eq!(c.initial_management.as_deref(), Some("m"));
        assert_eq!(c.agent_token.as_deref(), Some("a"));
        assert_eq!(c.default_token, None);
        assert_eq!(
            AclConfig::from_value(&json!({"default_policy": "maybe"})),
            Err(AclConfigError::DefaultPolicy("maybe".into()))
        );
        assert!(AclConfig::from_value(&Value::Null).unwrap().default_allow);
    }
}
