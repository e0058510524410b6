//! Agent-local services and checks: register, deregister, status updates, maintenance mode,
//! config (re)loading, and the anti-entropy loop that keeps the catalog in line.

use super::{Agent, AgentError};
use crate::config::RuntimeConfig;
use crate::definition::{decode_check, decode_service, CheckDef, ServiceDef};
use crate::local::{LocalCheck, LocalService, Source};
use crate::types::{
    HealthCheck, NodeService, HEALTH_CRITICAL, HEALTH_PASSING, NODE_MAINT_CHECK_ID, SERF_CHECK_ID,
    SERVICE_MAINT_PREFIX,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Consul truncates check output to 4 KiB by default.
pub const DEFAULT_OUTPUT_MAX: usize = 4096;

fn truncate_output(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str(" ... (captured ");
        s.push_str(&max.to_string());
        s.push_str(" bytes)");
    }
    s
}

/// API registrations kept in the data dir so they survive a restart (Consul keeps them in
/// `data_dir/services` and `data_dir/checks`).
#[derive(serde::Serialize, serde::Deserialize, Default)]
struct PersistedLocal {
    services: Vec<(NodeService, String)>,
    checks: Vec<(HealthCheck, String)>,
}

const LOCAL_STATE_FILE: &str = "local-registrations.json";

impl Agent {
    /// Write the API-registered services and checks to the data dir (atomically).
    fn persist_local(&self) -> Result<(), AgentError> {
        let p = {
            let l = self.local.lock().unwrap_or_else(|e| e.into_inner());
            PersistedLocal {
                services: l
                    .services
                    .values()
                    .filter(|s| s.source == Source::Api)
                    .map(|s| (s.service.clone(), s.token.clone()))
                    .collect(),
                checks: l
                    .checks
                    .values()
                    .filter(|c| c.source == Source::Api)
                    .map(|c| (c.check.clone(), c.token.clone()))
                    .collect(),
            }
        };
        let bytes = serde_json::to_vec(&p).map_err(|e| AgentError::Startup(e.to_string()))?;
        let path = self.data_dir.join(LOCAL_STATE_FILE);
        let tmp = self.data_dir.join(format!("{LOCAL_STATE_FILE}.tmp"));
        std::fs::write(&tmp, bytes)
            .and_then(|_| std::fs::rename(&tmp, &path))
            .map_err(|e| {
                AgentError::Startup(format!(
                    "persisting local registrations to {}: {e}",
                    path.display()
                ))
            })
    }

    /// Load the API registrations persisted by a previous run.
    pub(super) fn restore_local_registrations(&self) -> Result<(), AgentError> {
        let path = self.data_dir.join(LOCAL_STATE_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => {
                return Err(AgentError::Startup(format!(
                    "reading {}: {e}",
                    path.display()
                )))
            }
        };
        let p: PersistedLocal = serde_json::from_slice(&bytes)
            .map_err(|e| AgentError::Startup(format!("parsing {}: {e}", path.display())))?;
        let mut l = self.local.lock().unwrap_or_else(|e| e.into_inner());
        for (service, token) in p.services {
            l.services
                .entry(service.id.clone())
                .or_insert(LocalService {
                    service,
                    token,
                    source: Source::Api,
                });
        }
        for (check, token) in p.checks {
            l.checks
                .entry(check.check_id.clone())
                .or_insert(LocalCheck {
                    check,
                    token,
                    source: Source::Api,
                });
        }
        Ok(())
    }

    pub(super) fn add_serf_check(&self) {
        let mut l = self.local.lock().unwrap_or_else(|e| e.into_inner());
        let node = l.node.node.clone();
        l.checks.insert(
            SERF_CHECK_ID.to_string(),
            LocalCheck {
                check: HealthCheck {
                    node,
                    check_id: SERF_CHECK_ID.into(),
                    name: "Serf Health Status".into(),
                    status: HEALTH_PASSING.into(),
                    output: "Agent alive and reachable".into(),
                    ..Default::default()
                },
                token: String::new(),
                source: Source::Config,
            },
        );
    }

