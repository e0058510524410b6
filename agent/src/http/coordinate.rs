//! `/v1/coordinate/*` (network coordinates) and the `?near=` sorting of node and service
//! listings by estimated round-trip time.

use super::acl::Authz;
use super::params::Params;
use crate::acl::{Access, Resource};

use super::{blocking, indexed, ApiError, ApiResult, AppState};
use crate::store::Topic;
use crate::types::Coordinate;
use axum::extract::State;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// `GET /v1/coordinate/nodes`
pub async fn nodes(State(agent): State<AppState>, a: Authz, p: Params) -> ApiResult {
    let q = p.query_options()?;
    let (idx, coords) = blocking(&agent, &q, vec![Topic::Table("coordinates")], |s| {
        s.coordinates()
    })
    .await?;
    let before = coords.len();
    let out: Vec<Value> = coords
        .iter()
        .filter(|(n, _)| a.allowed(Resource::Node, n, Access::Read))
        .map(|(n, c)| json!({"Node": n, "Segment": "", "Partition": "default", "Coord": c}))
        .collect();
    let filtered = out.len() != before;
    Ok(super::acl::mark_filtered(
        indexed(&agent, idx, &q, &out)?,
        filtered,
    ))
}

/// `GET /v1/coordinate/node/<node>`
pub async fn node(State(agent): State<AppState>, a: Authz, p: Params) -> ApiResult {
    let q = p.query_options()?;
    let name = p.rest("/v1/coordinate/node/");
    a.check(Resource::Node, &name, Access::Read)?;
    let (idx, coords) = blocking(&agent, &q, vec![Topic::Table("coordinates")], |s| {
        s.coordinates()
    })
    .await?;
    match coords.get(&name) {
        Some(c) => indexed(
            &agent,
            idx,
            &q,
            &vec![json!({"Node": name, "Segment": "", "Partition": "default", "Coord": c})],
        ),
        None => super::not_found_indexed(&agent, idx, &q),
    }
}

/// `GET /v1/coordinate/datacenters`: the WAN coordinates of the servers of each datacenter.
pub async fn datacenters(State(agent): State<AppState>, p: Params) -> ApiResult {
    let q = p.query_options()?;
    let mut by_dc: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    if let Some(w) = agent.wan() {
        let mut all = w.peer_coordinates();
        all.insert(w.name().to_string(), w.coordinate());
        for m in w.members() {
            if let (Some(dc), Some(c)) = (m.tags.get("dc"), all.get(&m.name)) {
                by_dc
                    .entry(dc.clone())
                    .or_default()
                    .push(json!({"Node": m.name, "Coord": c}));
            }
        }
    }
    by_dc.entry(agent.datacenter.clone()).or_default();
    let out: Vec<Value> = by_dc
        .into_iter()
        .map(|(dc, coords)| json!({"Datacenter": dc, "AreaID": "wan", "Coordinates": coords}))
        .collect();
    indexed(&agent, agent.read(|s| s.last_index()), &q, &out)
}

/// The reference node and its coordinate for `?near=` (`_agent` is this agent's node).
pub fn near_coordinate(
    agent: &AppState,
    p: &Params,
) -> Result<Option<(String, Coordinate)>, ApiError> {
    let Some(near) = p.get("near").filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    let node = if near == "_agent" {
        agent.node_name.clone()
    } else {
        near.to_string()
    };
    Ok(agent
        .read(|s| s.coordinates().1.get(&node).cloned())
        .map(|c| (node, c)))
}

/// Sort items by estimated RTT from `reference` to their node (unknown coordinates last,
/// the reference node itself first).
pub fn sort_near<T>(
    agent: &AppState,
    reference: &(String, Coordinate),
    items: &mut [T],
    node_of: impl Fn(&T) -> &str,
) {
    let coords = agent.read(|s| s.coordinates().1);
    let dist = |n: &str| {
        if n == reference.0 {
            return Duration::ZERO;
        }
        coords
            .get(n)
            .map(|c| reference.1.distance_to(c))
            .unwrap_or(Duration::MAX)
    };
    items.sort_by_key(|i| dist(node_of(i)));
}
