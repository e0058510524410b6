//! Raft network client: append-entries, vote and snapshot RPCs to the target server's RPC
//! port (served by `rpc`).
//!
//! Append-entries, the message of every write and heartbeat, travel over one long-lived
//! stream per target: an HTTP/1.1 connection to `/raft/stream` upgraded to
//! [`STREAM_PROTOCOL`] (so it shares the port, and the TLS, of the other RPCs), on which
//! each request is one frame and its answer the next frame back. Frames are a 4-byte
//! big-endian length and that many bytes; a request's first byte is its kind
//! ([`FRAME_APPEND`]) and the rest JSON, an answer is JSON. A client returns its stream to
//! an idle pool when dropped, for the next client of the same target. A broken or timed-out
//! stream is dropped and the next call opens a new one. Followers forward writes and read
//! indexes to the leader the same way ([`CallPool`], [`FRAME_APPLY`], [`FRAME_READ_INDEX`]).
//! Votes and snapshots, rare and (snapshots) large, are JSON over plain HTTP requests; so
//! are append-entries to a server that does not offer the stream (404).

use super::typ::NodeId;
use super::TypeConfig;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use serde::{de::DeserializeOwned, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

/// The `Upgrade` protocol name of the append-entries stream.
pub const STREAM_PROTOCOL: &str = "praetor-raft/1";
/// The first byte of an append-entries request frame.
pub const FRAME_APPEND: u8 = 1;
/// The first byte of a forwarded write (a JSON `Command`; answered with a `ForwardResult`).
pub const FRAME_APPLY: u8 = 2;
/// The first byte of a read-index request (JSON `true` for `consistent`; answered with a
/// `Result<u64, String>`).
pub const FRAME_READ_INDEX: u8 = 3;
/// The largest frame either side accepts (a batch of entries of large KV values and
/// transactions stays far below it); a longer one ends the stream.
pub const MAX_FRAME: usize = 256 * 1024 * 1024;

/// Write one frame (length and payload in one write, so it leaves in one segment).
pub async fn write_frame<W: AsyncWrite + Unpin>(
    w: &mut W,
    head: &[u8],
    body: &[u8],
) -> std::io::Result<()> {
    let len = head.len() + body.len();
    if len > MAX_FRAME {
        return Err(std::io::Error::other(format!(
            "frame of {len} bytes exceeds the limit of {MAX_FRAME}"
        )));
    }
    let mut buf = Vec::with_capacity(4 + len);
    buf.extend_from_slice(&(len as u32).to_be_bytes());
    buf.extend_from_slice(head);
    buf.extend_from_slice(body);
    w.write_all(&buf).await?;
    w.flush().await
}

/// Read one frame; `None` when the stream ends cleanly before a frame starts.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len[..1]).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    r.read_exact(&mut len[1..]).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("frame of {len} bytes exceeds the limit of {MAX_FRAME}"),
        ));
    }
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf).await?;
    Ok(Some(buf))
}

type Stream = BufReader<reqwest::Upgraded>;

/// Idle streams per server address, shared by the clients of a pool; at most `cap` are kept
/// per server, and one found closed is dropped rather than handed out.
#[derive(Clone)]
struct StreamPool {
    idle: Arc<Mutex<HashMap<String, Vec<Stream>>>>,
    cap: usize,
}

impl StreamPool {
    fn new(cap: usize) -> Self {
        StreamPool {
            idle: Arc::default(),
            cap,
        }
    }

    /// An idle stream to `addr` that is still open.
    fn take(&self, addr: &str) -> Option<Stream> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let streams = idle.get_mut(addr)?;
        while let Some(mut s) = streams.pop() {
            if still_open(&mut s) {
                return Some(s);
            }
        }
        None
    }

    /// Keep `s` for the next call to `addr` (unless `cap` streams already wait).
    fn put(&self, addr: &str, s: Stream) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let streams = idle.entry(addr.to_string()).or_default();
        if streams.len() < self.cap {
            streams.push(s);
        }
    }
}

/// Idle append-entries streams kept per target, at most.
const MAX_IDLE_STREAMS: usize = 4;

/// Creates one client per target server, sharing a connection pool and the idle
/// append-entries streams: openraft makes a new client for every round of leadership
/// checks (each linearizable read), which must not cost a new connection.
#[derive(Clone)]
pub struct Network {
    client: reqwest::Client,
    idle: StreamPool,
}

impl Network {
    /// A network with a pooled HTTP client.
    pub fn new() -> Self {
        Network {
            client: crate::tls::rpc_client()
                .pool_max_idle_per_host(4)
                .tcp_nodelay(true)
                .build()
                .unwrap_or_default(),
            idle: StreamPool::new(MAX_IDLE_STREAMS),
        }
    }
}

