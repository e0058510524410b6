//! Blocking, typed HTTP client for Consul's API, used by the CLI verbs (`praetor kv`,
//! `catalog`, `members`, ...). It behaves like Consul's Go `api` package where users can
//! see it:
//!
//! * the agent address comes from `-http-addr` or `CONSUL_HTTP_ADDR` (`host:port`,
//!   `http://host:port` or `https://host:port`; default `127.0.0.1:8500`;
//!   `CONSUL_HTTP_SSL=true` selects `https` for a bare `host:port`);
//! * the ACL token from `-token`/`CONSUL_HTTP_TOKEN`, or from `-token-file`/
//!   `CONSUL_HTTP_TOKEN_FILE` (which wins, as in Consul), sent as `X-Consul-Token`;
//!   `CONSUL_HTTP_AUTH=user:pass` adds HTTP basic auth;
//! * `-datacenter` becomes `?dc=` on every request, `-stale` becomes `?stale` on reads;
//! * an error status becomes [`ApiError::Status`], printed as
//!   `Unexpected response code: 500 (body)`, and a failed connection reads like Go's
//!   (`Get "http://127.0.0.1:1/v1/kv/x": dial tcp 127.0.0.1:1: connect: connection refused`).
//!
//! Typed endpoints live in the submodules: [`kv`] (KV store), [`catalog`] (catalog
//! reads) and [`agent`] (local agent and status endpoints).

pub mod acl;
pub mod agent;
pub mod catalog;
pub mod kv;

pub use agent::{AgentMember, AgentServiceRegistration, MembersOpts, ServiceAddress};
pub use catalog::{AgentService, CatalogNode, CatalogService, Node, QueryOptions};
pub use kv::KvPair;

use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::time::Duration;

/// The address used when neither `-http-addr` nor `CONSUL_HTTP_ADDR` is given.
pub const DEFAULT_ADDRESS: &str = "127.0.0.1:8500";

/// Errors talking to the agent. The `Display` texts are what Consul's CLI prints after
/// its per-command prefix (e.g. `Error querying Consul agent: `).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The client could not be configured (bad address scheme, unreadable token file).
    #[error("{0}")]
    Config(String),
    /// The request could not be sent or its answer not read.
    #[error("{0}")]
    Transport(String),
    /// The agent answered with a status outside 2xx (the body is trimmed, as in Consul).
    #[error("Unexpected response code: {status} ({body})")]
    Status {
        /// HTTP status code.
        status: u16,
        /// Response body text, whitespace-trimmed.
        body: String,
    },
    /// The body was not what the endpoint returns.
    #[error("{0}")]
    Decode(String),
    /// A KV write to a key starting with `/` (refused client-side, as Consul's `api` does).
    #[error("Invalid key. Key must not begin with a '/': {0}")]
    InvalidKey(String),
}

impl ApiError {
    /// The HTTP status of an [`ApiError::Status`] error.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Where and how to reach the agent. Fields left `None` are filled from the environment
/// by [`Client::new`].
#[derive(Debug, Clone, Default)]
pub struct ClientConfig {
    /// `host:port` or `http[s]://host:port` (`-http-addr`, `CONSUL_HTTP_ADDR`).
    pub address: Option<String>,
    /// ACL token (`-token`, `CONSUL_HTTP_TOKEN`).
    pub token: Option<String>,
    /// File holding the ACL token (`-token-file`, `CONSUL_HTTP_TOKEN_FILE`); wins over `token`.
    pub token_file: Option<String>,
    /// Datacenter to query (`-datacenter`), sent as `?dc=`.
    pub datacenter: Option<String>,
    /// Allow any server to answer reads (`-stale`), sent as `?stale` on GET requests.
    pub stale: bool,
    /// CA certificate to verify an HTTPS agent with (`-ca-file`, `CONSUL_CACERT`).
    pub ca_file: Option<String>,
    /// Client certificate for agents with `verify_incoming` (`-client-cert`,
    /// `CONSUL_CLIENT_CERT`).
    pub client_cert: Option<String>,
    /// Its key (`-client-key`, `CONSUL_CLIENT_KEY`).
    pub client_key: Option<String>,
}

/// A raw HTTP answer (for callers that need the status, index header or body bytes).
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status code.
    pub status: u16,
    /// Body bytes.
    pub body: Vec<u8>,
    /// `X-Consul-Index` (0 when absent).
    pub index: u64,
}

