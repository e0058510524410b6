//! `/v1/health/*`: checks of a node or service, healthy instances of a service (`passing`,
//! `tag`, `node-meta`), and checks by state.

use super::acl::{instance_visible, mark_filtered, retain, Authz};
use super::catalog::{node_matches, node_meta_filter, NodeJson, ServiceJson};
use super::params::Params;
use super::{blocking, indexed, ApiError, ApiResult, AppState};
use crate::acl::{Access, Resource};
use crate::store::catalog::aggregate_status;
use crate::store::Topic;
use crate::types::{HealthCheck, HEALTH_CRITICAL, HEALTH_PASSING, HEALTH_WARNING};
use axum::extract::State;
use serde::Serialize;
use serde_json::Value;

/// A check as the health and agent endpoints show it.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CheckJson {
    pub node: String,
    #[serde(rename = "CheckID")]
    pub check_id: String,
    pub name: String,
    pub status: String,
    pub notes: String,
    pub output: String,
    #[serde(rename = "ServiceID")]
    pub service_id: String,
    pub service_name: String,
    pub service_tags: Vec<String>,
    #[serde(rename = "Type")]
    pub check_type: String,
    pub interval: String,
    pub timeout: String,
    pub exposed_port: u16,
    pub definition: Value,
    pub create_index: u64,
    pub modify_index: u64,
}

impl From<&HealthCheck> for CheckJson {
    fn from(c: &HealthCheck) -> Self {
        CheckJson {
            node: c.node.clone(),
            check_id: c.check_id.clone(),
            name: c.name.clone(),
            status: c.status.clone(),
            notes: c.notes.clone(),
            output: c.output.clone(),
            service_id: c.service_id.clone(),
            service_name: c.service_name.clone(),
            service_tags: c.service_tags.clone(),
            check_type: c.check_type.clone(),
            interval: c.interval.clone(),
            timeout: c.timeout.clone(),
            exposed_port: 0,
            definition: serde_json::to_value(&c.definition).unwrap_or(Value::Null),
            create_index: c.create_index,
            modify_index: c.modify_index,
        }
    }
}

/// A check is visible with read on its node, and on its service when it has one.
fn check_visible(a: &Authz, c: &HealthCheck) -> bool {
    a.allowed(Resource::Node, &c.node, Access::Read)
        && (c.service_id.is_empty() || a.allowed(Resource::Service, &c.service_name, Access::Read))
}

/// The checks the token may see, and whether any were hidden.
fn visible_checks(a: &Authz, mut v: Vec<HealthCheck>) -> (Vec<HealthCheck>, bool) {
    let filtered = retain(&mut v, |c| check_visible(a, c));
    (v, filtered)
}

fn checks_json(v: &[HealthCheck]) -> Vec<CheckJson> {
    v.iter().map(CheckJson::from).collect()
}

/// `GET /v1/health/node/<node>`
pub async fn node(State(agent): State<AppState>, a: Authz, p: Params) -> ApiResult {
    let q = p.query_options()?;
    let name = p.rest("/v1/health/node/");
    let (idx, v) = blocking(&agent, &q, vec![Topic::Node(name.clone())], |s| {
        s.node_checks(&name)
    })
    .await?;
    let (v, filtered) = visible_checks(&a, v);
    Ok(mark_filtered(
        indexed(&agent, idx, &q, &checks_json(&v))?,
        filtered,
    ))
}

/// `GET /v1/health/checks/<service>`
pub async fn checks(State(agent): State<AppState>, a: Authz, p: Params) -> ApiResult {
    let q = p.query_options()?;
    let name = p.rest("/v1/health/checks/");
    let (idx, v) = blocking(&agent, &q, vec![Topic::Service(name.clone())], |s| {
        s.service_checks(&name)
    })
    .await?;
    let (v, filtered) = visible_checks(&a, v);
    Ok(mark_filtered(
        indexed(&agent, idx, &q, &checks_json(&v))?,
        filtered,
    ))
}

/// `GET /v1/health/state/<state>` (`any`, `passing`, `warning`, `critical`)
pub async fn state(State(agent): State<AppState>, a: Authz, p: Params) -> ApiResult {
    let q = p.query_options()?;
    let st = p.rest("/v1/health/state/");
    if !matches!(
        st.as_str(),
        "any" | HEALTH_PASSING | HEALTH_WARNING | HEALTH_CRITICAL
    ) {
        return Err(ApiError::bad_request(format!("Invalid state '{st}'")));
    }
    let f = node_meta_filter(&p);
    let (idx, v) = blocking(&agent, &q, vec![Topic::Table("checks")], |s| {
        s.checks_in_state(&st)
    })
    .await?;
    let v: Vec<HealthCheck> = if f.is_empty() {
        v
    } else {
        agent.read(|s| {
            v.into_iter()
                .filter(|c| {
                    s.node(&c.node)
                        .map(|n| node_matches(&n, &f))
                        .unwrap_or(false)
                })
                .collect()
        })
    };
    let (v, filtered) = visible_checks(&a, v);
    Ok(mark_filtered(
        indexed(&agent, idx, &q, &checks_json(&v))?,
        filtered,
    ))
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct CheckServiceNodeJson {
    node: NodeJson,
    service: ServiceJson,
    checks: Vec<CheckJson>,
}

/// `GET /v1/health/service/<service>`
pub async fn service(State(agent): State<AppState>, a: Authz, p: Params) -> ApiResult {
    let q = p.query_options()?;
    let name = p.rest("/v1/health/service/");
    let tags = p.all("tag");
    let passing = p.has("passing") && p.flag("passing");
    let f = node_meta_filter(&p);
    let key = super::read_cache_key(&agent, &p, &q);
    if key.is_some() {
        super::check_dc(&agent, &q)?;
        agent.barrier(q.consistency).await?;
        if let Some(resp) = key
            .as_deref()
            .and_then(|k| super::read_cache_get(&agent, k, &q))
        {
            return Ok(resp);
        }
    }
    // A cacheable read was checked and barriered above: one read, with the generation it
    // was taken at. Blocking reads are not cached (their generation is not used).
    let (generation, (idx, list)) = if key.is_some() {
        agent.read(|s| (s.generation(), s.check_service_nodes(&name, &tags)))
    } else {
        let r = blocking(&agent, &q, vec![Topic::Service(name.clone())], |s| {
            s.check_service_nodes(&name, &tags)
        })
        .await?;
        (0, r)
    };
    let mut list = list;
    let filtered = retain(&mut list, |c| {
        instance_visible(&a, &c.node.node, &c.service.service)
    });
    let out: Vec<CheckServiceNodeJson> = list
        .iter()
        .filter(|c| node_matches(&c.node, &f))
        .filter(|c| !passing || aggregate_status(&c.checks) == HEALTH_PASSING)
        .map(|c| CheckServiceNodeJson {
            node: NodeJson::from(&c.node),
            service: ServiceJson::new(&c.service, &c.node.datacenter),
            checks: checks_json(&c.checks),
        })
        .collect();
    let mut out = out;
    if let Some(c) = super::coordinate::near_coordinate(&agent, &p)? {
        super::coordinate::sort_near(&agent, &c, &mut out, |x| x.node.node.as_str());
    }
    super::read_cache_put(&agent, key, generation, idx, &q, &out, filtered)
}
