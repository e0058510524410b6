//! `/v1/catalog/*`: register and deregister (including external nodes), datacenters, nodes,
//! services, the instances of a service (`tag`, `node-meta` filters), a node's services.

use super::acl::{instance_visible, mark_filtered, retain, Authz};
use super::params::Params;
use super::{blocking, indexed, json, ApiError, ApiResult, AppState};
use crate::acl::{Access, Resource};
use crate::definition::{decode_check, decode_service};
use crate::raft::Command;
use crate::store::catalog::{DeregisterRequest, RegisterRequest};
use crate::store::Topic;
use crate::types::{HealthCheck, Node, NodeService, ServiceAddress, Weights};
use axum::body::Bytes;
use axum::extract::State;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// Parse a JSON body, with Consul's error text.
pub fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("Request decode failed: {e}")))
}

fn field<'a>(o: &'a serde_json::Map<String, Value>, name: &str) -> Option<&'a Value> {
    let n = name.to_lowercase();
    o.iter()
        .find(|(k, _)| k.replace('_', "").to_lowercase() == n)
        .map(|(_, v)| v)
        .filter(|v| !v.is_null())
}

fn str_field(o: &serde_json::Map<String, Value>, name: &str) -> String {
    field(o, name)
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string()
}

fn map_field(o: &serde_json::Map<String, Value>, name: &str) -> BTreeMap<String, String> {
    field(o, name)
        .and_then(|v| v.as_object())
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string()),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Decode a `/v1/catalog/register` body (already parsed as JSON) into the request it
/// stands for, with Consul's errors; `datacenter` is this agent's.
pub(crate) fn decode_register(v: &Value, datacenter: &str) -> Result<RegisterRequest, ApiError> {
    let o = v.as_object().ok_or_else(|| {
        ApiError::bad_request("Request decode failed: body must be a JSON object")
    })?;
    let node_name = str_field(o, "Node");
    if node_name.is_empty() {
        return Err(ApiError::bad_request("Missing node name"));
    }
    let address = str_field(o, "Address");
    let skip = field(o, "SkipNodeUpdate")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    if address.is_empty() && !skip {
        return Err(ApiError::bad_request("Missing node address"));
    }
    let dc = str_field(o, "Datacenter");
    if !dc.is_empty() && dc != datacenter {
        return Err(ApiError::internal("No path to datacenter"));
    }
    let node = Node {
        id: str_field(o, "ID"),
        node: node_name.clone(),
        address,
        datacenter: datacenter.to_string(),
        tagged_addresses: map_field(o, "TaggedAddresses"),
        meta: map_field(o, "NodeMeta"),
        create_index: 0,
        modify_index: 0,
    };
    let service = match field(o, "Service") {
        Some(s) => Some(
            decode_service(s)
                .map_err(|e| ApiError::bad_request(e.0))?
                .service,
        ),
        None => None,
    };
    let mut checks: Vec<HealthCheck> = Vec::new();
    let mut raw_checks: Vec<&Value> = Vec::new();
    if let Some(c) = field(o, "Check") {
        raw_checks.push(c);
    }
    if let Some(Value::Array(a)) = field(o, "Checks") {
        raw_checks.extend(a.iter());
    }
    for c in raw_checks {
        checks.push(decode_catalog_check(c)?);
    }
    for c in &mut checks {
        c.node = node_name.clone();
    }
    Ok(RegisterRequest {
        node,
        service,
        checks,
        skip_node_update: skip,
    })
}

/// `PUT /v1/catalog/register`
pub async fn register(State(agent): State<AppState>, a: Authz, body: Bytes) -> ApiResult {
    let v = parse_body(&body)?;
    let req = decode_register(&v, &agent.datacenter)?;
    let node_name = &req.node.node;
    if !req.skip_node_update {
        a.check(Resource::Node, node_name, Access::Write)?;
    }
    if let Some(svc) = &req.service {
        a.check(Resource::Service, &svc.service, Access::Write)?;
    }
    for c in &req.checks {
        if c.service_id.is_empty() {
            a.check(Resource::Node, node_name, Access::Write)?;
        } else {
            let name = match &req.service {
                Some(svc) if svc.id == c.service_id => svc.service.clone(),
                _ => agent
                    .read(|s| s.node_service(node_name, &c.service_id))
                    .map(|svc| svc.service)
                    .unwrap_or_else(|| c.service_id.clone()),
            };
            a.check(Resource::Service, &name, Access::Write)?;
        }
    }
    agent
        .apply_checked(Command::Register(Box::new(req)))
        .await?;
    json(&true)
}

