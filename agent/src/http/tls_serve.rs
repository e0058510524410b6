//! Serving a router over TLS (the HTTPS API and the server RPC port with mutual TLS):
//! accept, count the connection against a per-client limit if one is given, handshake
//! with a deadline, then HTTP/1.1 over the encrypted stream.

use axum::Router;
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serve `router` on `listener` over TLS until `shutdown` turns true. With `limit`, a
/// client IP holding that many connections has its next one closed before the handshake
/// (no HTTP answer can be written on a connection without TLS, as in Consul).
pub async fn serve_tls(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    router: Router,
    limit: Option<super::limits::ConnLimit>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    let acceptor = TlsAcceptor::from(config);
    let counts = super::limits::ConnCounts::default();
    loop {
        let stopped = async {
            let _ = shutdown.wait_for(|v| *v).await;
        };
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stopped => return Ok(()),
        };
        let (tcp, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Out of descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accepting a TLS connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let guard = match &limit {
            Some(limit) => match counts.acquire(peer.ip().to_canonical(), limit()) {
                Some(g) => Some(g),
                None => {
                    tracing::debug!(%peer, "closing a TLS connection over the per-client limit");
                    continue;
                }
            },
            None => None,
        };
        let acceptor = acceptor.clone();
        let router = router.clone();
        tokio::spawn(async move {
            let _guard = guard;
            let _ = tcp.set_nodelay(true);
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let svc = hyper_util::service::TowerToHyperService::new(router);
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(30))
                .serve_connection(TokioIo::new(stream), svc)
                .with_upgrades();
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "TLS connection ended with an error");
            }
        });
    }
}
