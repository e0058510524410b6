//! `/v1/query`: prepared query CRUD, `/execute` and `/explain`.

use super::acl::Authz;
use super::catalog::{parse_body, NodeJson, ServiceJson};
use super::health::CheckJson;
use super::params::Params;
use crate::acl::{Access, Resource};

use super::{blocking, indexed, json, ApiError, ApiResult, AppState};
use crate::raft::Command;
use crate::store::query::PreparedQuery;
use crate::store::Topic;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{json, Value};

fn decode(body: &Bytes) -> Result<PreparedQuery, ApiError> {
    let v = parse_body(body)?;
    let q: PreparedQuery = serde_json::from_value(v)
        .map_err(|e| ApiError::bad_request(format!("Request decode failed: {e}")))?;
    if q.service.service.is_empty() {
        return Err(ApiError::bad_request(
            "Must provide a Service name to query",
        ));
    }
    if !q.template.kind.is_empty() && q.template.kind != "name_prefix_match" {
        return Err(ApiError::bad_request(format!(
            "Bad Template.Type {:?}",
            q.template.kind
        )));
    }
    if !q.template.regexp.is_empty() {
        regex_lite::Regex::new(&q.template.regexp)
            .map_err(|e| ApiError::bad_request(format!("Invalid Template.Regexp: {e}")))?;
    }
    Ok(q)
}

/// `POST /v1/query`
pub async fn create(State(agent): State<AppState>, a: Authz, body: Bytes) -> ApiResult {
    let mut q = decode(&body)?;
    a.check(Resource::Query, &q.name, Access::Write)?;
    q.id = uuid::Uuid::new_v4().to_string();
    let id = q.id.clone();
    agent.apply_checked(Command::QuerySet(Box::new(q))).await?;
    json(&json!({ "ID": id }))
}

/// `GET /v1/query`
pub async fn list(State(agent): State<AppState>, a: Authz, p: Params) -> ApiResult {
    let q = p.query_options()?;
    let (idx, v) = blocking(&agent, &q, vec![Topic::Table("prepared-queries")], |s| {
        s.query_list()
    })
    .await?;
    let mut v = v;
    let filtered = super::acl::retain(&mut v, |x| {
        a.allowed(Resource::Query, &x.name, Access::Read)
    });
    Ok(super::acl::mark_filtered(
        indexed(&agent, idx, &q, &v)?,
        filtered,
    ))
}

fn id_of(p: &Params) -> String {
    p.rest("/v1/query/")
        .trim_end_matches("/execute")
        .trim_end_matches("/explain")
        .to_string()
}

/// `GET /v1/query/<id>`
pub async fn get(State(agent): State<AppState>, a: Authz, p: Params) -> ApiResult {
    let q = p.query_options()?;
    let id = id_of(&p);
    let (idx, found) = blocking(&agent, &q, vec![Topic::Table("prepared-queries")], |s| {
        let (i, list) = s.query_list();
        (i, list.into_iter().find(|x| x.id == id))
    })
    .await?;
    match found {
        Some(query) => {
            a.check(Resource::Query, &query.name, Access::Read)?;
            indexed(&agent, idx, &q, &vec![query])
        }
        None => Err(ApiError::not_found("Query not found")),
    }
}

/// `PUT /v1/query/<id>`
pub async fn update(State(agent): State<AppState>, a: Authz, p: Params, body: Bytes) -> ApiResult {
    let id = id_of(&p);
    let Some(old) = agent.read(|s| s.query_list().1.into_iter().find(|x| x.id == id)) else {
        return Err(ApiError::not_found("Query not found"));
    };
    a.check(Resource::Query, &old.name, Access::Write)?;
    let mut q = decode(&body)?;
    a.check(Resource::Query, &q.name, Access::Write)?;
    q.id = id;
    agent.apply_checked(Command::QuerySet(Box::new(q))).await?;
    Ok(StatusCode::OK.into_response())
}

/// `DELETE /v1/query/<id>`
pub async fn delete(State(agent): State<AppState>, a: Authz, p: Params) -> ApiResult {
    let id = id_of(&p);
    if let Some(old) = agent.read(|s| s.query_list().1.into_iter().find(|x| x.id == id)) {
        a.check(Resource::Query, &old.name, Access::Write)?;
    }
    agent
        .apply_checked(Command::QueryDelete { id: id_of(&p) })
        .await?;
    Ok(StatusCode::OK.into_response())
}

/// `GET /v1/query/<id or name>/execute?limit=N`
pub async fn execute(State(agent): State<AppState>, a: Authz, p: Params) -> ApiResult {
    let q = p.query_options()?;
    agent.barrier(q.consistency).await?;
    let limit = p.u64("limit", "limit")?.unwrap_or(0) as usize;
    let Some(r) = agent.execute_query(&id_of(&p), limit).await? else {
        return Err(ApiError::not_found("Query not found"));
    };
    let nodes: Vec<Value> = r
        .nodes
        .iter()
        .filter(|i| super::acl::instance_visible(&a, &i.node.node, &i.service.service))
        .map(|i| {
            json!({
                "Node": NodeJson::from(&i.node),
                "Service": ServiceJson::new(&i.service, &r.datacenter),
                "Checks": i.checks.iter().map(CheckJson::from).collect::<Vec<_>>(),
            })
        })
        .collect();
    let out = json!({
        "Service": r.query.service.service,
        "Nodes": nodes,
        "DNS": {"TTL": r.query.dns.ttl},
        "Datacenter": r.datacenter,
        "Failovers": r.failovers,
    });
    indexed(
        &agent,
        agent.read(|s| s.max_index(&["prepared-queries"])),
        &q,
        &out,
    )
}

/// `GET /v1/query/<id or name>/explain`
pub async fn explain(State(agent): State<AppState>, p: Params) -> ApiResult {
    let q = p.query_options()?;
    let name = id_of(&p);
    let (idx, found) = agent.read(|s| s.query_resolve(&name));
    let Some(found) = found else {
        return Err(ApiError::not_found("Query not found"));
    };
    let rendered = crate::agent::query::render(found, &name)?;
    indexed(&agent, idx, &q, &json!({ "Query": rendered }))
}
