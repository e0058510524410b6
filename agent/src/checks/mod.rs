//! Health checks run by the agent: one task per check (HTTP, TCP, UDP, script, gRPC,
//! alias), supervised in one map keyed by check ID and restarted when a definition
//! changes; TTL checks expire to critical; `deregister_critical_service_after` reaps
//! services whose check stayed critical. A run that hangs is cut off by its timeout and
//! each check runs in its own task, so no check can stall another or the agent.

pub mod runners;
pub mod status;

use crate::agent::Agent;
use crate::types::{parse_duration, CheckDefinition, HEALTH_CRITICAL};
use runners::runner_for;
use status::StatusHandler;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// Consul's minimum check interval.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// Default timeout of HTTP, TCP, UDP and gRPC checks.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default timeout of script checks.
pub const DEFAULT_SCRIPT_TIMEOUT: Duration = Duration::from_secs(30);

/// Deadlines of this agent's TTL checks.
#[derive(Default)]
pub struct TtlTimers {
    deadlines: Mutex<HashMap<String, Instant>>,
}

impl TtlTimers {
    /// Push a TTL check's deadline out (called on every pass/warn/fail/update).
    pub fn reset(&self, check_id: &str, deadline: Instant) {
        self.deadlines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(check_id.to_string(), deadline);
    }
}

/// Supervisor state shared with the agent (poked when checks change).
#[derive(Default)]
pub struct Supervisor {
    pub(crate) changed: Notify,
}

struct RunningCheck {
    def: CheckDefinition,
    task: JoinHandle<()>,
}

