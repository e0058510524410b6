//! Check runners. TTL checks turn critical when no update arrives within their TTL.

use crate::agent::Agent;
use crate::types::{parse_duration, HEALTH_CRITICAL};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// Start the check runners for this agent.
pub fn spawn_runners(agent: Arc<Agent>) {
    tokio::spawn(ttl_loop(agent));
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
