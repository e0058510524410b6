//! The mutating admission webhook that injects client-agent sidecars. The handler fetches
//! the namespace's ServiceDefinitions and ConsulClusters and hands them to the pure
//! [`patch::plan_injection`]; the HTTPS server uses the operator-managed certificate.

pub mod certs;
pub mod patch;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use kube::core::DynamicObject;
use kube::{Api, Client};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::controller::validate::Defaults;
use crate::crd::v1alpha1::{ConsulCluster, ServiceDefinition};

/// Errors of the webhook server.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The certificate or key PEM is unusable.
    #[error("loading the webhook certificate: {0}")]
    Pem(String),
    /// rustls refused the certificate.
    #[error("configuring TLS: {0}")]
    Tls(#[from] rustls::Error),
    /// Binding the listener failed.
    #[error("listening on {addr}: {source}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// State of the admission handler.
#[derive(Clone)]
pub struct WebhookState {
    /// Kubernetes client (lists ServiceDefinitions and ConsulClusters).
    pub client: Client,
    /// Defaults for validating clusters.
    pub defaults: Defaults,
}

/// The webhook routes: `POST /mutate` and `GET /healthz`.
pub fn router(state: WebhookState) -> Router {
    Router::new()
        .route("/mutate", post(mutate))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(Arc::new(state))
}

async fn mutate(
    State(state): State<Arc<WebhookState>>,
    Json(review): Json<AdmissionReview<Pod>>,
) -> Json<Value> {
    let req: AdmissionRequest<Pod> = match review.try_into() {
        Ok(r) => r,
        Err(e) => {
            return Json(to_wire(
                AdmissionResponse::invalid(e.to_string()).into_review(),
            ))
        }
    };
    Json(to_wire(admit(&state, &req).await.into_review()))
}

/// The review as the API server documents it: kube serializes `response.patch` (bytes) as
/// a JSON array of numbers, which Go happens to accept; send the documented base64 string.
pub fn to_wire(review: AdmissionReview<DynamicObject>) -> Value {
    let mut v = serde_json::to_value(&review).unwrap_or_else(|e| {
        serde_json::json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "response": {"uid": "", "allowed": false, "status": {"message": e.to_string()}}})
    });
    if let Some(bytes) = v["response"]["patch"].as_array() {
        let bytes: Vec<u8> = bytes
            .iter()
            .filter_map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
            .collect();
        v["response"]["patch"] =
            Value::String(base64::engine::general_purpose::STANDARD.encode(bytes));
    }
    v
}

/// Answers one admission request. Pods are never blocked: when injection is impossible
/// the pod is admitted unchanged with a warning (the ServiceDefinition's status says why).
pub async fn admit(state: &WebhookState, req: &AdmissionRequest<Pod>) -> AdmissionResponse {
    let resp = AdmissionResponse::from(req);
    let Some(pod) = req.object.as_ref() else {
        return resp;
    };
    let Some(ns) = req.namespace.as_deref() else {
        return resp;
    };
    let list = ListParams::default();
    let defs = Api::<ServiceDefinition>::namespaced(state.client.clone(), ns)
        .list(&list)
        .await;
    let clusters = Api::<ConsulCluster>::namespaced(state.client.clone(), ns)
        .list(&list)
        .await;
    let (defs, clusters) = match (defs, clusters) {
        (Ok(d), Ok(c)) => (d.items, c.items),
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(namespace = ns, error = %e, "listing ServiceDefinitions/ConsulClusters failed");
            return with_warning(resp, format!("praetor sidecar not injected: {e}"));
        }
    };
    match patch::plan_injection(pod, &defs, &clusters, &state.defaults) {
        Ok(None) => resp,
        Ok(Some(p)) => match resp.clone().with_patch(p) {
            Ok(r) => r,
            Err(e) => with_warning(resp, format!("praetor sidecar not injected: {e}")),
        },
        Err(e) => {
            tracing::warn!(namespace = ns, error = %e, "not injecting");
            with_warning(resp, format!("praetor sidecar not injected: {e}"))
        }
    }
}

fn with_warning(mut resp: AdmissionResponse, warning: String) -> AdmissionResponse {
    resp.warnings.get_or_insert_with(Vec::new).push(warning);
    resp
}

/// A rustls acceptor for the PEM certificate chain and key.
pub fn tls_acceptor(cert_pem: &str, key_pem: &str) -> Result<TlsAcceptor, WebhookError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| WebhookError::Pem(e.to_string()))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| WebhookError::Pem(e.to_string()))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(certs, key)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Binds the webhook's listener.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, WebhookError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| WebhookError::Bind { addr, source })
}

/// Serves `app` over TLS on `listener` until `shutdown` resolves.
pub async fn serve_tls(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    app: Router,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), WebhookError> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "webhook listening");
    }
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
            () = &mut shutdown => return Ok(()),
        };
        let acceptor = acceptor.clone();
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
            };
            if let Err(e) = Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), service)
                .await
            {
                tracing::debug!(%peer, error = %e, "webhook connection ended with an error");
            }
        });
    }
}

#[cfg(test)]
mod tests;
