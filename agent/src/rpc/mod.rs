//! Server-to-server RPC on the server port (8300): Raft's append-entries, vote and snapshot
//! messages, writes forwarded to the leader, read barriers for followers, session renewals
//! (TTL timers live on the leader), and the catalog view client agents sync against.
//! JSON over HTTP/1.1; the handlers only decode and call the backend (the agent).

pub mod client;

use crate::raft::typ::{NodeId, Raft};
use crate::raft::{Command, CommandResponse, TypeConfig};
use crate::types::{HealthCheck, Node, NodeService, Session};
use axum::extract::{Path, State};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use openraft::error::{ClientWriteError, InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::sync::Arc;

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

/// What the catalog holds for one node (client agents' anti-entropy compares against it).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NodeView {
    pub node: Option<Node>,
    pub services: Vec<NodeService>,
    pub checks: Vec<HealthCheck>,
}

/// A raft-state probe used before bootstrapping a new cluster.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RaftState {
    pub initialized: bool,
    pub node_id: NodeId,
}

/// What the RPC server needs from the agent.
pub trait RpcBackend: Send + Sync + 'static {
    /// The Raft handle (servers only).
    fn raft(&self) -> Option<&Raft>;
    /// The leader's applied index after (for `consistent`) confirming leadership with a
    /// quorum; an error text when this server is not the leader.
    fn read_index(&self, consistent: bool) -> impl Future<Output = Result<u64, String>> + Send;
    /// Renew a session's TTL on the leader.
    fn renew_session(&self, id: &str) -> Option<Session>;
    /// The catalog's view of one node.
    fn node_view(&self, node: &str) -> NodeView;
    /// What an ACL secret grants, from this server's tables.
    fn acl_resolve(&self, secret: &str) -> Option<crate::store::acl::Resolved>;
    /// Apply a command on this server if it is the leader.
    fn apply_local(&self, cmd: Command) -> impl Future<Output = ForwardResult> + Send;
}

/// The server-port router.
pub fn router<B: RpcBackend>(backend: Arc<B>) -> Router {
    Router::new()
        .route("/raft/append", post(append::<B>))
        .route("/raft/vote", post(vote::<B>))
        .route("/raft/snapshot", post(snapshot::<B>))
        .route("/raft/state", get(raft_state::<B>))
        .route("/rpc/apply", post(apply::<B>))
        .route("/rpc/read-index/{mode}", get(read_index::<B>))
        .route("/rpc/session-renew/{id}", put(renew::<B>))
        .route("/rpc/node-view/{node}", get(node_view::<B>))
        .route("/rpc/acl-resolve", post(acl_resolve::<B>))
        .route("/rpc/elect-timer/{enabled}", put(elect_timer::<B>))
        .route("/rpc/elect-now", put(elect_now::<B>))
        .with_state(backend)
}

fn no_raft<E>() -> RaftError<NodeId, E> {
    RaftError::Fatal(openraft::error::Fatal::Stopped)
}

async fn append<B: RpcBackend>(
    State(b): State<Arc<B>>,
    Json(req): Json<AppendEntriesRequest<TypeConfig>>,
) -> Json<Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>> {
    match b.raft() {
        Some(r) => Json(r.append_entries(req).await),
        None => Json(Err(no_raft())),
    }
}

async fn vote<B: RpcBackend>(
    State(b): State<Arc<B>>,
    Json(req): Json<VoteRequest<NodeId>>,
) -> Json<Result<VoteResponse<NodeId>, RaftError<NodeId>>> {
    match b.raft() {
        Some(r) => Json(r.vote(req).await),
        None => Json(Err(no_raft())),
    }
}

async fn snapshot<B: RpcBackend>(
    State(b): State<Arc<B>>,
    Json(req): Json<InstallSnapshotRequest<TypeConfig>>,
) -> Json<Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>> {
    match b.raft() {
        Some(r) => Json(r.install_snapshot(req).await),
        None => Json(Err(no_raft())),
    }
}

async fn raft_state<B: RpcBackend>(State(b): State<Arc<B>>) -> Json<Option<RaftState>> {
    let Some(r) = b.raft() else { return Json(None) };
    let initialized = r.is_initialized().await.unwrap_or(false);
    let node_id = r.metrics().borrow().id;
    Json(Some(RaftState {
        initialized,
        node_id,
    }))
}

async fn apply<B: RpcBackend>(
    State(b): State<Arc<B>>,
    Json(cmd): Json<Command>,
) -> Json<ForwardResult> {
    Json(b.apply_local(cmd).await)
}

async fn read_index<B: RpcBackend>(
    State(b): State<Arc<B>>,
    Path(mode): Path<String>,
) -> Json<Result<u64, String>> {
    Json(b.read_index(mode == "consistent").await)
}

async fn renew<B: RpcBackend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
) -> Json<Option<Session>> {
    Json(b.renew_session(&id))
}

async fn acl_resolve<B: RpcBackend>(
    State(b): State<Arc<B>>,
    secret: String,
) -> Json<Option<crate::store::acl::Resolved>> {
    Json(b.acl_resolve(&secret))
}

async fn node_view<B: RpcBackend>(
    State(b): State<Arc<B>>,
    Path(node): Path<String>,
) -> Json<NodeView> {
    Json(b.node_view(&node))
}

async fn elect_timer<B: RpcBackend>(
    State(b): State<Arc<B>>,
    Path(enabled): Path<String>,
) -> Json<bool> {
    match b.raft() {
        Some(r) => {
            r.runtime_config().elect(enabled == "true");
            Json(true)
        }
        None => Json(false),
    }
}

async fn elect_now<B: RpcBackend>(State(b): State<Arc<B>>) -> Json<bool> {
    match b.raft() {
        Some(r) => Json(r.trigger().elect().await.is_ok()),
        None => Json(false),
    }
}

/// Apply a command through `raft` if this server is the leader.
pub async fn raft_write(raft: &Raft, cmd: Command) -> ForwardResult {
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
