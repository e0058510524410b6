//! Replicated state: catalog, KV, sessions. Synchronous, no I/O: the Raft state machine
//! calls the write operations with the log index of the entry being applied, and the HTTP
//! and DNS layers call the reads, each of which returns `(index, value)`.
//!
//! Pattern (Consul's `state` package): each public op touches the tables, bumps their
//! indexes and fires the watch topics it changed.

pub mod acl;
pub mod catalog;
pub mod kv;
pub mod query;
pub mod session;
pub mod txn;
pub mod watch;

use crate::types::{HealthCheck, Index, KvEntry, Node, NodeService, Session};
use imbl::{OrdMap, OrdSet};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;
pub use watch::{Subscription, Topic, WatchHub};

/// Errors a write can return; texts are Consul's where clients read them.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Serialize, Deserialize)]
pub enum StoreError {
    /// A lock or session op named a session that does not exist.
    #[error("invalid session \"{0}\"")]
    InvalidSession(String),
    /// A registration or session named a node that is not in the catalog.
    #[error("Missing node registration")]
    MissingNode,
    /// A check named a service that is not registered on the node.
    #[error("Missing service registration")]
    MissingService,
    /// A session referred to a check that does not exist.
    #[error("Missing check '{0}' registration")]
    MissingCheck(String),
    /// A session referred to a critical check.
    #[error("Check '{0}' is in critical state")]
    CheckCritical(String),
    /// `/v1/acl/bootstrap` was already done, at this index.
    #[error("ACL bootstrap no longer allowed (reset index: {0})")]
    AclBootstrapDone(Index),
    /// Anything else invalid in a request.
    #[error("{0}")]
    Invalid(String),
}

/// The serializable part of the store: what a snapshot holds.
///
/// The large tables are persistent maps (`imbl::OrdMap`): cloning the whole state is a few
/// reference-count bumps, so a transaction can keep the state it started from and roll
/// back to it in O(1), and writes after a clone copy only the paths they touch.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct StoreData {
    pub kv: OrdMap<String, KvEntry>,
    /// Deleted keys and the index of their deletion, so prefix queries see deletes.
    pub tombstones: OrdMap<String, Index>,
    /// Tombstones up to this index were reaped; prefix indexes never go below it, so no
    /// blocking query sees its index go backwards after a reap.
    #[serde(default)]
    pub tombstone_floor: Index,
    pub nodes: OrdMap<String, Node>,
    /// node -> service ID -> service
    pub services: OrdMap<String, BTreeMap<String, NodeService>>,
    /// node -> check ID -> check
    pub checks: OrdMap<String, BTreeMap<String, HealthCheck>>,
    pub sessions: OrdMap<String, Session>,
    /// Prepared queries by ID.
    #[serde(default)]
    pub queries: OrdMap<String, query::PreparedQuery>,
    /// Network coordinates by node.
    #[serde(default)]
    pub coordinates: OrdMap<String, crate::types::Coordinate>,
    /// ACL tokens by accessor ID.
    #[serde(default)]
    pub acl_tokens: OrdMap<String, crate::acl::AclToken>,
    /// ACL policies by ID.
    #[serde(default)]
    pub acl_policies: OrdMap<String, crate::acl::AclPolicy>,
    /// ACL roles by ID.
    #[serde(default)]
    pub acl_roles: OrdMap<String, crate::acl::AclRole>,
    /// The index of the bootstrap, once done (`/v1/acl/bootstrap` is one-time).
    #[serde(default)]
    pub acl_bootstrap_index: Option<Index>,
    /// Table indexes: `nodes`, `services`, `checks`, `kvs`, `sessions`, `service.<name>`.
    pub indexes: OrdMap<String, Index>,
    /// Service name -> the (node, service ID) pairs of its instances: derived from
    /// `services`, never serialized; kept by the catalog writes and rebuilt on restore.
    #[serde(skip)]
    pub(crate) by_service: ServiceIndex,
}

/// Service name -> (node, service ID) of its instances. Derived data: equal whenever the
/// tables it is derived from are, so it takes no part in comparisons.
#[derive(Debug, Clone, Default)]
pub struct ServiceIndex(pub(crate) OrdMap<String, OrdSet<(String, String)>>);

impl PartialEq for ServiceIndex {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl ServiceIndex {
    pub(crate) fn add(&mut self, name: &str, node: &str, sid: &str) {
        self.0
            .entry(name.to_string())
            .or_default()
            .insert((node.to_string(), sid.to_string()));
    }

    pub(crate) fn remove(&mut self, name: &str, node: &str, sid: &str) {
        if let Some(set) = self.0.get_mut(name) {
            set.remove(&(node.to_string(), sid.to_string()));
            if set.is_empty() {
                self.0.remove(name);
            }
        }
    }

