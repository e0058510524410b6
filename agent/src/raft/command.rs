//! The `Command` enum: the only way state changes. Every write, from any endpoint, becomes
//! one of these, goes through the Raft log, and is applied to the store on every server.

use crate::store::catalog::{DeregisterRequest, RegisterRequest};
use crate::store::kv::KvOp;
use crate::store::txn::{TxnError, TxnOp, TxnResult};
use crate::store::{Store, StoreData, StoreError};
use crate::types::{Index, Session};
use serde::{Deserialize, Serialize};

/// A replicated write.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum Command {
    /// Write a KV entry under a condition.
    KvSet {
        key: String,
        #[serde(with = "crate::types::b64")]
        value: Vec<u8>,
        flags: u64,
        op: KvOp,
    },
    /// Delete one key (optionally check-and-set).
    KvDelete { key: String, cas: Option<Index> },
    /// Delete every key under a prefix.
    KvDeleteTree { prefix: String },
    /// Catalog registration.
    Register(Box<RegisterRequest>),
    /// Catalog deregistration.
    Deregister(DeregisterRequest),
    /// Create a session.
    SessionCreate(Session),
    /// Destroy (invalidate) a session.
    SessionDestroy { id: String },
    /// An all-or-nothing transaction.
    Txn(Vec<TxnOp>),
    /// Record a node's network coordinate.
    CoordinateUpdate {
        node: String,
        coord: crate::types::Coordinate,
    },
    /// Create or replace a prepared query.
    QuerySet(Box<crate::store::query::PreparedQuery>),
    /// Delete a prepared query.
    QueryDelete { id: String },
    /// Reap KV tombstones of deletions at or before an index (tombstone GC).
    ReapTombstones { upto: Index },
    /// Replace the whole state with a snapshot's (`/v1/snapshot` restore).
    Restore(Box<StoreData>),
    /// The one-time ACL bootstrap: store the first management token.
    AclBootstrap(Box<crate::acl::AclToken>),
    /// The leader's ACL initialization: insert what is missing.
    AclInit {
        policies: Vec<crate::acl::AclPolicy>,
        tokens: Vec<crate::acl::AclToken>,
    },
    /// Create or replace an ACL token.
    AclTokenSet(Box<crate::acl::AclToken>),
    /// Delete an ACL token by accessor ID.
    AclTokenDelete { accessor: String },
    /// Create or replace an ACL policy.
    AclPolicySet(Box<crate::acl::AclPolicy>),
    /// Delete an ACL policy.
    AclPolicyDelete { id: String },
    /// Create or replace an ACL role.
    AclRoleSet(Box<crate::acl::AclRole>),
    /// Delete an ACL role.
    AclRoleDelete { id: String },
    /// No-op used as a write barrier.
    Noop,
    /// Concurrent KV writes to distinct keys grouped into one log entry by the leader
    /// (group commit, `agent/writes.rs`); applied in order, one response each.
    Batch(Vec<Command>),
}

/// The result of applying a command.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub enum CommandResponse {
    /// Applied; nothing to report.
    #[default]
    Ok,
    /// Applied conditionally: whether the condition held.
    Bool(bool),
    /// Rejected by the store (nothing changed).
    Error(StoreError),
    /// The outcome of a transaction.
    Txn(Result<Vec<TxnResult>, Vec<TxnError>>),
    /// The responses of a `Batch`, in its order.
    Batch(Vec<CommandResponse>),
}

impl CommandResponse {
    /// The boolean answer of a conditional write (`true` for unconditional ones), or the
    /// store's rejection.
    pub fn into_bool(self) -> Result<bool, StoreError> {
        match self {
            CommandResponse::Ok => Ok(true),
            CommandResponse::Bool(b) => Ok(b),
            CommandResponse::Error(e) => Err(e),
            CommandResponse::Txn(r) => Ok(r.is_ok()),
            CommandResponse::Batch(rs) => rs
                .into_iter()
                .try_fold(true, |all, r| Ok(r.into_bool()? && all)),
        }
    }
}

