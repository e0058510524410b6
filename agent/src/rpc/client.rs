//! Calls to another server's RPC port.

use super::{ForwardResult, NodeView, RaftState};
use crate::raft::Command;
use crate::types::Session;
use std::time::Duration;

/// Send a write to the server at `addr`, waiting at most `timeout`.
pub async fn forward_apply(
    client: &reqwest::Client,
    addr: &str,
    cmd: &Command,
    timeout: Duration,
) -> Result<ForwardResult, reqwest::Error> {
    client
        .post(crate::tls::rpc_url(addr, "/rpc/apply"))
        .timeout(timeout)
        .json(cmd)
        .send()
        .await?
        .json()
        .await
}

/// Ask the leader at `addr` for its read index.
pub async fn read_index(
    client: &reqwest::Client,
    addr: &str,
    consistent: bool,
) -> Result<Result<u64, String>, reqwest::Error> {
    let mode = if consistent { "consistent" } else { "leader" };
    client
        .get(crate::tls::rpc_url(
            addr,
            &format!("/rpc/read-index/{mode}"),
        ))
        .timeout(crate::agent::RPC_HOLD_TIMEOUT)
        .send()
        .await?
        .json()
        .await
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
