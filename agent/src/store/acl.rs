//! ACL tables: tokens (by accessor ID), policies and roles (by ID), and the one-time
//! bootstrap marker. Writes validate links and unique names as Consul's state store does;
//! reads return `(index, value)`.

use super::{Store, StoreError, Topic};
use crate::acl::{AclPolicy, AclRole, AclToken, Link, GLOBAL_MANAGEMENT_ID};
use crate::types::Index;

/// Table names (for indexes and watch topics).
pub const TOKENS: &str = "acl-tokens";
pub const POLICIES: &str = "acl-policies";
pub const ROLES: &str = "acl-roles";

/// Everything a token grants: its policies, directly and through its roles, and the
/// rules its service and node identities imply.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Resolved {
    pub token: AclToken,
    pub policies: Vec<AclPolicy>,
    /// Rule texts synthesized from service and node identities.
    pub identity_rules: Vec<String>,
    /// The ACL tables' index when this was read.
    pub index: Index,
}

impl Store {
    fn acl_touch(&mut self, table: &'static str, idx: Index) {
        self.bump(table, idx);
        self.fire(Topic::Table(table));
    }

    /// The index of the ACL tables.
    pub fn acl_index(&self) -> Index {
        self.max_index(&[TOKENS, POLICIES, ROLES])
    }

    /// The one-time bootstrap: store the first management token.
    pub fn acl_bootstrap(&mut self, idx: Index, token: &AclToken) -> Result<(), StoreError> {
        if let Some(done) = self.data.acl_bootstrap_index {
            return Err(StoreError::AclBootstrapDone(done));
        }
        self.acl_token_set(idx, token)?;
        self.data.acl_bootstrap_index = Some(idx);
        Ok(())
    }

    /// Insert each of these policies and tokens unless one with its ID already exists (the
    /// leader's ACL initialization: built-in policy, anonymous and initial tokens).
    pub fn acl_init(&mut self, idx: Index, policies: &[AclPolicy], tokens: &[AclToken]) {
        for p in policies {
            if !self.data.acl_policies.contains_key(&p.id)
                && !self.data.acl_policies.values().any(|o| o.name == p.name)
            {
                let mut p = p.clone();
                p.create_index = idx;
                p.modify_index = idx;
                self.data.acl_policies.insert(p.id.clone(), p);
                self.acl_touch(POLICIES, idx);
            }
        }
        for t in tokens {
            let secret_taken = self
                .data
                .acl_tokens
                .values()
                .any(|o| o.secret_id == t.secret_id);
            if !self.data.acl_tokens.contains_key(&t.accessor_id) && !secret_taken {
                let mut t = t.clone();
                t.create_index = idx;
                t.modify_index = idx;
                self.data.acl_tokens.insert(t.accessor_id.clone(), t);
                self.acl_touch(TOKENS, idx);
            }
        }
    }

    fn check_policy_links(&self, links: &[Link]) -> Result<(), StoreError> {
        for l in links {
            if !self.data.acl_policies.contains_key(&l.id) {
                return Err(StoreError::Invalid(format!(
                    "cannot find policy {}",
                    if l.id.is_empty() { &l.name } else { &l.id }
                )));
            }
        }
        Ok(())
    }

    /// Create or replace a token.
    pub fn acl_token_set(&mut self, idx: Index, token: &AclToken) -> Result<(), StoreError> {
        if token.accessor_id.is_empty() || token.secret_id.is_empty() {
            return Err(StoreError::Invalid("Missing token ID".into()));
        }
        if self
            .data
            .acl_tokens
            .values()
            .any(|o| o.secret_id == token.secret_id && o.accessor_id != token.accessor_id)
        {
            return Err(StoreError::Invalid(
                "Invalid Token: SecretID is already in use".into(),
            ));
        }
        self.check_policy_links(&token.policies)?;
        for r in &token.roles {
            if !self.data.acl_roles.contains_key(&r.id) {
                return Err(StoreError::Invalid(format!("cannot find role {}", r.id)));
            }
        }
        let mut t = token.clone();
        t.create_index = self
            .data
            .acl_tokens
            .get(&t.accessor_id)
            .map(|o| o.create_index)
            .unwrap_or(idx);
        t.modify_index = idx;
        self.data.acl_tokens.insert(t.accessor_id.clone(), t);
        self.acl_touch(TOKENS, idx);
        Ok(())
    }

    /// Delete a token; whether it existed.
    pub fn acl_token_delete(&mut self, idx: Index, accessor: &str) -> bool {
        let found = self.data.acl_tokens.remove(accessor).is_some();
        if found {
            self.acl_touch(TOKENS, idx);
        }
        found
    }

