//! Dereferencing: reads what already exists for a cluster (the StatefulSet and its pods).
//! The only step before validation that does I/O.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::{Api, Client};

use super::build::{server_name, server_pod_selector};

/// Errors reading the cluster's objects.
#[derive(Debug, thiserror::Error)]
pub enum DereferenceError {
    /// Reading the StatefulSet failed (other than it not existing).
    #[error("reading StatefulSet {name}: {source}")]
    GetStatefulSet {
        /// Its name.
        name: String,
        /// The cause.
        #[source]
        source: kube::Error,
    },
    /// Listing the server pods failed.
    #[error("listing the server pods: {source}")]
    ListPods {
        /// The cause.
        #[source]
        source: kube::Error,
    },
}

/// What exists now.
#[derive(Debug, Clone, Default)]
pub struct Dereferenced {
    /// The server StatefulSet, if it exists.
    pub stateful_set: Option<StatefulSet>,
    /// The server pods.
    pub pods: Vec<Pod>,
}

/// Reads the StatefulSet and the server pods of `cluster` in `namespace`.
pub async fn dereference(
    client: &Client,
    namespace: &str,
    cluster: &str,
) -> Result<Dereferenced, DereferenceError> {
    let name = server_name(cluster);
    let stateful_set = Api::<StatefulSet>::namespaced(client.clone(), namespace)
        .get_opt(&name)
        .await
        .map_err(|source| DereferenceError::GetStatefulSet { name, source })?;
    let pods = if stateful_set.is_some() {
        Api::<Pod>::namespaced(client.clone(), namespace)
            .list(&ListParams::default().labels(&server_pod_selector(cluster)))
            .await
            .map_err(|source| DereferenceError::ListPods { source })?
            .items
    } else {
        Vec::new()
    };
    Ok(Dereferenced { stateful_set, pods })
}