impl Answer {
    /// Decodes the body as JSON.
    pub fn json<T: for<'de> Deserialize<'de>>(&self) -> Result<T, ApiError> {
        serde_json::from_slice(&self.body).map_err(|e| ApiError::Decode(e.to_string()))
    }

    /// The body as (lossy UTF-8) text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A blocking client for one agent.
pub struct Client {
    http: reqwest::blocking::Client,
    base: String,
    token: Option<String>,
    basic_auth: Option<(String, Option<String>)>,
    datacenter: Option<String>,
    stale: bool,
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|s| !s.is_empty())
}

/// Normalizes an agent address to a base URL: `host:port` → `http://host:port`,
/// `http://…` and `https://…` are kept; `unix://` and other schemes are refused.
pub fn base_url(addr: &str) -> Result<String, ApiError> {
    base_url_with(addr, false)
}

/// Like [`base_url`]; `ssl` selects `https` for an address without a scheme
/// (`CONSUL_HTTP_SSL=true`).
pub fn base_url_with(addr: &str, ssl: bool) -> Result<String, ApiError> {
    let a = addr.trim().trim_end_matches('/');
    let a = if a.is_empty() { DEFAULT_ADDRESS } else { a };
    match a.split_once("://") {
        Some(("http", rest)) if ssl => Ok(format!("https://{rest}")),
        Some(("http", _)) | Some(("https", _)) => Ok(a.to_string()),
        Some(("unix", _)) => Err(ApiError::Config(
            "unix sockets are not supported by this client".into(),
        )),
        Some((scheme, _)) => Err(ApiError::Config(format!(
            "Unknown protocol scheme: {scheme}"
        ))),
        None if ssl => Ok(format!("https://{a}")),
        None => Ok(format!("http://{a}")),
    }
}

/// Go's text for common I/O errors (`open f: no such file or directory`).
pub fn go_io_error(op: &str, path: &str, e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    let text = match e.kind() {
        K::NotFound => "no such file or directory".to_string(),
        K::PermissionDenied => "permission denied".to_string(),
        K::IsADirectory => "is a directory".to_string(),
        _ => {
            let s = e.to_string();
            match s.find(" (os error") {
                Some(i) => s[..i].to_lowercase(),
                None => s,
            }
        }
    };
    format!("{op} {path}: {text}")
}