    /// Create or replace a policy (names are unique; the built-in one keeps its rules).
    pub fn acl_policy_set(&mut self, idx: Index, p: &AclPolicy) -> Result<(), StoreError> {
        if p.id.is_empty() || p.name.is_empty() {
            return Err(StoreError::Invalid("Invalid Policy: no Name is set".into()));
        }
        if self
            .data
            .acl_policies
            .values()
            .any(|o| o.name == p.name && o.id != p.id)
        {
            return Err(StoreError::Invalid(format!(
                "Invalid Policy: A Policy with Name {:?} already exists",
                p.name
            )));
        }
        let old = self.data.acl_policies.get(&p.id);
        if p.id == GLOBAL_MANAGEMENT_ID {
            if let Some(o) = old {
                if o.rules != p.rules {
                    return Err(StoreError::Invalid(
                        "Changing the Rules for the builtin global-management policy is not permitted"
                            .into(),
                    ));
                }
            }
        }
        let mut n = p.clone();
        n.create_index = old.map(|o| o.create_index).unwrap_or(idx);
        n.modify_index = idx;
        self.data.acl_policies.insert(n.id.clone(), n);
        self.acl_touch(POLICIES, idx);
        Ok(())
    }

    /// Delete a policy (not the built-in one); whether it existed.
    pub fn acl_policy_delete(&mut self, idx: Index, id: &str) -> Result<bool, StoreError> {
        if id == GLOBAL_MANAGEMENT_ID {
            return Err(StoreError::Invalid(
                "Delete operation not permitted on the builtin global-management policy".into(),
            ));
        }
        let found = self.data.acl_policies.remove(id).is_some();
        if found {
            self.acl_touch(POLICIES, idx);
        }
        Ok(found)
    }

    /// Create or replace a role (names are unique).
    pub fn acl_role_set(&mut self, idx: Index, r: &AclRole) -> Result<(), StoreError> {
        if r.id.is_empty() || r.name.is_empty() {
            return Err(StoreError::Invalid("Role name is missing".into()));
        }
        if self
            .data
            .acl_roles
            .values()
            .any(|o| o.name == r.name && o.id != r.id)
        {
            return Err(StoreError::Invalid(format!(
                "Invalid Role: A Role with Name {:?} already exists",
                r.name
            )));
        }
        self.check_policy_links(&r.policies)?;
        let mut n = r.clone();
        n.create_index = self
            .data
            .acl_roles
            .get(&r.id)
            .map(|o| o.create_index)
            .unwrap_or(idx);
        n.modify_index = idx;
        self.data.acl_roles.insert(n.id.clone(), n);
        self.acl_touch(ROLES, idx);
        Ok(())
    }

    /// Delete a role; whether it existed.
    pub fn acl_role_delete(&mut self, idx: Index, id: &str) -> bool {
        let found = self.data.acl_roles.remove(id).is_some();
        if found {
            self.acl_touch(ROLES, idx);
        }
        found
    }

    /// Links to deleted policies or roles are dropped on read, names filled in.
    fn acl_fill_links(&self, t: &mut AclToken) {
        t.policies = self.fill_policy_links(&t.policies);
        t.roles = t
            .roles
            .iter()
            .filter_map(|l| {
                self.data.acl_roles.get(&l.id).map(|r| Link {
                    id: r.id.clone(),
                    name: r.name.clone(),
                })
            })
            .collect();
    }

    fn fill_policy_links(&self, links: &[Link]) -> Vec<Link> {
        links
            .iter()
            .filter_map(|l| {
                self.data.acl_policies.get(&l.id).map(|p| Link {
                    id: p.id.clone(),
                    name: p.name.clone(),
                })
            })
            .collect()
    }

    /// A token by accessor ID.
    pub fn acl_token(&self, accessor: &str) -> (Index, Option<AclToken>) {
        let t = self.data.acl_tokens.get(accessor).cloned().map(|mut t| {
            self.acl_fill_links(&mut t);
            t
        });
        (self.max_index(&[TOKENS]), t)
    }

    /// A token by secret ID.
    pub fn acl_token_by_secret(&self, secret: &str) -> (Index, Option<AclToken>) {
        let t = self
            .data
            .acl_tokens
            .values()
            .find(|t| t.secret_id == secret)
            .cloned()
            .map(|mut t| {
                self.acl_fill_links(&mut t);
                t
            });
        (self.max_index(&[TOKENS]), t)
    }

    /// Every token, optionally only those linking a policy or role.
    pub fn acl_tokens(&self, policy: Option<&str>, role: Option<&str>) -> (Index, Vec<AclToken>) {
        let v = self
            .data
            .acl_tokens
            .values()
            .filter(|t| policy.is_none_or(|p| t.policies.iter().any(|l| l.id == p)))
            .filter(|t| role.is_none_or(|r| t.roles.iter().any(|l| l.id == r)))
            .cloned()
            .map(|mut t| {
                self.acl_fill_links(&mut t);
                t
            })
            .collect();
        (self.max_index(&[TOKENS]), v)
    }

    /// A policy by ID or name.
    pub fn acl_policy(&self, id: Option<&str>, name: Option<&str>) -> (Index, Option<AclPolicy>) {
        let p = self
            .data
            .acl_policies
            .values()
            .find(|p| id.is_none_or(|i| p.id == i) && name.is_none_or(|n| p.name == n))
            .cloned();
        (self.max_index(&[POLICIES]), p)
    }

    /// Every policy.
    pub fn acl_policies(&self) -> (Index, Vec<AclPolicy>) {
        (
            self.max_index(&[POLICIES]),
            self.data.acl_policies.values().cloned().collect(),
        )
    }

