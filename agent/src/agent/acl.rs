//! ACLs in the agent: resolving a request's token to an [`Authorizer`] (servers read the
//! replicated tables; client agents ask a server and cache the answer for `token_ttl`),
//! and the leader's initialization of the built-in policy, the anonymous token and the
//! configured initial management token.

use super::Agent;
use crate::acl::authz::Identity;
use crate::acl::{
    parse_rules, AclConfig, AclPolicy, AclToken, Authorizer, Link, ANONYMOUS_ID, ANONYMOUS_SECRET,
    GLOBAL_MANAGEMENT_ID, GLOBAL_MANAGEMENT_NAME,
};
use crate::raft::Command;
use crate::rpc;
use crate::store::acl::Resolved;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why a token was not accepted.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AclError {
    /// The secret names no token (Consul's text).
    #[error("ACL not found")]
    NotFound,
    /// The servers could not be asked and the down policy denies.
    #[error("ACL resolution failed: {0}")]
    Unavailable(String),
}

/// Cached authorizers by secret: (ACL index or fetch time, authorizer).
#[derive(Default)]
pub(crate) struct AclCache {
    entries: std::collections::HashMap<String, (u64, Instant, Arc<Authorizer>)>,
}

impl Agent {
    /// The ACL configuration in force (parsed when the configuration is loaded).
    pub fn acl_config(&self) -> Arc<AclConfig> {
        self.acl.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The secret a request acts with: its own token, else `tokens.default`, else the
    /// anonymous token's.
    pub fn effective_secret(&self, token: Option<&str>) -> String {
        match token.filter(|s| !s.is_empty()) {
            Some(s) => s.to_string(),
            None => self
                .acl_config()
                .default_token
                .clone()
                .unwrap_or_else(|| ANONYMOUS_SECRET.to_string()),
        }
    }

    /// Whether ACLs are enabled.
    pub fn acl_enabled(&self) -> bool {
        self.acl_config().enabled
    }

    /// The authorizer for a request's token (None or empty: the default token, else
    /// anonymous).
    pub async fn authorize(&self, secret: Option<&str>) -> Result<Arc<Authorizer>, AclError> {
        let cfg = self.acl_config();
        if !cfg.enabled {
            return Ok(Arc::new(Authorizer::allow_all()));
        }
        let secret = self.effective_secret(secret);
        if cfg.agent_recovery.as_deref() == Some(secret.as_str()) {
            return Ok(Arc::new(Authorizer::management(Identity::Token(
                "agent-recovery".into(),
            ))));
        }
        if self.raft.is_some() {
            let index = self.read(|s| s.acl_index());
            if let Some(a) = self.cached_authorizer(&secret, |(i, _)| *i == index) {
                return Ok(a);
            }
            let resolved = self.read(|s| s.acl_resolve(&secret));
            let a = self.compile(&cfg, &secret, resolved)?;
            self.cache_authorizer(&secret, index, a.clone());
            return Ok(a);
        }
        let ttl = cfg.token_ttl;
        if let Some(a) = self.cached_authorizer(&secret, |(_, at)| at.elapsed() < ttl) {
            return Ok(a);
        }
        let mut last = String::from("no server known");
        for server in self.known_servers() {
            match rpc::client::acl_resolve(&self.http_client, &server, &secret).await {
                Ok(resolved) => {
                    let a = self.compile(&cfg, &secret, resolved)?;
                    self.cache_authorizer(&secret, 0, a.clone());
                    return Ok(a);
                }
                Err(e) => last = e.to_string(),
            }
        }
        // The servers cannot be asked: Consul's down_policy.
        match cfg.down_policy.as_str() {
            "allow" => Ok(Arc::new(Authorizer::allow_all())),
            "deny" => Err(AclError::Unavailable(last)),
            _ => self
                .stale_authorizer(&secret)
                .ok_or(AclError::Unavailable(last)),
        }
    }

    /// The authorizer for DNS answers (`acl.tokens.dns`, else the default token).
    pub async fn authorize_dns(&self) -> Result<Arc<Authorizer>, AclError> {
        let cfg = self.acl_config();
        self.authorize(cfg.dns_token.as_deref()).await
    }

    fn cached_authorizer(
        &self,
        secret: &str,
        fresh: impl Fn(&(u64, Instant)) -> bool,
    ) -> Option<Arc<Authorizer>> {
        let c = self.acl_cache.lock().unwrap_or_else(|e| e.into_inner());
        c.entries
            .get(secret)
            .filter(|(i, at, _)| fresh(&(*i, *at)))
            .map(|(_, _, a)| a.clone())
    }

    fn stale_authorizer(&self, secret: &str) -> Option<Arc<Authorizer>> {
        self.cached_authorizer(secret, |_| true)
    }

    fn cache_authorizer(&self, secret: &str, index: u64, a: Arc<Authorizer>) {
        let mut c = self.acl_cache.lock().unwrap_or_else(|e| e.into_inner());
        if c.entries.len() > 10_000 {
            c.entries.clear();
        }
        c.entries
            .insert(secret.to_string(), (index, Instant::now(), a));
    }

    fn compile(
        &self,
        cfg: &AclConfig,
        secret: &str,
        resolved: Option<Resolved>,
    ) -> Result<Arc<Authorizer>, AclError> {
        let Some(r) = resolved else {
            // Before the leader has created it, the anonymous token has no policies.
            if secret == ANONYMOUS_SECRET {
                return Ok(Arc::new(Authorizer::from_rules(
                    Identity::Anonymous,
                    &[],
                    cfg.default_allow,
                )));
            }
            return Err(AclError::NotFound);
        };
        let identity = if r.token.accessor_id == ANONYMOUS_ID {
            Identity::Anonymous
        } else {
            Identity::Token(r.token.accessor_id.clone())
        };
        if r.policies.iter().any(|p| p.id == GLOBAL_MANAGEMENT_ID) {
            return Ok(Arc::new(Authorizer::management(identity)));
        }
        let mut rules = Vec::new();
        for text in r
            .policies
            .iter()
            .map(|p| p.rules.as_str())
            .chain(r.identity_rules.iter().map(String::as_str))
        {
            match parse_rules(text) {
                Ok(x) => rules.push(x),
                // Stored policies were validated when written; skip one that no longer
                // parses rather than failing every request of the token.
                Err(e) => tracing::warn!(error = %e, "skipping an unparsable ACL policy"),
            }
        }
        Ok(Arc::new(Authorizer::from_rules(
            identity,
            &rules,
            cfg.default_allow,
        )))
    }

    /// On a server: what a secret grants (for client agents' resolution).
    pub fn acl_resolve_local(&self, secret: &str) -> Option<Resolved> {
        self.read(|s| s.acl_resolve(secret))
    }
}

/// The built-in policy, the anonymous token and the configured initial management token.
fn init_objects(cfg: &AclConfig) -> (Vec<AclPolicy>, Vec<AclToken>) {
    let now = crate::acl::now_rfc3339();
    let policies = vec![AclPolicy {
        id: GLOBAL_MANAGEMENT_ID.into(),
        name: GLOBAL_MANAGEMENT_NAME.into(),
        description: "Builtin Policy that grants unlimited access".into(),
        rules: crate::acl::rules::MANAGEMENT_RULES.into(),
        ..Default::default()
    }];
    let mut tokens = vec![AclToken {
        accessor_id: ANONYMOUS_ID.into(),
        secret_id: ANONYMOUS_SECRET.into(),
        description: "Anonymous Token".into(),
        create_time: now.clone(),
        ..Default::default()
    }];
    if let Some(m) = &cfg.initial_management {
        tokens.push(AclToken {
            accessor_id: uuid::Uuid::new_v4().to_string(),
            secret_id: m.clone(),
            description: "Initial Management Token".into(),
            policies: vec![Link {
                id: GLOBAL_MANAGEMENT_ID.into(),
                name: GLOBAL_MANAGEMENT_NAME.into(),
            }],
            create_time: now,
            ..Default::default()
        });
    }
    (policies, tokens)
}

/// On the leader, with ACLs on: create whatever of the built-in objects is missing.
pub(super) async fn acl_init_loop(agent: Arc<Agent>) {
    let mut shutdown = agent.shutdown.subscribe();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = shutdown.changed() => return,
        }
        let cfg = agent.acl_config();
        if !cfg.enabled || !agent.is_leader() {
            continue;
        }
        let (policies, tokens) = init_objects(&cfg);
        let missing = agent.read(|s| {
            policies
                .iter()
                .any(|p| s.acl_policy(Some(&p.id), None).1.is_none())
                || tokens
                    .iter()
                    .any(|t| s.acl_token_by_secret(&t.secret_id).1.is_none())
        });
        if !missing {
            continue;
        }
        if let Err(e) = agent.apply(Command::AclInit { policies, tokens }).await {
            tracing::warn!(error = %e, "initializing ACLs");
        }
    }
}
