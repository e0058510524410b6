//! Transactions (`/v1/txn`): a list of KV, node, service and check operations applied
//! all-or-nothing at one index. Composes the same inner operations the single-item
//! endpoints use; on the first failing op the store is rolled back and nothing fires.

use super::catalog::{DeregisterRequest, RegisterRequest};
use super::kv::KvOp;
use super::{Store, StoreError};
use crate::types::{HealthCheck, Index, KvEntry, Node, NodeService};
use serde::{Deserialize, Serialize};

/// One operation of a transaction.
// At most 64 of these live for one request; boxing would only add indirection.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TxnOp {
    /// A KV verb (`set`, `cas`, `lock`, `unlock`, `get`, `get-tree`, `check-index`,
    /// `check-session`, `check-not-exists`, `delete`, `delete-tree`, `delete-cas`).
    Kv {
        verb: String,
        key: String,
        #[serde(with = "crate::types::b64")]
        value: Vec<u8>,
        flags: u64,
        index: Index,
        session: String,
    },
    /// A node verb (`set`, `cas`, `get`, `delete`, `delete-cas`).
    Node { verb: String, node: Node },
    /// A service verb on a node (`set`, `cas`, `get`, `delete`, `delete-cas`).
    Service {
        verb: String,
        node: String,
        service: NodeService,
    },
    /// A check verb (`set`, `cas`, `get`, `delete`, `delete-cas`).
    Check { verb: String, check: HealthCheck },
}

/// One result of a successful transaction.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TxnResult {
    Kv(KvEntry),
    Node(Node),
    Service(NodeService),
    Check(HealthCheck),
}

/// A failed operation (`OpIndex`, `What`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TxnError {
    pub op_index: usize,
    pub what: String,
}

fn err(what: String) -> StoreError {
    StoreError::Invalid(what)
}

