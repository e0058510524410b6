//! Sessions: creation (validated against the node and its checks), invalidation (by
//! destroy, TTL expiry, a failing check or the node leaving) with the session's behavior
//! applied to the keys it holds, and reads.

use super::{Store, StoreError, Topic};
use crate::types::{Index, Session, SessionBehavior, HEALTH_CRITICAL};

impl Store {
    /// Create a session. The node must exist and every check it names must exist and not
    /// be critical.
    pub fn session_create(&mut self, idx: Index, s: &Session) -> Result<(), StoreError> {
        if s.id.is_empty() {
            return Err(StoreError::Invalid("Missing session ID".into()));
        }
        if !self.data.nodes.contains_key(&s.node) {
            return Err(StoreError::MissingNode);
        }
        let node_checks = self.data.checks.get(&s.node);
        for cid in &s.node_checks {
            match node_checks.and_then(|m| m.get(cid)) {
                None => return Err(StoreError::MissingCheck(cid.clone())),
                Some(c) if c.status == HEALTH_CRITICAL => {
                    return Err(StoreError::CheckCritical(cid.clone()))
                }
                _ => {}
            }
        }
        for sc in &s.service_checks {
            match node_checks.and_then(|m| m.get(&sc.id)) {
                None => return Err(StoreError::MissingCheck(sc.id.clone())),
                Some(c) if c.status == HEALTH_CRITICAL => {
                    return Err(StoreError::CheckCritical(sc.id.clone()))
                }
                _ => {}
            }
        }
        let mut sess = s.clone();
        sess.create_index = idx;
        sess.modify_index = idx;
        self.bump("sessions", idx);
        self.fire(Topic::Table("sessions"));
        self.fire(Topic::Session(s.id.clone()));
        self.data.sessions.insert(s.id.clone(), sess);
        Ok(())
    }

    /// Destroy (invalidate) a session; returns whether it existed.
    pub fn session_destroy(&mut self, idx: Index, id: &str) -> bool {
        let Some(sess) = self.data.sessions.remove(id) else {
            return false;
        };
        self.bump("sessions", idx);
        self.fire(Topic::Table("sessions"));
        self.fire(Topic::Session(id.to_string()));
        let held: Vec<String> = self
            .data
            .kv
            .values()
            .filter(|e| e.session.as_deref() == Some(id))
            .map(|e| e.key.clone())
            .collect();
        for key in held {
            self.set_lock_delay(&key, sess.lock_delay_ns);
            match sess.behavior {
                SessionBehavior::Delete => {
                    self.kv_delete(idx, &key, None);
                }
                SessionBehavior::Release => {
                    if let Some(mut e) = self.data.kv.get(&key).cloned() {
                        e.session = None;
                        self.kv_put_entry(idx, e);
                    }
                }
            }
        }
        true
    }

    /// Destroy every session matching `pred`.
    fn invalidate_where(&mut self, idx: Index, pred: impl Fn(&Session) -> bool) {
        let ids: Vec<String> = self
            .data
            .sessions
            .values()
            .filter(|s| pred(s))
            .map(|s| s.id.clone())
            .collect();
        for id in ids {
            self.session_destroy(idx, &id);
        }
    }

    /// Sessions bound to a check that went critical (or away) are invalidated.
    pub(super) fn invalidate_sessions_for_check(&mut self, idx: Index, node: &str, check_id: &str) {
        self.invalidate_where(idx, |s| {
            s.node == node
                && (s.node_checks.iter().any(|c| c == check_id)
                    || s.service_checks.iter().any(|c| c.id == check_id))
        });
    }

    /// Sessions of a node that left the catalog are invalidated.
    pub(super) fn invalidate_node_sessions(&mut self, idx: Index, node: &str) {
        self.invalidate_where(idx, |s| s.node == node);
    }

    /// One session.
    pub fn session_get(&self, id: &str) -> (Index, Option<Session>) {
        (
            self.max_index(&["sessions"]),
            self.data.sessions.get(id).cloned(),
        )
    }

    /// All sessions.
    pub fn session_list(&self) -> (Index, Vec<Session>) {
        (
            self.max_index(&["sessions"]),
            self.data.sessions.values().cloned().collect(),
        )
    }

    /// Sessions of one node.
    pub fn node_sessions(&self, node: &str) -> (Index, Vec<Session>) {
        (
            self.max_index(&["sessions"]),
            self.data
                .sessions
                .values()
                .filter(|s| s.node == node)
                .cloned()
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::store::catalog::RegisterRequest;
    use crate::store::kv::KvOp;
    use crate::store::{test_store, Store, StoreError};
    use crate::types::*;

    fn setup() -> Store {
        let mut s = test_store();
        s.catalog_register(
            1,
            &RegisterRequest {
                node: Node {
                    node: "n1".into(),
                    address: "127.0.0.1".into(),
                    ..Default::default()
                },
                checks: vec![HealthCheck {
                    check_id: SERF_CHECK_ID.into(),
                    status: HEALTH_PASSING.into(),
                    ..Default::default()
                }],
                ..Default::default()
            },
        )
        .unwrap();
        s
    }

    fn sess(id: &str, behavior: SessionBehavior) -> Session {
        Session {
            id: id.into(),
            node: "n1".into(),
            node_checks: vec![SERF_CHECK_ID.into()],
            behavior,
            ..Default::default()
        }
    }

    #[test]
    fn create_requires_node_and_healthy_checks() {
        let mut s = setup();
        let mut bad = sess("x", SessionBehavior::Release);
        bad.node = "ghost".into();
        assert_eq!(s.session_create(2, &bad), Err(StoreError::MissingNode));
        let mut bad = sess("x", SessionBehavior::Release);
        bad.node_checks = vec!["nope".into()];
        assert!(matches!(
            s.session_create(2, &bad),
            Err(StoreError::MissingCheck(_))
        ));
        s.session_create(3, &sess("a", SessionBehavior::Release))
            .unwrap();
        assert_eq!(s.session_get("a").1.unwrap().create_index, 3);
    }

    #[test]
    fn behaviors_release_and_delete() {
        let mut s = setup();
        s.session_create(2, &sess("rel", SessionBehavior::Release))
            .unwrap();
        s.session_create(3, &sess("del", SessionBehavior::Delete))
            .unwrap();
        s.kv_set(4, "a", b"1".to_vec(), 0, &KvOp::Lock("rel".into()))
            .unwrap();
        s.kv_set(5, "b", b"1".to_vec(), 0, &KvOp::Lock("del".into()))
            .unwrap();
        assert!(s.session_destroy(6, "rel"));
        let a = s.kv_get("a").1.unwrap();
        assert_eq!((a.session, a.lock_index), (None, 1));
        assert!(s.session_destroy(7, "del"));
        assert!(s.kv_get("b").1.is_none());
        assert!(!s.session_destroy(8, "del"));
    }

    #[test]
    fn critical_check_invalidates_session() {
        let mut s = setup();
        s.session_create(2, &sess("a", SessionBehavior::Release))
            .unwrap();
        s.catalog_register(
            3,
            &RegisterRequest {
                node: Node {
                    node: "n1".into(),
                    address: "127.0.0.1".into(),
                    ..Default::default()
                },
                checks: vec![HealthCheck {
                    check_id: SERF_CHECK_ID.into(),
                    status: HEALTH_CRITICAL.into(),
                    ..Default::default()
                }],
                ..Default::default()
            },
        )
        .unwrap();
        assert!(s.session_get("a").1.is_none());
    }
}