    /// Replace the config-sourced services and checks with those in `cfg`.
    pub(super) fn load_config_definitions(&self, cfg: &RuntimeConfig) -> Result<(), AgentError> {
        let mut svcs = Vec::new();
        for v in &cfg.services {
            svcs.push(
                decode_service(v)
                    .map_err(|e| AgentError::BadRequest(format!("service definition: {e}")))?,
            );
        }
        let mut checks = Vec::new();
        for v in &cfg.checks {
            checks.push(
                decode_check(v, None)
                    .map_err(|e| AgentError::BadRequest(format!("check definition: {e}")))?,
            );
        }
        for s in &svcs {
            for c in &s.checks {
                self.check_script_allowed(c, true)?;
            }
        }
        for c in &checks {
            self.check_script_allowed(c, true)?;
        }
        let mut l = self.local.lock().unwrap_or_else(|e| e.into_inner());
        l.services.retain(|_, s| s.source != Source::Config);
        l.checks
            .retain(|id, c| c.source != Source::Config || id == SERF_CHECK_ID);
        let node = l.node.node.clone();
        for s in svcs {
            for c in s.checks {
                let mut chk = c.check;
                chk.node = node.clone();
                l.checks.insert(
                    chk.check_id.clone(),
                    LocalCheck {
                        check: chk,
                        token: c.token,
                        source: Source::Config,
                    },
                );
            }
            l.services.insert(
                s.service.id.clone(),
                LocalService {
                    service: s.service,
                    token: s.token,
                    source: Source::Config,
                },
            );
        }
        for c in checks {
            let mut chk = c.check;
            chk.node = node.clone();
            l.checks.insert(
                chk.check_id.clone(),
                LocalCheck {
                    check: chk,
                    token: c.token,
                    source: Source::Config,
                },
            );
        }
        drop(l);
        self.trigger_sync();
        Ok(())
    }

    /// Reload: re-read the config files with the same flags and apply the definitions.
    pub async fn reload(&self) -> Result<(), AgentError> {
        let flags = self.config().flags.clone();
        let cfg = crate::config::load(&flags).map_err(|e| AgentError::BadRequest(e.to_string()))?;
        self.load_config_definitions(&cfg)?;
        self.set_config(cfg);
        self.sync_now().await?;
        Ok(())
    }

    fn check_script_allowed(&self, c: &CheckDef, from_config: bool) -> Result<(), AgentError> {
        if c.check.check_type != "script" {
            return Ok(());
        }
        let cfg = self.config();
        let ok = cfg.enable_script_checks || (from_config && cfg.enable_local_script_checks);
        if ok {
            Ok(())
        } else {
            Err(AgentError::BadRequest(format!(
                "Scripts are disabled on this agent; to enable, configure 'enable_script_checks' or 'enable_local_script_checks' to true (check {:?})",
                c.check.check_id
            )))
        }
    }

    /// Register a service (and its checks) with this agent and the catalog.
    pub async fn add_service(
        &self,
        def: ServiceDef,
        replace_existing_checks: bool,
    ) -> Result<(), AgentError> {
        for c in &def.checks {
            self.check_script_allowed(c, false)?;
        }
        let id = def.service.id.clone();
        {
            let mut l = self.local.lock().unwrap_or_else(|e| e.into_inner());
            let node = l.node.node.clone();
            if replace_existing_checks {
                l.checks.retain(|_, c| c.check.service_id != id);
            }
            for c in def.checks {
                let mut chk = c.check;
                chk.node = node.clone();
                // Keep the current status of a check that is re-registered unchanged.
                if let Some(old) = l.checks.get(&chk.check_id) {
                    if old.check.definition == chk.definition {
                        chk.status = old.check.status.clone();
                        chk.output = old.check.output.clone();
                    }
                }
                l.checks.insert(
                    chk.check_id.clone(),
                    LocalCheck {
                        check: chk,
                        token: c.token.clone(),
                        source: Source::Api,
                    },
                );
            }
            l.services.insert(
                id.clone(),
                LocalService {
                    service: def.service,
                    token: def.token,
                    source: Source::Api,
                },
            );
        }
        self.persist_local()?;
        self.sync_now().await
    }