    /// The instances of a service, as (node, service ID), in node order.
    pub(crate) fn instances(&self, name: &str) -> impl Iterator<Item = &(String, String)> {
        self.0.get(name).into_iter().flat_map(|s| s.iter())
    }
}

impl StoreData {
    /// Rebuild the derived service-name index from the services table.
    pub(crate) fn rebuild_service_index(&mut self) {
        let mut idx = ServiceIndex::default();
        for (node, m) in &self.services {
            for (sid, s) in m {
                idx.add(&s.service, node, sid);
            }
        }
        self.by_service = idx;
    }
}

/// The state store.
pub struct Store {
    pub(crate) data: StoreData,
    hub: Arc<WatchHub>,
    /// Lock-delay deadlines per key (in memory only, as in Consul).
    lock_delay: HashMap<String, Instant>,
    fired: Vec<Topic>,
    /// Bumped by every write and restore: a cheap "has anything changed" for caches.
    generation: u64,
}

impl Store {
    /// An empty store whose writes notify `hub`.
    pub fn new(hub: Arc<WatchHub>) -> Self {
        Store {
            data: StoreData::default(),
            hub,
            lock_delay: HashMap::new(),
            fired: Vec::new(),
            generation: 0,
        }
    }

    /// A counter that changes whenever the state does (any write, a restore); answers
    /// computed from the store stay valid while it stays the same.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The watch hub blocking queries subscribe to.
    pub fn hub(&self) -> &Arc<WatchHub> {
        &self.hub
    }

    /// The highest index of the named tables (at least 1, as clients require).
    pub fn max_index(&self, tables: &[&str]) -> Index {
        tables
            .iter()
            .filter_map(|t| self.data.indexes.get(*t))
            .copied()
            .max()
            .unwrap_or(0)
            .max(1)
    }

    /// The highest index of any table.
    pub fn last_index(&self) -> Index {
        self.data
            .indexes
            .values()
            .copied()
            .max()
            .unwrap_or(0)
            .max(1)
    }

    fn bump(&mut self, table: &str, idx: Index) {
        self.generation += 1;
        let e = self.data.indexes.entry(table.to_string()).or_insert(0);
        if idx > *e {
            *e = idx;
        }
    }

    fn fire(&mut self, t: Topic) {
        self.fired.push(t);
    }

    /// Deliver the topics fired by the writes since the last call.
    pub fn flush_watches(&mut self) {
        if !self.fired.is_empty() {
            let fired = std::mem::take(&mut self.fired);
            self.hub.fire(&fired);
        }
    }

    /// Serialize the whole state for a snapshot.
    pub fn snapshot(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(&self.data)
    }

    /// Replace the whole state from a snapshot and wake every waiter.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), serde_json::Error> {
        let data: StoreData = serde_json::from_slice(bytes)?;
        self.restore_data(data);
        Ok(())
    }

    /// Replace the whole state and wake every waiter.
    pub fn restore_data(&mut self, data: StoreData) {
        self.generation += 1;
        let mut topics: Vec<Topic> = ["nodes", "services", "checks", "kvs", "sessions"]
            .iter()
            .map(|t| Topic::Table(t))
            .collect();
        for (k, _) in self.data.kv.iter().chain(data.kv.iter()) {
            topics.push(Topic::Kv(k.clone()));
        }
        for s in self.data.services.values().chain(data.services.values()) {
            for svc in s.values() {
                topics.push(Topic::Service(svc.service.clone()));
            }
        }
        for n in self.data.nodes.keys().chain(data.nodes.keys()) {
            topics.push(Topic::Node(n.clone()));
        }
        for s in self.data.sessions.keys().chain(data.sessions.keys()) {
            topics.push(Topic::Session(s.clone()));
        }
        self.data = data;
        self.data.rebuild_service_index();
        self.lock_delay.clear();
        self.fired.extend(topics);
        self.flush_watches();
    }

    /// Restore a snapshot taken elsewhere, at log index `idx`: the tables are replaced and
    /// every table index moves to `idx` so blocking queries see the change.
    pub fn restore_snapshot_at(&mut self, idx: Index, mut data: StoreData) {
        data.indexes = data
            .indexes
            .iter()
            .map(|(k, v)| (k.clone(), (*v).max(idx)))
            .collect();
        for t in ["nodes", "services", "checks", "kvs", "sessions"] {
            data.indexes.insert(t.to_string(), idx);
        }
        self.restore_data(data);
    }

    /// Record a node's network coordinate.
    pub fn coordinate_set(&mut self, idx: Index, node: &str, c: &crate::types::Coordinate) {
        self.bump("coordinates", idx);
        self.fire(Topic::Table("coordinates"));
        self.data.coordinates.insert(node.to_string(), c.clone());
    }

    /// All node coordinates.
    pub fn coordinates(&self) -> (Index, OrdMap<String, crate::types::Coordinate>) {
        (
            self.max_index(&["coordinates"]),
            self.data.coordinates.clone(),
        )
    }

    /// Read-only access to the raw tables (snapshot inspection, tests).
    pub fn data(&self) -> &StoreData {
        &self.data
    }
}

#[cfg(test)]
pub(crate) fn test_store() -> Store {
    Store::new(WatchHub::new())
}