impl Store {
    /// Apply every op at `idx`, or none of them.
    pub fn txn(&mut self, idx: Index, ops: &[TxnOp]) -> Result<Vec<TxnResult>, Vec<TxnError>> {
        let saved = self.data.clone();
        let fired_len = self.fired.len();
        let mut results = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            match self.txn_op(idx, op) {
                Ok(Some(r)) => results.push(r),
                Ok(None) => {}
                Err(e) => {
                    self.data = saved;
                    self.fired.truncate(fired_len);
                    return Err(vec![TxnError {
                        op_index: i,
                        what: e.to_string(),
                    }]);
                }
            }
        }
        Ok(results)
    }

    /// Read-only transactions run without the log (all verbs must be reads).
    pub fn txn_read(&self, ops: &[TxnOp]) -> Result<Vec<TxnResult>, Vec<TxnError>> {
        let mut results = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            match self.txn_read_op(op) {
                Ok(r) => results.extend(r),
                Err(e) => {
                    return Err(vec![TxnError {
                        op_index: i,
                        what: e.to_string(),
                    }])
                }
            }
        }
        Ok(results)
    }

    fn txn_read_op(&self, op: &TxnOp) -> Result<Vec<TxnResult>, StoreError> {
        match op {
            TxnOp::Kv {
                verb,
                key,
                index,
                session,
                ..
            } => match verb.as_str() {
                "get" => self
                    .data
                    .kv
                    .get(key)
                    .cloned()
                    .map(|e| vec![TxnResult::Kv(e)])
                    .ok_or_else(|| err(format!("key {key:?} doesn't exist"))),
                "get-tree" => Ok(self.kv_list(key).1.into_iter().map(TxnResult::Kv).collect()),
                "check-index" => match self.data.kv.get(key) {
                    None => Err(err(format!(
                        "failed to check index, key {key:?} doesn't exist"
                    ))),
                    Some(e) if e.modify_index != *index => Err(err(format!(
                        "failed index check for key {key:?}, current modify index {} != {index}",
                        e.modify_index
                    ))),
                    Some(e) => Ok(vec![TxnResult::Kv(e.clone())]),
                },
                "check-session" => match self.data.kv.get(key) {
                    None => Err(err(format!(
                        "failed to check session, key {key:?} doesn't exist"
                    ))),
                    Some(e) if e.session.as_deref().unwrap_or("") != session => Err(err(format!(
                        "failed session check for key {key:?}, current session {:?} != {session:?}",
                        e.session.as_deref().unwrap_or("")
                    ))),
                    Some(e) => Ok(vec![TxnResult::Kv(e.clone())]),
                },
                "check-not-exists" => match self.data.kv.get(key) {
                    Some(_) => Err(err(format!("key {key:?} exists"))),
                    None => Ok(vec![]),
                },
                other => Err(err(format!("unknown KV verb {other:?}"))),
            },
            TxnOp::Node { verb, node } if verb == "get" => self
                .node(&node.node)
                .map(|n| vec![TxnResult::Node(n)])
                .ok_or_else(|| err(format!("node {:?} doesn't exist", node.node))),
            TxnOp::Service {
                verb,
                node,
                service,
            } if verb == "get" => self
                .node_service(node, &service.id)
                .map(|s| vec![TxnResult::Service(s)])
                .ok_or_else(|| {
                    err(format!(
                        "service {:?} on node {node:?} doesn't exist",
                        service.id
                    ))
                }),
            TxnOp::Check { verb, check } if verb == "get" => self
                .node_check(&check.node, &check.check_id)
                .map(|c| vec![TxnResult::Check(c)])
                .ok_or_else(|| {
                    err(format!(
                        "check {:?} on node {:?} doesn't exist",
                        check.check_id, check.node
                    ))
                }),
            _ => Err(err("write operation in a read-only transaction".into())),
        }
    }

    /// Whether every op is a read (such transactions need no log entry).
    pub fn txn_is_read_only(ops: &[TxnOp]) -> bool {
        ops.iter().all(|op| match op {
            TxnOp::Kv { verb, .. } => matches!(
                verb.as_str(),
                "get" | "get-tree" | "check-index" | "check-session" | "check-not-exists"
            ),
            TxnOp::Node { verb, .. } | TxnOp::Service { verb, .. } | TxnOp::Check { verb, .. } => {
                verb == "get"
            }
        })
    }

    fn txn_op(&mut self, idx: Index, op: &TxnOp) -> Result<Option<TxnResult>, StoreError> {
        if Store::txn_is_read_only(std::slice::from_ref(op)) {
            return Ok(self.txn_read_op(op)?.into_iter().next());
        }
        match op {
            TxnOp::Kv {
                verb,
                key,
                value,
                flags,
                index,
                session,
            } => {
                let kv_result = |s: &Store| s.data.kv.get(key).cloned().map(TxnResult::Kv);
                match verb.as_str() {
                    "set" => {
                        self.kv_set(idx, key, value.clone(), *flags, &KvOp::Set)?;
                        Ok(kv_result(self))
                    }
                    "cas" => {
                        if !self.kv_set(idx, key, value.clone(), *flags, &KvOp::Cas(*index))? {
                            return Err(err(format!("failed to set key {key:?}, index is stale")));
                        }
                        Ok(kv_result(self))
                    }
                    "lock" => {
                        if !self.kv_set(
                            idx,
                            key,
                            value.clone(),
                            *flags,
                            &KvOp::Lock(session.clone()),
                        )? {
                            return Err(err(format!(
                                "failed to lock key {key:?}, lock is already held"
                            )));
                        }
                        Ok(kv_result(self))
                    }
                    "unlock" => {
                        if !self.kv_set(
                            idx,
                            key,
                            value.clone(),
                            *flags,
                            &KvOp::Unlock(session.clone()),
                        )? {
                            return Err(err(format!(
                                "failed to unlock key {key:?}, lock isn't held, or is held by another session"
                            )));
                        }
                        Ok(kv_result(self))
                    }
                    "delete" => {
                        self.kv_delete(idx, key, None);
                        Ok(None)
                    }
                    "delete-tree" => {
                        self.kv_delete_tree(idx, key);
                        Ok(None)
                    }
                    "delete-cas" => {
                        if !self.kv_delete(idx, key, Some(*index)) {
                            return Err(err(format!(
                                "failed to delete key {key:?}, index is stale"
                            )));
                        }
                        Ok(None)
                    }
                    other => Err(err(format!("unknown KV verb {other:?}"))),
                }
            }
            TxnOp::Node { verb, node } => {
                let existing = self.node(&node.node);
                match verb.as_str() {
                    "set" | "cas" => {
                        if verb == "cas"
                            && existing.as_ref().map(|n| n.modify_index).unwrap_or(0)
                                != node.modify_index
                        {
                            return Err(err(format!(
                                "failed to set node {:?}, index is stale",
                                node.node
                            )));
                        }
                        self.catalog_register(
                            idx,
                            &RegisterRequest {
                                node: node.clone(),
                                ..Default::default()
                            },
                        )?;
                        Ok(self.node(&node.node).map(TxnResult::Node))
                    }
                    "delete" | "delete-cas" => {
                        if verb == "delete-cas"
                            && existing.as_ref().map(|n| n.modify_index) != Some(node.modify_index)
                        {
                            return Err(err(format!(
                                "failed to delete node {:?}, index is stale",
                                node.node
                            )));
                        }
                        self.catalog_deregister(
                            idx,
                            &DeregisterRequest {
                                node: node.node.clone(),
                                ..Default::default()
                            },
                        )?;
                        Ok(None)
                    }
                    other => Err(err(format!("unknown Node verb {other:?}"))),
                }
            }
            TxnOp::Service {
                verb,
                node,
                service,
            } => {
                let existing = self.node_service(node, &service.id);
                match verb.as_str() {
                    "set" | "cas" => {
                        if verb == "cas"
                            && existing.as_ref().map(|s| s.modify_index).unwrap_or(0)
                                != service.modify_index
                        {
                            return Err(err(format!(
                                "failed to set service {:?} on node {node:?}, index is stale",
                                service.id
                            )));
                        }
                        let n = self.node(node).ok_or(StoreError::MissingNode)?;
                        self.catalog_register(
                            idx,
                            &RegisterRequest {
                                node: n,
                                service: Some(service.clone()),
                                checks: vec![],
                                skip_node_update: true,
                            },
                        )?;
                        Ok(self.node_service(node, &service.id).map(TxnResult::Service))
                    }
                    "delete" | "delete-cas" => {
                        if verb == "delete-cas"
                            && existing.as_ref().map(|s| s.modify_index)
                                != Some(service.modify_index)
                        {
                            return Err(err(format!(
                                "failed to delete service {:?} on node {node:?}, index is stale",
                                service.id
                            )));
                        }
                        self.catalog_deregister(
                            idx,
                            &DeregisterRequest {
                                node: node.clone(),
                                service_id: Some(service.id.clone()),
                                check_id: None,
                            },
                        )?;
                        Ok(None)
                    }
                    other => Err(err(format!("unknown Service verb {other:?}"))),
                }
            }
            TxnOp::Check { verb, check } => {
                let existing = self.node_check(&check.node, &check.check_id);
                match verb.as_str() {
                    "set" | "cas" => {
                        if verb == "cas"
                            && existing.as_ref().map(|c| c.modify_index).unwrap_or(0)
                                != check.modify_index
                        {
                            return Err(err(format!(
                                "failed to set check {:?} on node {:?}, index is stale",
                                check.check_id, check.node
                            )));
                        }
                        let n = self.node(&check.node).ok_or(StoreError::MissingNode)?;
                        self.catalog_register(
                            idx,
                            &RegisterRequest {
                                node: n,
                                service: None,
                                checks: vec![check.clone()],
                                skip_node_update: true,
                            },
                        )?;
                        Ok(self
                            .node_check(&check.node, &check.check_id)
                            .map(TxnResult::Check))
                    }
                    "delete" | "delete-cas" => {
                        if verb == "delete-cas"
                            && existing.as_ref().map(|c| c.modify_index) != Some(check.modify_index)
                        {
                            return Err(err(format!(
                                "failed to delete check {:?} on node {:?}, index is stale",
                                check.check_id, check.node
                            )));
                        }
                        self.catalog_deregister(
                            idx,
                            &DeregisterRequest {
                                node: check.node.clone(),
                                service_id: None,
                                check_id: Some(check.check_id.clone()),
                            },
                        )?;
                        Ok(None)
                    }
                    other => Err(err(format!("unknown Check verb {other:?}"))),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_store;

    fn kv(verb: &str, key: &str, value: &str, index: u64) -> TxnOp {
        TxnOp::Kv {
            verb: verb.into(),
            key: key.into(),
            value: value.as_bytes().to_vec(),
            flags: 0,
            index,
            session: String::new(),
        }
    }

    #[test]
    fn all_or_nothing() {
        let mut s = test_store();
        s.txn(2, &[kv("set", "a", "1", 0), kv("set", "b", "2", 0)])
            .unwrap();
        let e = s
            .txn(3, &[kv("set", "c", "3", 0), kv("cas", "a", "x", 99)])
            .unwrap_err();
        assert_eq!(e[0].op_index, 1);
        assert!(e[0].what.contains("index is stale"), "{}", e[0].what);
        assert!(s.kv_get("c").1.is_none(), "first op rolled back");
        assert_eq!(s.kv_get("a").1.unwrap().value, b"1");
        let r = s
            .txn(
                4,
                &[
                    kv("check-index", "a", "", 2),
                    kv("delete", "b", "", 0),
                    kv("get", "a", "", 0),
                ],
            )
            .unwrap();
        assert_eq!(r.len(), 2);
        assert!(s.kv_get("b").1.is_none());
        let e = s.txn(5, &[kv("check-not-exists", "a", "", 0)]).unwrap_err();
        assert_eq!(e[0].what, "key \"a\" exists");
        assert!(Store::txn_is_read_only(&[
            kv("get", "a", "", 0),
            kv("get-tree", "", "", 0)
        ]));
        assert_eq!(s.txn_read(&[kv("get-tree", "", "", 0)]).unwrap().len(), 1);
    }
}