impl Client {
    /// A client for `cfg`, with the environment filling in what the flags did not.
    pub fn new(cfg: ClientConfig) -> Result<Client, ApiError> {
        let address = cfg
            .address
            .filter(|a| !a.is_empty())
            .or_else(|| env_nonempty("CONSUL_HTTP_ADDR"))
            .unwrap_or_else(|| DEFAULT_ADDRESS.to_string());
        let ssl = env_nonempty("CONSUL_HTTP_SSL")
            .and_then(|v| crate::flags::parse_bool(&v))
            .unwrap_or(false);
        let base = base_url_with(&address, ssl)?;
        let mut token = cfg
            .token
            .filter(|t| !t.is_empty())
            .or_else(|| env_nonempty("CONSUL_HTTP_TOKEN"));
        let token_file = cfg
            .token_file
            .filter(|t| !t.is_empty())
            .or_else(|| env_nonempty("CONSUL_HTTP_TOKEN_FILE"));
        if let Some(f) = token_file {
            let data = std::fs::read_to_string(&f).map_err(|e| {
                ApiError::Config(format!(
                    "Error loading token file {f} : {}",
                    go_io_error("open", &f, &e)
                ))
            })?;
            let t = data.trim();
            if !t.is_empty() {
                token = Some(t.to_string());
            }
        }
        let basic_auth = env_nonempty("CONSUL_HTTP_AUTH").map(|a| match a.split_once(':') {
            Some((u, p)) => (u.to_string(), Some(p.to_string())),
            None => (a, None),
        });
        let mut builder = reqwest::blocking::Client::builder()
            .timeout(Some(Duration::from_secs(660)))
            .connect_timeout(Duration::from_secs(30));
        let read = |what: &str, f: &str| {
            std::fs::read(f).map_err(|e| {
                ApiError::Config(format!(
                    "Error loading {what}: {}",
                    go_io_error("open", f, &e)
                ))
            })
        };
        if let Some(ca) = cfg
            .ca_file
            .filter(|c| !c.is_empty())
            .or_else(|| env_nonempty("CONSUL_CACERT"))
        {
            let pem = read("CA file", &ca)?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| ApiError::Config(format!("Error loading CA file {ca}: {e}")))?;
            builder = builder.tls_built_in_root_certs(false);
            for c in certs {
                builder = builder.add_root_certificate(c);
            }
        }
        let cert = cfg
            .client_cert
            .filter(|c| !c.is_empty())
            .or_else(|| env_nonempty("CONSUL_CLIENT_CERT"));
        let key = cfg
            .client_key
            .filter(|c| !c.is_empty())
            .or_else(|| env_nonempty("CONSUL_CLIENT_KEY"));
        if let (Some(cert), Some(key)) = (cert, key) {
            let mut pem = read("client certificate", &cert)?;
            pem.push(b'\n');
            pem.extend(read("client key", &key)?);
            let id = reqwest::Identity::from_pem(&pem)
                .map_err(|e| ApiError::Config(format!("Error loading client certificate: {e}")))?;
            builder = builder.identity(id);
        }
        let verify = env_nonempty("CONSUL_HTTP_SSL_VERIFY")
            .and_then(|v| crate::flags::parse_bool(&v))
            .unwrap_or(true);
        if !verify {
            builder = builder.danger_accept_invalid_certs(true);
        }
        let http = builder
            .build()
            .map_err(|e| ApiError::Config(e.to_string()))?;
        Ok(Client {
            http,
            base,
            token,
            basic_auth,
            datacenter: cfg.datacenter.filter(|d| !d.is_empty()),
            stale: cfg.stale,
        })
    }

    /// The base URL requests go to (`http://127.0.0.1:8500`).
    pub fn base(&self) -> &str {
        &self.base
    }

    fn url(&self, method: &str, path: &str, query: &[(&str, String)]) -> String {
        let mut q: Vec<String> = query
            .iter()
            .map(|(k, v)| {
                if v.is_empty() {
                    encode(k)
                } else {
                    format!("{}={}", encode(k), encode(v))
                }
            })
            .collect();
        if let Some(dc) = &self.datacenter {
            q.push(format!("dc={}", encode(dc)));
        }
        if self.stale && method == "GET" {
            q.push("stale".into());
        }
        if q.is_empty() {
            format!("{}{path}", self.base)
        } else {
            format!("{}{path}?{}", self.base, q.join("&"))
        }
    }

    /// Sends a request. Statuses outside 2xx become [`ApiError::Status`] unless listed in
    /// `allow`. `query` values are percent-encoded; an empty value sends a bare key
    /// (`?recurse`).
    pub fn call(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, String)],
        body: Option<Vec<u8>>,
        allow: &[u16],
    ) -> Result<Answer, ApiError> {
        self.call_with(method, path, query, body, None, allow)
    }

    fn call_with(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, String)],
        body: Option<Vec<u8>>,
        content_type: Option<&str>,
        allow: &[u16],
    ) -> Result<Answer, ApiError> {
        let m = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|e| ApiError::Transport(e.to_string()))?;
        let url = self.url(method, path, query);
        let mut rb = self.http.request(m, &url);
        if let Some(t) = &self.token {
            rb = rb.header("X-Consul-Token", t);
        }
        if let Some((u, p)) = &self.basic_auth {
            rb = rb.basic_auth(u, p.as_ref());
        }
        if let Some(ct) = content_type {
            rb = rb.header("Content-Type", ct);
        }
        if let Some(b) = body {
            rb = rb.body(b);
        }
        let resp = rb.send().map_err(|e| transport_error(method, &url, &e))?;
        let status = resp.status().as_u16();
        let index = resp
            .headers()
            .get("X-Consul-Index")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let body = resp
            .bytes()
            .map_err(|e| transport_error(method, &url, &e))?
            .to_vec();
        if (200..300).contains(&status) || allow.contains(&status) {
            Ok(Answer {
                status,
                body,
                index,
            })
        } else {
            Err(ApiError::Status {
                status,
                body: String::from_utf8_lossy(&body).trim().to_string(),
            })
        }
    }

    /// GET and decode JSON.
    pub fn get_json<T: for<'de> Deserialize<'de>>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, ApiError> {
        self.call("GET", path, query, None, &[])?.json()
    }

    /// PUT with a JSON body.
    pub fn put_json(
        &self,
        path: &str,
        query: &[(&str, String)],
        v: &Value,
    ) -> Result<Answer, ApiError> {
        self.call_with(
            "PUT",
            path,
            query,
            Some(v.to_string().into_bytes()),
            Some("application/json"),
            &[],
        )
    }
}

