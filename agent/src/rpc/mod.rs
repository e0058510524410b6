//! Server-to-server RPC on the server port (8300): Raft's append-entries, vote and snapshot
//! messages, writes forwarded to the leader, read barriers for followers, session renewals
//! (TTL timers live on the leader), and the catalog view client agents sync against.
//! JSON over HTTP/1.1; the handlers only decode and call the backend (the agent). Raft's
//! append-entries, forwarded writes and read indexes also come over long-lived upgraded
//! streams (`/raft/stream`, framing in [`crate::raft::network`]).

pub mod client;

use crate::raft::network::{
    read_frame, write_frame, FRAME_APPEND, FRAME_APPLY, FRAME_READ_INDEX, STREAM_PROTOCOL,
};
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
        .route("/raft/stream", get(stream::<B>))
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
    Json(append_entries(&*b, req).await)
}

/// Hand append-entries to this server's Raft (from a request or a stream), timed as Consul
/// times it on a follower.
async fn append_entries<B: RpcBackend>(
    b: &B,
    req: AppendEntriesRequest<TypeConfig>,
) -> Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>> {
    let started = std::time::Instant::now();
    let answer = match b.raft() {
        Some(r) => r.append_entries(req).await,
        None => Err(no_raft()),
    };
    crate::metrics::sample("consul.raft.rpc.appendEntries", started.elapsed());
    answer
}

/// Upgrade the connection to an RPC stream and serve it on its own task.
async fn stream<B: RpcBackend>(
    State(b): State<Arc<B>>,
    mut req: axum::extract::Request,
) -> axum::response::Response {
    use axum::http::{header, StatusCode};
    use axum::response::IntoResponse;
    let wanted = req.headers().get(header::UPGRADE).is_some_and(|v| {
        v.as_bytes()
            .eq_ignore_ascii_case(STREAM_PROTOCOL.as_bytes())
    });
    if !wanted {
        let text = format!("this endpoint needs Upgrade: {STREAM_PROTOCOL}");
        return (StatusCode::BAD_REQUEST, text).into_response();
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(up) => serve_stream(b, hyper_util::rt::TokioIo::new(up)).await,
            Err(e) => tracing::debug!(error = %e, "RPC stream upgrade failed"),
        }
    });
    (
        StatusCode::SWITCHING_PROTOCOLS,
        [
            (header::CONNECTION, "upgrade"),
            (header::UPGRADE, STREAM_PROTOCOL),
        ],
    )
        .into_response()
}

/// Log an undecodable frame (the stream is then closed).
fn refuse(what: &str, e: serde_json::Error) {
    tracing::warn!(error = %e, "RPC stream: undecodable {what}; closing the stream");
}

