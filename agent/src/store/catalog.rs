//! Catalog tables: nodes, services and checks; registration and deregistration in one
//! step (Consul's `EnsureRegistration`), and the reads behind `/v1/catalog/*` and
//! `/v1/health/*`.

use super::{Store, StoreError, Topic};
use crate::types::{HealthCheck, Index, Node, NodeService, HEALTH_CRITICAL, HEALTH_PASSING};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A catalog registration: a node, optionally one service and some checks.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RegisterRequest {
    pub node: Node,
    pub service: Option<NodeService>,
    pub checks: Vec<HealthCheck>,
    /// Leave the node record alone (used by agents that only update services/checks).
    pub skip_node_update: bool,
}

/// A catalog deregistration: the whole node, one service (and its checks), or one check.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DeregisterRequest {
    pub node: String,
    pub service_id: Option<String>,
    pub check_id: Option<String>,
}

/// One instance of a service with its node and every check that applies to it.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckServiceNode {
    pub node: Node,
    pub service: NodeService,
    pub checks: Vec<HealthCheck>,
}

/// Records that carry Raft indexes; a re-registration equal but for them is a no-op.
trait HasIndexes: Clone + PartialEq {
    fn indexes(&mut self) -> (&mut Index, &mut Index);
}

macro_rules! has_indexes {
    ($($t:ty),*) => {$(
        impl HasIndexes for $t {
            fn indexes(&mut self) -> (&mut Index, &mut Index) {
                (&mut self.create_index, &mut self.modify_index)
            }
        }
    )*};
}
has_indexes!(Node, NodeService, HealthCheck);

fn same_but_indexes<T: HasIndexes>(a: &T, b: &T) -> bool {
    let (mut a, mut b) = (a.clone(), b.clone());
    for x in [&mut a, &mut b] {
        let (c, m) = x.indexes();
        *c = 0;
        *m = 0;
    }
    a == b
}

fn svc_index(name: &str) -> String {
    format!("service.{name}")
}

impl Store {
    /// Register a node, service and checks atomically.
    pub fn catalog_register(
        &mut self,
        idx: Index,
        req: &RegisterRequest,
    ) -> Result<(), StoreError> {
        let node_name = req.node.node.clone();
        if node_name.is_empty() {
            return Err(StoreError::Invalid("Must provide node".into()));
        }
        // Validate before touching anything so the write is all-or-nothing.
        if req.skip_node_update && !self.data.nodes.contains_key(&node_name) {
            return Err(StoreError::MissingNode);
        }
        for c in &req.checks {
            if c.check_id.is_empty() {
                return Err(StoreError::Invalid("Missing check ID".into()));
            }
            if !c.service_id.is_empty() {
                let in_req = req
                    .service
                    .as_ref()
                    .map(|s| s.id == c.service_id)
                    .unwrap_or(false);
                let in_store = self
                    .data
                    .services
                    .get(&node_name)
                    .map(|m| m.contains_key(&c.service_id))
                    .unwrap_or(false);
                if !in_req && !in_store {
                    return Err(StoreError::MissingService);
                }
            }
        }
        if !req.skip_node_update {
            self.ensure_node(idx, &req.node);
        }
        if let Some(svc) = &req.service {
            self.ensure_service(idx, &node_name, svc);
        }
        for c in &req.checks {
            self.ensure_check(idx, &node_name, c);
        }
        Ok(())
    }

    fn ensure_node(&mut self, idx: Index, n: &Node) {
        let mut node = n.clone();
        if let Some(existing) = self.data.nodes.get(&n.node) {
            if same_but_indexes(existing, &node) {
                return;
            }
            node.create_index = existing.create_index;
        } else {
            node.create_index = idx;
        }
        node.modify_index = idx;
        self.bump("nodes", idx);
        self.fire(Topic::Table("nodes"));
        self.fire(Topic::Node(n.node.clone()));
        // Node address changes show up in every service result of that node.
        let names: Vec<String> = self.service_names_on(&n.node);
        for name in names {
            self.bump(&svc_index(&name), idx);
            self.fire(Topic::Service(name));
        }
        self.data.nodes.insert(n.node.clone(), node);
    }

    fn service_names_on(&self, node: &str) -> Vec<String> {
        self.data
            .services
            .get(node)
            .map(|m| {
                m.values()
                    .map(|s| s.service.clone())
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect()
            })
            .unwrap_or_default()
    }

