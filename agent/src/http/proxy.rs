//! Client agents hold no replicated state: requests for the catalog, health, KV, sessions
//! and status are forwarded to a server (its RPC port also serves the HTTP API) and the
//! server's answer is passed back unchanged, headers included. Agent endpoints stay local.

use super::{ApiError, AppState};
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::time::Duration;

/// Path prefixes a client agent forwards.
const FORWARDED: &[&str] = &[
    "/v1/kv",
    "/v1/catalog/",
    "/v1/health/",
    "/v1/session/",
    "/v1/status/",
    "/v1/txn",
    "/v1/operator/",
    "/v1/snapshot",
    "/v1/coordinate/",
    "/v1/query",
    "/v1/acl/",
];

/// Largest body forwarded (KV values are limited to 512 KiB; txn bodies are larger).
const MAX_FORWARD_BODY: usize = 8 * 1024 * 1024;

fn forwarded(path: &str) -> bool {
    // Sessions are created locally so they default to this agent's node; the keyring is
    // this agent's gossip.
    if path == "/v1/session/create" || path == "/v1/operator/keyring" {
        return false;
    }
    FORWARDED.iter().any(|p| path.starts_with(p))
}

fn requested_dc(req: &Request) -> Option<String> {
    let q = req.uri().query()?;
    q.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == "dc" && !v.is_empty()).then(|| super::params::percent_decode(v, true))
    })
}

/// Where a request is answered.
pub(super) enum Route {
    /// By this agent's handlers.
    Local,
    /// By one of these servers (the request passed on unchanged).
    Forward(Vec<String>),
    /// Refused before anything else.
    Reply(Response),
}

/// Client agents forward data requests to a server of their datacenter; servers forward
/// requests for another datacenter (`?dc=`) to a server of that datacenter.
pub(super) fn route(agent: &AppState, req: &mut Request) -> Route {
    if !forwarded(req.uri().path()) {
        return Route::Local;
    }
    if !agent.is_server() {
        // `near=_agent` means this agent's node, not the server's.
        if let Some(q) = req
            .uri()
            .query()
            .filter(|q| q.split('&').any(|kv| kv == "near=_agent"))
        {
            let q = q
                .split('&')
                .map(|kv| {
                    if kv == "near=_agent" {
                        format!("near={}", agent.node_name)
                    } else {
                        kv.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("&");
            if let Ok(uri) = format!("{}?{q}", req.uri().path()).parse() {
                *req.uri_mut() = uri;
            }
        }
        return Route::Forward(agent.known_servers());
    }
    match requested_dc(req) {
        Some(dc) if dc != agent.datacenter => {
            let t = agent.wan_servers_of(&dc);
            if t.is_empty() {
                return Route::Reply(ApiError::internal("No path to datacenter").into_response());
            }
            Route::Forward(t)
        }
        _ => Route::Local,
    }
}

pub(super) async fn forward(mut targets: Vec<String>, req: Request) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let body: Bytes = axum::body::to_bytes(body, MAX_FORWARD_BODY)
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("reading request body: {e}"),
            )
        })?;
    let path_q = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let client = crate::tls::rpc_client()
        .timeout(Duration::from_secs(11 * 60))
        .build()
        .map_err(|e| ApiError::internal(e.to_string()))?;
    // Try the servers in random order, each at most once.
    for i in (1..targets.len()).rev() {
        targets.swap(i, rand::random::<usize>() % (i + 1));
    }
    for server in targets.into_iter().take(3) {
        let mut rb = client.request(parts.method.clone(), crate::tls::rpc_url(&server, path_q));
        for (k, v) in parts.headers.iter() {
            if k != "host" && k != "content-length" {
                rb = rb.header(k, v);
            }
        }
        match rb.body(body.clone()).send().await {
            Ok(resp) => {
                let status = resp.status();
                let headers = resp.headers().clone();
                let bytes = resp
                    .bytes()
                    .await
                    .map_err(|e| ApiError::internal(format!("reading server response: {e}")))?;
                let mut out = Response::new(Body::from(bytes));
                *out.status_mut() = status;
                for (k, v) in headers.iter() {
                    if k == "content-length" || k == "transfer-encoding" || k == "connection" {
                        continue;
                    }
                    if let (Ok(n), Ok(val)) = (
                        HeaderName::from_bytes(k.as_str().as_bytes()),
                        HeaderValue::from_bytes(v.as_bytes()),
                    ) {
                        out.headers_mut().append(n, val);
                    }
                }
                return Ok(out);
            }
            // Only a request that never reached the server may be sent to another one.
            Err(e) if e.is_connect() => {
                tracing::debug!(error = %e, %server, "forwarding to server failed")
            }
            Err(e) => {
                return Err(ApiError::internal(format!(
                    "forwarding to server {server} failed: {e}"
                )))
            }
        }
    }
    Err(ApiError::internal("No known Consul servers"))
}
