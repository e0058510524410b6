//! `/v1/operator/raft/*`: the Raft configuration as Consul reports it, and removing a peer.
//! Changes are made by the leader; a follower forwards the request to it.

use super::acl::Authz;
use super::params::Params;
use crate::acl::{Access, Resource};

use super::{indexed, ApiError, ApiResult, AppState};
use crate::raft::typ::Raft;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Raft id -> (node name, node UUID), from the LAN pool's server tags.
fn server_names(agent: &AppState) -> BTreeMap<u64, (String, String)> {
    let mut out = BTreeMap::new();
    if let Some(g) = agent.gossip() {
        for m in g.members() {
            if let Some(id) = m.tags.get("id") {
                out.insert(
                    crate::agent::raft_id_from_uuid(id),
                    (m.name.clone(), id.clone()),
                );
            }
        }
    }
    out
}

fn raft_of(agent: &AppState) -> Result<&Raft, ApiError> {
    agent
        .raft()
        .ok_or_else(|| ApiError::internal("No known Consul servers"))
}

/// `GET /v1/operator/raft/configuration`
pub async fn configuration(State(agent): State<AppState>, a: Authz, p: Params) -> ApiResult {
    a.check(Resource::Operator, "", Access::Read)?;
    let q = p.query_options()?;
    agent.barrier(q.consistency).await?;
    let raft = raft_of(&agent)?;
    let names = server_names(&agent);
    let leader = agent.leader().map(|(id, _)| id);
    let (servers, index) = {
        let m = raft.metrics();
        let m = m.borrow();
        let mem = m.membership_config.membership();
        let voters: Vec<u64> = mem.voter_ids().collect();
        let servers: Vec<Value> = mem
            .nodes()
            .map(|(id, n)| {
                let (name, uuid) = names
                    .get(id)
                    .cloned()
                    .unwrap_or_else(|| (String::new(), id.to_string()));
                json!({
                    "ID": uuid,
                    "Node": name,
                    "Address": n.addr,
                    "Leader": Some(*id) == leader,
                    "ProtocolVersion": "3",
                    "Voter": voters.contains(id),
                })
            })
            .collect();
        (
            servers,
            m.membership_config.log_id().map(|l| l.index).unwrap_or(0),
        )
    };
    indexed(
        &agent,
        index.max(1),
        &q,
        &json!({"Servers": servers, "Index": index}),
    )
}

/// `DELETE /v1/operator/raft/peer?id=<node-id>` or `?address=<ip:port>`
pub async fn remove_peer(State(agent): State<AppState>, a: Authz, req: Request) -> ApiResult {
    a.check(Resource::Operator, "", Access::Write)?;
    if !agent.is_leader() {
        let (_, addr) = agent
            .leader()
            .ok_or_else(|| ApiError::internal("No cluster leader"))?;
        return super::proxy::forward(vec![addr], req).await;
    }
    let p = Params::from_parts(req.uri().path(), req.uri().query(), req.headers());
    let raft = raft_of(&agent)?;
    let (voters, nodes) = {
        let m = raft.metrics();
        let m = m.borrow();
        let mem = m.membership_config.membership();
        let voters: std::collections::BTreeSet<u64> = mem.voter_ids().collect();
        let nodes: BTreeMap<u64, String> =
            mem.nodes().map(|(id, n)| (*id, n.addr.clone())).collect();
        (voters, nodes)
    };
    let target = match (p.get("id"), p.get("address")) {
        (Some(id), _) if !id.is_empty() => {
            let rid = crate::agent::raft_id_from_uuid(id);
            nodes.contains_key(&rid).then_some(rid)
        }
        (_, Some(addr)) if !addr.is_empty() => nodes.iter().find(|(_, a)| a.as_str() == addr).map(|(id, _)| *id),
        _ => return Err(ApiError::bad_request("Must specify either ?id with the server's ID or ?address with IP:port of peer to remove")),
    };
    let Some(target) = target else {
        let what = p.get("id").or(p.get("address")).unwrap_or_default();
        return Err(ApiError::internal(format!(
            "id {what:?} was not found in the Raft configuration"
        )));
    };
    let mut new_voters = voters.clone();
    new_voters.remove(&target);
    if new_voters.is_empty() {
        return Err(ApiError::bad_request("cannot remove the last server"));
    }
    let change = if voters.contains(&target) {
        openraft::ChangeMembers::ReplaceAllVoters(new_voters)
    } else {
        openraft::ChangeMembers::RemoveNodes([target].into_iter().collect())
    };
    raft.change_membership(change, false)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    if voters.contains(&target) {
        raft.change_membership(
            openraft::ChangeMembers::RemoveNodes([target].into_iter().collect()),
            false,
        )
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    }
    Ok(StatusCode::OK.into_response())
}

/// `POST /v1/operator/raft/transfer-leader[?id=<node-id>]`
pub async fn transfer_leader(State(agent): State<AppState>, a: Authz, req: Request) -> ApiResult {
    a.check(Resource::Operator, "", Access::Write)?;
    if !agent.is_leader() {
        let (_, addr) = agent
            .leader()
            .ok_or_else(|| ApiError::internal("No cluster leader"))?;
        return super::proxy::forward(vec![addr], req).await;
    }
    let p = Params::from_parts(req.uri().path(), req.uri().query(), req.headers());
    let target = p
        .get("id")
        .filter(|s| !s.is_empty())
        .map(crate::agent::raft_id_from_uuid);
    agent.transfer_leadership(target).await?;
    super::json(&json!({"Success": true}))
}
