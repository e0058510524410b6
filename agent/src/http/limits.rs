//! Limits against hostile HTTP clients, applied where connections are accepted:
//!
//! - Consul's `limits { http_max_conns_per_client }` (default 200, 0 for no limit): a
//!   client IP that already holds that many open connections gets Consul's 429 answer
//!   and its new connection is closed. The count is kept per IP by a guard that each
//!   accepted connection's IO carries, so it drops when hyper drops the connection.
//! - A request-header deadline (Go's `ReadHeaderTimeout`): from the first byte of a
//!   request (from the accept, for a connection's first request) to the end of its
//!   header block, at most [`DEFAULT_HEADER_TIMEOUT`] (or `PRAETOR_HTTP_HEADER_TIMEOUT`,
//!   a Go duration or whole seconds). A slowloris client that trickles its request line
//!   or headers is disconnected when it runs out; bodies and idle keep-alive connections
//!   between requests are not timed.
//!
//! - Declared body sizes: a request whose `Content-Length` is over its route's limit
//!   (512 KiB for KV values and transactions, 1 GiB for snapshot restores, 8 MiB
//!   elsewhere) is answered 413 before any of the body is read
//!   ([`oversized_declared_body`], called by the front middleware); bodies without a length are still cut at the same
//!   limits while they are read.
//!
//! Oversized header blocks are refused by hyper itself with 431 (its read buffer stops
//! at about 400 KiB and 100 headers).

use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::serve::Listener;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};

/// Consul's default `limits.http_max_conns_per_client`.
pub const DEFAULT_MAX_CONNS_PER_CLIENT: usize = 200;

/// Default time a client has to send a request's header block.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// Environment variable overriding [`DEFAULT_HEADER_TIMEOUT`].
pub const HEADER_TIMEOUT_ENV: &str = "PRAETOR_HTTP_HEADER_TIMEOUT";

/// Consul's body for a connection over the per-client limit.
pub const TOO_MANY_CONNS_BODY: &str =
    "Your IP is issuing too many concurrent connections, please rate limit your calls\n";

/// How long a refused connection is given to take the 429 answer.
const REFUSE_LINGER: Duration = Duration::from_millis(500);

/// The most connections one client IP may hold, asked on every accept (0: no limit).
pub type ConnLimit = Arc<dyn Fn() -> usize + Send + Sync>;

/// The agent's `limits.http_max_conns_per_client`, read anew on every accept so a reloaded
/// configuration applies to new connections (the HTTP and HTTPS listeners).
pub fn http_conn_limit(agent: &Arc<crate::agent::Agent>) -> ConnLimit {
    let agent = agent.clone();
    Arc::new(move || max_conns_per_client(&agent.config().limits))
}

/// `limits.http_max_conns_per_client` from the configuration; 0 means no limit.
pub fn max_conns_per_client(limits: &serde_json::Value) -> usize {
    match limits.get("http_max_conns_per_client") {
        None | Some(serde_json::Value::Null) => DEFAULT_MAX_CONNS_PER_CLIENT,
        Some(v) => v
            .as_u64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
            .unwrap_or(DEFAULT_MAX_CONNS_PER_CLIENT),
    }
}

/// The header deadline: `PRAETOR_HTTP_HEADER_TIMEOUT` (`10s`, `500ms`, or seconds) when
/// set and valid, else [`DEFAULT_HEADER_TIMEOUT`].
pub fn header_timeout_from_env() -> Duration {
    let Ok(v) = std::env::var(HEADER_TIMEOUT_ENV) else {
        return DEFAULT_HEADER_TIMEOUT;
    };
    let v = v.trim();
    let parsed = crate::types::parse_duration(v)
        .ok()
        .or_else(|| v.parse::<u64>().ok().map(Duration::from_secs));
    match parsed {
        Some(d) if !d.is_zero() => d,
        _ => {
            tracing::warn!(value = v, "ignoring invalid {HEADER_TIMEOUT_ENV}");
            DEFAULT_HEADER_TIMEOUT
        }
    }
}

