//! `/v1/kv/<key>`: GET (single, `recurse`, `keys` with `separator`, `raw`), PUT (`flags`,
//! `cas`, `acquire`, `release`), DELETE (`recurse`, `cas`).

use super::acl::{mark_filtered, retain, Authz};
use super::params::Params;
use super::{blocking, indexed, json, not_found_indexed, ApiError, ApiResult, AppState};
use crate::acl::{Access, Resource};
use crate::raft::Command;
use crate::store::kv::KvOp;
use crate::store::Topic;
use crate::types::KvEntry;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Serialize;
use std::convert::Infallible;
use std::task::{Context, Poll};

/// Consul's default `kv_max_value_size`.
pub const KV_MAX_VALUE_SIZE: usize = 512 * 1024;

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct KvJson<'a> {
    lock_index: u64,
    key: &'a str,
    flags: u64,
    value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session: Option<&'a str>,
    create_index: u64,
    modify_index: u64,
}

fn to_json(e: &KvEntry) -> KvJson<'_> {
    KvJson {
        lock_index: e.lock_index,
        key: &e.key,
        flags: e.flags,
        value: (!e.value.is_empty())
            .then(|| base64::engine::general_purpose::STANDARD.encode(&e.value)),
        session: e.session.as_deref(),
        create_index: e.create_index,
        modify_index: e.modify_index,
    }
}

/// `/v1/kv/...` as a service rather than an axum handler, so that a parked blocking GET
/// holds only its own future: an axum handler's future also keeps the request's parts and
/// a copy of every extracted argument (1.4 KiB per parked query, against about 0.9 KiB).
/// Authorization comes from the front layer, as for the handlers.
#[derive(Clone)]
pub struct KvService(pub AppState);

type KvFuture = futures_util::future::BoxFuture<'static, Result<Response, Infallible>>;

impl tower_service::Service<Request> for KvService {
    type Response = Response;
    type Error = Infallible;
    type Future = KvFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> KvFuture {
        match dispatch(self.0.clone(), req) {
            Ok(fut) => fut,
            Err(e) => Box::pin(std::future::ready(Ok(e.into_response()))),
        }
    }
}

fn respond(r: ApiResult) -> Result<Response, Infallible> {
    Ok(r.unwrap_or_else(IntoResponse::into_response))
}

/// Check what can be checked at once and start the method's future.
fn dispatch(agent: AppState, req: Request) -> Result<KvFuture, ApiError> {
    let (parts, body) = req.into_parts();
    let a = Authz::of(&parts)?;
    let p = Params::from_parts(parts.uri.path(), parts.uri.query(), &parts.headers);
    let key = p.rest("/v1/kv/");
    super::check_dc(&agent, &p.query_options()?)?;
    let method = parts.method.clone();
    Ok(match method {
        Method::GET => Box::pin(async move { respond(get(&agent, &a, &p, &key).await) }),
        Method::PUT | Method::POST => {
            a.check(Resource::Key, &key, Access::Write)?;
            // The body as the `Bytes` extractor reads it (the router's body limit and its
            // refusals).
            let req = Request::from_parts(parts, body);
            Box::pin(async move {
                match Bytes::from_request(req, &()).await {
                    Ok(body) => respond(put(&agent, &p, &key, body).await),
                    Err(rejection) => Ok(rejection.into_response()),
                }
            })
        }
        Method::DELETE => {
            if p.has("recurse") && p.flag("recurse") {
                if !a.key_write_prefix(&key) {
                    return Err(a.denied(Resource::Key, &key, Access::Write).into());
                }
            } else {
                a.check(Resource::Key, &key, Access::Write)?;
            }
            Box::pin(async move { respond(delete(&agent, &p, &key).await) })
        }
        m => {
            return Err(ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("method {m} not allowed"),
            ))
        }
    })
}

