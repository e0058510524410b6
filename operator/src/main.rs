//! The `operator` binary: runs the ConsulCluster and ServiceDefinition controllers and the
//! sidecar-injection webhook. Configured through environment variables (the Helm chart
//! sets them):
//!
//! - `PRAETOR_DEFAULT_IMAGE`: image for clusters without `spec.image`
//! - `PRAETOR_CLUSTER_DOMAIN`: cluster DNS domain (`cluster.local`)
//! - `PRAETOR_WATCH_NAMESPACE`: watch only this namespace (all when unset)
//! - `POD_NAMESPACE`: the operator's namespace (webhook Secret and Service)
//! - `PRAETOR_WEBHOOK_ENABLED`: `false` turns the webhook off
//! - `PRAETOR_WEBHOOK_PORT` (8443), `PRAETOR_WEBHOOK_SERVICE`, `PRAETOR_WEBHOOK_SECRET`,
//!   `PRAETOR_WEBHOOK_CONFIGURATION`: where the webhook listens, its Service, the Secret
//!   holding its certificate and the MutatingWebhookConfiguration to patch.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use kube::Client;
use operator::consul::HttpConsulApi;
use operator::controller::{self, Context, Defaults};
use operator::webhook::{self, certs::CertSettings};

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,kube=warn".into()),
        )
        .json()
        .init();

    // The whole TLS stack (kube's client, reqwest, the webhook server) uses rustls on ring.
    if rustls::crypto::ring::default_provider()
        .install_default()
        .is_err()
    {
        tracing::debug!("a rustls crypto provider was already installed");
    }

    let defaults = Defaults {
        image: env_or("PRAETOR_DEFAULT_IMAGE", "ghcr.io/praetor-dev/praetor:0.1.0"),
        cluster_domain: env_or("PRAETOR_CLUSTER_DOMAIN", "cluster.local"),
    };
    let watch_namespace = std::env::var("PRAETOR_WATCH_NAMESPACE")
        .ok()
        .filter(|v| !v.is_empty());
    let client = Client::try_default()
        .await
        .context("connecting to the Kubernetes API")?;
    let ctx = Arc::new(Context {
        client: client.clone(),
        consul: Arc::new(HttpConsulApi::new().context("building the HTTP client")?),
        defaults: defaults.clone(),
    });

    let webhook_task = if env_or("PRAETOR_WEBHOOK_ENABLED", "true") == "true" {
        let settings = CertSettings {
            namespace: env_or("POD_NAMESPACE", "praetor-system"),
            service: env_or("PRAETOR_WEBHOOK_SERVICE", "praetor-operator-webhook"),
            secret: env_or("PRAETOR_WEBHOOK_SECRET", "praetor-operator-webhook-tls"),
            webhook_configuration: env_or("PRAETOR_WEBHOOK_CONFIGURATION", "praetor-operator"),
            cluster_domain: defaults.cluster_domain.clone(),
        };
        let port: u16 = env_or("PRAETOR_WEBHOOK_PORT", "8443")
            .parse()
            .context("PRAETOR_WEBHOOK_PORT")?;
        let cert = webhook::certs::ensure_certificate(&client, &settings)
            .await
            .context("preparing the webhook certificate")?;
        let acceptor = webhook::tls_acceptor(&cert.cert_pem, &cert.key_pem)?;
        let app = webhook::router(webhook::WebhookState {
            client: client.clone(),
            defaults: defaults.clone(),
        });
        let listener = webhook::bind(SocketAddr::from(([0, 0, 0, 0], port))).await?;
        Some(tokio::spawn(webhook::serve_tls(
            listener,
            acceptor,
            app,
            async {
                let _ = tokio::signal::ctrl_c().await;
            },
        )))
    } else {
        None
    };

    tracing::info!(namespace = ?watch_namespace, "starting controllers");
    tokio::join!(
        controller::run(ctx.clone(), watch_namespace.as_deref()),
        controller::service_definition::run(ctx.clone(), watch_namespace.as_deref()),
    );
    if let Some(task) = webhook_task {
        task.abort();
    }
    Ok(())
}
