//! `/v1/agent/*`: this agent's view: self, members, local services and checks (register,
//! deregister, TTL updates, maintenance), local health by service, reload and leave.

use super::acl::{mark_filtered, Authz};
use super::catalog::{parse_body, ServiceJson};
use super::health::CheckJson;
use super::params::{Params, QueryOptions};
use super::{indexed, ApiError, ApiResult, AppState};
use crate::acl::{Access, Resource};
use crate::definition::{decode_check, decode_service};
use crate::store::catalog::aggregate_status;
use crate::types::{HEALTH_CRITICAL, HEALTH_PASSING, HEALTH_WARNING};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The service name of a local service ID.
fn local_service_name(agent: &AppState, id: &str) -> Option<String> {
    let l = agent.local.lock().unwrap_or_else(|e| e.into_inner());
    l.services.get(id).map(|s| s.service.service.clone())
}

/// Writing a local check needs write on its service, or on this node for node checks.
fn check_write(agent: &AppState, a: &Authz, check_id: &str) -> Result<(), ApiError> {
    let service_id = {
        let l = agent.local.lock().unwrap_or_else(|e| e.into_inner());
        l.checks.get(check_id).map(|c| c.check.service_id.clone())
    };
    match service_id {
        Some(sid) if !sid.is_empty() => {
            let name = local_service_name(agent, &sid).unwrap_or(sid);
            Ok(a.check(Resource::Service, &name, Access::Write)?)
        }
        _ => Ok(a.check(Resource::Node, &agent.node_name, Access::Write)?),
    }
}

fn agent_access(agent: &AppState, a: &Authz, need: Access) -> Result<(), ApiError> {
    Ok(a.check(Resource::Agent, &agent.node_name, need)?)
}

fn member_json(m: &crate::gossip::Member) -> Value {
    let tags: serde_json::Map<String, Value> = m
        .tags
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    json!({
        "Name": m.name,
        "Addr": m.addr.ip().to_string(),
        "Port": m.addr.port(),
        "Tags": tags,
        "Status": m.status.code(),
        "ProtocolMin": 1, "ProtocolMax": 5, "ProtocolCur": 2,
        "DelegateMin": 2, "DelegateMax": 5, "DelegateCur": 4,
    })
}

fn self_member(agent: &AppState) -> Value {
    let me = agent
        .gossip()
        .and_then(|g| g.members().into_iter().find(|m| m.name == agent.node_name));
    match me {
        Some(m) => member_json(&m),
        None => {
            json!({"Name": agent.node_name, "Addr": agent.rpc_addr.ip().to_string(), "Port": 0, "Tags": {}, "Status": 1})
        }
    }
}

/// Consul's `raft` stats section (strings, as Consul reports them); empty on clients.
fn raft_stats(agent: &AppState) -> Value {
    let Some(raft) = agent.raft() else {
        return json!({});
    };
    let m = raft.metrics().borrow().clone();
    let idx = |l: Option<openraft::LogId<u64>>| l.map(|l| l.index).unwrap_or(0).to_string();
    json!({
        "state": match m.state {
            openraft::ServerState::Leader => "Leader",
            openraft::ServerState::Candidate => "Candidate",
            openraft::ServerState::Learner => "Learner",
            openraft::ServerState::Shutdown => "Shutdown",
            openraft::ServerState::Follower => "Follower",
        },
        "term": m.current_term.to_string(),
        "last_log_index": m.last_log_index.unwrap_or(0).to_string(),
        "applied_index": idx(m.last_applied),
        "last_snapshot_index": idx(m.snapshot),
        "purged_index": idx(m.purged),
        "num_peers": agent.peers().len().saturating_sub(1).to_string(),
        "last_contact": format!("{}ms", agent.last_contact_ms()),
    })
}

/// `GET /v1/agent/self`
pub async fn self_(State(agent): State<AppState>, a: Authz, p: Params) -> ApiResult {
    agent_access(&agent, &a, Access::Read)?;
    let q = p.query_options()?;
    let cfg = agent.config();
    let body = json!({
        "Config": {
            "Datacenter": agent.datacenter,
            "PrimaryDatacenter": if cfg.primary_datacenter.is_empty() { agent.datacenter.clone() } else { cfg.primary_datacenter.clone() },
            "NodeName": agent.node_name,
            "NodeID": agent.node_id,
            "Revision": "praetor",
            "Server": cfg.server,
            "Version": crate::CONSUL_COMPAT_VERSION,
            "BuildDate": "",
            "PraetorVersion": env!("CARGO_PKG_VERSION"),
        },
        "DebugConfig": cfg.sanitized(),
        "Coord": Value::Null,
        "Member": self_member(&agent),
        "Stats": {
            "agent": {"check_monitors": "0", "check_ttls": "0", "checks": agent.local.lock().map(|l| l.checks.len()).unwrap_or(0).to_string(), "services": agent.local.lock().map(|l| l.services.len()).unwrap_or(0).to_string()},
            "raft": raft_stats(&agent),
            "runtime": {"arch": std::env::consts::ARCH, "os": std::env::consts::OS, "version": "rust"},
        },
        "Meta": cfg.node_meta,
        "xDS": Value::Null,
    });
    let resp = super::json_body(&body, q.pretty)?;
    let resp = ([("Content-Type", "application/json")], resp).into_response();
    Ok(super::with_meta(
        &agent,
        resp,
        agent.read(|s| s.last_index()),
        &q,
    ))
}

