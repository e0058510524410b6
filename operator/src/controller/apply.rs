//! Applying: server-side apply of the built objects, deletion of orphans (objects carrying
//! the cluster's labels that the current build no longer contains), and pod deletion for
//! the rolling upgrade.

use std::fmt::Debug;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::build::{owned_selector, ClusterResources, FIELD_MANAGER};

/// Errors applying a cluster's objects.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Server-side apply of one object failed.
    #[error("applying {kind} {name}: {source}")]
    Apply {
        /// Kind of the object.
        kind: &'static str,
        /// Its name.
        name: String,
        /// The cause.
        #[source]
        source: kube::Error,
    },
    /// Listing objects to find orphans failed.
    #[error("listing {kind} objects to find orphans: {source}")]
    ListOrphans {
        /// Kind listed.
        kind: &'static str,
        /// The cause.
        #[source]
        source: kube::Error,
    },
    /// Deleting an orphan or an outdated pod failed.
    #[error("deleting {kind} {name}: {source}")]
    Delete {
        /// Kind of the object.
        kind: &'static str,
        /// Its name.
        name: String,
        /// The cause.
        #[source]
        source: kube::Error,
    },
}

/// Server-side applies `obj` (forcing ownership of the fields the operator sets) and
/// returns the object the API server answered with.
pub async fn apply<K>(client: &Client, namespace: &str, obj: &K) -> Result<K, ApplyError>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + k8s_openapi::Resource
        + Clone
        + Serialize
        + DeserializeOwned
        + Debug,
{
    let name = obj.name_any();
    Api::<K>::namespaced(client.clone(), namespace)
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(obj),
        )
        .await
        .map_err(|source| ApplyError::Apply {
            kind: <K as k8s_openapi::Resource>::KIND,
            name,
            source,
        })
}

/// Deletes the objects of kind `K` that carry `cluster`'s labels but are not in `keep`.
/// Returns the names deleted.
pub async fn delete_orphans<K>(
    client: &Client,
    namespace: &str,
    cluster: &str,
    keep: &[String],
) -> Result<Vec<String>, ApplyError>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + k8s_openapi::Resource
        + Clone
        + DeserializeOwned
        + Debug,
{
    let api = Api::<K>::namespaced(client.clone(), namespace);
    let list = api
        .list_metadata(&ListParams::default().labels(&owned_selector(cluster)))
        .await
        .map_err(|source| ApplyError::ListOrphans {
            kind: <K as k8s_openapi::Resource>::KIND,
            source,
        })?;
    let mut deleted = Vec::new();
    for obj in list.items {
        let name = obj.name_any();
        if keep.contains(&name) {
            continue;
        }
        match api.delete(&name, &DeleteParams::background()).await {
            Ok(_) => deleted.push(name),
            // Someone else deleted it first: that is the goal.
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(source) => {
                return Err(ApplyError::Delete {
                    kind: <K as k8s_openapi::Resource>::KIND,
                    name,
                    source,
                })
            }
        }
    }
    Ok(deleted)
}

/// Applies every object of `res` and deletes orphans. Returns the StatefulSet as stored.
pub async fn apply_cluster_resources(
    client: &Client,
    namespace: &str,
    cluster: &str,
    res: &ClusterResources,
) -> Result<StatefulSet, ApplyError> {
    apply(client, namespace, &res.config_map).await?;
    apply(client, namespace, &res.headless_service).await?;
    apply(client, namespace, &res.client_service).await?;
    let sts = apply(client, namespace, &res.stateful_set).await?;
    if let Some(pdb) = &res.pdb {
        apply(client, namespace, pdb).await?;
    }
    delete_orphans::<ConfigMap>(client, namespace, cluster, &res.config_map_names()).await?;
    delete_orphans::<Service>(client, namespace, cluster, &res.service_names()).await?;
    delete_orphans::<PodDisruptionBudget>(client, namespace, cluster, &res.pdb_names()).await?;
    Ok(sts)
}

/// Deletes a server pod so the StatefulSet recreates it from the current template.
pub async fn delete_pod(client: &Client, namespace: &str, name: &str) -> Result<(), ApplyError> {
    match Api::<Pod>::namespaced(client.clone(), namespace)
        .delete(name, &DeleteParams::default())
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(source) => Err(ApplyError::Delete {
            kind: "Pod",
            name: name.to_string(),
            source,
        }),
    }
}
