//! Blocking HTTP client for the Consul API, used by the CLI verbs: address from
//! `-http-addr` or `CONSUL_HTTP_ADDR`, token from `-token` or `CONSUL_HTTP_TOKEN`, and
//! `?dc=` from `-datacenter`.

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;

/// Errors talking to the agent.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Could not connect or the request failed.
    #[error("{0}")]
    Transport(String),
    /// The agent answered with an error status.
    #[error("Unexpected response code: {status} ({body})")]
    Status { status: u16, body: String },
    /// The body was not what the endpoint returns.
    #[error("decoding response: {0}")]
    Decode(String),
}

/// Where and how to reach the agent.
#[derive(Debug, Clone, Default)]
pub struct ClientConfig {
    pub address: Option<String>,
    pub token: Option<String>,
    pub datacenter: Option<String>,
    pub stale: bool,
}

/// A KV entry as the API returns it.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct KvPair {
    pub key: String,
    #[serde(default)]
    pub flags: u64,
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub lock_index: u64,
    #[serde(default)]
    pub session: Option<String>,
    #[serde(default)]
    pub create_index: u64,
    #[serde(default)]
    pub modify_index: u64,
}

impl KvPair {
    /// The decoded value bytes.
    pub fn bytes(&self) -> Vec<u8> {
        self.value
            .as_deref()
            .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
            .unwrap_or_default()
    }
}

/// An HTTP answer.
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
    /// `X-Consul-Index` (0 when absent).
    pub index: u64,
}