async fn get(agent: &AppState, a: &Authz, p: &Params, key: &str) -> ApiResult {
    let q = p.query_options()?;
    let listing = (p.has("keys") && p.flag("keys")) || (p.has("recurse") && p.flag("recurse"));
    if listing && agent.acl_config().enable_key_list_policy {
        a.check(Resource::Key, key, Access::List)?;
    }
    if p.has("keys") && p.flag("keys") {
        let sep = p.get("separator").unwrap_or("").to_string();
        let (idx, mut keys) = blocking(agent, &q, vec![Topic::KvPrefix(key.to_string())], |s| {
            s.kv_keys(key, &sep)
        })
        .await?;
        let filtered = retain(&mut keys, |k| a.allowed(Resource::Key, k, Access::Read));
        if keys.is_empty() {
            return Ok(mark_filtered(not_found_indexed(agent, idx, &q)?, filtered));
        }
        return Ok(mark_filtered(indexed(agent, idx, &q, &keys)?, filtered));
    }
    if p.has("recurse") && p.flag("recurse") {
        let (idx, mut list) = blocking(agent, &q, vec![Topic::KvPrefix(key.to_string())], |s| {
            s.kv_list(key)
        })
        .await?;
        let filtered = retain(&mut list, |e| {
            a.allowed(Resource::Key, &e.key, Access::Read)
        });
        if list.is_empty() {
            return Ok(mark_filtered(not_found_indexed(agent, idx, &q)?, filtered));
        }
        let out: Vec<KvJson> = list.iter().map(to_json).collect();
        return Ok(mark_filtered(indexed(agent, idx, &q, &out)?, filtered));
    }
    a.check(Resource::Key, key, Access::Read)?;
    let (idx, entry) = blocking(agent, &q, vec![Topic::Kv(key.to_string())], |s| {
        s.kv_get(key)
    })
    .await?;
    let Some(e) = entry else {
        return not_found_indexed(agent, idx, &q);
    };
    if p.has("raw") && p.flag("raw") {
        let resp = (
            [
                ("Content-Type", "application/octet-stream"),
                ("X-Content-Type-Options", "nosniff"),
            ],
            e.value.clone(),
        )
            .into_response();
        return Ok(super::with_meta(agent, resp, idx, &q));
    }
    indexed(agent, idx, &q, &vec![to_json(&e)])
}

async fn put(agent: &AppState, p: &Params, key: &str, body: Bytes) -> ApiResult {
    if key.is_empty() {
        return Err(ApiError::bad_request("Missing key name"));
    }
    if p.has("recurse") {
        return Err(ApiError::bad_request("Cannot specify ?recurse with PUT"));
    }
    if body.len() > KV_MAX_VALUE_SIZE {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "Request body({} bytes) too large, max size: {} bytes. See https://developer.hashicorp.com/docs/agent/config/config-files#kv_max_value_size.",
                body.len(),
                KV_MAX_VALUE_SIZE
            ),
        ));
    }
    let flags = p.u64("flags", "flags")?.unwrap_or(0);
    let op = if let Some(s) = p.get("acquire") {
        if let Some(until) = agent.read(|st| st.kv_lock_delay(key)) {
            tracing::debug!(key, ?until, "acquire refused: lock delay in force");
            return json(&false);
        }
        KvOp::Lock(s.to_string())
    } else if let Some(s) = p.get("release") {
        KvOp::Unlock(s.to_string())
    } else if p.has("cas") {
        KvOp::Cas(
            p.u64("cas", "cas index")?
                .ok_or_else(|| ApiError::bad_request("Invalid cas index"))?,
        )
    } else {
        KvOp::Set
    };
    let cmd = Command::KvSet {
        key: key.to_string(),
        value: body.to_vec(),
        flags,
        op,
    };
    let ok = agent
        .apply(cmd)
        .await?
        .into_bool()
        .map_err(|e| ApiError::internal(e.to_string()))?;
    json(&ok)
}

async fn delete(agent: &AppState, p: &Params, key: &str) -> ApiResult {
    let recurse = p.has("recurse") && p.flag("recurse");
    let cmd = if recurse {
        Command::KvDeleteTree {
            prefix: key.to_string(),
        }
    } else {
        if key.is_empty() {
            return Err(ApiError::bad_request("Missing key name"));
        }
        let cas = if p.has("cas") {
            Some(
                p.u64("cas", "cas index")?
                    .ok_or_else(|| ApiError::bad_request("Invalid cas index"))?,
            )
        } else {
            None
        };
        Command::KvDelete {
            key: key.to_string(),
            cas,
        }
    };
    let ok = agent
        .apply(cmd)
        .await?
        .into_bool()
        .map_err(|e| ApiError::internal(e.to_string()))?;
    json(&ok)
}
