//! What DNS needs from the agent, behind a trait: the service instances (with their
//! aggregated health) and nodes of a datacenter. Servers answer their own datacenter from
//! the local state (DNS reads are stale reads, as Consul's `allow_stale` default);
//! client agents and other datacenters are asked over HTTP through a server.

use crate::agent::Agent;
use crate::store::catalog::aggregate_status;
use crate::types::{HealthCheck, Node, NodeService};
use serde::Deserialize;
use std::future::Future;
use std::time::Duration;

/// One service instance with its node and aggregated health.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    pub node: Node,
    pub service: NodeService,
    /// `passing`, `warning` or `critical`.
    pub status: &'static str,
    /// The node's and the service's checks.
    pub checks: Vec<HealthCheck>,
}

/// A lookup failure that is not "no such name".
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// The datacenter is not known.
    #[error("No path to datacenter {0}")]
    UnknownDatacenter(String),
    /// The servers could not be asked.
    #[error("{0}")]
    Unavailable(String),
}

/// The lookups behind the DNS interface.
pub trait DnsLookup: Send + Sync + 'static {
    /// This agent's datacenter.
    fn datacenter(&self) -> String;
    /// For answers about `dc` computed from local state: a value that changes whenever
    /// that state does, so answers can be cached until then (None: do not cache).
    fn generation(&self, _dc: &str) -> Option<u64> {
        None
    }
    /// Instances of `service` (optionally with `tag`) in `dc`.
    fn service(
        &self,
        dc: &str,
        service: &str,
        tag: Option<&str>,
    ) -> impl Future<Output = Result<Vec<Instance>, LookupError>> + Send;
    /// A node of `dc`.
    fn node(
        &self,
        dc: &str,
        node: &str,
    ) -> impl Future<Output = Result<Option<Node>, LookupError>> + Send;
    /// Execute a prepared query of `dc`: its service name, the instances, and its DNS TTL.
    fn query(
        &self,
        dc: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<QueryAnswer>, LookupError>> + Send;
}

/// The service name, the instances and the DNS TTL (seconds) of an executed query.
pub type QueryAnswer = (String, Vec<Instance>, Option<u32>);

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ExecAnswer {
    service: String,
    nodes: Vec<Csn>,
    #[serde(rename = "DNS")]
    dns: serde_json::Value,
}