    /// A role by ID or name.
    pub fn acl_role(&self, id: Option<&str>, name: Option<&str>) -> (Index, Option<AclRole>) {
        let r = self
            .data
            .acl_roles
            .values()
            .find(|r| id.is_none_or(|i| r.id == i) && name.is_none_or(|n| r.name == n))
            .cloned()
            .map(|mut r| {
                r.policies = self.fill_policy_links(&r.policies);
                r
            });
        (self.max_index(&[ROLES]), r)
    }

    /// Every role, optionally only those linking a policy.
    pub fn acl_roles(&self, policy: Option<&str>) -> (Index, Vec<AclRole>) {
        let v = self
            .data
            .acl_roles
            .values()
            .filter(|r| policy.is_none_or(|p| r.policies.iter().any(|l| l.id == p)))
            .cloned()
            .map(|mut r| {
                r.policies = self.fill_policy_links(&r.policies);
                r
            })
            .collect();
        (self.max_index(&[ROLES]), v)
    }

    /// Resolve a secret to everything it grants; None for an unknown secret.
    pub fn acl_resolve(&self, secret: &str) -> Option<Resolved> {
        let token = self
            .data
            .acl_tokens
            .values()
            .find(|t| t.secret_id == secret)?
            .clone();
        let mut ids: Vec<&str> = token.policies.iter().map(|l| l.id.as_str()).collect();
        let mut identity_rules = Vec::new();
        let mut add_identities =
            |svc: &[crate::acl::ServiceIdentity], nodes: &[crate::acl::NodeIdentity]| {
                for s in svc {
                    identity_rules.push(format!(
                        "service {0:?} {{ policy = \"write\" }}\nservice \"{1}-sidecar-proxy\" {{ policy = \"write\" }}\nservice_prefix \"\" {{ policy = \"read\" }}\nnode_prefix \"\" {{ policy = \"read\" }}",
                        s.service_name, s.service_name.replace('"', "")
                    ));
                }
                for n in nodes {
                    identity_rules.push(format!(
                        "node {:?} {{ policy = \"write\" }}\nservice_prefix \"\" {{ policy = \"read\" }}",
                        n.node_name
                    ));
                }
            };
        add_identities(&token.service_identities, &token.node_identities);
        for rl in &token.roles {
            if let Some(r) = self.data.acl_roles.get(&rl.id) {
                ids.extend(r.policies.iter().map(|l| l.id.as_str()));
                add_identities(&r.service_identities, &r.node_identities);
            }
        }
        ids.sort_unstable();
        ids.dedup();
        let policies = ids
            .into_iter()
            .filter_map(|id| self.data.acl_policies.get(id).cloned())
            .collect();
        Some(Resolved {
            token,
            policies,
            identity_rules,
            index: self.acl_index(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::WatchHub;
    use std::sync::Arc;

    fn policy(id: &str, name: &str, rules: &str) -> AclPolicy {
        AclPolicy {
            id: id.into(),
            name: name.into(),
            rules: rules.into(),
            ..Default::default()
        }
    }

    fn token(acc: &str, secret: &str, policies: &[&str]) -> AclToken {
        AclToken {
            accessor_id: acc.into(),
            secret_id: secret.into(),
            policies: policies
                .iter()
                .map(|p| Link {
                    id: p.to_string(),
                    name: String::new(),
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn bootstrap_is_one_time_and_links_are_checked() {
        let mut s = Store::new(Arc::new(WatchHub::default()));
        s.acl_init(
            2,
            &[policy(GLOBAL_MANAGEMENT_ID, "global-management", "")],
            &[],
        );
        let t = token("a1", "s1", &[GLOBAL_MANAGEMENT_ID]);
        s.acl_bootstrap(3, &t).unwrap();
        assert_eq!(
            s.acl_bootstrap(4, &token("a2", "s2", &[])),
            Err(StoreError::AclBootstrapDone(3))
        );
        assert!(s.acl_token_set(5, &token("a3", "s3", &["nope"])).is_err());
        assert!(s.acl_token_set(5, &token("a3", "s1", &[])).is_err());
        let (_, got) = s.acl_token_by_secret("s1");
        assert_eq!(got.unwrap().policies[0].name, "global-management");
        assert!(s.acl_policy_delete(6, GLOBAL_MANAGEMENT_ID).is_err());
        s.acl_policy_set(
            7,
            &policy("p1", "kv", "key_prefix \"\" { policy = \"read\" }"),
        )
        .unwrap();
        assert!(s.acl_policy_set(8, &policy("p2", "kv", "")).is_err());
        s.acl_token_set(9, &token("a4", "s4", &["p1"])).unwrap();
        let r = s.acl_resolve("s4").unwrap();
        assert_eq!(r.policies.len(), 1);
        assert_eq!(r.index, 9);
        assert!(s.acl_policy_delete(10, "p1").unwrap());
        assert!(s.acl_token("a4").1.unwrap().policies.is_empty());
        assert!(s.acl_resolve("missing").is_none());
    }
}