/// Catalog checks are plain records (no runner), so no interval is required.
fn decode_catalog_check(v: &Value) -> Result<HealthCheck, ApiError> {
    let o = v
        .as_object()
        .ok_or_else(|| ApiError::bad_request("Request decode failed: Check must be an object"))?;
    let mut c = HealthCheck {
        check_id: str_field(o, "CheckID"),
        name: str_field(o, "Name"),
        status: str_field(o, "Status"),
        notes: str_field(o, "Notes"),
        output: str_field(o, "Output"),
        service_id: str_field(o, "ServiceID"),
        check_type: str_field(o, "Type"),
        ..Default::default()
    };
    if let Some(Value::Object(d)) = field(o, "Definition") {
        let mut m = d.clone();
        m.entry("Name").or_insert(Value::String("catalog".into()));
        // Catalog checks are records only; a definition that a runner could not use is kept out.
        if let Ok(cd) = decode_check(&Value::Object(m), None) {
            c.definition = cd.check.definition;
            c.interval = c.definition.interval.clone();
            c.timeout = c.definition.timeout.clone();
        }
    }
    if c.check_id.is_empty() {
        c.check_id = c.name.clone();
    }
    if c.status.is_empty() {
        c.status = crate::types::HEALTH_CRITICAL.into();
    } else if crate::types::valid_status(&c.status).is_none() {
        return Err(ApiError::bad_request(format!(
            "Invalid check status: \"{}\"",
            c.status
        )));
    }
    Ok(c)
}

/// `PUT /v1/catalog/deregister`
pub async fn deregister(State(agent): State<AppState>, a: Authz, body: Bytes) -> ApiResult {
    let v = parse_body(&body)?;
    let o = v.as_object().ok_or_else(|| {
        ApiError::bad_request("Request decode failed: body must be a JSON object")
    })?;
    let node = str_field(o, "Node");
    if node.is_empty() {
        return Err(ApiError::bad_request("Missing node name"));
    }
    let sid = str_field(o, "ServiceID");
    let cid = str_field(o, "CheckID");
    if sid.is_empty() {
        a.check(Resource::Node, &node, Access::Write)?;
    } else {
        let name = agent
            .read(|s| s.node_service(&node, &sid))
            .map(|svc| svc.service)
            .unwrap_or_else(|| sid.clone());
        a.check(Resource::Service, &name, Access::Write)?;
    }
    let req = DeregisterRequest {
        node,
        service_id: (!sid.is_empty()).then_some(sid),
        check_id: (!cid.is_empty()).then_some(cid),
    };
    agent.apply_checked(Command::Deregister(req)).await?;
    json(&true)
}

/// `GET /v1/catalog/datacenters`
pub async fn datacenters(State(agent): State<AppState>) -> ApiResult {
    json(&agent.datacenters())
}

/// Node as listed by `/v1/catalog/nodes`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NodeJson {
    #[serde(rename = "ID")]
    pub id: String,
    pub node: String,
    pub address: String,
    pub datacenter: String,
    pub tagged_addresses: BTreeMap<String, String>,
    pub meta: BTreeMap<String, String>,
    pub create_index: u64,
    pub modify_index: u64,
}

impl From<&Node> for NodeJson {
    fn from(n: &Node) -> Self {
        NodeJson {
            id: n.id.clone(),
            node: n.node.clone(),
            address: n.address.clone(),
            datacenter: n.datacenter.clone(),
            tagged_addresses: n.tagged_addresses.clone(),
            meta: n.meta.clone(),
            create_index: n.create_index,
            modify_index: n.modify_index,
        }
    }
}

/// `node-meta=key:value` filters (all must match).
pub fn node_meta_filter(p: &Params) -> Vec<(String, String)> {
    p.all("node-meta")
        .into_iter()
        .map(|s| match s.split_once(':') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (s, String::new()),
        })
        .collect()
}