/// The body limit of a route and the Consul setting that names it, if any.
fn body_limit(method: &Method, path: &str) -> (usize, Option<&'static str>) {
    if path.starts_with("/v1/kv/") && method == Method::PUT {
        (super::kv::KV_MAX_VALUE_SIZE, Some("kv_max_value_size"))
    } else if path == "/v1/txn" {
        (super::txn::TXN_MAX_REQ_LEN, Some("txn_max_req_len"))
    } else if path == "/v1/snapshot" {
        (super::snapshot::MAX_SNAPSHOT, None)
    } else {
        (super::MAX_BODY, None)
    }
}

/// A 413 with Consul's text for a request whose declared `Content-Length` is over its
/// route's limit, decided without reading the body.
pub fn oversized_declared_body(req: &Request) -> Option<Response> {
    let len = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())?;
    let (max, setting) = body_limit(req.method(), req.uri().path());
    if len <= max as u64 {
        return None;
    }
    let mut msg = format!("Request body({len} bytes) too large, max size: {max} bytes.");
    if let Some(s) = setting {
        msg.push_str(&format!(
            " See https://developer.hashicorp.com/docs/agent/config/config-files#{s}."
        ));
    }
    Some(super::ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, msg).into_response())
}

/// Open connections per client IP.
#[derive(Debug, Default, Clone)]
pub struct ConnCounts(Arc<Mutex<HashMap<IpAddr, usize>>>);

impl ConnCounts {
    /// Count one more connection from `ip` unless it already holds `limit` (0: no limit).
    pub fn acquire(&self, ip: IpAddr, limit: usize) -> Option<ConnGuard> {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = m.entry(ip).or_insert(0);
        if limit > 0 && *n >= limit {
            if *n == 0 {
                m.remove(&ip);
            }
            return None;
        }
        *n += 1;
        Some(ConnGuard {
            counts: self.clone(),
            ip,
        })
    }

    /// Open connections from `ip`.
    pub fn count(&self, ip: IpAddr) -> usize {
        let m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        m.get(&ip).copied().unwrap_or(0)
    }
}

/// One counted connection; uncounted when dropped.
#[derive(Debug)]
pub struct ConnGuard {
    counts: ConnCounts,
    ip: IpAddr,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let mut m = self.counts.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = m.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

/// A TCP listener for the HTTP API (`plain_serve`) that enforces the per-client connection
/// limit and hands out [`LimitedIo`] connections carrying the header deadline.
pub struct LimitedListener {
    inner: TcpListener,
    counts: ConnCounts,
    limit: ConnLimit,
    header_timeout: Duration,
}

impl LimitedListener {
    /// Wrap `inner`; `limit` is asked on every accept, so a reloaded configuration
    /// applies to new connections.
    pub fn new(inner: TcpListener, limit: ConnLimit, header_timeout: Duration) -> Self {
        LimitedListener {
            inner,
            counts: ConnCounts::default(),
            limit,
            header_timeout,
        }
    }