    fn ensure_service(&mut self, idx: Index, node: &str, s: &NodeService) {
        let mut svc = s.clone();
        let existing = self
            .data
            .services
            .get(node)
            .and_then(|m| m.get(&s.id))
            .cloned();
        if let Some(e) = &existing {
            if same_but_indexes(e, &svc) {
                return;
            }
            svc.create_index = e.create_index;
            if e.service != s.service {
                self.bump(&svc_index(&e.service), idx);
                self.fire(Topic::Service(e.service.clone()));
                self.data.by_service.remove(&e.service, node, &e.id);
            }
        } else {
            svc.create_index = idx;
        }
        svc.modify_index = idx;
        self.bump("services", idx);
        self.bump(&svc_index(&s.service), idx);
        self.fire(Topic::Table("services"));
        self.fire(Topic::Service(s.service.clone()));
        self.fire(Topic::Node(node.to_string()));
        self.data
            .services
            .entry(node.to_string())
            .or_default()
            .insert(s.id.clone(), svc);
        self.data.by_service.add(&s.service, node, &s.id);
        // Service checks carry the service's name and tags.
        let (name, tags) = (s.service.clone(), s.tags.clone());
        if let Some(checks) = self.data.checks.get_mut(node) {
            for c in checks.values_mut().filter(|c| c.service_id == s.id) {
                if c.service_name != name || c.service_tags != tags {
                    c.service_name = name.clone();
                    c.service_tags = tags.clone();
                    c.modify_index = idx;
                }
            }
        }
    }

    fn ensure_check(&mut self, idx: Index, node: &str, c: &HealthCheck) {
        let mut chk = c.clone();
        chk.node = node.to_string();
        if chk.status.is_empty() {
            chk.status = HEALTH_CRITICAL.to_string();
        }
        if !chk.service_id.is_empty() {
            if let Some(svc) = self
                .data
                .services
                .get(node)
                .and_then(|m| m.get(&chk.service_id))
            {
                chk.service_name = svc.service.clone();
                chk.service_tags = svc.tags.clone();
            }
        }
        let existing = self
            .data
            .checks
            .get(node)
            .and_then(|m| m.get(&c.check_id))
            .cloned();
        if let Some(e) = &existing {
            if same_but_indexes(e, &chk) {
                return;
            }
            chk.create_index = e.create_index;
        } else {
            chk.create_index = idx;
        }
        chk.modify_index = idx;
        self.bump("checks", idx);
        self.fire(Topic::Table("checks"));
        self.fire(Topic::Node(node.to_string()));
        self.touch_services_for_check(idx, node, &chk.service_name);
        let critical = chk.status == HEALTH_CRITICAL;
        let check_id = chk.check_id.clone();
        self.data
            .checks
            .entry(node.to_string())
            .or_default()
            .insert(c.check_id.clone(), chk);
        if critical {
            self.invalidate_sessions_for_check(idx, node, &check_id);
        }
    }

    /// A node check affects every service on the node; a service check its own service.
    fn touch_services_for_check(&mut self, idx: Index, node: &str, service_name: &str) {
        let names = if service_name.is_empty() {
            self.service_names_on(node)
        } else {
            vec![service_name.to_string()]
        };
        for name in names {
            self.bump(&svc_index(&name), idx);
            self.fire(Topic::Service(name));
        }
    }

    /// Remove a node (with everything on it), a service (with its checks), or a check.
    pub fn catalog_deregister(
        &mut self,
        idx: Index,
        req: &DeregisterRequest,
    ) -> Result<(), StoreError> {
        let node = req.node.as_str();
        if node.is_empty() {
            return Err(StoreError::Invalid("Must provide node".into()));
        }
        if let Some(sid) = &req.service_id {
            self.delete_service(idx, node, sid);
        }
        if let Some(cid) = &req.check_id {
            self.delete_check(idx, node, cid);
        }
        if req.service_id.is_none() && req.check_id.is_none() {
            let sids: Vec<String> = self
                .data
                .services
                .get(node)
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            for sid in sids {
                self.delete_service(idx, node, &sid);
            }
            let cids: Vec<String> = self
                .data
                .checks
                .get(node)
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            for cid in cids {
                self.delete_check(idx, node, &cid);
            }
            if self.data.nodes.remove(node).is_some() {
                self.bump("nodes", idx);
                self.fire(Topic::Table("nodes"));
                self.fire(Topic::Node(node.to_string()));
            }
            self.data.services.remove(node);
            self.data.checks.remove(node);
            self.invalidate_node_sessions(idx, node);
        }
        Ok(())
    }