/// `GET /v1/agent/members` (`?wan` lists the WAN pool: only this server until WAN
/// federation)
pub async fn members(State(agent): State<AppState>, a: Authz, p: Params) -> ApiResult {
    let q = p.query_options()?;
    let pool = if p.has("wan") && p.flag("wan") {
        agent.wan()
    } else {
        agent.gossip()
    };
    let list: Vec<Value> = match pool {
        Some(g) => g.members().iter().map(member_json).collect(),
        None => vec![self_member(&agent)],
    };
    let mut list = list;
    let filtered = super::acl::retain(&mut list, |m| {
        a.allowed(
            Resource::Node,
            m["Name"].as_str().unwrap_or(""),
            Access::Read,
        )
    });
    Ok(mark_filtered(
        indexed(&agent, agent.read(|s| s.last_index()), &q, &list)?,
        filtered,
    ))
}

/// `PUT /v1/agent/join/<address>`
pub async fn join(State(agent): State<AppState>, a: Authz, p: Params) -> ApiResult {
    agent_access(&agent, &a, Access::Write)?;
    let addr = p.rest("/v1/agent/join/");
    if p.has("wan") && p.flag("wan") {
        agent.join_wan(&[addr]).await?;
    } else {
        agent.join(&[addr]).await?;
    }
    Ok(StatusCode::OK.into_response())
}

/// `PUT /v1/agent/force-leave/<node>?prune`
pub async fn force_leave(State(agent): State<AppState>, a: Authz, p: Params) -> ApiResult {
    a.check(Resource::Operator, "", Access::Write)?;
    let node = p.rest("/v1/agent/force-leave/");
    agent
        .force_leave(&node, p.has("prune") && p.flag("prune"))
        .await?;
    Ok(StatusCode::OK.into_response())
}

fn local_services(agent: &AppState) -> BTreeMap<String, ServiceJson> {
    let l = agent.local.lock().unwrap_or_else(|e| e.into_inner());
    l.services
        .iter()
        .map(|(id, s)| (id.clone(), ServiceJson::new(&s.service, &agent.datacenter)))
        .collect()
}

/// `GET /v1/agent/services`
pub async fn services(State(agent): State<AppState>, a: Authz, p: Params) -> ApiResult {
    let q = p.query_options()?;
    let mut svcs = local_services(&agent);
    let before = svcs.len();
    svcs.retain(|_, s| a.allowed(Resource::Service, &s.service, Access::Read));
    let filtered = svcs.len() != before;
    Ok(mark_filtered(
        indexed(&agent, agent.read(|s| s.last_index()), &q, &svcs)?,
        filtered,
    ))
}

/// `GET /v1/agent/service/<id>`
pub async fn service(State(agent): State<AppState>, a: Authz, p: Params) -> ApiResult {
    let q = p.query_options()?;
    let id = p.rest("/v1/agent/service/");
    let svc = local_services(&agent).remove(&id);
    match svc {
        None => Err(ApiError::not_found(format!("unknown service ID: {id}"))),
        Some(s) => {
            a.check(Resource::Service, &s.service, Access::Read)?;
            indexed(&agent, agent.read(|st| st.last_index()), &q, &s)
        }
    }
}

/// `GET /v1/agent/checks`
pub async fn checks(State(agent): State<AppState>, a: Authz, p: Params) -> ApiResult {
    let q = p.query_options()?;
    let out: BTreeMap<String, crate::types::HealthCheck> = {
        let l = agent.local.lock().unwrap_or_else(|e| e.into_inner());
        l.checks
            .iter()
            .map(|(id, c)| {
                let mut chk = c.check.clone();
                if let Some(s) = l.services.get(&chk.service_id) {
                    chk.service_name = s.service.service.clone();
                    chk.service_tags = s.service.tags.clone();
                }
                (id.clone(), chk)
            })
            .collect()
    };
    let before = out.len();
    let out: BTreeMap<String, CheckJson> = out
        .into_iter()
        .filter(|(_, c)| {
            a.allowed(Resource::Node, &c.node, Access::Read)
                && (c.service_id.is_empty()
                    || a.allowed(Resource::Service, &c.service_name, Access::Read))
        })
        .map(|(id, c)| (id, CheckJson::from(&c)))
        .collect();
    let filtered = out.len() != before;
    Ok(mark_filtered(
        indexed(&agent, agent.read(|s| s.last_index()), &q, &out)?,
        filtered,
    ))
}

