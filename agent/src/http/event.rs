//! `/v1/event/fire/<name>` and `/v1/event/list` (blocking on new events).

use super::acl::Authz;
use super::params::Params;
use crate::acl::{Access, Resource};

use super::{indexed, json, ApiResult, AppState};
use crate::store::Topic;
use axum::body::Bytes;
use axum::extract::State;
use tokio::time::Instant;

/// `PUT /v1/event/fire/<name>?node=&service=&tag=`
pub async fn fire(State(agent): State<AppState>, a: Authz, p: Params, body: Bytes) -> ApiResult {
    let name = p.rest("/v1/event/fire/");
    a.check(Resource::Event, &name, Access::Write)?;
    let ev = agent
        .fire_event(
            &name,
            body.to_vec(),
            p.get("node").unwrap_or(""),
            p.get("service").unwrap_or(""),
            p.get("tag").unwrap_or(""),
        )
        .await?;
    json(&ev)
}

/// `GET /v1/event/list?name=` (blocking with `?index=`)
pub async fn list(State(agent): State<AppState>, a: Authz, p: Params) -> ApiResult {
    let q = p.query_options()?;
    let name = p.get("name").unwrap_or("").to_string();
    if q.index > 0 {
        let deadline = Instant::now() + agent.query_wait(&q);
        loop {
            let sub = agent.subscribe(vec![Topic::Table("events")]);
            let (idx, _) = agent.list_events(&name);
            if idx > q.index {
                break;
            }
            tokio::select! {
                _ = sub.changed() => {}
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
    }
    let (idx, mut events) = agent.list_events(&name);
    let filtered = super::acl::retain(&mut events, |e| {
        a.allowed(Resource::Event, &e.name, Access::Read)
    });
    Ok(super::acl::mark_filtered(
        indexed(&agent, idx, &q, &events)?,
        filtered,
    ))
}
