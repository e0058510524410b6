//! `/v1/status/leader` and `/v1/status/peers`.

use super::params::Params;
use super::{ApiResult, AppState};
use axum::extract::State;
use axum::response::IntoResponse;

/// `GET /v1/status/leader`: the leader's RPC address, or `""` when none is known.
pub async fn leader(State(agent): State<AppState>, p: Params) -> ApiResult {
    let q = p.query_options()?;
    let addr = agent.leader().map(|(_, a)| a).unwrap_or_default();
    let body = super::json_body(&addr, q.pretty)?;
    let resp = ([("Content-Type", "application/json")], body).into_response();
    Ok(super::with_meta(
        &agent,
        resp,
        agent.read(|s| s.last_index()),
        &q,
    ))
}

/// `GET /v1/status/peers`: the voters' RPC addresses.
pub async fn peers(State(agent): State<AppState>, p: Params) -> ApiResult {
    let q = p.query_options()?;
    let body = super::json_body(&agent.peers(), q.pretty)?;
    let resp = ([("Content-Type", "application/json")], body).into_response();
    Ok(super::with_meta(
        &agent,
        resp,
        agent.read(|s| s.last_index()),
        &q,
    ))
}