/// Answer frames (append-entries, forwarded writes, read indexes) in order until the peer
/// closes the stream or sends something that is not one.
async fn serve_stream<B: RpcBackend, IO>(b: Arc<B>, io: IO)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut io = tokio::io::BufReader::new(io);
    loop {
        let frame = match read_frame(&mut io).await {
            Ok(Some(f)) => f,
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(error = %e, "RPC stream read failed");
                return;
            }
        };
        let out = match frame.split_first() {
            Some((&FRAME_APPEND, body)) => {
                let req = match serde_json::from_slice::<AppendEntriesRequest<TypeConfig>>(body) {
                    Ok(r) => r,
                    Err(e) => return refuse("append-entries", e),
                };
                serde_json::to_vec(&append_entries(&*b, req).await)
            }
            Some((&FRAME_APPLY, body)) => {
                let cmd = match serde_json::from_slice::<Command>(body) {
                    Ok(c) => c,
                    Err(e) => return refuse("forwarded write", e),
                };
                serde_json::to_vec(&b.apply_local(cmd).await)
            }
            Some((&FRAME_READ_INDEX, body)) => {
                let consistent = match serde_json::from_slice::<bool>(body) {
                    Ok(c) => c,
                    Err(e) => return refuse("read-index request", e),
                };
                serde_json::to_vec(&b.read_index(consistent).await)
            }
            _ => {
                tracing::warn!("RPC stream: unknown frame kind; closing the stream");
                return;
            }
        };
        let out = match out {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(error = %e, "RPC stream: answer not encodable");
                return;
            }
        };
        if let Err(e) = write_frame(&mut io, &[], &out).await {
            tracing::debug!(error = %e, "RPC stream write failed");
            return;
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::network::{Network, MAX_FRAME};
    use openraft::error::RPCError;
    use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
    use std::time::Duration;

    /// A backend without Raft: append-entries are answered with "raft stopped".
    struct NoRaft;

    impl RpcBackend for NoRaft {
        fn raft(&self) -> Option<&Raft> {
            None
        }
        async fn read_index(&self, _consistent: bool) -> Result<u64, String> {
            Err("no raft".into())
        }
        fn renew_session(&self, _id: &str) -> Option<Session> {
            None
        }
        fn node_view(&self, _node: &str) -> NodeView {
            NodeView::default()
        }
        fn acl_resolve(&self, _secret: &str) -> Option<crate::store::acl::Resolved> {
            None
        }
        async fn apply_local(&self, _cmd: Command) -> ForwardResult {
            ForwardResult::Failed("no raft".into())
        }
    }

    async fn serve(router: Router) -> String {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        tokio::spawn(async move { axum::serve(l, router).await });
        addr
    }

    fn heartbeat() -> AppendEntriesRequest<TypeConfig> {
        AppendEntriesRequest {
            vote: openraft::Vote::new_committed(3, 1),
            prev_log_id: None,
            entries: vec![],
            leader_commit: None,
        }
    }

    async fn conn(addr: &str) -> crate::raft::network::Conn {
        Network::new().new_client(2, &BasicNode::new(addr)).await
    }

    fn is_stopped(
        r: Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>>,
    ) -> bool {
        matches!(r, Err(RPCError::RemoteError(e)) if matches!(e.source, RaftError::Fatal(openraft::error::Fatal::Stopped)))
    }

    /// Serve `path` alone and send three append-entries through one `Conn`.
    async fn answered_through(path: &str, route: axum::routing::MethodRouter<Arc<NoRaft>>) {
        let router = Router::new()
            .route(path, route)
            .with_state(Arc::new(NoRaft));
        let addr = serve(router).await;
        let mut c = conn(&addr).await;
        for _ in 0..3 {
            let r = c
                .append_entries(heartbeat(), RPCOption::new(Duration::from_secs(5)))
                .await;
            assert!(
                is_stopped(r),
                "the backend's answer comes back through {path}"
            );
        }
    }

    #[tokio::test]
    async fn append_entries_travel_over_one_stream() {
        // Only the stream is served: an answer proves the exchange went over it.
        answered_through("/raft/stream", get(stream::<NoRaft>)).await;
    }

    #[tokio::test]
    async fn append_entries_fall_back_to_requests_without_the_stream() {
        // An older server: no stream route, only the plain request.
        answered_through("/raft/append", post(append::<NoRaft>)).await;
    }

    #[tokio::test]
    async fn clients_of_one_target_share_its_stream() {
        // openraft makes a new client for every leadership check: count the upgrades.
        static UPGRADES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        async fn count(
            req: axum::extract::Request,
            next: axum::middleware::Next,
        ) -> axum::response::Response {
            UPGRADES.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            next.run(req).await
        }
        let router = Router::new()
            .route("/raft/stream", get(stream::<NoRaft>))
            .layer(axum::middleware::from_fn(count))
            .with_state(Arc::new(NoRaft));
        let addr = serve(router).await;
        let network = Network::new();
        for _ in 0..5 {
            let mut c = network.clone().new_client(2, &BasicNode::new(&addr)).await;
            let r = c
                .append_entries(heartbeat(), RPCOption::new(Duration::from_secs(5)))
                .await;
            assert!(is_stopped(r));
        }
        assert_eq!(UPGRADES.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    /// A server on its own runtime, so that dropping it ends every task it started (its
    /// streams too), as the death of a process would.
    fn server_process(addr: &str) -> tokio::runtime::Runtime {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let addr = addr.to_string();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::bind(&addr).await.unwrap();
            let router = Router::new()
                .route("/raft/stream", get(stream::<NoRaft>))
                .with_state(Arc::new(NoRaft));
            tokio::spawn(std::future::IntoFuture::into_future(axum::serve(l, router)));
        });
        rt
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dead_target_is_unreachable_and_a_restarted_one_is_reached_again() {
        let addr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().to_string()
        };
        let rt = tokio::task::block_in_place(|| server_process(&addr));
        let mut c = conn(&addr).await;
        let opt = || RPCOption::new(Duration::from_secs(5));
        assert!(is_stopped(c.append_entries(heartbeat(), opt()).await));
        // The server dies with its open stream.
        tokio::task::block_in_place(move || drop(rt));
        let r = c.append_entries(heartbeat(), opt()).await;
        assert!(
            matches!(r, Err(RPCError::Unreachable(_)) | Err(RPCError::Network(_))),
            "a target that went away is reported, not answered: {r:?}"
        );
        // It comes back on the same address: the next call opens a new stream.
        let rt = tokio::task::block_in_place(|| server_process(&addr));
        assert!(is_stopped(c.append_entries(heartbeat(), opt()).await));
        tokio::task::block_in_place(move || drop(rt));
    }

    fn a_write() -> Command {
        Command::KvDelete {
            key: "k".into(),
            cas: None,
        }
    }

    /// A forwarded write and a read index through `router`, answered by `NoRaft`.
    async fn forwarded_through(router: Router) {
        let addr = serve(router).await;
        let calls = crate::raft::network::CallPool::new(reqwest::Client::new());
        let http = reqwest::Client::new();
        for _ in 0..3 {
            let r = client::forward_apply(&calls, &http, &addr, &a_write(), Duration::from_secs(5))
                .await;
            assert!(
                matches!(&r, Ok(ForwardResult::Failed(e)) if e == "no raft"),
                "{r:?}"
            );
            let r = client::read_index(&calls, &http, &addr, true).await;
            assert_eq!(r, Err("no raft".to_string()));
        }
    }

    #[tokio::test]
    async fn forwarded_writes_and_read_indexes_travel_over_streams() {
        forwarded_through(
            Router::new()
                .route("/raft/stream", get(stream::<NoRaft>))
                .with_state(Arc::new(NoRaft)),
        )
        .await;
    }

    #[tokio::test]
    async fn forwarded_calls_fall_back_to_requests_without_streams() {
        forwarded_through(
            Router::new()
                .route("/rpc/apply", post(apply::<NoRaft>))
                .route("/rpc/read-index/{mode}", get(read_index::<NoRaft>))
                .with_state(Arc::new(NoRaft)),
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_forwarded_write_after_a_server_restart_is_sent_on_a_new_stream() {
        let addr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().to_string()
        };
        let calls = crate::raft::network::CallPool::new(reqwest::Client::new());
        let http = reqwest::Client::new();
        let cmd = a_write();
        let send = || client::forward_apply(&calls, &http, &addr, &cmd, Duration::from_secs(5));
        let rt = tokio::task::block_in_place(|| server_process(&addr));
        assert!(matches!(send().await, Ok(ForwardResult::Failed(_))));
        tokio::task::block_in_place(move || drop(rt));
        // While it is down the write is known not to have been sent.
        let r = send().await;
        assert!(matches!(r, Err(client::ForwardError::NotSent(_))), "{r:?}");
        // Back up: the idle stream to the old process is noticed closed, not used.
        let rt = tokio::task::block_in_place(|| server_process(&addr));
        let r = send().await;
        assert!(matches!(r, Ok(ForwardResult::Failed(_))), "{r:?}");
        tokio::task::block_in_place(move || drop(rt));
    }

    #[tokio::test]
    async fn the_stream_rejects_bad_frames_by_closing() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let router = Router::new()
            .route("/raft/stream", get(stream::<NoRaft>))
            .with_state(Arc::new(NoRaft));
        let addr = serve(router).await;
        for frame in [
            // unknown kind
            vec![0, 0, 0, 2, 9, b'{'],
            // not JSON
            vec![0, 0, 0, 3, FRAME_APPEND, b'x', b'y'],
            // longer than the limit
            ((MAX_FRAME + 1) as u32).to_be_bytes().to_vec(),
        ] {
            let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
            let hello = format!(
                "GET /raft/stream HTTP/1.1\r\nHost: {addr}\r\nConnection: upgrade\r\nUpgrade: {STREAM_PROTOCOL}\r\n\r\n"
            );
            s.write_all(hello.as_bytes()).await.unwrap();
            let mut head = vec![0u8; 4096];
            let n = s.read(&mut head).await.unwrap();
            let head = String::from_utf8_lossy(&head[..n]).to_string();
            assert!(head.starts_with("HTTP/1.1 101"), "{head}");
            s.write_all(&frame).await.unwrap();
            let mut rest = Vec::new();
            let closed =
                tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest)).await;
            assert!(
                matches!(closed, Ok(Ok(0))),
                "closed without an answer: {closed:?}"
            );
        }
        // Without the Upgrade header: a 400 with a message.
        let r = reqwest::get(format!("http://{addr}/raft/stream"))
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        assert!(r.text().await.unwrap().contains(STREAM_PROTOCOL));
    }
}
