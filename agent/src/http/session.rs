//! `/v1/session/*`: create, destroy, renew, info, node, list.

use super::acl::{mark_filtered, retain, Authz};
use super::catalog::parse_body;
use super::params::Params;
use crate::acl::{Access, Resource};

use super::{blocking, indexed, json, ApiError, ApiResult, AppState};
use crate::store::Topic;
use crate::types::Session;
use axum::body::Bytes;
use axum::extract::State;
use serde::Serialize;

/// A session as the API shows it.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SessionJson {
    #[serde(rename = "ID")]
    id: String,
    name: String,
    node: String,
    lock_delay: u64,
    behavior: &'static str,
    #[serde(rename = "TTL")]
    ttl: String,
    node_checks: Vec<String>,
    service_checks: Option<Vec<serde_json::Value>>,
    create_index: u64,
    modify_index: u64,
}

impl From<&Session> for SessionJson {
    fn from(s: &Session) -> Self {
        SessionJson {
            id: s.id.clone(),
            name: s.name.clone(),
            node: s.node.clone(),
            lock_delay: s.lock_delay_ns,
            behavior: s.behavior.as_str(),
            ttl: s.ttl.clone(),
            node_checks: s.node_checks.clone(),
            service_checks: (!s.service_checks.is_empty()).then(|| {
                s.service_checks
                    .iter()
                    .map(|c| serde_json::json!({"ID": c.id, "Namespace": c.namespace}))
                    .collect()
            }),
            create_index: s.create_index,
            modify_index: s.modify_index,
        }
    }
}

/// `PUT /v1/session/create`
pub async fn create(State(agent): State<AppState>, a: Authz, body: Bytes) -> ApiResult {
    let v = parse_body(&body)?;
    let s = agent.decode_session(&v)?;
    a.check(Resource::Session, &s.node, Access::Write)?;
    let id = agent.create_session(s).await?;
    json(&serde_json::json!({ "ID": id }))
}

/// `PUT /v1/session/destroy/<id>`
pub async fn destroy(State(agent): State<AppState>, a: Authz, p: Params) -> ApiResult {
    let id = p.rest("/v1/session/destroy/");
    if id.is_empty() {
        return Err(ApiError::bad_request("Missing session"));
    }
    session_write(&agent, &a, &id)?;
    json(&agent.destroy_session(&id).await?)
}

/// `PUT /v1/session/renew/<id>`
pub async fn renew(State(agent): State<AppState>, a: Authz, p: Params) -> ApiResult {
    let q = p.query_options()?;
    let id = p.rest("/v1/session/renew/");
    session_write(&agent, &a, &id)?;
    agent.barrier(q.consistency).await?;
    match agent.renew_session(&id).await? {
        None => Err(ApiError::not_found(format!("Session id '{id}' not found"))),
        Some(s) => {
            let idx = agent.read(|st| st.session_get(&id).0);
            indexed(&agent, idx, &q, &vec![SessionJson::from(&s)])
        }
    }
}

/// `GET /v1/session/info/<id>`
pub async fn info(State(agent): State<AppState>, a: Authz, p: Params) -> ApiResult {
    let q = p.query_options()?;
    let id = p.rest("/v1/session/info/");
    let (idx, s) = blocking(&agent, &q, vec![Topic::Session(id.clone())], |st| {
        st.session_get(&id)
    })
    .await?;
    let mut s: Vec<Session> = s.into_iter().collect();
    let filtered = retain(&mut s, |x| {
        a.allowed(Resource::Session, &x.node, Access::Read)
    });
    let out: Vec<SessionJson> = s.iter().map(SessionJson::from).collect();
    Ok(mark_filtered(indexed(&agent, idx, &q, &out)?, filtered))
}

/// `GET /v1/session/node/<node>`
pub async fn node(State(agent): State<AppState>, a: Authz, p: Params) -> ApiResult {
    let q = p.query_options()?;
    let n = p.rest("/v1/session/node/");
    let (idx, v) = blocking(&agent, &q, vec![Topic::Table("sessions")], |st| {
        st.node_sessions(&n)
    })
    .await?;
    session_list_answer(&agent, &a, idx, &q, v)
}

/// `GET /v1/session/list`
pub async fn list(State(agent): State<AppState>, a: Authz, p: Params) -> ApiResult {
    let q = p.query_options()?;
    let (idx, v) = blocking(&agent, &q, vec![Topic::Table("sessions")], |st| {
        st.session_list()
    })
    .await?;
    session_list_answer(&agent, &a, idx, &q, v)
}

fn session_list_answer(
    agent: &AppState,
    a: &Authz,
    idx: u64,
    q: &super::params::QueryOptions,
    mut v: Vec<Session>,
) -> ApiResult {
    let filtered = retain(&mut v, |x| {
        a.allowed(Resource::Session, &x.node, Access::Read)
    });
    Ok(mark_filtered(
        indexed(
            agent,
            idx,
            q,
            &v.iter().map(SessionJson::from).collect::<Vec<_>>(),
        )?,
        filtered,
    ))
}

/// Destroying or renewing a session needs `session:write` on its node.
fn session_write(agent: &AppState, a: &Authz, id: &str) -> Result<(), ApiError> {
    if let (_, Some(s)) = agent.read(|st| st.session_get(id)) {
        a.check(Resource::Session, &s.node, Access::Write)?;
    }
    Ok(())
}
