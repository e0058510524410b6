//! Server-to-server RPC on the server port (8300): Raft's append-entries, vote and snapshot
//! messages, and writes forwarded from followers and client agents to the leader. JSON over
//! HTTP/1.1; the transport owns no logic.

use crate::raft::typ::{NodeId, Raft};
use crate::raft::{Command, CommandResponse, TypeConfig};
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use openraft::error::{ClientWriteError, InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The answer to a forwarded write.
#[derive(Debug, Serialize, Deserialize)]
pub enum ForwardResult {
    /// Applied by the leader.
    Applied(CommandResponse),
    /// The receiver is not the leader; it names the one it knows.
    NotLeader { leader: Option<(NodeId, String)> },
    /// Anything else (shutting down, storage failure).
    Failed(String),
}

/// The server-port router.
pub fn router(raft: Raft) -> Router {
    Router::new()
        .route("/raft/append", post(append))
        .route("/raft/vote", post(vote))
        .route("/raft/snapshot", post(snapshot))
        .route("/rpc/apply", post(apply))
        .with_state(raft)
}

async fn append(
    State(raft): State<Raft>,
    Json(req): Json<AppendEntriesRequest<TypeConfig>>,
) -> Json<Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>> {
    Json(raft.append_entries(req).await)
}

async fn vote(
    State(raft): State<Raft>,
    Json(req): Json<VoteRequest<NodeId>>,
) -> Json<Result<VoteResponse<NodeId>, RaftError<NodeId>>> {
    Json(raft.vote(req).await)
}

async fn snapshot(
    State(raft): State<Raft>,
    Json(req): Json<InstallSnapshotRequest<TypeConfig>>,
) -> Json<Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>> {
    Json(raft.install_snapshot(req).await)
}

async fn apply(State(raft): State<Raft>, Json(cmd): Json<Command>) -> Json<ForwardResult> {
    Json(apply_local(&raft, cmd).await)
}

/// Apply a command on this server if it is the leader.
pub async fn apply_local(raft: &Raft, cmd: Command) -> ForwardResult {
    match raft.client_write(cmd).await {
        Ok(r) => ForwardResult::Applied(r.data),
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
            ForwardResult::NotLeader {
                leader: f.leader_id.zip(f.leader_node.map(|n: BasicNode| n.addr)),
            }
        }
        Err(e) => ForwardResult::Failed(e.to_string()),
    }
}

/// Send a write to the server at `addr`.
pub async fn forward_apply(
    client: &reqwest::Client,
    addr: &str,
    cmd: &Command,
) -> Result<ForwardResult, reqwest::Error> {
    client
        .post(format!("http://{addr}/rpc/apply"))
        .timeout(Duration::from_secs(30))
        .json(cmd)
        .send()
        .await?
        .json()
        .await
}
