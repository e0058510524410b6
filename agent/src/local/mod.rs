//! This agent's own services and checks (from config files and the agent HTTP API) and
//! anti-entropy: the difference between them and the catalog, as the registrations and
//! deregistrations that bring the catalog back in line.

use crate::store::catalog::{DeregisterRequest, RegisterRequest};
use crate::types::{HealthCheck, Node, NodeService, SERF_CHECK_ID};
use std::collections::BTreeMap;

/// Where a local service or check came from (config ones are replaced on reload).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A config file.
    Config,
    /// The agent HTTP API.
    Api,
}

/// A service registered with this agent.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalService {
    pub service: NodeService,
    pub token: String,
    pub source: Source,
}

/// A check registered with this agent.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalCheck {
    pub check: HealthCheck,
    pub token: String,
    pub source: Source,
}

/// One step of a sync.
#[derive(Debug, Clone, PartialEq)]
pub enum SyncOp {
    Register(Box<RegisterRequest>),
    Deregister(DeregisterRequest),
}

/// The agent's local state.
#[derive(Debug, Clone, Default)]
pub struct LocalState {
    pub node: Node,
    pub services: BTreeMap<String, LocalService>,
    pub checks: BTreeMap<String, LocalCheck>,
}

fn strip_svc(s: &NodeService) -> NodeService {
    NodeService {
        create_index: 0,
        modify_index: 0,
        ..s.clone()
    }
}

fn strip_check(c: &HealthCheck) -> HealthCheck {
    HealthCheck {
        create_index: 0,
        modify_index: 0,
        service_name: String::new(),
        service_tags: Vec::new(),
        ..c.clone()
    }
}

fn strip_node(n: &Node) -> Node {
    Node {
        create_index: 0,
        modify_index: 0,
        ..n.clone()
    }
}

impl LocalState {
    /// A local state for `node`.
    pub fn new(node: Node) -> Self {
        LocalState {
            node,
            ..Default::default()
        }
    }

    /// Checks that belong to service `id`.
    pub fn service_checks(&self, id: &str) -> Vec<HealthCheck> {
        self.checks
            .values()
            .filter(|c| c.check.service_id == id)
            .map(|c| c.check.clone())
            .collect()
    }

    /// The registration for one local service with its checks.
    pub fn register_service_op(&self, id: &str) -> Option<RegisterRequest> {
        let s = self.services.get(id)?;
        Some(RegisterRequest {
            node: self.node.clone(),
            service: Some(s.service.clone()),
            checks: self.service_checks(id),
            skip_node_update: false,
        })
    }

    /// The registration for one local check.
    pub fn register_check_op(&self, id: &str) -> Option<RegisterRequest> {
        let c = self.checks.get(id)?;
        let service = (!c.check.service_id.is_empty())
            .then(|| {
                self.services
                    .get(&c.check.service_id)
                    .map(|s| s.service.clone())
            })
            .flatten();
        Some(RegisterRequest {
            node: self.node.clone(),
            service,
            checks: vec![c.check.clone()],
            skip_node_update: false,
        })
    }

    /// What must change in the catalog so that it matches this agent's state, given what the
    /// catalog holds for this node.
    pub fn diff(
        &self,
        catalog_node: Option<&Node>,
        catalog_services: &[NodeService],
        catalog_checks: &[HealthCheck],
    ) -> Vec<SyncOp> {
        let mut ops = Vec::new();
        let node_ok = catalog_node
            .map(|n| strip_node(n) == strip_node(&self.node))
            .unwrap_or(false);
        if !node_ok {
            ops.push(SyncOp::Register(Box::new(RegisterRequest {
                node: self.node.clone(),
                service: None,
                checks: self
                    .checks
                    .values()
                    .filter(|c| c.check.service_id.is_empty())
                    .map(|c| c.check.clone())
                    .collect(),
                skip_node_update: false,
            })));
        }
        let cat_svcs: BTreeMap<&str, &NodeService> = catalog_services
            .iter()
            .map(|s| (s.id.as_str(), s))
            .collect();
        let cat_checks: BTreeMap<&str, &HealthCheck> = catalog_checks
            .iter()
            .map(|c| (c.check_id.as_str(), c))
            .collect();
        for s in cat_svcs.keys() {
            if !self.services.contains_key(*s) {
                ops.push(SyncOp::Deregister(DeregisterRequest {
                    node: self.node.node.clone(),
                    service_id: Some(s.to_string()),
                    check_id: None,
                }));
            }
        }
        for c in cat_checks.values() {
            let svc_gone = !c.service_id.is_empty() && !self.services.contains_key(&c.service_id);
            if !self.checks.contains_key(&c.check_id) && !svc_gone && c.check_id != SERF_CHECK_ID {
                ops.push(SyncOp::Deregister(DeregisterRequest {
                    node: self.node.node.clone(),
                    service_id: None,
                    check_id: Some(c.check_id.clone()),
                }));
            }
        }
        for (id, s) in &self.services {
            let svc_ok = cat_svcs
                .get(id.as_str())
                .map(|c| strip_svc(c) == strip_svc(&s.service))
                .unwrap_or(false);
            let checks_ok = self.service_checks(id).iter().all(|lc| {
                cat_checks
                    .get(lc.check_id.as_str())
                    .map(|c| strip_check(c) == strip_check(lc))
                    .unwrap_or(false)
            });
            if !svc_ok || !checks_ok {
                if let Some(r) = self.register_service_op(id) {
                    ops.push(SyncOp::Register(Box::new(r)));
                }
            }
        }
        if node_ok {
            for (id, c) in &self.checks {
                if !c.check.service_id.is_empty() {
                    continue;
                }
                let ok = cat_checks
                    .get(id.as_str())
                    .map(|cc| strip_check(cc) == strip_check(&c.check))
                    .unwrap_or(false);
                if !ok {
                    if let Some(r) = self.register_check_op(id) {
                        ops.push(SyncOp::Register(Box::new(r)));
                    }
                }
            }
        }
        ops
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> LocalState {
        let mut l = LocalState::new(Node {
            node: "n1".into(),
            address: "127.0.0.1".into(),
            ..Default::default()
        });
        l.services.insert(
            "web".into(),
            LocalService {
                service: NodeService {
                    id: "web".into(),
                    service: "web".into(),
                    port: 80,
                    ..Default::default()
                },
                token: String::new(),
                source: Source::Api,
            },
        );
        l
    }

    #[test]
    fn empty_catalog_needs_node_and_service() {
        let ops = state().diff(None, &[], &[]);
        assert_eq!(ops.len(), 2);
    }

    #[test]
    fn in_sync_needs_nothing_and_strays_are_removed() {
        let l = state();
        let node = l.node.clone();
        let mut svc = l.services["web"].service.clone();
        svc.modify_index = 9;
        assert!(l.diff(Some(&node), &[svc.clone()], &[]).is_empty());
        let stray = NodeService {
            id: "old".into(),
            service: "old".into(),
            ..Default::default()
        };
        let ops = l.diff(Some(&node), &[svc, stray], &[]);
        assert_eq!(
            ops,
            vec![SyncOp::Deregister(DeregisterRequest {
                node: "n1".into(),
                service_id: Some("old".into()),
                check_id: None
            })]
        );
    }
}
