//! Serving the router over plain TCP (the HTTP API): connections from a
//! [`LimitedListener`], HTTP/1.1 or HTTP/2 with prior knowledge (h2c) told apart by a peek
//! at the first bytes, and a graceful shutdown that lets open connections finish.
//!
//! This is `axum::serve(..).with_graceful_shutdown(..)` except for how the protocol is
//! chosen. axum serves through hyper-util's auto builder, which reads the first 24 bytes
//! itself (the length of the HTTP/2 preface) and hands them to hyper separately. hyper's
//! HTTP/1.1 reader then finds its 8 KiB buffer short of another 8 KiB read and doubles it:
//! a 16 KiB buffer and an 8 KiB copy on every HTTP/1.1 connection, which a parked blocking
//! query keeps for as long as it waits. Peeking leaves the bytes in the socket, so hyper
//! reads the whole first request into its first buffer.

use super::limits::{LimitedIo, LimitedListener};
use axum::serve::Listener;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::pin::{pin, Pin};
use tokio::sync::watch;

/// The HTTP/2 connection preface (RFC 9113 section 3.4).
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// What a connection's first bytes say it speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sniffed {
    Http1,
    Http2,
    /// A prefix of the HTTP/2 preface so far: hyper-util's auto builder decides.
    Unsure,
}

/// Classify the first bytes of a connection.
fn sniff(first: &[u8]) -> Sniffed {
    let n = first.len().min(H2_PREFACE.len());
    if first[..n] != H2_PREFACE[..n] {
        Sniffed::Http1
    } else if n == H2_PREFACE.len() {
        Sniffed::Http2
    } else {
        Sniffed::Unsure
    }
}

type Svc = TowerToHyperService<Router>;

/// Drive `conn` until it ends; when `stop` closes, ask it (`shut_down`) to finish the
/// requests it has and close.
async fn drive<C, E>(mut conn: Pin<Box<C>>, shut_down: fn(Pin<&mut C>), stop: watch::Sender<()>)
where
    C: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let mut stopped = pin!(async move { stop.closed().await });
    let mut asked = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::trace!(error = %e, "HTTP connection ended with an error");
                }
                return;
            }
            _ = &mut stopped, if !asked => {
                asked = true;
                shut_down(conn.as_mut());
            }
        }
    }
}

/// Serve `router` on `listener` until `shutdown` resolves, then wait for the open
/// connections to finish.
pub async fn serve(
    mut listener: LimitedListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    // The signal: every connection task holds a clone of `stop`; dropping `stop_rx` closes
    // them all. The count: every task holds a clone of `open_rx`.
    let (stop, stop_rx) = watch::channel(());
    tokio::spawn(async move {
        shutdown.await;
        drop(stop_rx);
    });
    let (open_tx, open_rx) = watch::channel(());
    loop {
        let (io, _addr) = tokio::select! {
            c = listener.accept() => c,
            _ = stop.closed() => break,
        };
        let svc = TowerToHyperService::new(router.clone());
        let stop = stop.clone();
        let open = open_rx.clone();
        tokio::spawn(async move {
            serve_connection(io, svc, stop).await;
            drop(open);
        });
    }
    drop(open_rx);
    drop(listener);
    open_tx.closed().await;
}

async fn serve_connection(io: LimitedIo, svc: Svc, stop: watch::Sender<()>) {
    // The first request's header deadline also bounds the wait for its first bytes; a
    // connection that has sent nothing when the server stops is closed.
    let mut first = [0u8; H2_PREFACE.len()];
    let peeked = tokio::select! {
        r = tokio::time::timeout_at(io.deadline(), io.peek(&mut first)) => match r {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return,
            Ok(Ok(n)) => n,
        },
        _ = stop.closed() => return,
    };
    let io = TokioIo::new(io);
    // Each connection is boxed where it starts, so a task waiting for its first bytes is
    // not the size of the largest of the three.
    match sniff(&first[..peeked]) {
        Sniffed::Http1 => {
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, svc)
                .with_upgrades();
            drive(Box::pin(conn), |c| c.graceful_shutdown(), stop).await;
        }
        Sniffed::Http2 => {
            let mut b = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
            b.enable_connect_protocol();
            let conn = b.serve_connection(io, svc);
            drive(Box::pin(conn), |c| c.graceful_shutdown(), stop).await;
        }
        Sniffed::Unsure => {
            let mut b = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            b.http2().enable_connect_protocol();
            let conn = b.serve_connection_with_upgrades(io, svc);
            drive(Box::pin(conn), |c| c.graceful_shutdown(), stop).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::any;
    use std::sync::Arc;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    #[test]
    fn first_bytes_choose_the_protocol() {
        assert_eq!(sniff(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"), Sniffed::Http1);
        assert_eq!(sniff(b"PUT /v1/kv/a HTTP/1.1\r\n"), Sniffed::Http1);
        assert_eq!(sniff(H2_PREFACE), Sniffed::Http2);
        assert_eq!(
            sniff(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\x12\x04"),
            Sniffed::Http2
        );
        assert_eq!(sniff(b"P"), Sniffed::Unsure);
        assert_eq!(sniff(b"PRI * HTTP/2"), Sniffed::Unsure);
        assert_eq!(sniff(b"PRI * HTTP/1.1\r\n"), Sniffed::Http1);
    }

    async fn start() -> (
        std::net::SocketAddr,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    ) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let listener = LimitedListener::new(l, Arc::new(|| 0), Duration::from_secs(5));
        let router = Router::new().route("/{*p}", any(|| async { "served" }));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, router, async move {
            let _ = rx.await;
        }));
        (addr, tx, task)
    }

    async fn answer(c: &mut TcpStream) -> String {
        let mut buf = vec![0u8; 4096];
        let mut got = String::new();
        while !got.contains("served") {
            let n = tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf))
                .await
                .expect("an answer within 5 s")
                .unwrap();
            assert!(n > 0, "closed before the answer: {got:?}");
            got.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        got
    }

    /// Send a request in `pieces`, 100 ms apart, on a new connection; the answer.
    async fn in_pieces(addr: std::net::SocketAddr, pieces: &[&[u8]]) -> String {
        let mut c = TcpStream::connect(addr).await.unwrap();
        for (i, p) in pieces.iter().enumerate() {
            if i > 0 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            c.write_all(p).await.unwrap();
        }
        answer(&mut c).await
    }

    #[tokio::test]
    async fn http1_requests_in_one_piece_or_many_are_served() {
        let (addr, _stop, _task) = start().await;
        let whole = in_pieces(addr, &[b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"]).await;
        assert!(whole.starts_with("HTTP/1.1 200 OK"), "{whole}");
        // A first byte that could begin the HTTP/2 preface: the auto builder decides.
        let put = b"UT /b HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nz";
        let unsure = in_pieces(addr, &[b"P", put]).await;
        assert!(unsure.starts_with("HTTP/1.1 200 OK"), "{unsure}");
        // A request line that trickles in after a first byte that cannot.
        let get = b"ET /c HTTP/1.1\r\nHost: x\r\n\r\n";
        let trickled = in_pieces(addr, &[b"G", get]).await;
        assert!(trickled.starts_with("HTTP/1.1 200 OK"), "{trickled}");
    }

    #[tokio::test]
    async fn shutdown_closes_idle_connections_and_returns() {
        let (addr, stop, task) = start().await;
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        answer(&mut c).await;
        // A connection that never sent anything, too.
        let _silent = TcpStream::connect(addr).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("serve returns after the shutdown signal")
            .unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(
            c.read(&mut buf).await.unwrap(),
            0,
            "the idle connection is closed"
        );
    }
}
