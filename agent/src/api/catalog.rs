//! Catalog reads (`/v1/catalog/...`) with Consul's wire types.

use super::{encode_path, null_default, ApiError, Client};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Read options beyond the client-wide `dc`/`stale` (a subset of Consul's `QueryOptions`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryOptions {
    /// Sort by estimated round-trip time from this node (`_agent` for the local agent).
    pub near: Option<String>,
    /// Only nodes with these metadata pairs (`?node-meta=k:v`, repeated).
    pub node_meta: BTreeMap<String, String>,
    /// A `?filter=` expression.
    pub filter: Option<String>,
}

impl QueryOptions {
    /// The query pairs for a request.
    pub fn to_query(&self) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        if let Some(n) = self.near.as_ref().filter(|n| !n.is_empty()) {
            q.push(("near", n.clone()));
        }
        for (k, v) in &self.node_meta {
            q.push(("node-meta", format!("{k}:{v}")));
        }
        if let Some(f) = self.filter.as_ref().filter(|f| !f.is_empty()) {
            q.push(("filter", f.clone()));
        }
        q
    }
}

/// A catalog node (Consul's `Node`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Node ID (a UUID).
    #[serde(rename = "ID", default)]
    pub id: String,
    /// Node name.
    #[serde(rename = "Node", default)]
    pub node: String,
    /// Node address.
    #[serde(rename = "Address", default)]
    pub address: String,
    /// Datacenter.
    #[serde(rename = "Datacenter", default)]
    pub datacenter: String,
    /// Tagged addresses (`lan`, `wan`, ...).
    #[serde(rename = "TaggedAddresses", default, deserialize_with = "null_default")]
    pub tagged_addresses: BTreeMap<String, String>,
    /// Node metadata.
    #[serde(rename = "Meta", default, deserialize_with = "null_default")]
    pub meta: BTreeMap<String, String>,
    /// Raft index of creation.
    #[serde(rename = "CreateIndex", default)]
    pub create_index: u64,
    /// Raft index of the last change.
    #[serde(rename = "ModifyIndex", default)]
    pub modify_index: u64,
}

/// One instance of a service with its node (Consul's `CatalogService`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CatalogService {
    /// Node ID.
    #[serde(rename = "ID", default)]
    pub id: String,
    /// Node name.
    #[serde(rename = "Node", default)]
    pub node: String,
    /// Node address.
    #[serde(rename = "Address", default)]
    pub address: String,
    /// Datacenter.
    #[serde(rename = "Datacenter", default)]
    pub datacenter: String,
    /// The node's tagged addresses.
    #[serde(rename = "TaggedAddresses", default, deserialize_with = "null_default")]
    pub tagged_addresses: BTreeMap<String, String>,
    /// The node's metadata.
    #[serde(rename = "NodeMeta", default, deserialize_with = "null_default")]
    pub node_meta: BTreeMap<String, String>,
    /// Service instance ID.
    #[serde(rename = "ServiceID", default)]
    pub service_id: String,
    /// Service name.
    #[serde(rename = "ServiceName", default)]
    pub service_name: String,
    /// Service address (may be empty: use the node's).
    #[serde(rename = "ServiceAddress", default)]
    pub service_address: String,
    /// Service tags.
    #[serde(rename = "ServiceTags", default, deserialize_with = "null_default")]
    pub service_tags: Vec<String>,
    /// Service port.
    #[serde(rename = "ServicePort", default)]
    pub service_port: u16,
    /// Service metadata.
    #[serde(rename = "ServiceMeta", default, deserialize_with = "null_default")]
    pub service_meta: BTreeMap<String, String>,
    /// Raft index of creation.
    #[serde(rename = "CreateIndex", default)]
    pub create_index: u64,
    /// Raft index of the last change.
    #[serde(rename = "ModifyIndex", default)]
    pub modify_index: u64,
}

/// A service as registered on an agent or node (Consul's `AgentService`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentService {
    /// Service kind (empty for a typical service).
    #[serde(rename = "Kind", default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Instance ID.
    #[serde(rename = "ID", default)]
    pub id: String,
    /// Service name.
    #[serde(rename = "Service", default)]
    pub service: String,
    /// Tags.
    #[serde(rename = "Tags", default, deserialize_with = "null_default")]
    pub tags: Vec<String>,
    /// Metadata.
    #[serde(rename = "Meta", default, deserialize_with = "null_default")]
    pub meta: BTreeMap<String, String>,
    /// Port.
    #[serde(rename = "Port", default)]
    pub port: u16,
    /// Address (may be empty).
    #[serde(rename = "Address", default)]
    pub address: String,
    /// Datacenter, when the endpoint reports it.
    #[serde(
        rename = "Datacenter",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub datacenter: String,
}

