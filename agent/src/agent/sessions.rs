//! Sessions from the agent's side: validating create requests, renewing, and the leader's
//! TTL timers that invalidate sessions not renewed within 2 x TTL (Consul's behaviour).

use super::{Agent, AgentError};
use crate::raft::Command;
use crate::types::{parse_duration, ServiceCheckRef, Session, SessionBehavior, SERF_CHECK_ID};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Shortest TTL a session may have.
pub const SESSION_TTL_MIN: Duration = Duration::from_secs(10);
/// Longest TTL a session may have.
pub const SESSION_TTL_MAX: Duration = Duration::from_secs(86400);
/// Consul's TTL multiplier: a session expires between TTL and 2 x TTL.
pub const SESSION_TTL_MULTIPLIER: u32 = 2;
/// Default lock delay.
pub const DEFAULT_LOCK_DELAY: Duration = Duration::from_secs(15);

fn get<'a>(o: &'a serde_json::Map<String, Value>, name: &str) -> Option<&'a Value> {
    let n = name.to_lowercase();
    o.iter()
        .find(|(k, _)| k.to_lowercase() == n)
        .map(|(_, v)| v)
        .filter(|v| !v.is_null())
}

fn duration_field(v: &Value, what: &str) -> Result<Duration, AgentError> {
    match v {
        Value::String(s) if s.is_empty() => Ok(Duration::ZERO),
        Value::String(s) => parse_duration(s)
            .map_err(|e| AgentError::BadRequest(format!("Request decode failed: {what}: {e}"))),
        Value::Number(n) => {
            let f = n.as_f64().unwrap_or(0.0);
            // Consul reads bare numbers as nanoseconds, except that small values are seconds.
            if f < 0.0 {
                return Err(AgentError::BadRequest(format!(
                    "Request decode failed: {what} is negative"
                )));
            }
            Ok(if f < 1_000_000.0 {
                Duration::from_secs_f64(f)
            } else {
                Duration::from_nanos(f as u64)
            })
        }
        _ => Err(AgentError::BadRequest(format!(
            "Request decode failed: {what} must be a duration"
        ))),
    }
}

fn string_list(v: &Value, what: &str) -> Result<Vec<String>, AgentError> {
    match v {
        Value::Array(a) => a
            .iter()
            .map(|x| {
                x.as_str().map(str::to_string).ok_or_else(|| {
                    AgentError::BadRequest(format!(
                        "Request decode failed: {what} must be a list of strings"
                    ))
                })
            })
            .collect(),
        _ => Err(AgentError::BadRequest(format!(
            "Request decode failed: {what} must be a list of strings"
        ))),
    }
}

impl Agent {
    /// Decode a `/v1/session/create` body into a session (ID assigned here).
    pub fn decode_session(&self, body: &Value) -> Result<Session, AgentError> {
        let empty = serde_json::Map::new();
        let o = match body {
            Value::Null => &empty,
            Value::Object(o) => o,
            _ => {
                return Err(AgentError::BadRequest(
                    "Request decode failed: body must be a JSON object".into(),
                ))
            }
        };
        let mut s = Session {
            id: uuid::Uuid::new_v4().to_string(),
            node: self.node_name.clone(),
            lock_delay_ns: DEFAULT_LOCK_DELAY.as_nanos() as u64,
            ..Default::default()
        };
        if let Some(v) = get(o, "Name") {
            s.name = v.as_str().unwrap_or_default().to_string();
        }
        if let Some(v) = get(o, "Node") {
            let n = v.as_str().unwrap_or_default();
            if !n.is_empty() {
                s.node = n.to_string();
            }
        }
        if let Some(v) = get(o, "LockDelay") {
            let d = duration_field(v, "LockDelay")?;
            if d > Duration::from_secs(60) {
                return Err(AgentError::BadRequest(format!(
                    "Invalid Lock Delay '{}', must be less than 1m0s",
                    crate::types::format_duration(d)
                )));
            }
            s.lock_delay_ns = d.as_nanos() as u64;
        }
        match get(o, "Behavior").and_then(|v| v.as_str()).unwrap_or("") {
            "" | "release" => s.behavior = SessionBehavior::Release,
            "delete" => s.behavior = SessionBehavior::Delete,
            other => {
                return Err(AgentError::BadRequest(format!(
                    "Invalid Behavior setting '{other}'"
                )))
            }
        }
        if let Some(v) = get(o, "TTL") {
            let d = duration_field(v, "TTL")?;
            if !d.is_zero() && (d < SESSION_TTL_MIN || d > SESSION_TTL_MAX) {
                return Err(AgentError::BadRequest(format!(
                    "Invalid Session TTL '{}', must be between [{}={}]",
                    d.as_nanos(),
                    crate::types::format_duration(SESSION_TTL_MIN),
                    crate::types::format_duration(SESSION_TTL_MAX)
                )));
            }
            if !d.is_zero() {
                s.ttl = match v {
                    Value::String(t) => t.clone(),
                    _ => crate::types::format_duration(d),
                };
            }
        }
        let checks = get(o, "Checks")
            .map(|v| string_list(v, "Checks"))
            .transpose()?;
        let node_checks = get(o, "NodeChecks")
            .map(|v| string_list(v, "NodeChecks"))
            .transpose()?;
        s.node_checks = match (checks, node_checks) {
            (None, None) => vec![SERF_CHECK_ID.to_string()],
            (a, b) => a
                .unwrap_or_default()
                .into_iter()
                .chain(b.unwrap_or_default())
                .collect(),
        };
        if let Some(Value::Array(a)) = get(o, "ServiceChecks") {
            for item in a {
                let id = item
                    .as_object()
                    .and_then(|m| get(m, "ID"))
                    .and_then(|v| v.as_str())
                    .ok_or_else(|| {
                        AgentError::BadRequest(
                            "Request decode failed: ServiceChecks entries need an ID".into(),
                        )
                    })?;
                s.service_checks.push(ServiceCheckRef {
                    id: id.to_string(),
                    namespace: String::new(),
                });
            }
        }
        Ok(s)
    }