    /// Deregister a service and its checks.
    pub async fn remove_service(&self, id: &str) -> Result<(), AgentError> {
        {
            let mut l = self.local.lock().unwrap_or_else(|e| e.into_inner());
            if l.services.remove(id).is_none() {
                return Err(AgentError::NotFound(format!("Unknown service ID {id:?}. Ensure that the service ID is passed, not the service name.")));
            }
            l.checks.retain(|_, c| c.check.service_id != id);
        }
        self.persist_local()?;
        self.sync_now().await
    }

    /// Register a check with this agent.
    pub async fn add_check(&self, def: CheckDef) -> Result<(), AgentError> {
        self.check_script_allowed(&def, false)?;
        {
            let mut l = self.local.lock().unwrap_or_else(|e| e.into_inner());
            if !def.check.service_id.is_empty() && !l.services.contains_key(&def.check.service_id) {
                return Err(AgentError::NotFound(format!(
                    "ServiceID {:?} does not exist",
                    def.check.service_id
                )));
            }
            let mut chk = def.check;
            chk.node = l.node.node.clone();
            l.checks.insert(
                chk.check_id.clone(),
                LocalCheck {
                    check: chk,
                    token: def.token,
                    source: Source::Api,
                },
            );
        }
        self.persist_local()?;
        self.sync_now().await
    }

    /// Deregister a check.
    pub async fn remove_check(&self, id: &str) -> Result<(), AgentError> {
        {
            let mut l = self.local.lock().unwrap_or_else(|e| e.into_inner());
            if l.checks.remove(id).is_none() {
                return Err(AgentError::NotFound(format!("Unknown check ID {id:?}. Ensure that the check ID is passed, not the check name.")));
            }
        }
        self.persist_local()?;
        self.sync_now().await
    }

    /// Set a check's status and output (TTL pass/warn/fail/update and the check runners).
    pub async fn update_check(
        &self,
        id: &str,
        status: &str,
        output: &str,
    ) -> Result<(), AgentError> {
        let changed = {
            let mut l = self.local.lock().unwrap_or_else(|e| e.into_inner());
            let Some(c) = l.checks.get_mut(id) else {
                return Err(AgentError::NotFound(format!("Unknown check ID {id:?}. Ensure that the check ID is passed, not the check name.")));
            };
            let max = match c.check.definition.output_max_size {
                0 => DEFAULT_OUTPUT_MAX,
                n => n as usize,
            };
            let output = truncate_output(output.to_string(), max);
            if !c.check.definition.ttl.is_empty() {
                if let Ok(ttl) = crate::types::parse_duration(&c.check.definition.ttl) {
                    self.ttl_timers.reset(id, Instant::now() + ttl);
                }
            }
            let changed = c.check.status != status || c.check.output != output;
            c.check.status = status.to_string();
            c.check.output = output;
            changed
        };
        if changed {
            self.persist_local()?;
        }
        if changed {
            self.sync_now().await?;
        }
        Ok(())
    }