/// Whether a node matches every `node-meta` filter.
pub fn node_matches(n: &Node, f: &[(String, String)]) -> bool {
    f.iter().all(|(k, v)| n.meta.get(k) == Some(v))
}

/// `GET /v1/catalog/nodes`
pub async fn nodes(State(agent): State<AppState>, a: Authz, p: Params) -> ApiResult {
    let q = p.query_options()?;
    let f = node_meta_filter(&p);
    let (idx, mut nodes) = blocking(&agent, &q, vec![Topic::Table("nodes")], |s| s.nodes()).await?;
    let filtered = retain(&mut nodes, |n| {
        a.allowed(Resource::Node, &n.node, Access::Read)
    });
    let out: Vec<NodeJson> = nodes
        .iter()
        .filter(|n| node_matches(n, &f))
        .map(NodeJson::from)
        .collect();
    let mut out = out;
    if let Some(c) = super::coordinate::near_coordinate(&agent, &p)? {
        super::coordinate::sort_near(&agent, &c, &mut out, |n| n.node.as_str());
    }
    Ok(mark_filtered(indexed(&agent, idx, &q, &out)?, filtered))
}

/// `GET /v1/catalog/services`
pub async fn services(State(agent): State<AppState>, a: Authz, p: Params) -> ApiResult {
    let q = p.query_options()?;
    let f = node_meta_filter(&p);
    let (idx, svcs) = blocking(
        &agent,
        &q,
        vec![Topic::Table("services"), Topic::Table("nodes")],
        |s| {
            if f.is_empty() {
                return s.services();
            }
            let (idx, nodes) = s.nodes();
            let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for n in nodes.iter().filter(|n| node_matches(n, &f)) {
                if let (_, Some((_, list))) = s.node_services(&n.node) {
                    for svc in list {
                        let e = out.entry(svc.service.clone()).or_default();
                        for t in svc.tags {
                            if !e.contains(&t) {
                                e.push(t);
                            }
                        }
                    }
                }
            }
            (idx, out)
        },
    )
    .await?;
    let mut svcs = svcs;
    let before = svcs.len();
    svcs.retain(|name, _| a.allowed(Resource::Service, name, Access::Read));
    let filtered = svcs.len() != before;
    Ok(mark_filtered(indexed(&agent, idx, &q, &svcs)?, filtered))
}

/// A service instance as `/v1/catalog/service/<name>` lists it.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceNodeJson {
    #[serde(rename = "ID")]
    id: String,
    node: String,
    address: String,
    datacenter: String,
    tagged_addresses: BTreeMap<String, String>,
    node_meta: BTreeMap<String, String>,
    service_kind: String,
    #[serde(rename = "ServiceID")]
    service_id: String,
    service_name: String,
    service_tags: Vec<String>,
    service_address: String,
    service_tagged_addresses: BTreeMap<String, ServiceAddress>,
    service_weights: Weights,
    service_meta: BTreeMap<String, String>,
    service_port: i64,
    service_socket_path: String,
    service_enable_tag_override: bool,
    service_proxy: Value,
    service_connect: Value,
    create_index: u64,
    modify_index: u64,
}

fn service_node_json(n: &Node, s: &NodeService) -> ServiceNodeJson {
    ServiceNodeJson {
        id: n.id.clone(),
        node: n.node.clone(),
        address: n.address.clone(),
        datacenter: n.datacenter.clone(),
        tagged_addresses: n.tagged_addresses.clone(),
        node_meta: n.meta.clone(),
        service_kind: s.kind.clone(),
        service_id: s.id.clone(),
        service_name: s.service.clone(),
        service_tags: s.tags.clone(),
        service_address: s.address.clone(),
        service_tagged_addresses: s.tagged_addresses.clone(),
        service_weights: s.weights.clone(),
        service_meta: s.meta.clone(),
        service_port: s.port,
        service_socket_path: String::new(),
        service_enable_tag_override: s.enable_tag_override,
        service_proxy: serde_json::json!({"Mode": "", "MeshGateway": {}, "Expose": {}}),
        service_connect: serde_json::json!({}),
        create_index: s.create_index,
        modify_index: s.modify_index,
    }
}