    /// The live per-IP counts.
    pub fn counts(&self) -> ConnCounts {
        self.counts.clone()
    }
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Consul's 429 answer, with the body length filled in.
fn too_many_response() -> String {
    format!(
        "HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{TOO_MANY_CONNS_BODY}",
        TOO_MANY_CONNS_BODY.len()
    )
}

/// Answer 429 on a refused connection, then close it after a short linger that reads
/// (and drops) what the client sent, so the close does not reset the answer away.
async fn refuse(mut stream: TcpStream) {
    let deadline = Instant::now() + REFUSE_LINGER;
    let write = async {
        stream.write_all(too_many_response().as_bytes()).await?;
        stream.shutdown().await
    };
    if tokio::time::timeout_at(deadline, write).await.is_err() {
        return;
    }
    let drain = async {
        let mut buf = [0u8; 4096];
        loop {
            match tokio::io::AsyncReadExt::read(&mut stream, &mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    };
    let _ = tokio::time::timeout_at(deadline, drain).await;
}

impl Listener for LimitedListener {
    type Io = LimitedIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (stream, addr) = match self.inner.accept().await {
                Ok(x) => x,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    // Out of file descriptors and the like: wait for some to close.
                    tracing::error!(error = %e, "HTTP accept error");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let ip = addr.ip().to_canonical();
            let limit = (self.limit)();
            match self.counts.acquire(ip, limit) {
                Some(guard) => {
                    return (LimitedIo::new(stream, guard, self.header_timeout), addr);
                }
                None => {
                    tracing::warn!(client = %ip, limit, "HTTP connection refused: too many concurrent connections from this client");
                    crate::metrics::incr("consul.http.conn_limit_rejected", 1);
                    tokio::spawn(refuse(stream));
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// Feed bytes of a header block through `tail` (the last four bytes seen); true at its
/// end: CRLF CRLF, or LF LF as hyper also accepts.
fn end_of_head(tail: &mut u32, bytes: &[u8]) -> bool {
    for &b in bytes {
        *tail = (*tail << 8) | u32::from(b);
        if *tail == 0x0d0a_0d0a || *tail & 0xffff == 0x0a0a {
            return true;
        }
    }
    false
}

/// Where a connection is in its current request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading a request's header block; the deadline runs.
    Head,
    /// The header block is in; the body and the handler are not timed.
    Body,
    /// A response was written; the next byte read starts a new header block.
    Idle,
}

/// An accepted connection: the TCP stream, its count in the per-client limit, and the
/// request-header deadline.
pub struct LimitedIo {
    inner: TcpStream,
    _guard: ConnGuard,
    timeout: Duration,
    phase: Phase,
    deadline: Instant,
    sleep: Pin<Box<Sleep>>,
    /// The last four bytes read while in `Head`, to find the blank line ending it.
    tail: u32,
}

impl LimitedIo {
    fn new(inner: TcpStream, guard: ConnGuard, timeout: Duration) -> Self {
        let deadline = Instant::now() + timeout;
        LimitedIo {
            inner,
            _guard: guard,
            timeout,
            phase: Phase::Head,
            deadline,
            sleep: Box::pin(tokio::time::sleep_until(deadline)),
            tail: 0,
        }
    }

    /// Until when the current request's header block may take.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Wait for the first bytes and copy them into `buf` without taking them from the
    /// socket; 0 when the client closed.
    pub async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.peek(buf).await
    }

    fn timed_out() -> io::Error {
        io::Error::new(
            io::ErrorKind::TimedOut,
            "timed out reading the request headers",
        )
    }
}

impl AsyncRead for LimitedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.phase == Phase::Head && Instant::now() >= this.deadline {
            return Poll::Ready(Err(Self::timed_out()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let filled = buf.filled();
                if filled.len() > before {
                    let new = &filled[before..];
                    if this.phase == Phase::Idle {
                        this.phase = Phase::Head;
                        this.tail = 0;
                        this.deadline = Instant::now() + this.timeout;
                        let deadline = this.deadline;
                        this.sleep.as_mut().reset(deadline);
                    }
                    if this.phase == Phase::Head && end_of_head(&mut this.tail, new) {
                        this.phase = Phase::Body;
                        this.tail = 0;
                    }
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                if this.phase == Phase::Head && this.sleep.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(Self::timed_out()));
                }
                Poll::Pending
            }
        }
    }
}

impl AsyncWrite for LimitedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.phase == Phase::Body {
            this.phase = Phase::Idle;
        }
        Pin::new(&mut this.inner).poll_write(cx, data)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.phase == Phase::Body {
            this.phase = Phase::Idle;
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[test]
    fn config_value() {
        use serde_json::json;
        assert_eq!(max_conns_per_client(&json!({})), 200);
        assert_eq!(
            max_conns_per_client(&json!({"http_max_conns_per_client": 20})),
            20
        );
        assert_eq!(
            max_conns_per_client(&json!({"http_max_conns_per_client": 0})),
            0
        );
        assert_eq!(
            max_conns_per_client(&json!({"http_max_conns_per_client": -1})),
            200
        );
    }

    #[test]
    fn body_limits_per_route() {
        assert_eq!(body_limit(&Method::PUT, "/v1/kv/a").0, 512 * 1024);
        assert_eq!(body_limit(&Method::GET, "/v1/kv/a").0, 8 * 1024 * 1024);
        assert_eq!(body_limit(&Method::PUT, "/v1/txn").0, 512 * 1024);
        assert_eq!(body_limit(&Method::PUT, "/v1/snapshot").0, 1 << 30);
        assert_eq!(
            body_limit(&Method::PUT, "/v1/catalog/register"),
            (8 * 1024 * 1024, None)
        );
    }

    #[test]
    fn head_end_detection() {
        let mut t = 0;
        assert!(!end_of_head(&mut t, b"GET / HTTP/1.1\r\nHost: x\r\n"));
        assert!(end_of_head(&mut t, b"\r\n"));
        let mut t = 0;
        assert!(!end_of_head(&mut t, b"GET / HTTP/1.1\r"));
        assert!(!end_of_head(&mut t, b"\n\r"));
        assert!(end_of_head(&mut t, b"\nbody"));
        let mut t = 0;
        assert!(end_of_head(&mut t, b"GET / HTTP/1.0\n\n"));
    }

    #[test]
    fn counts_per_ip() {
        let c = ConnCounts::default();
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let g1 = c.acquire(a, 2).unwrap();
        let g2 = c.acquire(a, 2).unwrap();
        assert!(c.acquire(a, 2).is_none());
        let g3 = c.acquire(b, 2).unwrap();
        assert_eq!((c.count(a), c.count(b)), (2, 1));
        drop(g1);
        let g4 = c.acquire(a, 2).unwrap();
        drop((g2, g3, g4));
        assert_eq!((c.count(a), c.count(b)), (0, 0));
        assert!(c.0.lock().unwrap().is_empty());
        let unlimited: Vec<_> = (0..1000).map(|_| c.acquire(a, 0).unwrap()).collect();
        assert_eq!(c.count(a), 1000);
        drop(unlimited);
    }

    #[tokio::test]
    async fn refuses_over_limit_and_times_out_slow_headers() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let mut l = LimitedListener::new(l, Arc::new(|| 1), Duration::from_millis(300));
        let counts = l.counts();
        let first = TcpStream::connect(addr).await.unwrap();
        let (mut io, _) = l.accept().await;
        assert_eq!(counts.count(addr.ip()), 1);
        // A second connection from the same IP is answered 429 and closed.
        let mut second = TcpStream::connect(addr).await.unwrap();
        let accept = tokio::spawn(async move {
            let (io, _) = l.accept().await;
            io
        });
        let mut got = String::new();
        second.read_to_string(&mut got).await.unwrap();
        assert!(got.starts_with("HTTP/1.1 429 "), "{got}");
        assert!(got.ends_with(TOO_MANY_CONNS_BODY), "{got}");
        // The first one sends half a request line and then nothing: timed out.
        let mut first = first;
        first.write_all(b"GET /v1/ag").await.unwrap();
        let mut buf = [0u8; 64];
        let started = Instant::now();
        let err = loop {
            match io.read(&mut buf).await {
                Ok(0) => panic!("unexpected EOF"),
                Ok(_) => continue,
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(2));
        drop(io);
        assert_eq!(counts.count(addr.ip()), 0);
        // Once the first is gone a new connection is accepted; a complete header block
        // stops the clock.
        let mut third = TcpStream::connect(addr).await.unwrap();
        let mut io = accept.await.unwrap();
        third
            .write_all(b"PUT /v1/kv/a HTTP/1.1\r\nHost: x\r\n\r\nbo")
            .await
            .unwrap();
        let n = io.read(&mut buf).await.unwrap();
        assert!(n > 0);
        tokio::time::sleep(Duration::from_millis(400)).await;
        third.write_all(b"dy").await.unwrap();
        let n = io.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"dy");
    }
}
