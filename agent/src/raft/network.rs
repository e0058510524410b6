//! Raft network client: append-entries, vote and snapshot RPCs to the target server's RPC
//! port (served by `rpc`).
//!
//! Append-entries, the message of every write and heartbeat, travel over one long-lived
//! stream per target: an HTTP/1.1 connection to `/raft/stream` upgraded to
//! [`STREAM_PROTOCOL`] (so it shares the port, and the TLS, of the other RPCs), on which
//! each request is one frame and its answer the next frame back. Frames are a 4-byte
//! big-endian length and that many bytes; a request's first byte is its kind
//! ([`FRAME_APPEND`]) and the rest JSON, an answer is JSON. A broken or timed-out stream is
//! dropped and the next call opens a new one. Votes and snapshots, rare and (snapshots)
//! large, are JSON over plain HTTP requests; so are append-entries to a server that does not
//! offer the stream (404).

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
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

/// The `Upgrade` protocol name of the append-entries stream.
pub const STREAM_PROTOCOL: &str = "praetor-raft/1";
/// The first byte of an append-entries request frame.
pub const FRAME_APPEND: u8 = 1;
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

/// Creates one client per target server, sharing a connection pool.
#[derive(Clone)]
pub struct Network {
    client: reqwest::Client,
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
        }
    }
}

impl Default for Network {
    fn default() -> Self {
        Self::new()
    }
}

/// A client for one target server.
pub struct Conn {
    client: reqwest::Client,
    target: NodeId,
    addr: String,
    /// The open append-entries stream, if any (in a mutex only to make `Conn` `Sync`, as
    /// openraft asks; every use goes through `&mut self` and `get_mut`, without locking).
    stream: std::sync::Mutex<Option<BufReader<reqwest::Upgraded>>>,
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
            stream: std::sync::Mutex::new(None),
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
    fn stream_slot(&mut self) -> &mut Option<BufReader<reqwest::Upgraded>> {
        // No other thread can hold the lock: `&mut self` is exclusive.
        self.stream
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Open the append-entries stream to the target.
    async fn open_stream(&self) -> Result<BufReader<reqwest::Upgraded>, StreamFailure> {
        let url = crate::tls::rpc_url(&self.addr, "/raft/stream");
        let resp = self
            .client
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

    /// One append-entries exchange on the stream (opened first when needed).
    async fn stream_append(
        &mut self,
        body: &[u8],
    ) -> Result<Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>, StreamFailure> {
        if self.stream_slot().is_none() {
            let opened = self.open_stream().await?;
            *self.stream_slot() = Some(opened);
        }
        let Some(s) = self.stream_slot().as_mut() else {
            return Err(StreamFailure::Unsupported);
        };
        write_frame(s, &[FRAME_APPEND], body)
            .await
            .map_err(StreamFailure::Io)?;
        let answer = read_frame(s)
            .await
            .map_err(StreamFailure::Io)?
            .ok_or_else(|| {
                StreamFailure::Io(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the Raft stream was closed",
                ))
            })?;
        serde_json::from_slice(&answer).map_err(|e| StreamFailure::Io(e.into()))
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
            let res = tokio::time::timeout(option.hard_ttl(), self.stream_append(&body)).await;
            let failure = match res {
                Ok(Ok(answer)) => {
                    return answer
                        .map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
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