/// `GET /v1/catalog/service/<name>`
pub async fn service(State(agent): State<AppState>, a: Authz, p: Params) -> ApiResult {
    let q = p.query_options()?;
    let name = p.rest("/v1/catalog/service/");
    let tags = p.all("tag");
    let f = node_meta_filter(&p);
    let (idx, list) = blocking(&agent, &q, vec![Topic::Service(name.clone())], |s| {
        s.service_nodes(&name, &tags)
    })
    .await?;
    let mut list: Vec<_> = list
        .into_iter()
        .filter(|(n, _)| node_matches(n, &f))
        .collect();
    let filtered = retain(&mut list, |(n, s)| {
        instance_visible(&a, &n.node, &s.service)
    });
    if let Some(c) = super::coordinate::near_coordinate(&agent, &p)? {
        super::coordinate::sort_near(&agent, &c, &mut list, |(n, _)| n.node.as_str());
    }
    let out: Vec<ServiceNodeJson> = list.iter().map(|(n, s)| service_node_json(n, s)).collect();
    Ok(mark_filtered(indexed(&agent, idx, &q, &out)?, filtered))
}

/// A service as listed under a node (`/v1/catalog/node/<node>` and the agent endpoints).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceJson {
    #[serde(rename = "ID")]
    pub id: String,
    pub service: String,
    pub tags: Vec<String>,
    pub address: String,
    pub tagged_addresses: BTreeMap<String, ServiceAddress>,
    pub meta: BTreeMap<String, String>,
    pub port: i64,
    pub weights: Weights,
    pub enable_tag_override: bool,
    pub datacenter: String,
    pub create_index: u64,
    pub modify_index: u64,
}

impl ServiceJson {
    /// From a stored service.
    pub fn new(s: &NodeService, dc: &str) -> Self {
        ServiceJson {
            id: s.id.clone(),
            service: s.service.clone(),
            tags: s.tags.clone(),
            address: s.address.clone(),
            tagged_addresses: s.tagged_addresses.clone(),
            meta: s.meta.clone(),
            port: s.port,
            weights: s.weights.clone(),
            enable_tag_override: s.enable_tag_override,
            datacenter: dc.to_string(),
            create_index: s.create_index,
            modify_index: s.modify_index,
        }
    }
}

/// `GET /v1/catalog/node/<node>`
pub async fn node(State(agent): State<AppState>, a: Authz, p: Params) -> ApiResult {
    let q = p.query_options()?;
    let name = p.rest("/v1/catalog/node/");
    a.check(Resource::Node, &name, Access::Read)?;
    let (idx, r) = blocking(&agent, &q, vec![Topic::Node(name.clone())], |s| {
        s.node_services(&name)
    })
    .await?;
    match r {
        None => super::not_found_indexed(&agent, idx, &q),
        Some((n, svcs)) => {
            let services: BTreeMap<String, ServiceJson> = svcs
                .iter()
                .filter(|s| a.allowed(Resource::Service, &s.service, Access::Read))
                .map(|s| (s.id.clone(), ServiceJson::new(s, &n.datacenter)))
                .collect();
            indexed(
                &agent,
                idx,
                &q,
                &serde_json::json!({"Node": NodeJson::from(&n), "Services": services}),
            )
        }
    }
}

/// `GET /v1/catalog/node-services/<node>`
pub async fn node_services(State(agent): State<AppState>, a: Authz, p: Params) -> ApiResult {
    let q = p.query_options()?;
    let name = p.rest("/v1/catalog/node-services/");
    a.check(Resource::Node, &name, Access::Read)?;
    let (idx, r) = blocking(&agent, &q, vec![Topic::Node(name.clone())], |s| {
        s.node_services(&name)
    })
    .await?;
    match r {
        None => super::not_found_indexed(&agent, idx, &q),
        Some((n, svcs)) => {
            let services: Vec<ServiceJson> = svcs
                .iter()
                .filter(|s| a.allowed(Resource::Service, &s.service, Access::Read))
                .map(|s| ServiceJson::new(s, &n.datacenter))
                .collect();
            indexed(
                &agent,
                idx,
                &q,
                &serde_json::json!({"Node": NodeJson::from(&n), "Services": services}),
            )
        }
    }
}
