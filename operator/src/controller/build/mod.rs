//! Pure build functions: a [`ValidatedCluster`] in, Kubernetes objects out. Nothing here
//! does I/O, so every object the operator applies is unit-tested.

pub mod config;
pub mod pdb;
pub mod service;
pub mod statefulset;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::validate::ValidatedCluster;

/// `app.kubernetes.io/managed-by` value on everything the operator creates.
pub const MANAGER: &str = "praetor-operator";
/// Field manager used for server-side apply.
pub const FIELD_MANAGER: &str = "praetor-operator";
/// Label naming the ConsulCluster an object belongs to.
pub const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";
/// Label naming the component (`server`).
pub const COMPONENT_LABEL: &str = "app.kubernetes.io/component";

/// Consul's ports, as Praetor uses them.
pub mod ports {
    /// HTTP API.
    pub const HTTP: i32 = 8500;
    /// DNS interface.
    pub const DNS: i32 = 8600;
    /// Server RPC and Raft.
    pub const SERVER: i32 = 8300;
    /// LAN gossip.
    pub const SERF_LAN: i32 = 8301;
}

/// Name of the server StatefulSet (its pods are `<this>-<ordinal>`).
pub fn server_name(cluster: &str) -> String {
    format!("{cluster}-server")
}

/// Name of the headless Service the servers are reachable and join through.
pub fn headless_service_name(cluster: &str) -> String {
    format!("{cluster}-server")
}

/// Name of the client Service (HTTP 8500, DNS 8600).
pub fn client_service_name(cluster: &str) -> String {
    cluster.to_string()
}

/// Name of the ConfigMap with the server agent config.
pub fn config_map_name(cluster: &str) -> String {
    format!("{cluster}-server-config")
}

/// Name of the server pod with the given ordinal.
pub fn pod_name(cluster: &str, ordinal: i32) -> String {
    format!("{}-{ordinal}", server_name(cluster))
}

/// The ordinal of a server pod from its name, if it is one of this cluster's pods.
pub fn pod_ordinal(cluster: &str, pod: &str) -> Option<i32> {
    pod.strip_prefix(&format!("{}-", server_name(cluster)))?
        .parse()
        .ok()
}

/// The fully qualified DNS names of the first `replicas` server pods (retry-join targets).
pub fn server_dns_names(
    cluster: &str,
    namespace: &str,
    domain: &str,
    replicas: i32,
) -> Vec<String> {
    (0..replicas)
        .map(|i| {
            format!(
                "{}.{}.{namespace}.svc.{domain}",
                pod_name(cluster, i),
                headless_service_name(cluster)
            )
        })
        .collect()
}

/// Labels on every object made for `cluster`.
pub fn labels(cluster: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), "praetor".to_string()),
        (INSTANCE_LABEL.to_string(), cluster.to_string()),
        (
            "app.kubernetes.io/managed-by".to_string(),
            MANAGER.to_string(),
        ),
    ])
}

/// Labels selecting the server pods of `cluster`.
pub fn server_selector(cluster: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), "praetor".to_string()),
        (INSTANCE_LABEL.to_string(), cluster.to_string()),
        (COMPONENT_LABEL.to_string(), "server".to_string()),
    ])
}

/// The label selector (as a string) of everything the operator made for `cluster`.
pub fn owned_selector(cluster: &str) -> String {
    format!("app.kubernetes.io/managed-by={MANAGER},{INSTANCE_LABEL}={cluster}")
}

/// The label selector (as a string) of the server pods of `cluster`.
pub fn server_pod_selector(cluster: &str) -> String {
    server_selector(cluster)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Metadata of a generated object: name, namespace, labels and the owner reference.
pub fn object_meta(c: &ValidatedCluster, name: String, component: Option<&str>) -> ObjectMeta {
    let mut labels = c.labels();
    if let Some(comp) = component {
        labels.insert(COMPONENT_LABEL.into(), comp.into());
    }
    ObjectMeta {
        name: Some(name),
        namespace: Some(c.namespace.clone()),
        labels: Some(labels),
        owner_references: Some(vec![c.owner.clone()]),
        ..Default::default()
    }
}

/// Everything the operator wants to exist for one cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterResources {
    /// The server agent config.
    pub config_map: ConfigMap,
    /// The headless Service.
    pub headless_service: Service,
    /// The client Service.
    pub client_service: Service,
    /// The server StatefulSet.
    pub stateful_set: StatefulSet,
    /// The PodDisruptionBudget (none for fewer than 3 servers: it would block every drain).
    pub pdb: Option<PodDisruptionBudget>,
}

/// Builds every object for `c` with the StatefulSet at `sts_replicas` servers (which lags
/// behind `c.replicas` while scaling down one Raft peer at a time).
pub fn build_cluster_resources(
    c: &ValidatedCluster,
    sts_replicas: i32,
) -> Result<ClusterResources, config::ConfigError> {
    let config_map = config::build_config_map(c)?;
    let config_hash = config::config_hash(&config_map);
    Ok(ClusterResources {
        headless_service: service::build_headless_service(c),
        client_service: service::build_client_service(c),
        stateful_set: statefulset::build_stateful_set(c, sts_replicas, &config_hash),
        pdb: pdb::build_pdb(c),
        config_map,
    })
}

impl ClusterResources {
    /// Names of the Services that should exist.
    pub fn service_names(&self) -> Vec<String> {
        [&self.headless_service, &self.client_service]
            .iter()
            .filter_map(|s| s.metadata.name.clone())
            .collect()
    }

    /// Names of the ConfigMaps that should exist.
    pub fn config_map_names(&self) -> Vec<String> {
        self.config_map.metadata.name.iter().cloned().collect()
    }

    /// Names of the PodDisruptionBudgets that should exist.
    pub fn pdb_names(&self) -> Vec<String> {
        self.pdb
            .iter()
            .filter_map(|p| p.metadata.name.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ordinals() {
        assert_eq!(pod_name("c", 2), "c-server-2");
        assert_eq!(pod_ordinal("c", "c-server-2"), Some(2));
        assert_eq!(pod_ordinal("c", "other-server-2"), None);
        assert_eq!(pod_ordinal("c", "c-server-x"), None);
        assert_eq!(
            server_dns_names("c", "ns", "cluster.local", 2),
            vec![
                "c-server-0.c-server.ns.svc.cluster.local",
                "c-server-1.c-server.ns.svc.cluster.local"
            ]
        );
        assert_eq!(
            server_pod_selector("c"),
            "app.kubernetes.io/component=server,app.kubernetes.io/instance=c,app.kubernetes.io/name=praetor"
        );
    }
}