    /// Create a session; returns its ID.
    pub async fn create_session(&self, s: Session) -> Result<String, AgentError> {
        let id = s.id.clone();
        let ttl = (!s.ttl.is_empty())
            .then(|| parse_duration(&s.ttl).ok())
            .flatten();
        self.apply_checked(Command::SessionCreate(s)).await?;
        if let Some(ttl) = ttl {
            self.reset_session_timer(&id, ttl);
        }
        Ok(id)
    }

    /// Destroy a session; Consul answers `true` even when it did not exist.
    pub async fn destroy_session(&self, id: &str) -> Result<bool, AgentError> {
        self.session_timers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        self.apply(Command::SessionDestroy { id: id.to_string() })
            .await?
            .into_bool()
            .map_err(AgentError::Store)?;
        Ok(true)
    }

    /// Renew a session's TTL; `None` if it does not exist. TTL timers live on the leader,
    /// so a follower forwards the renewal there.
    pub async fn renew_session(&self, id: &str) -> Result<Option<Session>, AgentError> {
        if self.raft.is_none() || self.is_leader() {
            return Ok(self.renew_session_local(id));
        }
        let (_, addr) = self.leader().ok_or(AgentError::NoLeader)?;
        crate::rpc::client::renew_session(&self.http_client, &addr, id)
            .await
            .map_err(|e| AgentError::Raft(format!("forwarding session renewal: {e}")))
    }

    /// Renew on this server (the leader).
    pub(super) fn renew_session_local(&self, id: &str) -> Option<Session> {
        let s = self.read(|st| st.session_get(id).1)?;
        if let Some(ttl) = (!s.ttl.is_empty())
            .then(|| parse_duration(&s.ttl).ok())
            .flatten()
        {
            self.reset_session_timer(id, ttl);
        }
        Some(s)
    }

    fn reset_session_timer(&self, id: &str, ttl: Duration) {
        self.session_timers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                id.to_string(),
                Instant::now() + ttl * SESSION_TTL_MULTIPLIER,
            );
    }
}

/// On the leader, invalidate sessions whose TTL ran out. Sessions without a timer (after a
/// restart or a leader change) get a fresh full one, as Consul's leader does.
pub(super) async fn ttl_loop(agent: Arc<Agent>) {
    let mut shutdown = agent.shutdown.subscribe();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            _ = shutdown.changed() => return,
        }
        if !agent.is_leader() {
            agent
                .session_timers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clear();
            continue;
        }
        let sessions = agent.read(|s| s.session_list().1);
        let now = Instant::now();
        let mut expired = Vec::new();
        {
            let mut timers = agent
                .session_timers
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            timers.retain(|id, _| sessions.iter().any(|s| &s.id == id));
            for s in &sessions {
                let Some(ttl) = (!s.ttl.is_empty())
                    .then(|| parse_duration(&s.ttl).ok())
                    .flatten()
                else {
                    continue;
                };
                let deadline = *timers
                    .entry(s.id.clone())
                    .or_insert(now + ttl * SESSION_TTL_MULTIPLIER);
                if deadline <= now {
                    expired.push(s.id.clone());
                }
            }
        }
        for id in expired {
            tracing::info!(session = %id, "session TTL expired; invalidating");
            if let Err(e) = agent.destroy_session(&id).await {
                tracing::warn!(session = %id, error = %e, "invalidating expired session failed");
            }
        }
    }
}