fn ttl_secs(v: &str) -> Option<u32> {
    crate::types::parse_duration(v)
        .ok()
        .map(|d| d.as_secs() as u32)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Csn {
    node: Node,
    service: NodeService,
    checks: Vec<HealthCheck>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NodeAnswer {
    node: Node,
}

/// An instance with its aggregated health.
fn instance(node: Node, service: NodeService, checks: Vec<HealthCheck>) -> Instance {
    Instance {
        status: aggregate_status(&checks),
        node,
        service,
        checks,
    }
}

impl Agent {
    fn dns_targets(&self, dc: &str) -> Result<Vec<String>, LookupError> {
        let t = if dc == self.datacenter || !self.is_server() {
            self.known_servers()
        } else {
            self.wan_servers_of(dc)
        };
        if t.is_empty() {
            if dc != self.datacenter && self.is_server() {
                return Err(LookupError::UnknownDatacenter(dc.to_string()));
            }
            return Err(LookupError::Unavailable("No known Consul servers".into()));
        }
        Ok(t)
    }

    async fn dns_remote(&self, dc: &str, path: &str) -> Result<Option<Vec<u8>>, LookupError> {
        let targets = self.dns_targets(dc)?;
        let client = crate::tls::rpc_client()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| LookupError::Unavailable(e.to_string()))?;
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut last = String::new();
        // The server answers with what the DNS token may see.
        let acl = self.acl_config();
        let token = acl
            .dns_token
            .clone()
            .or_else(|| acl.default_token.clone())
            .unwrap_or_default();
        for t in targets.iter().take(3) {
            match client
                .get(crate::tls::rpc_url(t, &format!("{path}{sep}dc={dc}&stale")))
                .header("X-Consul-Token", token.as_str())
                .send()
                .await
            {
                Ok(r) if r.status().as_u16() == 404 => return Ok(None),
                Ok(r) if r.status().is_success() => {
                    return r
                        .bytes()
                        .await
                        .map(|b| Some(b.to_vec()))
                        .map_err(|e| LookupError::Unavailable(e.to_string()))
                }
                Ok(r) => {
                    let body = r.text().await.unwrap_or_default();
                    if body.contains("No path to datacenter") {
                        return Err(LookupError::UnknownDatacenter(dc.to_string()));
                    }
                    last = body;
                }
                Err(e) => last = e.to_string(),
            }
        }
        Err(LookupError::Unavailable(last))
    }
}

impl Agent {
    /// The DNS token's authorizer; a token that cannot be resolved sees nothing.
    async fn dns_authz(&self) -> Result<std::sync::Arc<crate::acl::Authorizer>, LookupError> {
        self.authorize_dns()
            .await
            .map_err(|e| LookupError::Unavailable(e.to_string()))
    }
}

fn dns_visible(a: &crate::acl::Authorizer, node: &str, service: &str) -> bool {
    use crate::acl::{Access, Resource};
    a.allowed(Resource::Node, node, Access::Read)
        && a.allowed(Resource::Service, service, Access::Read)
}

impl DnsLookup for Agent {
    fn datacenter(&self) -> String {
        self.datacenter.clone()
    }

    fn generation(&self, dc: &str) -> Option<u64> {
        (dc == self.datacenter && self.is_server()).then(|| self.read(|s| s.generation()))
    }

    async fn service(
        &self,
        dc: &str,
        service: &str,
        tag: Option<&str>,
    ) -> Result<Vec<Instance>, LookupError> {
        let tags: Vec<String> = tag.map(|t| vec![t.to_string()]).unwrap_or_default();
        if dc == self.datacenter && self.is_server() {
            let a = self.dns_authz().await?;
            let (_, list) = self.read(|s| s.check_service_nodes(service, &[]));
            return Ok(list
                .into_iter()
                .filter(|c| dns_visible(&a, &c.node.node, &c.service.service))
                .filter(|c| {
                    tags.iter()
                        .all(|t| c.service.tags.iter().any(|x| x.eq_ignore_ascii_case(t)))
                })
                .map(|c| instance(c.node, c.service, c.checks))
                .collect());
        }
        let mut path = format!("/v1/health/service/{service}");
        if let Some(t) = tag {
            path.push_str(&format!("?tag={t}"));
        }
        let Some(body) = self.dns_remote(dc, &path).await? else {
            return Ok(Vec::new());
        };
        let list: Vec<Csn> =
            serde_json::from_slice(&body).map_err(|e| LookupError::Unavailable(e.to_string()))?;
        Ok(list
            .into_iter()
            .map(|c| instance(c.node, c.service, c.checks))
            .collect())
    }

    async fn node(&self, dc: &str, node: &str) -> Result<Option<Node>, LookupError> {
        if dc == self.datacenter && self.is_server() {
            let a = self.dns_authz().await?;
            if !a.allowed(crate::acl::Resource::Node, node, crate::acl::Access::Read) {
                return Ok(None);
            }
            return Ok(self.read(|s| s.node(node)));
        }
        let Some(body) = self
            .dns_remote(dc, &format!("/v1/catalog/node/{node}"))
            .await?
        else {
            return Ok(None);
        };
        let a: NodeAnswer =
            serde_json::from_slice(&body).map_err(|e| LookupError::Unavailable(e.to_string()))?;
        Ok(Some(a.node))
    }

    async fn query(&self, dc: &str, name: &str) -> Result<Option<QueryAnswer>, LookupError> {
        if dc == self.datacenter && self.is_server() {
            let a = self.dns_authz().await?;
            let r = self
                .execute_query(name, 0)
                .await
                .map_err(|e| LookupError::Unavailable(e.to_string()))?;
            return Ok(r.map(|r| {
                let ttl = ttl_secs(&r.query.dns.ttl);
                let nodes = r
                    .nodes
                    .into_iter()
                    .filter(|i| dns_visible(&a, &i.node.node, &i.service.service))
                    .collect();
                (r.query.service.service, nodes, ttl)
            }));
        }
        let Some(body) = self
            .dns_remote(dc, &format!("/v1/query/{name}/execute"))
            .await?
        else {
            return Ok(None);
        };
        let a: ExecAnswer =
            serde_json::from_slice(&body).map_err(|e| LookupError::Unavailable(e.to_string()))?;
        let ttl = a.dns.get("TTL").and_then(|v| v.as_str()).and_then(ttl_secs);
        let nodes = a
            .nodes
            .into_iter()
            .map(|c| instance(c.node, c.service, c.checks))
            .collect();
        Ok(Some((a.service, nodes, ttl)))
    }
}