    /// Put the node (`service_id` None) or one service into or out of maintenance mode.
    pub async fn set_maintenance(
        &self,
        service_id: Option<&str>,
        enable: bool,
        reason: &str,
    ) -> Result<(), AgentError> {
        let (check_id, name, sid) = match service_id {
            None => (
                NODE_MAINT_CHECK_ID.to_string(),
                "Node Maintenance Mode".to_string(),
                String::new(),
            ),
            Some(s) => {
                let l = self.local.lock().unwrap_or_else(|e| e.into_inner());
                if !l.services.contains_key(s) {
                    return Err(AgentError::NotFound(format!(
                        "No service registered with ID {s:?}"
                    )));
                }
                (
                    format!("{SERVICE_MAINT_PREFIX}{s}"),
                    "Service Maintenance Mode".to_string(),
                    s.to_string(),
                )
            }
        };
        {
            let mut l = self.local.lock().unwrap_or_else(|e| e.into_inner());
            if enable {
                let notes = if reason.is_empty() {
                    "Maintenance mode is enabled for this node, but no reason was provided. This is a default message.".to_string()
                } else {
                    reason.to_string()
                };
                let node = l.node.node.clone();
                l.checks.insert(
                    check_id.clone(),
                    LocalCheck {
                        check: HealthCheck {
                            node,
                            check_id: check_id.clone(),
                            name,
                            status: HEALTH_CRITICAL.into(),
                            notes,
                            service_id: sid,
                            check_type: "maintenance".into(),
                            ..Default::default()
                        },
                        token: String::new(),
                        source: Source::Api,
                    },
                );
            } else {
                l.checks.remove(&check_id);
            }
        }
        self.persist_local()?;
        self.sync_now().await
    }

    /// What the catalog holds for this node: read locally on servers, asked of a server on
    /// client agents.
    async fn catalog_view_of_self(&self) -> Result<crate::rpc::NodeView, AgentError> {
        if self.raft.is_some() {
            return Ok(crate::rpc::RpcBackend::node_view(self, &self.node_name));
        }
        let server = self.pick_server().ok_or(AgentError::NoLeader)?;
        crate::rpc::client::node_view(&self.http_client, &server, &self.node_name)
            .await
            .map_err(|e| AgentError::Raft(format!("reading the catalog from {server}: {e}")))
    }

    /// One anti-entropy pass: bring the catalog in line with the local state (and let the
    /// check supervisor pick up added, changed or removed checks).
    pub async fn sync_now(&self) -> Result<(), AgentError> {
        self.checks.changed.notify_one();
        let view = self.catalog_view_of_self().await?;
        let (node, svcs, checks) = (view.node, view.services, view.checks);
        let ops = {
            let l = self.local.lock().unwrap_or_else(|e| e.into_inner());
            l.diff(node.as_ref(), &svcs, &checks)
        };
        for op in ops {
            self.apply_sync_op(op).await?;
        }
        Ok(())
    }
}

/// Run anti-entropy on demand and every minute (with jitter), as Consul's local sync does.
pub(super) async fn sync_loop(agent: Arc<Agent>) {
    let mut shutdown = agent.shutdown.subscribe();
    let mut backoff = Duration::from_millis(100);
    loop {
        if *shutdown.borrow() {
            return;
        }
        let ready = if agent.is_server() {
            agent.leader().is_some()
        } else {
            agent.pick_server().is_some()
        };
        if ready {
            match agent.sync_now().await {
                Ok(()) => backoff = Duration::from_millis(100),
                Err(e) => {
                    tracing::warn!(error = %e, "anti-entropy sync failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            }
        } else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        let interval = super::ae_interval(&agent.config());
        let jitter_ms = (interval.as_millis() as u64 / 6).max(1);
        let jitter = Duration::from_millis(rand::random::<u64>() % jitter_ms);
        tokio::select! {
            _ = agent.sync_notify.notified() => {}
            _ = tokio::time::sleep(interval + jitter) => {}
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::truncate_output;

    #[test]
    fn output_is_truncated_on_a_char_boundary() {
        let s = "é".repeat(10);
        let t = truncate_output(s, 5);
        assert!(t.starts_with("éé"));
        assert!(t.contains("captured 5 bytes"));
        assert_eq!(truncate_output("ok".into(), 10), "ok");
    }
}