/// Go's `url.Error` text for a failed request: `Get "URL": detail`.
fn transport_error(method: &str, url: &str, e: &reqwest::Error) -> ApiError {
    use std::error::Error as _;
    let op = {
        let lower = method.to_ascii_lowercase();
        let mut c = lower.chars();
        match c.next() {
            Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
            None => String::new(),
        }
    };
    let host_port = url
        .split_once("://")
        .map(|(_, r)| r.split(['/', '?']).next().unwrap_or(r).to_string())
        .unwrap_or_default();
    let mut innermost = e.to_string();
    let mut refused = false;
    let mut src = e.source();
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            refused |= io.kind() == std::io::ErrorKind::ConnectionRefused;
        }
        innermost = s.to_string();
        src = s.source();
    }
    let detail = if refused {
        format!("dial tcp {host_port}: connect: connection refused")
    } else if e.is_timeout() {
        "context deadline exceeded (Client.Timeout exceeded while awaiting headers)".to_string()
    } else if e.is_connect() {
        format!("dial tcp {host_port}: {innermost}")
    } else {
        innermost
    };
    ApiError::Transport(format!("{op} {url:?}: {detail}"))
}

/// Deserializes `null` (or a missing field, with `#[serde(default)]`) as `T::default()`,
/// as Go does for nil maps and slices.
pub(crate) fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Percent-encodes one URL component (RFC 3986 unreserved characters pass through).
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Percent-encodes a path (a KV key, a service ID), keeping `/`.
pub fn encode_path(s: &str) -> String {
    s.split('/').map(encode).collect::<Vec<_>>().join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(base_url("127.0.0.1:8500").unwrap(), "http://127.0.0.1:8500");
        assert_eq!(base_url("http://h:1/").unwrap(), "http://h:1");
        assert_eq!(base_url("https://h:1").unwrap(), "https://h:1");
        assert_eq!(base_url("").unwrap(), "http://127.0.0.1:8500");
        assert_eq!(base_url_with("h:1", true).unwrap(), "https://h:1");
        assert_eq!(base_url_with("http://h:1", true).unwrap(), "https://h:1");
        assert!(base_url("unix:///tmp/s").is_err());
        assert_eq!(
            base_url("ftp://h:1").unwrap_err().to_string(),
            "Unknown protocol scheme: ftp"
        );
    }

    #[test]
    fn encoding() {
        assert_eq!(encode_path("a b/c?d#e"), "a%20b/c%3Fd%23e");
        assert_eq!(encode("k=v&x"), "k%3Dv%26x");
    }

    #[test]
    fn status_error_text() {
        let e = ApiError::Status {
            status: 500,
            body: "boom".into(),
        };
        assert_eq!(e.to_string(), "Unexpected response code: 500 (boom)");
        assert_eq!(e.status(), Some(500));
    }

    #[test]
    fn io_errors_read_like_go() {
        let e = std::io::Error::from(std::io::ErrorKind::NotFound);
        assert_eq!(
            go_io_error("open", "x", &e),
            "open x: no such file or directory"
        );
    }

    #[test]
    fn connection_refused_reads_like_go() {
        // Port 1 on loopback is closed on any sane test machine.
        let c = Client::new(ClientConfig {
            address: Some("127.0.0.1:1".into()),
            ..Default::default()
        })
        .unwrap();
        let err = c.call("GET", "/v1/kv/x", &[], None, &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Get \"http://127.0.0.1:1/v1/kv/x\": dial tcp 127.0.0.1:1: connect: connection refused"
        );
    }

    #[test]
    fn token_file_errors() {
        let err = Client::new(ClientConfig {
            token_file: Some("/nonexistent/token".into()),
            ..Default::default()
        })
        .err()
        .unwrap();
        assert_eq!(
            err.to_string(),
            "Error loading token file /nonexistent/token : open /nonexistent/token: no such file or directory"
        );
    }
}