impl Answer {
    /// Decode JSON.
    pub fn json<T: for<'de> Deserialize<'de>>(&self) -> Result<T, ApiError> {
        serde_json::from_slice(&self.body).map_err(|e| ApiError::Decode(e.to_string()))
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// The client.
pub struct Client {
    http: reqwest::blocking::Client,
    base: String,
    cfg: ClientConfig,
}

/// Normalize `host:port`, `http://host:port` (and `unix://` is refused) to a base URL.
pub fn base_url(addr: &str) -> Result<String, ApiError> {
    let a = addr.trim().trim_end_matches('/');
    if a.starts_with("unix://") {
        return Err(ApiError::Transport(
            "unix sockets are not supported by this client".into(),
        ));
    }
    if a.starts_with("http://") || a.starts_with("https://") {
        Ok(a.to_string())
    } else {
        Ok(format!("http://{a}"))
    }
}

impl Client {
    /// A client for `cfg` (environment fills in what flags did not).
    pub fn new(mut cfg: ClientConfig) -> Result<Client, ApiError> {
        if cfg.address.is_none() {
            cfg.address = std::env::var("CONSUL_HTTP_ADDR")
                .ok()
                .filter(|s| !s.is_empty());
        }
        if cfg.token.is_none() {
            cfg.token = std::env::var("CONSUL_HTTP_TOKEN")
                .ok()
                .filter(|s| !s.is_empty());
        }
        let base = base_url(cfg.address.as_deref().unwrap_or("127.0.0.1:8500"))?;
        let http = reqwest::blocking::Client::builder()
            .timeout(Some(Duration::from_secs(660)))
            .build()
            .map_err(|e| ApiError::Transport(e.to_string()))?;
        Ok(Client { http, base, cfg })
    }

    fn url(&self, path: &str, query: &[(&str, String)]) -> String {
        let mut q: Vec<String> = query
            .iter()
            .map(|(k, v)| {
                if v.is_empty() {
                    k.to_string()
                } else {
                    format!("{k}={}", encode(v))
                }
            })
            .collect();
        if let Some(dc) = &self.cfg.datacenter {
            q.push(format!("dc={}", encode(dc)));
        }
        if self.cfg.stale {
            q.push("stale".into());
        }
        if q.is_empty() {
            format!("{}{path}", self.base)
        } else {
            format!("{}{path}?{}", self.base, q.join("&"))
        }
    }

    /// Send a request; error statuses become `ApiError::Status` unless `allow` lists them.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, String)],
        body: Option<Vec<u8>>,
        allow: &[u16],
    ) -> Result<Answer, ApiError> {
        let m = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|e| ApiError::Transport(e.to_string()))?;
        let mut rb = self.http.request(m, self.url(path, query));
        if let Some(t) = &self.cfg.token {
            rb = rb.header("X-Consul-Token", t);
        }
        if let Some(b) = body {
            rb = rb.body(b);
        }
        let resp = rb.send().map_err(|e| ApiError::Transport(e.to_string()))?;
        let status = resp.status().as_u16();
        let index = resp
            .headers()
            .get("X-Consul-Index")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let body = resp
            .bytes()
            .map_err(|e| ApiError::Transport(e.to_string()))?
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
                body: String::from_utf8_lossy(&body).into_owned(),
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

    /// One KV entry (None on 404).
    pub fn kv_get(&self, key: &str) -> Result<Option<KvPair>, ApiError> {
        let a = self.call(
            "GET",
            &format!("/v1/kv/{}", encode_path(key)),
            &[],
            None,
            &[404],
        )?;
        if a.status == 404 {
            return Ok(None);
        }
        Ok(a.json::<Vec<KvPair>>()?.into_iter().next())
    }

    /// Every entry under a prefix.
    pub fn kv_list(&self, prefix: &str) -> Result<Vec<KvPair>, ApiError> {
        let a = self.call(
            "GET",
            &format!("/v1/kv/{}", encode_path(prefix)),
            &[("recurse", String::new())],
            None,
            &[404],
        )?;
        if a.status == 404 {
            return Ok(Vec::new());
        }
        a.json()
    }

    /// Keys under a prefix, folded at `separator`.
    pub fn kv_keys(&self, prefix: &str, separator: &str) -> Result<Vec<String>, ApiError> {
        let mut q = vec![("keys", String::new())];
        if !separator.is_empty() {
            q.push(("separator", separator.to_string()));
        }
        let a = self.call(
            "GET",
            &format!("/v1/kv/{}", encode_path(prefix)),
            &q,
            None,
            &[404],
        )?;
        if a.status == 404 {
            return Ok(Vec::new());
        }
        a.json()
    }

    /// Write a key; the answer is Consul's `true`/`false`.
    pub fn kv_put(
        &self,
        key: &str,
        value: Vec<u8>,
        query: &[(&str, String)],
    ) -> Result<bool, ApiError> {
        self.call(
            "PUT",
            &format!("/v1/kv/{}", encode_path(key)),
            query,
            Some(value),
            &[],
        )?
        .json()
    }

    /// Delete a key or tree.
    pub fn kv_delete(&self, key: &str, query: &[(&str, String)]) -> Result<bool, ApiError> {
        self.call(
            "DELETE",
            &format!("/v1/kv/{}", encode_path(key)),
            query,
            None,
            &[],
        )?
        .json()
    }

    /// PUT with a JSON body.
    pub fn put_json(
        &self,
        path: &str,
        query: &[(&str, String)],
        v: &Value,
    ) -> Result<Answer, ApiError> {
        self.call("PUT", path, query, Some(v.to_string().into_bytes()), &[])
    }
}

fn encode(s: &str) -> String {
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

/// Percent-encode a KV path, keeping `/`.
pub fn encode_path(s: &str) -> String {
    s.split('/').map(encode).collect::<Vec<_>>().join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_encoding() {
        assert_eq!(base_url("127.0.0.1:8500").unwrap(), "http://127.0.0.1:8500");
        assert_eq!(base_url("http://h:1/").unwrap(), "http://h:1");
        assert!(base_url("unix:///tmp/s").is_err());
        assert_eq!(encode_path("a b/c?d"), "a%20b/c%3Fd");
        let kv = KvPair {
            value: Some("aGk=".into()),
            ..Default::default()
        };
        assert_eq!(kv.bytes(), b"hi");
    }
}
