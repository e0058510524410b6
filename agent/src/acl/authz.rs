//! The authorizer: a token's policies merged into one rule set, queried per resource.
//!
//! Semantics as Consul's: an exact rule beats prefix rules, the longest matching prefix
//! wins, and where several policies give the same rule the strongest of deny > write >
//! list > read is kept. A name no rule covers falls back to `acl.default_policy`, except
//! for the `acl` resource, which only a rule (or the management policy) grants.

use super::rules::Rules;
use std::collections::HashMap;
use std::fmt;

/// What can be protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    Key,
    Service,
    Node,
    Session,
    Agent,
    Event,
    Query,
    Operator,
    Acl,
    Keyring,
    Mesh,
    Peering,
}

impl Resource {
    fn as_str(self) -> &'static str {
        match self {
            Resource::Key => "key",
            Resource::Service => "service",
            Resource::Node => "node",
            Resource::Session => "session",
            Resource::Agent => "agent",
            Resource::Event => "event",
            Resource::Query => "query",
            Resource::Operator => "operator",
            Resource::Acl => "acl",
            Resource::Keyring => "keyring",
            Resource::Mesh => "mesh",
            Resource::Peering => "peering",
        }
    }

    /// Scalar resources have no names (`operator = "read"`).
    fn scalar(self) -> bool {
        matches!(
            self,
            Resource::Operator
                | Resource::Acl
                | Resource::Keyring
                | Resource::Mesh
                | Resource::Peering
        )
    }
}

/// An access level of a rule, or a permission asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    Deny,
    Read,
    List,
    Write,
}

impl Access {
    fn as_str(self) -> &'static str {
        match self {
            Access::Deny => "deny",
            Access::Read => "read",
            Access::List => "list",
            Access::Write => "write",
        }
    }

    /// Consul's precedence when merging policies: deny > write > list > read.
    fn rank(self) -> u8 {
        match self {
            Access::Deny => 3,
            Access::Write => 2,
            Access::List => 1,
            Access::Read => 0,
        }
    }

    /// Whether a rule at this level grants `need`.
    fn grants(self, need: Access) -> bool {
        match self {
            Access::Write => true,
            Access::List => matches!(need, Access::List | Access::Read),
            Access::Read => need == Access::Read,
            Access::Deny => false,
        }
    }
}

/// Who a decision was made for, for the denial message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    Anonymous,
    Token(String),
    /// ACLs are disabled or the request is the agent's own.
    Internal,
}

/// A denial, worded as Consul's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    pub identity: Identity,
    pub resource: Resource,
    pub need: Access,
    pub name: String,
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let who = match &self.identity {
            Identity::Anonymous => "anonymous token".to_string(),
            Identity::Token(a) => format!("token with AccessorID '{a}'"),
            Identity::Internal => "token".to_string(),
        };
        write!(
            f,
            "Permission denied: {who} lacks permission '{}:{}'",
            self.resource.as_str(),
            self.need.as_str()
        )?;
        if !self.resource.scalar() {
            write!(f, " on {:?}", self.name)?;
        }
        Ok(())
    }
}

/// A token's effective permissions.
#[derive(Debug, Clone)]
pub struct Authorizer {
    identity: Identity,
    management: bool,
    default_allow: bool,
    exact: HashMap<(Resource, String), Access>,
    /// Per resource, prefix rules longest first.
    prefixes: HashMap<Resource, Vec<(String, Access)>>,
}

impl Authorizer {
    /// Everything allowed (ACLs disabled, or the agent's own work).
    pub fn allow_all() -> Authorizer {
        Authorizer {
            identity: Identity::Internal,
            management: true,
            default_allow: true,
            exact: HashMap::new(),
            prefixes: HashMap::new(),
        }
    }

    /// A management token (the global-management policy).
    pub fn management(identity: Identity) -> Authorizer {
        Authorizer {
            management: true,
            ..Authorizer::from_rules(identity, &[], true)
        }
    }

    /// Merge the rules of a token's policies over the default policy.
    pub fn from_rules(identity: Identity, policies: &[Rules], default_allow: bool) -> Authorizer {
        let mut exact: HashMap<(Resource, String), Access> = HashMap::new();
        let mut pre: HashMap<(Resource, String), Access> = HashMap::new();
        for p in policies {
            for r in &p.rules {
                let slot = if r.prefix { &mut pre } else { &mut exact };
                let e = slot.entry((r.resource, r.name.clone())).or_insert(r.access);
                if r.access.rank() > e.rank() {
                    *e = r.access;
                }
            }
        }
        let mut prefixes: HashMap<Resource, Vec<(String, Access)>> = HashMap::new();
        for ((res, name), a) in pre {
            prefixes.entry(res).or_default().push((name, a));
        }
        for v in prefixes.values_mut() {
            v.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        }
        Authorizer {
            identity,
            management: false,
            default_allow,
            exact,
            prefixes,
        }
    }

    /// Whether this is a management token (or ACLs are off).
    pub fn is_management(&self) -> bool {
        self.management
    }