impl Command {
    /// Consul's metric name for the latency of this kind of write.
    pub fn metric_name(&self) -> &'static str {
        match self {
            Command::KvSet { .. }
            | Command::KvDelete { .. }
            | Command::KvDeleteTree { .. }
            | Command::Batch(_) => "consul.kvs.apply",
            Command::Register(_) => "consul.catalog.register",
            Command::Deregister(_) => "consul.catalog.deregister",
            Command::SessionCreate(_) | Command::SessionDestroy { .. } => "consul.session.apply",
            Command::Txn(_) => "consul.txn.apply",
            Command::Restore(_) => "consul.snapshot.restore",
            Command::Noop => "consul.raft.barrier",
            Command::ReapTombstones { .. } => "consul.fsm.tombstone.reap",
            Command::CoordinateUpdate { .. } => "consul.coordinate.update",
            Command::QuerySet(_) | Command::QueryDelete { .. } => "consul.prepared-query.apply",
            Command::AclBootstrap(_) => "consul.acl.bootstrap",
            Command::AclInit { .. } | Command::AclTokenSet(_) | Command::AclTokenDelete { .. } => {
                "consul.acl.token.upsert"
            }
            Command::AclPolicySet(_) | Command::AclPolicyDelete { .. } => {
                "consul.acl.policy.upsert"
            }
            Command::AclRoleSet(_) | Command::AclRoleDelete { .. } => "consul.acl.role.upsert",
        }
    }

    /// Apply to the store at log index `idx`. Deterministic: no clocks, no randomness.
    pub fn apply(&self, store: &mut Store, idx: Index) -> CommandResponse {
        let r = match self {
            Command::KvSet {
                key,
                value,
                flags,
                op,
            } => store
                .kv_set(idx, key, value.clone(), *flags, op)
                .map(CommandResponse::Bool),
            Command::KvDelete { key, cas } => {
                Ok(CommandResponse::Bool(store.kv_delete(idx, key, *cas)))
            }
            Command::KvDeleteTree { prefix } => {
                store.kv_delete_tree(idx, prefix);
                Ok(CommandResponse::Bool(true))
            }
            Command::Register(r) => store.catalog_register(idx, r).map(|_| CommandResponse::Ok),
            Command::Deregister(r) => store
                .catalog_deregister(idx, r)
                .map(|_| CommandResponse::Ok),
            Command::SessionCreate(s) => store.session_create(idx, s).map(|_| CommandResponse::Ok),
            Command::SessionDestroy { id } => {
                Ok(CommandResponse::Bool(store.session_destroy(idx, id)))
            }
            Command::Txn(ops) => Ok(CommandResponse::Txn(store.txn(idx, ops))),
            Command::CoordinateUpdate { node, coord } => {
                store.coordinate_set(idx, node, coord);
                Ok(CommandResponse::Ok)
            }
            Command::QuerySet(q) => store.query_set(idx, q).map(|_| CommandResponse::Ok),
            Command::QueryDelete { id } => Ok(CommandResponse::Bool(store.query_delete(idx, id))),
            Command::ReapTombstones { upto } => {
                store.kv_reap_tombstones(*upto);
                Ok(CommandResponse::Ok)
            }
            Command::Restore(data) => {
                store.restore_snapshot_at(idx, (**data).clone());
                Ok(CommandResponse::Ok)
            }
            Command::AclBootstrap(t) => store.acl_bootstrap(idx, t).map(|_| CommandResponse::Ok),
            Command::AclInit { policies, tokens } => {
                store.acl_init(idx, policies, tokens);
                Ok(CommandResponse::Ok)
            }
            Command::AclTokenSet(t) => store.acl_token_set(idx, t).map(|_| CommandResponse::Ok),
            Command::AclTokenDelete { accessor } => {
                Ok(CommandResponse::Bool(store.acl_token_delete(idx, accessor)))
            }
            Command::AclPolicySet(p) => store.acl_policy_set(idx, p).map(|_| CommandResponse::Ok),
            Command::AclPolicyDelete { id } => {
                store.acl_policy_delete(idx, id).map(CommandResponse::Bool)
            }
            Command::AclRoleSet(r) => store.acl_role_set(idx, r).map(|_| CommandResponse::Ok),
            Command::AclRoleDelete { id } => {
                Ok(CommandResponse::Bool(store.acl_role_delete(idx, id)))
            }
            Command::Noop => Ok(CommandResponse::Ok),
            Command::Batch(cmds) => Ok(CommandResponse::Batch(
                cmds.iter().map(|c| c.apply(store, idx)).collect(),
            )),
        };
        r.unwrap_or_else(CommandResponse::Error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_store;

    fn set(key: &str, value: &str, op: KvOp) -> Command {
        Command::KvSet {
            key: key.into(),
            value: value.as_bytes().to_vec(),
            flags: 0,
            op,
        }
    }

    #[test]
    fn batch_applies_each_write_at_its_entry_index_with_one_response_each() {
        let mut s = test_store();
        set("b", "old", KvOp::Set).apply(&mut s, 3);
        set("c", "gone", KvOp::Set).apply(&mut s, 4);
        let batch = Command::Batch(vec![
            set("a", "1", KvOp::Set),
            set("b", "new", KvOp::Cas(99)),
            Command::KvDelete {
                key: "c".into(),
                cas: Some(4),
            },
            set("d", "x", KvOp::Lock("no-such-session".into())),
        ]);
        // The log encodes entries as JSON: a batch must survive the round trip.
        let decoded: Command =
            serde_json::from_slice(&serde_json::to_vec(&batch).unwrap()).unwrap();
        assert_eq!(decoded, batch);
        let CommandResponse::Batch(rs) = decoded.apply(&mut s, 10) else {
            panic!("a batch answers with a batch");
        };
        assert_eq!(rs.len(), 4);
        assert_eq!(rs[0], CommandResponse::Bool(true));
        assert_eq!(rs[1], CommandResponse::Bool(false), "failed CAS");
        assert_eq!(rs[2], CommandResponse::Bool(true));
        assert!(matches!(rs[3], CommandResponse::Error(_)), "{:?}", rs[3]);
        let a = s.kv_get("a").1.unwrap();
        assert_eq!((a.create_index, a.modify_index), (10, 10));
        let b = s.kv_get("b").1.unwrap();
        assert_eq!((b.modify_index, b.value.as_slice()), (3, &b"old"[..]));
        assert!(s.kv_get("c").1.is_none());
        assert!(s.kv_get("d").1.is_none());
        assert_eq!(s.kv_get("a").0, 10, "a key reads at its ModifyIndex");
        assert!(CommandResponse::Batch(vec![CommandResponse::Bool(true)])
            .into_bool()
            .unwrap());
        assert!(!CommandResponse::Batch(rs[..3].to_vec())
            .into_bool()
            .unwrap());
    }
}
