//! TLS, as Consul configures it: `tls { defaults { ca_file cert_file key_file
//! verify_incoming verify_outgoing } internal_rpc { verify_server_hostname ... } https { ...
//! } }` (the deprecated top-level keys are folded into `tls.defaults` by the config loader).
//!
//! * HTTPS: `ports.https` serves the HTTP API over TLS with `cert_file`/`key_file`;
//!   `verify_incoming` (for https) requires client certificates signed by `ca_file`.
//! * Internal RPC (the server port: Raft, forwarding, ACL resolution): with
//!   `verify_outgoing` every agent talks to servers over TLS, checking the server's chain
//!   against `ca_file` (and, with `verify_server_hostname`, the name
//!   `server.<datacenter>.<domain>`) and presenting its own certificate; servers with
//!   `verify_incoming` require that certificate (mutual TLS).
//!
//! Outgoing RPC clients are built through [`rpc_client`] and addressed with [`rpc_url`];
//! the settings are installed once per process by [`install_rpc`].

pub mod certs;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// TLS configuration problems (reported at start-up).
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("{0}: no PEM certificate found")]
    NoCert(PathBuf),
    #[error("{0}: no PEM private key found")]
    NoKey(PathBuf),
    #[error("{0}: {1}")]
    Pem(PathBuf, String),
    #[error("TLS: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("TLS: {0}")]
    Verifier(String),
    #[error("{0} requires {1}")]
    Missing(&'static str, &'static str),
}

/// Certificate files and verification switches of one TLS use.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TlsSettings {
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub verify_incoming: bool,
    pub verify_outgoing: bool,
    pub verify_server_hostname: bool,
}

impl TlsSettings {
    /// The settings of `tls.<section>` over `tls.defaults`.
    pub fn from_config(tls: &Value, section: &str) -> TlsSettings {
        let get = |key: &str| -> Option<&Value> {
            tls.get(section)
                .and_then(|s| s.get(key))
                .filter(|v| !v.is_null())
                .or_else(|| tls.get("defaults").and_then(|d| d.get(key)))
        };
        let path = |key: &str| {
            get(key)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
        };
        let flag = |key: &str| get(key).and_then(Value::as_bool).unwrap_or(false);
        TlsSettings {
            ca_file: path("ca_file"),
            cert_file: path("cert_file"),
            key_file: path("key_file"),
            verify_incoming: flag("verify_incoming"),
            verify_outgoing: flag("verify_outgoing"),
            verify_server_hostname: flag("verify_server_hostname"),
        }
    }

    fn cert_and_key(
        &self,
        what: &'static str,
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
        let cert = self
            .cert_file
            .as_deref()
            .ok_or(TlsError::Missing(what, "cert_file"))?;
        let key = self
            .key_file
            .as_deref()
            .ok_or(TlsError::Missing(what, "key_file"))?;
        Ok((load_certs(cert)?, load_key(key)?))
    }

    fn roots(&self, what: &'static str) -> Result<RootCertStore, TlsError> {
        let ca = self
            .ca_file
            .as_deref()
            .ok_or(TlsError::Missing(what, "ca_file"))?;
        let mut roots = RootCertStore::empty();
        for c in load_certs(ca)? {
            roots.add(c)?;
        }
        Ok(roots)
    }

    /// A server configuration: our certificate; client certificates signed by the CA
    /// required with `verify_incoming`.
    pub fn server_config(&self, what: &'static str) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let (certs, key) = self.cert_and_key(what)?;
        let builder = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?;
        let builder = if self.verify_incoming {
            let v = WebPkiClientVerifier::builder_with_provider(
                Arc::new(self.roots("verify_incoming")?),
                provider(),
            )
            .build()
            .map_err(|e| TlsError::Verifier(e.to_string()))?;
            builder.with_client_cert_verifier(v)
        } else {
            builder.with_no_client_auth()
        };
        let mut cfg = builder.with_single_cert(certs, key)?;
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    }

    /// A client configuration for internal RPC: the CA as the only root, the server's name
    /// checked as `server_name` when `verify_server_hostname`, our certificate presented.
    pub fn client_config(&self, server_name: &str) -> Result<rustls::ClientConfig, TlsError> {
        let roots = Arc::new(self.roots("verify_outgoing")?);
        let inner =
            rustls::client::WebPkiServerVerifier::builder_with_provider(roots.clone(), provider())
                .build()
                .map_err(|e| TlsError::Verifier(e.to_string()))?;
        let verifier = Arc::new(RpcServerVerifier {
            inner,
            name: ServerName::try_from(server_name.to_string())
                .map_err(|e| TlsError::Verifier(e.to_string()))?,
            check_name: self.verify_server_hostname,
        });
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let cfg = match (&self.cert_file, &self.key_file) {
            (Some(_), Some(_)) => {
                let (certs, key) = self.cert_and_key("verify_outgoing")?;
                builder.with_client_auth_cert(certs, key)?
            }
            _ => builder.with_no_client_auth(),
        };
        Ok(cfg)
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Every certificate in a PEM file.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    use rustls_pki_types::pem::PemObject;
    let data = std::fs::read(path).map_err(|e| TlsError::Read(path.to_path_buf(), e))?;
    let certs = CertificateDer::pem_slice_iter(&data)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem(path.to_path_buf(), e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsError::NoCert(path.to_path_buf()));
    }
    Ok(certs)
}