/// A node with its services (Consul's `CatalogNode`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CatalogNode {
    /// The node (absent for an unknown node).
    #[serde(rename = "Node", default)]
    pub node: Option<Node>,
    /// Services keyed by instance ID.
    #[serde(rename = "Services", default, deserialize_with = "null_default")]
    pub services: BTreeMap<String, AgentService>,
}

impl Client {
    /// Known datacenters, nearest first.
    pub fn catalog_datacenters(&self) -> Result<Vec<String>, ApiError> {
        Ok(self
            .get_json::<Option<Vec<String>>>("/v1/catalog/datacenters", &[])?
            .unwrap_or_default())
    }

    /// Nodes in the catalog.
    pub fn catalog_nodes(&self, opts: &QueryOptions) -> Result<Vec<Node>, ApiError> {
        Ok(self
            .get_json::<Option<Vec<Node>>>("/v1/catalog/nodes", &opts.to_query())?
            .unwrap_or_default())
    }

    /// Service names with their tags (union over instances).
    pub fn catalog_services(
        &self,
        opts: &QueryOptions,
    ) -> Result<BTreeMap<String, Vec<String>>, ApiError> {
        Ok(self
            .get_json::<Option<BTreeMap<String, Option<Vec<String>>>>>(
                "/v1/catalog/services",
                &opts.to_query(),
            )?
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.unwrap_or_default()))
            .collect())
    }

    /// Instances of one service, optionally only those with `tag`.
    pub fn catalog_service(
        &self,
        service: &str,
        tag: Option<&str>,
        opts: &QueryOptions,
    ) -> Result<Vec<CatalogService>, ApiError> {
        let mut q = opts.to_query();
        if let Some(t) = tag.filter(|t| !t.is_empty()) {
            q.push(("tag", t.to_string()));
        }
        Ok(self
            .get_json::<Option<Vec<CatalogService>>>(
                &format!("/v1/catalog/service/{}", encode_path(service)),
                &q,
            )?
            .unwrap_or_default())
    }

    /// One node and its services; `None` when the node is unknown.
    pub fn catalog_node(
        &self,
        node: &str,
        opts: &QueryOptions,
    ) -> Result<Option<CatalogNode>, ApiError> {
        let a = self.call(
            "GET",
            &format!("/v1/catalog/node/{}", encode_path(node)),
            &opts.to_query(),
            None,
            &[404],
        )?;
        if a.status == 404 {
            return Ok(None);
        }
        Ok(a.json::<Option<CatalogNode>>()?
            .filter(|n| n.node.is_some()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_meta_and_near_query() {
        let mut o = QueryOptions {
            near: Some("_agent".into()),
            filter: Some("Node == x".into()),
            ..Default::default()
        };
        o.node_meta.insert("rack".into(), "r1".into());
        assert_eq!(
            o.to_query(),
            vec![
                ("near", "_agent".to_string()),
                ("node-meta", "rack:r1".to_string()),
                ("filter", "Node == x".to_string())
            ]
        );
        assert!(QueryOptions::default().to_query().is_empty());
    }

    #[test]
    fn wire_types_tolerate_nulls() {
        let n: Node = serde_json::from_str(
            r#"{"ID":"a-b","Node":"n1","Address":"1.2.3.4","Datacenter":"dc1",
                "TaggedAddresses":null,"Meta":{"k":"v"},"CreateIndex":3,"ModifyIndex":4}"#,
        )
        .unwrap();
        assert_eq!(n.node, "n1");
        assert!(n.tagged_addresses.is_empty());
        assert_eq!(n.meta["k"], "v");
        let cn: CatalogNode = serde_json::from_str(
            r#"{"Node":{"Node":"n1"},"Services":{"web":{"ID":"web","Service":"web","Tags":null,"Port":80}}}"#,
        )
        .unwrap();
        assert_eq!(cn.services["web"].port, 80);
        assert!(cn.services["web"].tags.is_empty());
        let s: CatalogService =
            serde_json::from_str(r#"{"Node":"n1","ServiceName":"web","ServiceTags":["a"]}"#)
                .unwrap();
        assert_eq!(s.service_tags, ["a"]);
    }
}