/// `PUT /v1/agent/service/register`
pub async fn service_register(
    State(agent): State<AppState>,
    a: Authz,
    p: Params,
    body: Bytes,
) -> ApiResult {
    let v = parse_body(&body)?;
    let def = decode_service(&v).map_err(|e| ApiError::bad_request(e.0))?;
    a.check(Resource::Service, &def.service.service, Access::Write)?;
    let replace = p.has("replace-existing-checks") && p.flag("replace-existing-checks");
    agent.add_service(def, replace).await?;
    Ok(StatusCode::OK.into_response())
}

/// `PUT /v1/agent/service/deregister/<id>`
pub async fn service_deregister(State(agent): State<AppState>, a: Authz, p: Params) -> ApiResult {
    let id = p.rest("/v1/agent/service/deregister/");
    if let Some(name) = local_service_name(&agent, &id) {
        a.check(Resource::Service, &name, Access::Write)?;
    }
    agent.remove_service(&id).await?;
    Ok(StatusCode::OK.into_response())
}

/// `PUT /v1/agent/check/register`
pub async fn check_register(State(agent): State<AppState>, a: Authz, body: Bytes) -> ApiResult {
    let v = parse_body(&body)?;
    let def = decode_check(&v, None).map_err(|e| ApiError::bad_request(e.0))?;
    let sid = &def.check.service_id;
    if sid.is_empty() {
        a.check(Resource::Node, &agent.node_name, Access::Write)?;
    } else {
        let name = local_service_name(&agent, sid).unwrap_or_else(|| sid.clone());
        a.check(Resource::Service, &name, Access::Write)?;
    }
    agent.add_check(def).await?;
    Ok(StatusCode::OK.into_response())
}

/// `PUT /v1/agent/check/deregister/<id>`
pub async fn check_deregister(State(agent): State<AppState>, a: Authz, p: Params) -> ApiResult {
    let id = p.rest("/v1/agent/check/deregister/");
    check_write(&agent, &a, &id)?;
    agent.remove_check(&id).await?;
    Ok(StatusCode::OK.into_response())
}

async fn ttl_update(agent: &AppState, a: &Authz, id: &str, status: &str, note: &str) -> ApiResult {
    check_write(agent, a, id)?;
    agent.update_check(id, status, note).await?;
    Ok(StatusCode::OK.into_response())
}

/// `PUT /v1/agent/check/pass/<id>?note=`
pub async fn check_pass(State(agent): State<AppState>, a: Authz, p: Params) -> ApiResult {
    ttl_update(
        &agent,
        &a,
        &p.rest("/v1/agent/check/pass/"),
        HEALTH_PASSING,
        p.get("note").unwrap_or(""),
    )
    .await
}

/// `PUT /v1/agent/check/warn/<id>?note=`
pub async fn check_warn(State(agent): State<AppState>, a: Authz, p: Params) -> ApiResult {
    ttl_update(
        &agent,
        &a,
        &p.rest("/v1/agent/check/warn/"),
        HEALTH_WARNING,
        p.get("note").unwrap_or(""),
    )
    .await
}

/// `PUT /v1/agent/check/fail/<id>?note=`
pub async fn check_fail(State(agent): State<AppState>, a: Authz, p: Params) -> ApiResult {
    ttl_update(
        &agent,
        &a,
        &p.rest("/v1/agent/check/fail/"),
        HEALTH_CRITICAL,
        p.get("note").unwrap_or(""),
    )
    .await
}

