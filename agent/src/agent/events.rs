//! User events (`consul event`, `/v1/event/fire`, `/v1/event/list`): fired into the LAN
//! gossip pool, kept by each agent whose node/service/tag filters match, in a ring buffer of
//! the last 256, with a Lamport time.

use super::{Agent, AgentError};
use crate::store::Topic;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::Arc;

/// How many events an agent remembers (Consul's `userEventSize`).
pub const EVENT_BUFFER: usize = 256;

/// A user event as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UserEvent {
    #[serde(rename = "ID")]
    pub id: String,
    pub name: String,
    #[serde(with = "crate::types::b64")]
    pub payload: Vec<u8>,
    pub node_filter: String,
    pub service_filter: String,
    pub tag_filter: String,
    pub version: u32,
    #[serde(rename = "LTime")]
    pub ltime: u64,
}

/// The agent's event buffer and Lamport clock.
#[derive(Default)]
pub struct EventLog {
    pub(super) events: VecDeque<UserEvent>,
    pub(super) ltime: u64,
    /// Bumped on every stored event; the `X-Consul-Index` of `/v1/event/list`.
    pub(super) index: u64,
}

fn matches(pattern: &str, s: &str) -> bool {
    pattern.is_empty()
        || regex_lite::Regex::new(pattern)
            .map(|r| r.is_match(s))
            .unwrap_or(false)
}

impl Agent {
    /// Validate a filter the way Consul does (they are regular expressions).
    fn check_filter(what: &str, pattern: &str) -> Result<(), AgentError> {
        if pattern.is_empty() {
            return Ok(());
        }
        regex_lite::Regex::new(pattern)
            .map(|_| ())
            .map_err(|e| AgentError::BadRequest(format!("Invalid {what} filter: {e}")))
    }

    /// Fire an event into the cluster.
    pub async fn fire_event(
        &self,
        name: &str,
        payload: Vec<u8>,
        node: &str,
        service: &str,
        tag: &str,
    ) -> Result<UserEvent, AgentError> {
        if name.is_empty() {
            return Err(AgentError::BadRequest("Missing name".into()));
        }
        if payload.len() > 100 * 1024 {
            return Err(AgentError::BadRequest("payload exceeds 100KB limit".into()));
        }
        Self::check_filter("node", node)?;
        Self::check_filter("service", service)?;
        Self::check_filter("tag", tag)?;
        if !tag.is_empty() && service.is_empty() {
            return Err(AgentError::BadRequest(
                "cannot provide tag filter without service filter".into(),
            ));
        }
        let ltime = {
            let mut log = self.events.lock().unwrap_or_else(|e| e.into_inner());
            log.ltime += 1;
            log.ltime
        };
        let ev = UserEvent {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.to_string(),
            payload,
            node_filter: node.to_string(),
            service_filter: service.to_string(),
            tag_filter: tag.to_string(),
            version: 1,
            ltime,
        };
        let bytes = serde_json::to_vec(&ev).map_err(|e| AgentError::Raft(e.to_string()))?;
        match &self.gossip {
            Some(g) => g
                .send_user_event(bytes)
                .await
                .map_err(|e| AgentError::Raft(e.to_string()))?,
            None => self.receive_event(ev.clone()),
        }
        Ok(ev)
    }

    fn event_applies(&self, ev: &UserEvent) -> bool {
        if !matches(&ev.node_filter, &self.node_name) {
            return false;
        }
        if ev.service_filter.is_empty() {
            return true;
        }
        let l = self.local.lock().unwrap_or_else(|e| e.into_inner());
        l.services.values().any(|s| {
            matches(&ev.service_filter, &s.service.service)
                && (ev.tag_filter.is_empty()
                    || s.service.tags.iter().any(|t| matches(&ev.tag_filter, t)))
        })
    }

    /// Store a received event (deduplicated) if its filters match this agent.
    pub(super) fn receive_event(&self, ev: UserEvent) {
        if !self.event_applies(&ev) {
            return;
        }
        {
            let mut log = self.events.lock().unwrap_or_else(|e| e.into_inner());
            if log.events.iter().any(|e| e.id == ev.id) {
                return;
            }
            log.ltime = log.ltime.max(ev.ltime);
            log.index += 1;
            log.events.push_back(ev);
            while log.events.len() > EVENT_BUFFER {
                log.events.pop_front();
            }
        }
        self.hub.fire(&[Topic::Table("events")]);
    }

    /// Events received (optionally only those named `name`), oldest first, with the index.
    pub fn list_events(&self, name: &str) -> (u64, Vec<UserEvent>) {
        let log = self.events.lock().unwrap_or_else(|e| e.into_inner());
        let v = log
            .events
            .iter()
            .filter(|e| name.is_empty() || e.name == name)
            .cloned()
            .collect();
        (log.index + 1, v)
    }
}

/// Deliver gossiped events to the agent's buffer.
pub(super) async fn receive_loop(agent: Arc<Agent>) {
    let Some(g) = agent.gossip.clone() else {
        return;
    };
    let mut rx = g.subscribe_user_events();
    let mut shutdown = agent.shutdown.subscribe();
    loop {
        tokio::select! {
            r = rx.recv() => match r {
                Ok(bytes) => match serde_json::from_slice::<UserEvent>(&bytes) {
                    Ok(ev) => agent.receive_event(ev),
                    Err(e) => tracing::debug!(error = %e, "undecodable user event"),
                },
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => tracing::warn!(missed = n, "user events dropped"),
                Err(_) => return,
            },
            _ = shutdown.changed() => return,
        }
    }
}