impl Default for Network {
    fn default() -> Self {
        Self::new()
    }
}

/// Open a stream to the server at `addr`.
async fn open_stream(client: &reqwest::Client, addr: &str) -> Result<Stream, StreamFailure> {
    let url = crate::tls::rpc_url(addr, "/raft/stream");
    let resp = client
        .get(&url)
        .header(reqwest::header::CONNECTION, "upgrade")
        .header(reqwest::header::UPGRADE, STREAM_PROTOCOL)
        .send()
        .await
        .map_err(|e| {
            if e.is_connect() {
                StreamFailure::Connect(e)
            } else {
                StreamFailure::Io(std::io::Error::other(e))
            }
        })?;
    match resp.status() {
        reqwest::StatusCode::SWITCHING_PROTOCOLS => {}
        reqwest::StatusCode::NOT_FOUND | reqwest::StatusCode::METHOD_NOT_ALLOWED => {
            return Err(StreamFailure::Unsupported)
        }
        s => {
            return Err(StreamFailure::Io(std::io::Error::other(format!(
                "the Raft stream was refused: {s}"
            ))))
        }
    }
    let up = resp
        .upgrade()
        .await
        .map_err(|e| StreamFailure::Io(std::io::Error::other(e)))?;
    Ok(BufReader::new(up))
}

/// Whether an idle stream is still open: nothing can be read from it (servers only answer,
/// so anything readable is the end of the stream or garbage).
fn still_open(s: &mut Stream) -> bool {
    use futures_util::FutureExt;
    use tokio::io::AsyncBufReadExt;
    s.fill_buf().now_or_never().is_none()
}

/// How a call on a pooled stream failed.
#[derive(Debug)]
pub enum CallError {
    /// The server does not offer the stream; use a plain request.
    Unsupported,
    /// The request was not (completely) sent: it cannot have taken effect.
    NotSent(String),
    /// Sent, but no answer came back: it may or may not have taken effect.
    NoAnswer(String),
}

/// Streams for calls forwarded to a server (writes and read indexes), one call at a time
/// per stream: a call takes an idle stream to its server (or opens one) and puts it back
/// when answered, so forwarding costs neither a new connection nor an HTTP request.
#[derive(Clone)]
pub struct CallPool {
    client: reqwest::Client,
    idle: StreamPool,
}

/// Idle forwarding streams kept per server, at most.
const MAX_IDLE_CALL_STREAMS: usize = 64;

impl CallPool {
    /// A pool opening streams with `client` (the RPC client, TLS included).
    pub fn new(client: reqwest::Client) -> Self {
        CallPool {
            client,
            idle: StreamPool::new(MAX_IDLE_CALL_STREAMS),
        }
    }

    /// Send one request frame of `kind` to the server at `addr` and return its answer.
    pub async fn call(&self, addr: &str, kind: u8, body: &[u8]) -> Result<Vec<u8>, CallError> {
        let mut s = match self.idle.take(addr) {
            Some(s) => s,
            None => open_stream(&self.client, addr).await.map_err(|f| match f {
                StreamFailure::Unsupported => CallError::Unsupported,
                StreamFailure::Connect(e) => CallError::NotSent(e.to_string()),
                StreamFailure::Io(e) => CallError::NotSent(e.to_string()),
            })?,
        };
        // An incomplete frame is refused whole by the server.
        write_frame(&mut s, &[kind], body)
            .await
            .map_err(|e| CallError::NotSent(e.to_string()))?;
        let answer = read_frame(&mut s)
            .await
            .map_err(|e| CallError::NoAnswer(e.to_string()))?
            .ok_or_else(|| CallError::NoAnswer("the stream was closed".into()))?;
        self.idle.put(addr, s);
        Ok(answer)
    }
}

/// A client for one target server.
pub struct Conn {
    client: reqwest::Client,
    target: NodeId,
    addr: String,
    /// The open append-entries stream, if any (in a mutex only to make `Conn` `Sync`, as
    /// openraft asks; every use goes through `&mut self` and `get_mut`, without locking).
    stream: Mutex<Option<Stream>>,
    /// Where the stream goes when this client is dropped.
    idle: StreamPool,
    /// The target answered 404 to the stream: use plain requests.
    no_stream: bool,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Conn;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Conn {
        Conn {
            client: self.client.clone(),
            target,
            addr: node.addr.clone(),
            stream: Mutex::new(None),
            idle: self.idle.clone(),
            no_stream: false,
        }
    }
}

/// Why a stream call did not produce an answer.
enum StreamFailure {
    /// The target does not offer the stream; use a plain request.
    Unsupported,
    /// Connecting failed (the target is down or unreachable).
    Connect(reqwest::Error),
    /// The stream broke, or its answer was not understood.
    Io(std::io::Error),
}