    fn delete_service(&mut self, idx: Index, node: &str, sid: &str) {
        let Some(svc) = self.data.services.get_mut(node).and_then(|m| m.remove(sid)) else {
            return;
        };
        self.data.by_service.remove(&svc.service, node, sid);
        self.bump("services", idx);
        self.bump(&svc_index(&svc.service), idx);
        self.fire(Topic::Table("services"));
        self.fire(Topic::Service(svc.service.clone()));
        self.fire(Topic::Node(node.to_string()));
        let cids: Vec<String> = self
            .data
            .checks
            .get(node)
            .map(|m| {
                m.values()
                    .filter(|c| c.service_id == sid)
                    .map(|c| c.check_id.clone())
                    .collect()
            })
            .unwrap_or_default();
        for cid in cids {
            self.delete_check(idx, node, &cid);
        }
    }

    fn delete_check(&mut self, idx: Index, node: &str, cid: &str) {
        let Some(chk) = self.data.checks.get_mut(node).and_then(|m| m.remove(cid)) else {
            return;
        };
        self.bump("checks", idx);
        self.fire(Topic::Table("checks"));
        self.fire(Topic::Node(node.to_string()));
        self.touch_services_for_check(idx, node, &chk.service_name);
        self.invalidate_sessions_for_check(idx, node, cid);
    }

    // ---- reads ----

    /// Every node, by name.
    pub fn nodes(&self) -> (Index, Vec<Node>) {
        (
            self.max_index(&["nodes"]),
            self.data.nodes.values().cloned().collect(),
        )
    }

    /// One node.
    pub fn node(&self, name: &str) -> Option<Node> {
        self.data.nodes.get(name).cloned()
    }

    /// Service names with the union of their tags.
    pub fn services(&self) -> (Index, BTreeMap<String, Vec<String>>) {
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for m in self.data.services.values() {
            for s in m.values() {
                out.entry(s.service.clone())
                    .or_default()
                    .extend(s.tags.iter().cloned());
            }
        }
        let out = out
            .into_iter()
            .map(|(k, v)| (k, v.into_iter().collect()))
            .collect();
        (self.max_index(&["services", "nodes"]), out)
    }

    /// Instances of one service (with their node), optionally all carrying every tag in `tags`.
    pub fn service_nodes(&self, name: &str, tags: &[String]) -> (Index, Vec<(Node, NodeService)>) {
        let mut out = Vec::new();
        for (node, s) in self.instances(name) {
            if !tags.iter().all(|t| s.tags.contains(t)) {
                continue;
            }
            if let Some(n) = self.data.nodes.get(node) {
                out.push((n.clone(), s.clone()));
            }
        }
        (self.service_index(name), out)
    }

    /// The instances of a service, as (node name, instance), in node order: found through
    /// the service-name index, so the cost follows the service's size, not the catalog's.
    fn instances<'a>(&'a self, name: &str) -> impl Iterator<Item = (&'a String, &'a NodeService)> {
        self.data
            .by_service
            .instances(name)
            .filter_map(move |(node, sid)| {
                let s = self.data.services.get(node)?.get(sid)?;
                Some((node, s))
            })
    }

    /// The index of one service name (falls back to the services table).
    pub fn service_index(&self, name: &str) -> Index {
        match self.data.indexes.get(&svc_index(name)) {
            Some(i) => (*i).max(1),
            None => self.max_index(&["services", "nodes"]),
        }
    }

    /// A node with its services.
    pub fn node_services(&self, node: &str) -> (Index, Option<(Node, Vec<NodeService>)>) {
        let idx = self.max_index(&["nodes", "services"]);
        let Some(n) = self.data.nodes.get(node) else {
            return (idx, None);
        };
        let svcs = self
            .data
            .services
            .get(node)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        (idx, Some((n.clone(), svcs)))
    }

    /// One service instance on a node.
    pub fn node_service(&self, node: &str, service_id: &str) -> Option<NodeService> {
        self.data
            .services
            .get(node)
            .and_then(|m| m.get(service_id))
            .cloned()
    }

    /// Checks of one node.
    pub fn node_checks(&self, node: &str) -> (Index, Vec<HealthCheck>) {
        let v = self
            .data
            .checks
            .get(node)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        (self.max_index(&["checks"]), v)
    }

    /// One check on a node.
    pub fn node_check(&self, node: &str, check_id: &str) -> Option<HealthCheck> {
        self.data
            .checks
            .get(node)
            .and_then(|m| m.get(check_id))
            .cloned()
    }

    /// Service checks of every instance of a service.
    pub fn service_checks(&self, name: &str) -> (Index, Vec<HealthCheck>) {
        let mut v = Vec::new();
        for (node, s) in self.instances(name) {
            if let Some(m) = self.data.checks.get(node) {
                v.extend(m.values().filter(|c| c.service_id == s.id).cloned());
            }
        }
        (self.service_index(name), v)
    }

    /// Checks in a state (`any` for all).
    pub fn checks_in_state(&self, state: &str) -> (Index, Vec<HealthCheck>) {
        let v = self
            .data
            .checks
            .values()
            .flat_map(|m| m.values())
            .filter(|c| state == "any" || c.status == state)
            .cloned()
            .collect();
        (self.max_index(&["checks"]), v)
    }

    /// Instances of a service with node and checks (node checks first), for `/v1/health/service`.
    pub fn check_service_nodes(
        &self,
        name: &str,
        tags: &[String],
    ) -> (Index, Vec<CheckServiceNode>) {
        let (idx, pairs) = self.service_nodes(name, tags);
        let out = pairs
            .into_iter()
            .map(|(node, service)| {
                let checks = self
                    .data
                    .checks
                    .get(&node.node)
                    .map(|m| {
                        let mut v: Vec<HealthCheck> = m
                            .values()
                            .filter(|c| c.service_id.is_empty())
                            .cloned()
                            .collect();
                        v.extend(m.values().filter(|c| c.service_id == service.id).cloned());
                        v
                    })
                    .unwrap_or_default();
                CheckServiceNode {
                    node,
                    service,
                    checks,
                }
            })
            .collect();
        (idx, out)
    }
}