impl Drop for RunningCheck {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Start the check runners for this agent.
pub fn spawn_runners(agent: Arc<Agent>) {
    tokio::spawn(ttl_loop(agent.clone()));
    tokio::spawn(supervise(agent.clone()));
    tokio::spawn(reap_loop(agent));
}

fn timeout_of(def: &CheckDefinition) -> Duration {
    parse_duration(&def.timeout)
        .ok()
        .filter(|d| !d.is_zero())
        .unwrap_or(if def.kind() == "script" {
            DEFAULT_SCRIPT_TIMEOUT
        } else {
            DEFAULT_TIMEOUT
        })
}

fn output_max(agent: &Agent, def: &CheckDefinition) -> usize {
    match def.output_max_size {
        0 => agent.config().check_output_max_size.max(1),
        n => n as usize,
    }
}

async fn supervise(agent: Arc<Agent>) {
    let mut running: HashMap<String, RunningCheck> = HashMap::new();
    let mut shutdown = agent.shutdown.subscribe();
    loop {
        let wanted: HashMap<String, CheckDefinition> = {
            let l = agent.local.lock().unwrap_or_else(|e| e.into_inner());
            l.checks
                .values()
                .filter(|c| {
                    matches!(
                        c.check.definition.kind(),
                        "http" | "tcp" | "udp" | "script" | "grpc" | "alias"
                    )
                })
                .map(|c| (c.check.check_id.clone(), c.check.definition.clone()))
                .collect()
        };
        running.retain(|id, r| wanted.get(id) == Some(&r.def));
        for (id, def) in wanted {
            if running.contains_key(&id) {
                continue;
            }
            let a = agent.clone();
            let d = def.clone();
            let cid = id.clone();
            let task = tokio::spawn(async move { run_check(a, cid, d).await });
            running.insert(id, RunningCheck { def, task });
        }
        tokio::select! {
            _ = agent.checks.changed.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

async fn run_check(agent: Arc<Agent>, id: String, def: CheckDefinition) {
    let interval = parse_duration(&def.interval)
        .unwrap_or(Duration::from_secs(10))
        .max(MIN_INTERVAL);
    let timeout = timeout_of(&def);
    let max = output_max(&agent, &def);
    let Some(runner) = runner_for(&def, timeout, max) else {
        return;
    };
    let mut handler = StatusHandler::new(
        def.success_before_passing,
        def.failures_before_warning,
        def.failures_before_critical,
    );
    // Stagger the first run a little (Consul spreads it over the interval; we keep it short).
    let first =
        Duration::from_millis(rand::random::<u64>() % (interval.as_millis() as u64).clamp(1, 500));
    tokio::time::sleep(first).await;
    loop {
        // A hung run is cut off a little after its own timeout.
        let result = match tokio::time::timeout(
            timeout + Duration::from_secs(1),
            runner.check(&agent),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => runners::CheckResult {
                status: HEALTH_CRITICAL,
                output: format!(
                    "Timed out ({}) running check",
                    crate::types::format_duration(timeout)
                ),
            },
        };
        if let Some(status) = handler.update(result.status) {
            if let Err(e) = agent.update_check(&id, status, &result.output).await {
                tracing::debug!(check = %id, error = %e, "check update failed");
            }
        }
        tokio::time::sleep(interval).await;
    }
}

async fn ttl_loop(agent: Arc<Agent>) {
    let mut shutdown = agent.shutdown.subscribe();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = shutdown.changed() => return,
        }
        let ttl_checks: Vec<(String, Duration, String, String)> = {
            let l = agent.local.lock().unwrap_or_else(|e| e.into_inner());
            l.checks
                .values()
                .filter_map(|c| {
                    let ttl = parse_duration(&c.check.definition.ttl).ok()?;
                    Some((
                        c.check.check_id.clone(),
                        ttl,
                        c.check.status.clone(),
                        c.check.output.clone(),
                    ))
                })
                .collect()
        };
        let now = Instant::now();
        let mut expired = Vec::new();
        {
            let mut d = agent
                .ttl_timers
                .deadlines
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            d.retain(|id, _| ttl_checks.iter().any(|(c, ..)| c == id));
            for (id, ttl, status, output) in &ttl_checks {
                let dl = *d.entry(id.clone()).or_insert(now + *ttl);
                if dl <= now && status != HEALTH_CRITICAL {
                    expired.push((id.clone(), output.clone()));
                }
            }
        }
        for (id, output) in expired {
            let out = format!("TTL expired (last output before timeout follows): {output}");
            if let Err(e) = agent.update_check(&id, HEALTH_CRITICAL, &out).await {
                tracing::warn!(check = %id, error = %e, "marking TTL check critical failed");
            }
        }
    }
}

/// Deregister services whose check has been critical longer than its
/// `deregister_critical_service_after`.
async fn reap_loop(agent: Arc<Agent>) {
    let mut shutdown = agent.shutdown.subscribe();
    let mut critical_since: HashMap<String, Instant> = HashMap::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = shutdown.changed() => return,
        }
        let checks: Vec<(String, String, bool, Option<Duration>)> = {
            let l = agent.local.lock().unwrap_or_else(|e| e.into_inner());
            l.checks
                .values()
                .map(|c| {
                    (
                        c.check.check_id.clone(),
                        c.check.service_id.clone(),
                        c.check.status == HEALTH_CRITICAL,
                        parse_duration(&c.check.definition.deregister_critical_service_after).ok(),
                    )
                })
                .collect()
        };
        let now = Instant::now();
        critical_since.retain(|id, _| checks.iter().any(|(c, _, crit, _)| c == id && *crit));
        for (id, service, critical, after) in checks {
            if !critical {
                continue;
            }
            let since = *critical_since.entry(id.clone()).or_insert(now);
            if let Some(after) = after {
                if !service.is_empty() && now.duration_since(since) >= after {
                    tracing::info!(check = %id, service = %service, "check critical for {after:?}; deregistering the service");
                    if let Err(e) = agent.remove_service(&service).await {
                        tracing::warn!(service = %service, error = %e, "reaping a critical service failed");
                    }
                    critical_since.remove(&id);
                }
            }
        }
    }
}
