//! `/v1/operator/keyring`: list (GET), install (POST), use (PUT) and remove (DELETE) gossip
//! encryption keys across the LAN pool (and the WAN pool on servers).

use super::acl::Authz;
use super::catalog::parse_body;
use super::params::Params;
use crate::acl::{Access, Resource};

use super::{indexed, json, ApiError, ApiResult, AppState};
use crate::gossip::keyring::decode_key;
use crate::gossip::task::KeyOp;
use crate::gossip::Gossip;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::Method;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

async fn summary(pool: &Gossip, wan: bool, dc: &str) -> Result<Value, ApiError> {
    let answers = pool
        .key_list()
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let mut keys: BTreeMap<String, usize> = BTreeMap::new();
    let mut primary: BTreeMap<String, usize> = BTreeMap::new();
    for (_, list) in &answers {
        for (i, k) in list.iter().enumerate() {
            *keys.entry(k.clone()).or_default() += 1;
            if i == 0 {
                *primary.entry(k.clone()).or_default() += 1;
            }
        }
    }
    Ok(
        json!({"WAN": wan, "Datacenter": dc, "Segment": "", "Keys": keys, "PrimaryKeys": primary, "NumNodes": answers.len()}),
    )
}

/// `GET|POST|PUT|DELETE /v1/operator/keyring`
pub async fn keyring(
    State(agent): State<AppState>,
    a: Authz,
    method: Method,
    p: Params,
    body: Bytes,
) -> ApiResult {
    let need = if method == Method::GET {
        Access::Read
    } else {
        Access::Write
    };
    a.check(Resource::Keyring, "", need)?;
    let Some(lan) = agent.gossip() else {
        return Err(ApiError::internal("gossip is disabled"));
    };
    if agent.config().encrypt.as_deref().unwrap_or("").is_empty() {
        return Err(ApiError::internal(
            "keyring operations require gossip encryption (encrypt) to be enabled",
        ));
    }
    if method == Method::GET {
        let q = p.query_options()?;
        let mut out = Vec::new();
        if let Some(w) = agent.wan() {
            out.push(summary(w, true, "").await?);
        }
        out.push(summary(lan, false, &agent.datacenter).await?);
        return indexed(&agent, agent.read(|s| s.last_index()), &q, &out);
    }
    let v = parse_body(&body)?;
    let key = v
        .as_object()
        .and_then(|o: &Map<String, Value>| o.iter().find(|(k, _)| k.eq_ignore_ascii_case("Key")))
        .and_then(|(_, v)| v.as_str())
        .unwrap_or("")
        .to_string();
    decode_key(&key).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let op = match method {
        Method::POST => KeyOp::Install,
        Method::PUT => KeyOp::Use,
        Method::DELETE => KeyOp::Remove,
        m => {
            return Err(ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                format!("method {m} not allowed"),
            ))
        }
    };
    for pool in [Some(lan), agent.wan()].into_iter().flatten() {
        pool.key_op(op, &key)
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?;
    }
    json(&true)
}
