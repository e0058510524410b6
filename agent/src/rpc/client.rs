//! Calls to another server's RPC port.

use super::{ForwardResult, NodeView, RaftState};
use crate::raft::network::{CallError, CallPool, FRAME_APPLY, FRAME_READ_INDEX};
use crate::raft::Command;
use crate::types::Session;
use std::time::Duration;

/// How a forwarded write ended without an answer.
#[derive(Debug)]
pub enum ForwardError {
    /// It was never (completely) sent: trying again cannot apply it twice.
    NotSent(String),
    /// Sent, but no answer came: it may or may not have been applied.
    NoAnswer(String),
}

/// Send a write to the server at `addr` over a pooled stream (a plain request to a server
/// without streams), waiting at most `timeout`.
pub async fn forward_apply(
    calls: &CallPool,
    client: &reqwest::Client,
    addr: &str,
    cmd: &Command,
    timeout: Duration,
) -> Result<ForwardResult, ForwardError> {
    let body = serde_json::to_vec(cmd).map_err(|e| ForwardError::NotSent(e.to_string()))?;
    let answer = match tokio::time::timeout(timeout, calls.call(addr, FRAME_APPLY, &body)).await {
        Err(_) => return Err(ForwardError::NoAnswer("timed out".into())),
        Ok(Ok(answer)) => answer,
        Ok(Err(CallError::NotSent(e))) => return Err(ForwardError::NotSent(e)),
        Ok(Err(CallError::NoAnswer(e))) => return Err(ForwardError::NoAnswer(e)),
        Ok(Err(CallError::Unsupported)) => {
            let sent = client
                .post(crate::tls::rpc_url(addr, "/rpc/apply"))
                .timeout(timeout)
                .json(cmd)
                .send()
                .await;
            let resp = sent.map_err(|e| {
                if e.is_connect() {
                    ForwardError::NotSent(e.to_string())
                } else {
                    ForwardError::NoAnswer(e.to_string())
                }
            })?;
            return resp
                .json()
                .await
                .map_err(|e| ForwardError::NoAnswer(e.to_string()));
        }
    };
    serde_json::from_slice(&answer).map_err(|e| ForwardError::NoAnswer(e.to_string()))
}

/// Ask the leader at `addr` for its read index (over a pooled stream, or a plain request to
/// a server without streams); the error says why there is none.
pub async fn read_index(
    calls: &CallPool,
    client: &reqwest::Client,
    addr: &str,
    consistent: bool,
) -> Result<u64, String> {
    let body = if consistent {
        b"true".as_slice()
    } else {
        b"false".as_slice()
    };
    let call = calls.call(addr, FRAME_READ_INDEX, body);
    match tokio::time::timeout(crate::agent::RPC_HOLD_TIMEOUT, call).await {
        Err(_) => Err("timed out asking the leader for its index".into()),
        Ok(Ok(answer)) => {
            serde_json::from_slice::<Result<u64, String>>(&answer).map_err(|e| e.to_string())?
        }
        Ok(Err(CallError::NotSent(e) | CallError::NoAnswer(e))) => Err(e),
        Ok(Err(CallError::Unsupported)) => {
            let mode = if consistent { "consistent" } else { "leader" };
            let resp = client
                .get(crate::tls::rpc_url(
                    addr,
                    &format!("/rpc/read-index/{mode}"),
                ))
                .timeout(crate::agent::RPC_HOLD_TIMEOUT)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            resp.json::<Result<u64, String>>()
                .await
                .map_err(|e| e.to_string())?
        }
    }
}

/// Renew a session on the leader at `addr`.
pub async fn renew_session(
    client: &reqwest::Client,
    addr: &str,
    id: &str,
) -> Result<Option<Session>, reqwest::Error> {
    client
        .put(crate::tls::rpc_url(
            addr,
            &format!("/rpc/session-renew/{id}"),
        ))
        .timeout(Duration::from_secs(10))
        .send()
        .await?
        .json()
        .await
}

/// The catalog's view of `node` from the server at `addr`.
pub async fn node_view(
    client: &reqwest::Client,
    addr: &str,
    node: &str,
) -> Result<NodeView, reqwest::Error> {
    client
        .get(crate::tls::rpc_url(addr, &format!("/rpc/node-view/{node}")))
        .timeout(Duration::from_secs(10))
        .send()
        .await?
        .json()
        .await
}

/// Whether the server at `addr` already has Raft state.
pub async fn raft_state(
    client: &reqwest::Client,
    addr: &str,
) -> Result<Option<RaftState>, reqwest::Error> {
    client
        .get(crate::tls::rpc_url(addr, "/raft/state"))
        .timeout(Duration::from_secs(5))
        .send()
        .await?
        .json()
        .await
}

/// Turn the election timer of the server at `addr` on or off (leadership transfer).
pub async fn elect_timer(
    client: &reqwest::Client,
    addr: &str,
    enabled: bool,
) -> Result<bool, reqwest::Error> {
    client
        .put(crate::tls::rpc_url(
            addr,
            &format!("/rpc/elect-timer/{enabled}"),
        ))
        .timeout(Duration::from_secs(5))
        .send()
        .await?
        .json()
        .await
}

/// Ask the server at `addr` to start an election now (leadership transfer).
pub async fn elect_now(client: &reqwest::Client, addr: &str) -> Result<bool, reqwest::Error> {
    client
        .put(crate::tls::rpc_url(addr, "/rpc/elect-now"))
        .timeout(Duration::from_secs(5))
        .send()
        .await?
        .json()
        .await
}

/// What an ACL secret grants, asked of the server at `addr` (None: no such token).
pub async fn acl_resolve(
    client: &reqwest::Client,
    addr: &str,
    secret: &str,
) -> Result<Option<crate::store::acl::Resolved>, reqwest::Error> {
    client
        .post(crate::tls::rpc_url(addr, "/rpc/acl-resolve"))
        .body(secret.to_string())
        .timeout(Duration::from_secs(5))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await
}