/// The first private key (PKCS#8, PKCS#1 or SEC1) in a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    use rustls_pki_types::pem::PemObject;
    let data = std::fs::read(path).map_err(|e| TlsError::Read(path.to_path_buf(), e))?;
    PrivateKeyDer::from_pem_slice(&data).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => TlsError::NoKey(path.to_path_buf()),
        e => TlsError::Pem(path.to_path_buf(), e.to_string()),
    })
}

/// Checks the server's chain against the CA; the name only with `verify_server_hostname`
/// (servers are dialled by IP address, so the name checked is `server.<dc>.<domain>`).
#[derive(Debug)]
struct RpcServerVerifier {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    name: ServerName<'static>,
    check_name: bool,
}

impl ServerCertVerifier for RpcServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
            | Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Outgoing internal RPC: plain HTTP, or TLS with this client configuration.
#[derive(Clone, Default)]
pub struct RpcTransport {
    tls: Option<rustls::ClientConfig>,
}

static RPC: OnceLock<RpcTransport> = OnceLock::new();

/// Install the process's RPC transport (the first call wins; agents call it at start).
pub fn install_rpc(t: RpcTransport) {
    let _ = RPC.set(t);
}

fn rpc() -> &'static RpcTransport {
    RPC.get_or_init(RpcTransport::default)
}

impl RpcTransport {
    /// TLS to servers with this client configuration.
    pub fn tls(cfg: rustls::ClientConfig) -> RpcTransport {
        RpcTransport { tls: Some(cfg) }
    }
}

/// `http(s)://addr/path` for a server's RPC port.
pub fn rpc_url(addr: &str, path: &str) -> String {
    let scheme = if rpc().tls.is_some() { "https" } else { "http" };
    format!("{scheme}://{addr}{path}")
}

/// A client builder for internal RPC (with the TLS configuration when there is one).
pub fn rpc_client() -> reqwest::ClientBuilder {
    let b = reqwest::Client::builder();
    match &rpc().tls {
        Some(cfg) => b.use_preconfigured_tls(cfg.clone()),
        None => b,
    }
}

/// The agent's TLS uses, read from the merged `tls` configuration.
#[derive(Debug, Clone, Default)]
pub struct AgentTls {
    pub https: TlsSettings,
    pub rpc: TlsSettings,
}

impl AgentTls {
    /// From the runtime configuration's raw `tls` block.
    pub fn from_config(cfg: &crate::config::RuntimeConfig) -> AgentTls {
        let tls = cfg.raw.get("tls").cloned().unwrap_or(Value::Null);
        AgentTls {
            https: TlsSettings::from_config(&tls, "https"),
            rpc: TlsSettings::from_config(&tls, "internal_rpc"),
        }
    }

    /// Whether the server RPC port speaks TLS.
    pub fn rpc_listener_tls(&self) -> bool {
        self.rpc.verify_incoming || self.rpc.verify_outgoing
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sections_fall_back_to_defaults() {
        let tls = json!({
            "defaults": {"ca_file": "ca.pem", "cert_file": "c.pem", "key_file": "k.pem",
                         "verify_incoming": true, "verify_outgoing": true},
            "https": {"verify_incoming": false},
            "internal_rpc": {"verify_server_hostname": true}
        });
        let h = TlsSettings::from_config(&tls, "https");
        assert_eq!(h.ca_file, Some(PathBuf::from("ca.pem")));
        assert!(!h.verify_incoming);
        let r = TlsSettings::from_config(&tls, "internal_rpc");
        assert!(r.verify_incoming && r.verify_outgoing && r.verify_server_hostname);
        assert_eq!(
            TlsSettings::from_config(&Value::Null, "https"),
            TlsSettings::default()
        );
    }

    #[test]
    fn missing_files_are_reported() {
        let s = TlsSettings::default();
        assert!(matches!(
            s.server_config("ports.https"),
            Err(TlsError::Missing("ports.https", "cert_file"))
        ));
        let s = TlsSettings {
            cert_file: Some("/nonexistent/c.pem".into()),
            key_file: Some("/nonexistent/k.pem".into()),
            ..Default::default()
        };
        assert!(matches!(s.server_config("x"), Err(TlsError::Read(..))));
    }
}