/// The aggregate status of a set of checks: critical beats warning beats passing.
pub fn aggregate_status(checks: &[HealthCheck]) -> &'static str {
    use crate::types::HEALTH_WARNING;
    if checks
        .iter()
        .any(|c| c.status == HEALTH_CRITICAL || c.status == crate::types::HEALTH_MAINT)
    {
        HEALTH_CRITICAL
    } else if checks.iter().any(|c| c.status == HEALTH_WARNING) {
        HEALTH_WARNING
    } else {
        HEALTH_PASSING
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_store;

    fn reg(
        node: &str,
        svc: Option<(&str, &str, &[&str])>,
        checks: Vec<HealthCheck>,
    ) -> RegisterRequest {
        RegisterRequest {
            node: Node {
                node: node.into(),
                address: "10.0.0.1".into(),
                ..Default::default()
            },
            service: svc.map(|(id, name, tags)| NodeService {
                id: id.into(),
                service: name.into(),
                tags: tags.iter().map(|t| t.to_string()).collect(),
                port: 80,
                ..Default::default()
            }),
            checks,
            skip_node_update: false,
        }
    }

    fn check(id: &str, svc: &str, status: &str) -> HealthCheck {
        HealthCheck {
            check_id: id.into(),
            service_id: svc.into(),
            status: status.into(),
            ..Default::default()
        }
    }

    #[test]
    fn register_query_and_per_service_index() {
        let mut s = test_store();
        s.catalog_register(
            3,
            &reg(
                "n1",
                Some(("web1", "web", &["rails"])),
                vec![check("c1", "web1", "passing")],
            ),
        )
        .unwrap();
        s.catalog_register(4, &reg("n1", Some(("db1", "db", &[])), vec![]))
            .unwrap();
        assert_eq!(
            s.service_index("web"),
            3,
            "db registration must not move web's index"
        );
        assert_eq!(s.service_nodes("web", &["rails".into()]).1.len(), 1);
        assert_eq!(s.service_nodes("web", &["nope".into()]).1.len(), 0);
        let (_, svcs) = s.services();
        assert_eq!(svcs["web"], vec!["rails".to_string()]);
        let (_, csn) = s.check_service_nodes("web", &[]);
        assert_eq!(csn[0].checks.len(), 1);
        assert_eq!(csn[0].checks[0].service_name, "web");
        // re-registering the same thing is a no-op for indexes
        s.catalog_register(
            9,
            &reg(
                "n1",
                Some(("web1", "web", &["rails"])),
                vec![check("c1", "web1", "passing")],
            ),
        )
        .unwrap();
        assert_eq!(s.service_index("web"), 3);
    }

    #[test]
    fn check_for_missing_service_is_rejected_atomically() {
        let mut s = test_store();
        let e = s
            .catalog_register(2, &reg("n1", None, vec![check("c", "ghost", "passing")]))
            .unwrap_err();
        assert_eq!(e, StoreError::MissingService);
        assert!(s.nodes().1.is_empty(), "nothing written on error");
    }

    #[test]
    fn deregister_service_node_and_check() {
        let mut s = test_store();
        s.catalog_register(
            2,
            &reg(
                "n1",
                Some(("web1", "web", &[])),
                vec![check("c1", "web1", "passing")],
            ),
        )
        .unwrap();
        s.catalog_register(3, &reg("n1", None, vec![check("node", "", "passing")]))
            .unwrap();
        s.catalog_deregister(
            4,
            &DeregisterRequest {
                node: "n1".into(),
                service_id: Some("web1".into()),
                check_id: None,
            },
        )
        .unwrap();
        assert!(s.service_nodes("web", &[]).1.is_empty());
        assert_eq!(
            s.node_checks("n1").1.len(),
            1,
            "service checks go with the service"
        );
        s.catalog_deregister(
            5,
            &DeregisterRequest {
                node: "n1".into(),
                ..Default::default()
            },
        )
        .unwrap();
        assert!(s.nodes().1.is_empty());
        assert!(s.node_checks("n1").1.is_empty());
    }

    /// The service-name index follows every catalog change: a renamed instance moves, a
    /// deregistered service or node leaves, a failed transaction rolls back and a restore
    /// rebuilds it. Reads through it must equal a full scan of the tables.
    #[test]
    fn service_index_follows_writes_rollbacks_and_restores() {
        use crate::store::txn::TxnOp;
        fn scan(s: &Store, name: &str) -> Vec<(String, String)> {
            let mut v: Vec<(String, String)> = s
                .data
                .services
                .iter()
                .flat_map(|(n, m)| {
                    m.values()
                        .filter(|x| x.service == name)
                        .map(move |x| (n.clone(), x.id.clone()))
                })
                .collect();
            v.sort();
            v
        }
        fn via_index(s: &Store, name: &str) -> Vec<(String, String)> {
            let mut v: Vec<(String, String)> = s
                .service_nodes(name, &[])
                .1
                .into_iter()
                .map(|(n, x)| (n.node, x.id))
                .collect();
            v.sort();
            v
        }
        let mut s = test_store();
        for (i, n) in ["n1", "n2", "n3"].iter().enumerate() {
            s.catalog_register(
                10 + i as u64,
                &reg(
                    n,
                    Some(("web1", "web", &[])),
                    vec![check("c", "web1", "passing")],
                ),
            )
            .unwrap();
        }
        s.catalog_register(20, &reg("n1", Some(("db1", "db", &[])), vec![]))
            .unwrap();
        assert_eq!(via_index(&s, "web").len(), 3);
        assert_eq!(s.service_checks("web").1.len(), 3);
        // rename n2's web1 to api
        s.catalog_register(21, &reg("n2", Some(("web1", "api", &[])), vec![]))
            .unwrap();
        assert_eq!(via_index(&s, "web"), scan(&s, "web"));
        assert_eq!(via_index(&s, "api"), vec![("n2".into(), "web1".into())]);
        assert_eq!(
            s.service_checks("api").1.len(),
            1,
            "the check follows the rename"
        );
        // a failed transaction that registered and deleted instances leaves no trace
        let before = via_index(&s, "web");
        let ops = vec![
            TxnOp::Service {
                verb: "set".into(),
                node: "n3".into(),
                service: NodeService {
                    id: "web2".into(),
                    service: "web".into(),
                    ..Default::default()
                },
            },
            TxnOp::Service {
                verb: "delete".into(),
                node: "n1".into(),
                service: NodeService {
                    id: "web1".into(),
                    ..Default::default()
                },
            },
            TxnOp::Kv {
                verb: "check-index".into(),
                key: "missing".into(),
                value: vec![],
                flags: 0,
                index: 1,
                session: String::new(),
            },
        ];
        assert!(s.txn(22, &ops).is_err());
        assert_eq!(via_index(&s, "web"), before);
        assert_eq!(via_index(&s, "web"), scan(&s, "web"));
        // deregistering a node takes its instances out
        s.catalog_deregister(
            23,
            &DeregisterRequest {
                node: "n1".into(),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(via_index(&s, "web"), vec![("n3".into(), "web1".into())]);
        assert!(via_index(&s, "db").is_empty());
        // a restore rebuilds the index from the tables
        let snap = s.snapshot().unwrap();
        let mut t = test_store();
        t.restore(&snap).unwrap();
        for name in ["web", "api", "db"] {
            assert_eq!(via_index(&t, name), scan(&s, name), "{name}");
        }
    }

    #[test]
    fn aggregate() {
        assert_eq!(aggregate_status(&[]), "passing");
        assert_eq!(
            aggregate_status(&[check("a", "", "passing"), check("b", "", "warning")]),
            "warning"
        );
        assert_eq!(
            aggregate_status(&[check("a", "", "critical"), check("b", "", "warning")]),
            "critical"
        );
    }
}