/// `PUT /v1/agent/check/update/<id>` with `{"Status": ..., "Output": ...}`
pub async fn check_update(
    State(agent): State<AppState>,
    a: Authz,
    p: Params,
    body: Bytes,
) -> ApiResult {
    let id = p.rest("/v1/agent/check/update/");
    let v = parse_body(&body)?;
    let o = v.as_object().cloned().unwrap_or_default();
    let get = |k: &str| {
        o.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .and_then(|(_, v)| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    let status = get("Status");
    if crate::types::valid_status(&status).is_none() {
        return Err(ApiError::bad_request(format!(
            "Invalid check status: '{status}'"
        )));
    }
    ttl_update(&agent, &a, &id, &status, &get("Output")).await
}

fn maintenance_args(p: &Params) -> Result<(bool, String), ApiError> {
    let enable = match p.get("enable") {
        None => return Err(ApiError::bad_request("Missing value for enable")),
        Some(v) => v
            .parse::<bool>()
            .map_err(|_| ApiError::bad_request(format!("Invalid value for enable: {v:?}")))?,
    };
    Ok((enable, p.get("reason").unwrap_or("").to_string()))
}

/// `PUT /v1/agent/maintenance?enable=true&reason=`
pub async fn node_maintenance(State(agent): State<AppState>, a: Authz, p: Params) -> ApiResult {
    a.check(Resource::Node, &agent.node_name, Access::Write)?;
    let (enable, reason) = maintenance_args(&p)?;
    agent.set_maintenance(None, enable, &reason).await?;
    Ok(StatusCode::OK.into_response())
}

/// `PUT /v1/agent/service/maintenance/<id>?enable=true&reason=`
pub async fn service_maintenance(State(agent): State<AppState>, a: Authz, p: Params) -> ApiResult {
    let id = p.rest("/v1/agent/service/maintenance/");
    if let Some(name) = local_service_name(&agent, &id) {
        a.check(Resource::Service, &name, Access::Write)?;
    }
    let (enable, reason) = maintenance_args(&p)?;
    agent.set_maintenance(Some(&id), enable, &reason).await?;
    Ok(StatusCode::OK.into_response())
}

/// `PUT /v1/agent/reload`
pub async fn reload(State(agent): State<AppState>, a: Authz) -> ApiResult {
    agent_access(&agent, &a, Access::Write)?;
    agent.reload().await?;
    Ok(StatusCode::OK.into_response())
}

/// `PUT /v1/agent/leave`: leave gracefully and shut down.
pub async fn leave(State(agent): State<AppState>, a: Authz) -> ApiResult {
    agent_access(&agent, &a, Access::Write)?;
    let a = agent.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        a.leave().await;
    });
    Ok(StatusCode::OK.into_response())
}

async fn local_health(
    agent: &AppState,
    q: &QueryOptions,
    ids: Vec<String>,
    by_name: bool,
    what: &str,
) -> ApiResult {
    let l = agent
        .local
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    if ids.is_empty() {
        let msg = if by_name {
            format!("ServiceName {what} Not Found")
        } else {
            format!("ServiceId {what} not found")
        };
        return Err(ApiError::not_found(msg));
    }
    let mut worst = HEALTH_PASSING;
    let mut out = Vec::new();
    for id in ids {
        let Some(s) = l.services.get(&id) else {
            continue;
        };
        let mut checks = l.service_checks(&id);
        checks.extend(
            l.checks
                .values()
                .filter(|c| c.check.service_id.is_empty())
                .map(|c| c.check.clone()),
        );
        let status = aggregate_status(&checks);
        if status == HEALTH_CRITICAL || (status == HEALTH_WARNING && worst == HEALTH_PASSING) {
            worst = status;
        }
        out.push(json!({"AggregatedStatus": status, "Service": ServiceJson::new(&s.service, &agent.datacenter), "Checks": checks.iter().map(CheckJson::from).collect::<Vec<_>>()}));
    }
    let code = match worst {
        HEALTH_PASSING => StatusCode::OK,
        HEALTH_WARNING => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    let body = if by_name {
        super::json_body(&out, q.pretty)?
    } else {
        super::json_body(&out[0], q.pretty)?
    };
    Ok((code, [("Content-Type", "application/json")], body).into_response())
}

/// `GET /v1/agent/health/service/name/<name>`
pub async fn health_by_name(State(agent): State<AppState>, a: Authz, p: Params) -> ApiResult {
    let q = p.query_options()?;
    let name = p.rest("/v1/agent/health/service/name/");
    a.check(Resource::Service, &name, Access::Read)?;
    let ids: Vec<String> = {
        let l = agent.local.lock().unwrap_or_else(|e| e.into_inner());
        l.services
            .values()
            .filter(|s| s.service.service == name)
            .map(|s| s.service.id.clone())
            .collect()
    };
    local_health(&agent, &q, ids, true, &name).await
}

/// `GET /v1/agent/health/service/id/<id>`
pub async fn health_by_id(State(agent): State<AppState>, a: Authz, p: Params) -> ApiResult {
    let q = p.query_options()?;
    let id = p.rest("/v1/agent/health/service/id/");
    if let Some(name) = local_service_name(&agent, &id) {
        a.check(Resource::Service, &name, Access::Read)?;
    }
    let exists = agent
        .local
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .services
        .contains_key(&id);
    let ids = if exists { vec![id.clone()] } else { vec![] };
    local_health(&agent, &q, ids, false, &id).await
}
