//! The few Praetor (Consul) HTTP API calls the operator makes, behind a trait so reconcile
//! tests can fake the cluster: who the leader is, the Raft configuration, and removing a
//! server from it before its pod is deleted.

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

/// Errors talking to a Praetor server's HTTP API.
#[derive(Debug, thiserror::Error)]
pub enum ConsulApiError {
    /// The request could not be sent or its answer not read.
    #[error("request to {url} failed: {source}")]
    Request {
        /// The URL called.
        url: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with an error status.
    #[error("{url} answered {status}: {body}")]
    Status {
        /// The URL called.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The (trimmed) answer body.
        body: String,
    },
}

/// One server in `/v1/operator/raft/configuration`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RaftServer {
    /// Node ID (UUID) of the server.
    #[serde(rename = "ID")]
    pub id: String,
    /// Node name; the operator names server nodes after their pods.
    pub node: String,
    /// Raft (RPC) address `ip:port`.
    pub address: String,
    /// Whether this server is the leader.
    #[serde(default)]
    pub leader: bool,
    /// Whether this server votes.
    #[serde(default)]
    pub voter: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RaftConfiguration {
    servers: Vec<RaftServer>,
}

/// The Praetor HTTP API calls the reconciler makes. `base` is `http://host:port`.
#[async_trait]
pub trait ConsulApi: Send + Sync {
    /// `GET /v1/status/leader`: the leader's Raft address, `None` when there is no leader
    /// (Praetor answers `""`).
    async fn leader(&self, base: &str) -> Result<Option<String>, ConsulApiError>;
    /// `GET /v1/operator/raft/configuration`: the servers in the Raft configuration.
    async fn raft_servers(&self, base: &str) -> Result<Vec<RaftServer>, ConsulApiError>;
    /// `DELETE /v1/operator/raft/peer?id=<id>`: remove a server from the configuration.
    async fn remove_peer(&self, base: &str, id: &str) -> Result<(), ConsulApiError>;
    /// `POST /v1/operator/raft/transfer-leader`: ask the leader to hand leadership over.
    async fn transfer_leader(&self, base: &str) -> Result<(), ConsulApiError>;
    /// `PUT /v1/agent/leave` on the agent at `base`: it leaves gossip gracefully and shuts
    /// down. Praetor's leader re-adds alive servers to Raft, so a server must have left
    /// before its removal from Raft sticks.
    async fn leave(&self, base: &str) -> Result<(), ConsulApiError>;
}

/// [`ConsulApi`] over HTTP with reqwest.
#[derive(Clone)]
pub struct HttpConsulApi {
    http: reqwest::Client,
}

impl HttpConsulApi {
    /// A client with short timeouts: the reconciler would rather retry than hang.
    pub fn new() -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(Self { http })
    }

    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<String, ConsulApiError> {
        let resp = req.send().await.map_err(|source| ConsulApiError::Request {
            url: url.to_string(),
            source,
        })?;
        let status = resp.status();
        let body = resp
            .text()
            .await
            .map_err(|source| ConsulApiError::Request {
                url: url.to_string(),
                source,
            })?;
        if !status.is_success() {
            return Err(ConsulApiError::Status {
                url: url.to_string(),
                status: status.as_u16(),
                body: body.trim().chars().take(300).collect(),
            });
        }
        Ok(body)
    }
}

/// Parses the body of `/v1/status/leader` (a JSON string, `""` without a leader).
pub fn parse_leader(body: &str) -> Option<String> {
    let addr: String = serde_json::from_str(body.trim()).ok()?;
    (!addr.is_empty()).then_some(addr)
}

#[async_trait]
impl ConsulApi for HttpConsulApi {
    async fn leader(&self, base: &str) -> Result<Option<String>, ConsulApiError> {
        let url = format!("{base}/v1/status/leader");
        let body = self.send(self.http.get(&url), &url).await?;
        Ok(parse_leader(&body))
    }

    async fn raft_servers(&self, base: &str) -> Result<Vec<RaftServer>, ConsulApiError> {
        let url = format!("{base}/v1/operator/raft/configuration");
        let body = self.send(self.http.get(&url), &url).await?;
        let conf: RaftConfiguration =
            serde_json::from_str(&body).map_err(|e| ConsulApiError::Status {
                url: url.clone(),
                status: 200,
                body: format!("unreadable raft configuration: {e}"),
            })?;
        Ok(conf.servers)
    }

    async fn remove_peer(&self, base: &str, id: &str) -> Result<(), ConsulApiError> {
        let url = format!("{base}/v1/operator/raft/peer");
        self.send(self.http.delete(&url).query(&[("id", id)]), &url)
            .await
            .map(|_| ())
    }

    async fn transfer_leader(&self, base: &str) -> Result<(), ConsulApiError> {
        let url = format!("{base}/v1/operator/raft/transfer-leader");
        self.send(self.http.post(&url), &url).await.map(|_| ())
    }

    async fn leave(&self, base: &str) -> Result<(), ConsulApiError> {
        let url = format!("{base}/v1/agent/leave");
        self.send(self.http.put(&url), &url).await.map(|_| ())
    }
}

/// The HTTP API base URL of the server whose Raft address is `raft_addr` (`ip:8300`).
pub fn http_base_of_raft_addr(raft_addr: &str, http_port: u16) -> String {
    let host = raft_addr
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or(raft_addr);
    format!("http://{host}:{http_port}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leader_body_empty_string_means_no_leader() {
        assert_eq!(parse_leader("\"\""), None);
        assert_eq!(
            parse_leader("\"10.0.0.5:8300\"\n"),
            Some("10.0.0.5:8300".into())
        );
        assert_eq!(parse_leader("garbage"), None);
    }

    #[test]
    fn raft_configuration_parses() {
        let body = r#"{"Servers":[{"ID":"a-b","Node":"c-server-0","Address":"10.0.0.5:8300","Leader":true,"Voter":true,"ProtocolVersion":"3"}],"Index":7}"#;
        let conf: RaftConfiguration = serde_json::from_str(body).unwrap();
        assert_eq!(conf.servers[0].node, "c-server-0");
        assert!(conf.servers[0].leader);
    }

    #[test]
    fn http_base_from_raft_address() {
        assert_eq!(
            http_base_of_raft_addr("10.1.2.3:8300", 8500),
            "http://10.1.2.3:8500"
        );
        assert_eq!(
            http_base_of_raft_addr("[fd00::1]:8300", 8500),
            "http://[fd00::1]:8500"
        );
    }
}