    /// The rule that covers a name, if any.
    fn rule(&self, res: Resource, name: &str) -> Option<Access> {
        if let Some(a) = self.exact.get(&(res, name.to_string())) {
            return Some(*a);
        }
        self.prefixes
            .get(&res)?
            .iter()
            .find(|(p, _)| name.starts_with(p.as_str()))
            .map(|(_, a)| *a)
    }

    /// May this token do `need` on `res` named `name`?
    pub fn allowed(&self, res: Resource, name: &str, need: Access) -> bool {
        if self.management {
            return true;
        }
        match self.rule(res, name) {
            Some(a) => a.grants(need),
            None => self.default_allow && res != Resource::Acl,
        }
    }

    /// [`allowed`](Self::allowed) as a result with Consul's denial text.
    pub fn check(&self, res: Resource, name: &str, need: Access) -> Result<(), Denied> {
        if self.allowed(res, name, need) {
            Ok(())
        } else {
            Err(self.denied(res, name, need))
        }
    }

    /// The denial for a permission.
    pub fn denied(&self, res: Resource, name: &str, need: Access) -> Denied {
        Denied {
            identity: self.identity.clone(),
            resource: res,
            need,
            name: name.to_string(),
        }
    }

    /// Write on every key under a prefix (recursive delete): write on the prefix and no
    /// rule below it that grants less.
    pub fn key_write_prefix(&self, prefix: &str) -> bool {
        if self.management {
            return true;
        }
        if !self.allowed(Resource::Key, prefix, Access::Write) {
            return false;
        }
        let below = |name: &String, a: &Access| {
            name.starts_with(prefix) && name.len() > prefix.len() && *a != Access::Write
        };
        let exact_below = self
            .exact
            .iter()
            .any(|((r, n), a)| *r == Resource::Key && below(n, a));
        let prefix_below = self
            .prefixes
            .get(&Resource::Key)
            .map(|v| v.iter().any(|(n, a)| below(n, a)))
            .unwrap_or(false);
        !(exact_below || prefix_below)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::parse_rules;

    fn authz(rules: &[&str], default_allow: bool) -> Authorizer {
        let p: Vec<Rules> = rules.iter().map(|r| parse_rules(r).unwrap()).collect();
        Authorizer::from_rules(Identity::Token("acc".into()), &p, default_allow)
    }

    #[test]
    fn exact_beats_prefix_and_longest_prefix_wins() {
        let a = authz(
            &[r#"
            key_prefix "" { policy = "read" }
            key_prefix "app/" { policy = "write" }
            key_prefix "app/secret/" { policy = "deny" }
            key "app/secret/open" { policy = "read" }
        "#],
            false,
        );
        assert!(a.allowed(Resource::Key, "x", Access::Read));
        assert!(!a.allowed(Resource::Key, "x", Access::Write));
        assert!(a.allowed(Resource::Key, "app/x", Access::Write));
        assert!(!a.allowed(Resource::Key, "app/secret/x", Access::Read));
        assert!(a.allowed(Resource::Key, "app/secret/open", Access::Read));
        assert!(!a.allowed(Resource::Key, "app/secret/open", Access::Write));
        assert!(!a.allowed(Resource::Service, "web", Access::Read));
        assert!(!a.key_write_prefix("app/"));
        assert!(a.key_write_prefix("app/other/"));
    }

    #[test]
    fn merging_policies_keeps_the_strongest_and_deny_first() {
        let a = authz(
            &[
                r#"service "web" { policy = "read" }"#,
                r#"service "web" { policy = "write" }"#,
                r#"node "n1" { policy = "write" }"#,
                r#"node "n1" { policy = "deny" }"#,
            ],
            true,
        );
        assert!(a.allowed(Resource::Service, "web", Access::Write));
        assert!(!a.allowed(Resource::Node, "n1", Access::Read));
        // default allow covers the rest, but never ACL management
        assert!(a.allowed(Resource::Key, "k", Access::Write));
        assert!(!a.allowed(Resource::Acl, "", Access::Read));
    }

    #[test]
    fn list_grants_read_and_list_not_write() {
        let a = authz(&[r#"key_prefix "l/" { policy = "list" }"#], false);
        assert!(a.allowed(Resource::Key, "l/a", Access::List));
        assert!(a.allowed(Resource::Key, "l/a", Access::Read));
        assert!(!a.allowed(Resource::Key, "l/a", Access::Write));
    }

    #[test]
    fn denial_texts() {
        let a = authz(&[], false);
        assert_eq!(
            a.check(Resource::Key, "foo", Access::Write).unwrap_err().to_string(),
            "Permission denied: token with AccessorID 'acc' lacks permission 'key:write' on \"foo\""
        );
        let anon = Authorizer::from_rules(Identity::Anonymous, &[], false);
        assert_eq!(
            anon.check(Resource::Operator, "", Access::Read)
                .unwrap_err()
                .to_string(),
            "Permission denied: anonymous token lacks permission 'operator:read'"
        );
        assert!(Authorizer::management(Identity::Anonymous).allowed(
            Resource::Acl,
            "",
            Access::Write
        ));
    }
}