impl Conn {
    async fn call<Req, Resp, E>(
        &self,
        path: &str,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let url = crate::tls::rpc_url(&self.addr, &format!("/raft/{path}"));
        let resp = self
            .client
            .post(&url)
            .timeout(option.hard_ttl())
            .json(req)
            .send()
            .await
            .map_err(|e| {
                if e.is_connect() || e.is_timeout() {
                    RPCError::Unreachable(Unreachable::new(&e))
                } else {
                    RPCError::Network(NetworkError::new(&e))
                }
            })?;
        let res: Result<Resp, RaftError<NodeId, E>> = resp
            .json()
            .await
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        res.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl Conn {
    fn stream_slot(&mut self) -> &mut Option<Stream> {
        // No other thread can hold the lock: `&mut self` is exclusive.
        self.stream
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// One append-entries exchange on this client's stream, else on an idle one, else on a
    /// new one. A stream that was already open may have been closed meanwhile (its target
    /// restarted): the exchange is tried once more on a new stream (append-entries are
    /// idempotent).
    async fn stream_append(
        &mut self,
        body: &[u8],
    ) -> Result<Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>, StreamFailure> {
        let held = match self.stream_slot().take() {
            Some(s) => Some(s),
            None => self.idle.take(&self.addr),
        };
        let mut s = match held {
            Some(mut s) => match exchange(&mut s, body).await {
                Ok(answer) => {
                    *self.stream_slot() = Some(s);
                    return Ok(answer);
                }
                Err(e) => {
                    tracing::debug!(target = self.target, error = %e, "Raft stream lost; reopening");
                    open_stream(&self.client, &self.addr).await?
                }
            },
            None => open_stream(&self.client, &self.addr).await?,
        };
        let answer = exchange(&mut s, body).await.map_err(StreamFailure::Io)?;
        *self.stream_slot() = Some(s);
        Ok(answer)
    }
}

/// Send one append-entries frame and read its answer.
async fn exchange(
    s: &mut Stream,
    body: &[u8],
) -> std::io::Result<Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>> {
    write_frame(s, &[FRAME_APPEND], body).await?;
    let answer = read_frame(s).await?.ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the Raft stream was closed",
        )
    })?;
    serde_json::from_slice(&answer).map_err(Into::into)
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(s) = self.stream_slot().take() {
            self.idle.put(&self.addr, s);
        }
    }
}

impl RaftNetwork<TypeConfig> for Conn {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        if !self.no_stream {
            let body =
                serde_json::to_vec(&rpc).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
            let started = std::time::Instant::now();
            let res = tokio::time::timeout(option.hard_ttl(), self.stream_append(&body)).await;
            let failure = match res {
                Ok(Ok(answer)) => {
                    // Consul's timer of an append-entries round trip to a follower.
                    crate::metrics::sample(
                        "consul.raft.replication.appendEntries.rpc",
                        started.elapsed(),
                    );
                    return answer
                        .map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)));
                }
                Ok(Err(f)) => f,
                Err(elapsed) => StreamFailure::Io(elapsed.into()),
            };
            // Whatever happened, the stream's state is unknown now.
            *self.stream_slot() = None;
            match failure {
                StreamFailure::Unsupported => self.no_stream = true,
                StreamFailure::Connect(e) => {
                    return Err(RPCError::Unreachable(Unreachable::new(&e)))
                }
                StreamFailure::Io(e) => return Err(RPCError::Network(NetworkError::new(&e))),
            }
        }
        self.call("append", &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.call("snapshot", &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call("vote", &rpc, &option).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_end_cleanly() {
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        write_frame(&mut a, &[FRAME_APPEND], b"{\"x\":1}")
            .await
            .unwrap();
        write_frame(&mut a, &[], b"").await.unwrap();
        drop(a);
        assert_eq!(
            read_frame(&mut b).await.unwrap().unwrap(),
            b"\x01{\"x\":1}".to_vec()
        );
        assert_eq!(read_frame(&mut b).await.unwrap().unwrap(), Vec::<u8>::new());
        assert!(read_frame(&mut b).await.unwrap().is_none(), "clean end");
    }

    #[tokio::test]
    async fn truncated_and_oversized_frames_are_errors() {
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        a.write_all(&[0, 0, 0, 10, 1, 2]).await.unwrap();
        drop(a);
        let e = read_frame(&mut b).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);

        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        a.write_all(&((MAX_FRAME as u32) + 1).to_be_bytes())
            .await
            .unwrap();
        let e = read_frame(&mut b).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("exceeds the limit"), "{e}");
    }
}
