//! The ConsulCluster controller. One reconcile runs:
//! dereference (read the StatefulSet and pods) → validate (pure, gives a
//! [`ValidatedCluster`]) → membership (one Raft scale-down step through the leader) →
//! build (pure) → apply (server-side apply, delete orphans by label) → rolling upgrade
//! (delete one outdated pod while a leader exists) → status.

pub mod apply;
pub mod build;
pub mod dereference;
pub mod membership;
pub mod service_definition;
pub mod status;
pub mod validate;

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};

use crate::consul::ConsulApi;
use crate::crd::v1alpha1::ConsulCluster;
use build::{headless_service_name, pod_name, pod_ordinal, ports, MANAGER};
use membership::{
    plan_scale, plan_upgrade, pod_ready, shrink_one, ScaleStep, ShrinkOutcome, UpgradeStep,
};
use status::{build_status, is_progressing, Observed};
pub use validate::{Defaults, ValidatedCluster, ValidationError};

/// Requeue interval while the cluster is changing.
pub const REQUEUE_PROGRESSING: Duration = Duration::from_secs(10);
/// Requeue interval of a settled cluster (drift and leader checks).
pub const REQUEUE_SETTLED: Duration = Duration::from_secs(300);

/// Shared state of the controllers.
pub struct Context {
    /// Kubernetes client.
    pub client: Client,
    /// The Praetor HTTP API (faked in tests).
    pub consul: Arc<dyn ConsulApi>,
    /// Operator-wide defaults.
    pub defaults: Defaults,
}

impl Context {
    /// Base URL of a cluster's HTTP API: the headless Service, which (unlike the client
    /// Service) also resolves to servers that are not ready, i.e. do not know a leader yet.
    pub fn cluster_api_base(&self, c: &ValidatedCluster) -> String {
        format!(
            "http://{}.{}.svc.{}:{}",
            headless_service_name(&c.name),
            c.namespace,
            c.cluster_domain,
            ports::HTTP
        )
    }
}

/// Reconcile errors, one variant per step.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The spec cannot be reconciled; waits for the user to change it.
    #[error("invalid ConsulCluster: {0}")]
    InvalidCluster(#[from] ValidationError),
    /// Reading existing objects failed.
    #[error(transparent)]
    Dereference(#[from] dereference::DereferenceError),
    /// Building the agent config failed.
    #[error(transparent)]
    BuildConfig(#[from] build::config::ConfigError),
    /// A Raft membership change failed.
    #[error(transparent)]
    Membership(#[from] membership::MembershipError),
    /// Applying objects failed.
    #[error(transparent)]
    Apply(#[from] apply::ApplyError),
    /// Writing the status failed.
    #[error("writing the ConsulCluster status: {0}")]
    PatchStatus(#[source] kube::Error),
}

impl Error {
    /// A short label for logs and metrics.
    pub fn category(&self) -> &'static str {
        match self {
            Error::InvalidCluster(_) => "invalid",
            Error::Dereference(_) => "dereference",
            Error::BuildConfig(_) => "build",
            Error::Membership(_) => "membership",
            Error::Apply(_) => "apply",
            Error::PatchStatus(_) => "status",
        }
    }
}

fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

/// Reconciles one ConsulCluster.
pub async fn reconcile(cluster: Arc<ConsulCluster>, ctx: Arc<Context>) -> Result<Action, Error> {
    let name = cluster.name_any();
    let namespace = cluster.namespace().unwrap_or_default();
    let previous = cluster
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();

    let validated = match validate::validate(&cluster, &ctx.defaults) {
        Ok(v) => v,
        Err(e) => {
            // Keep what was last seen of the servers; only the conditions change.
            let last = cluster.status.clone().unwrap_or_default();
            let o = Observed {
                generation: cluster.metadata.generation,
                desired: cluster.spec.replicas,
                servers: last.servers,
                ready: last.ready_servers,
                leader: last.leader,
                leader_error: None,
                outdated: last.outdated_servers,
                progress: Some(("InvalidSpec".into(), e.to_string())),
            };
            let status = build_status(&o, &previous, &now());
            status::patch_status(&ctx.client, &namespace, &name, &status)
                .await
                .map_err(Error::PatchStatus)?;
            return Err(e.into());
        }
    };

    let found = dereference::dereference(&ctx.client, &namespace, &name).await?;
    let current = found
        .stateful_set
        .as_ref()
        .and_then(|s| s.spec.as_ref())
        .and_then(|s| s.replicas);

    // Nothing to ask before the servers exist.
    let (leader, leader_error) = if found.stateful_set.is_some() {
        match ctx.consul.leader(&ctx.cluster_api_base(&validated)).await {
            Ok(l) => (l, None),
            Err(e) => (None, Some(e.to_string())),
        }
    } else {
        (None, None)
    };

    let mut progress: Option<(String, String)> = None;
    let sts_replicas = match plan_scale(validated.replicas, current) {
        ScaleStep::Apply(n) => {
            if let Some(cur) = current.filter(|c| n > *c) {
                progress = Some((
                    "ScalingUp".into(),
                    format!("scaling from {cur} to {n} servers"),
                ));
            }
            n
        }
        ScaleStep::ShrinkOne { ordinal } => {
            let departing = pod_name(&name, ordinal);
            let departing_ip = found
                .pods
                .iter()
                .find(|p| p.name_any() == departing)
                .and_then(|p| p.status.as_ref()?.pod_ip.clone());
            let outcome = shrink_one(
                ctx.consul.as_ref(),
                &name,
                ordinal,
                leader.as_deref(),
                departing_ip.as_deref(),
                ports::HTTP as u16,
            )
            .await?;
            match outcome {
                ShrinkOutcome::Removed => {
                    progress = Some((
                        "ScalingDown".into(),
                        format!(
                            "removed {} from Raft; {ordinal} servers remain, {} wanted",
                            pod_name(&name, ordinal),
                            validated.replicas
                        ),
                    ));
                    ordinal
                }
                ShrinkOutcome::Blocked(reason) => {
                    progress = Some(("ScaleDownBlocked".into(), reason));
                    ordinal + 1
                }
            }
        }
    };

    let resources = build::build_cluster_resources(&validated, sts_replicas)?;
    let sts: StatefulSet =
        apply::apply_cluster_resources(&ctx.client, &namespace, &name, &resources).await?;

    let update_revision = sts.status.as_ref().and_then(|s| s.update_revision.clone());
    let outdated = match plan_upgrade(
        &name,
        &found.pods,
        update_revision.as_deref(),
        sts_replicas,
        leader.as_deref(),
    ) {
        UpgradeStep::UpToDate => 0,
        UpgradeStep::Wait { outdated, reason } => {
            progress.get_or_insert(("UpgradeWaiting".into(), reason));
            outdated
        }
        UpgradeStep::Delete { outdated, pod } => {
            // Never restart a server while the membership is changing.
            if progress.is_none() {
                apply::delete_pod(&ctx.client, &namespace, &pod).await?;
                tracing::info!(cluster = %name, %pod, outdated, "restarting an outdated server");
                progress = Some((
                    "RollingUpgrade".into(),
                    format!("restarting {pod}; {outdated} servers outdated"),
                ));
            }
            outdated
        }
    };

    let ready = found
        .pods
        .iter()
        .filter(|p| pod_ordinal(&name, &p.name_any()).is_some_and(|o| o < sts_replicas))
        .filter(|p| pod_ready(p))
        .count() as i32;
    let observed = Observed {
        generation: cluster.metadata.generation,
        desired: validated.replicas,
        servers: sts_replicas,
        ready,
        leader,
        leader_error,
        outdated,
        progress,
    };
    let status = build_status(&observed, &previous, &now());
    status::patch_status(&ctx.client, &namespace, &name, &status)
        .await
        .map_err(Error::PatchStatus)?;
    Ok(if is_progressing(&status) {
        Action::requeue(REQUEUE_PROGRESSING)
    } else {
        Action::requeue(REQUEUE_SETTLED)
    })
}

/// Invalid specs wait for a change; everything else is retried.
pub fn error_policy(cluster: Arc<ConsulCluster>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(
        cluster = %cluster.name_any(),
        category = error.category(),
        error = %error,
        "reconcile failed"
    );
    match error {
        Error::InvalidCluster(_) => Action::await_change(),
        _ => Action::requeue(Duration::from_secs(15)),
    }
}

/// Runs the ConsulCluster controller until a termination signal arrives.
pub async fn run(ctx: Arc<Context>, namespace: Option<&str>) {
    let client = ctx.client.clone();
    fn api<K>(client: &Client, ns: Option<&str>) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        match ns {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        }
    }
    let owned =
        watcher::Config::default().labels(&format!("app.kubernetes.io/managed-by={MANAGER}"));
    Controller::new(
        api::<ConsulCluster>(&client, namespace),
        watcher::Config::default(),
    )
    .owns(api::<StatefulSet>(&client, namespace), owned.clone())
    .owns(api::<Service>(&client, namespace), owned.clone())
    .owns(api::<ConfigMap>(&client, namespace), owned.clone())
    .owns(api::<PodDisruptionBudget>(&client, namespace), owned)
    .shutdown_on_signal()
    .run(reconcile, error_policy, ctx)
    .for_each(|res| async move {
        match res {
            Ok((obj, _)) => tracing::debug!(cluster = %obj.name, "reconciled"),
            Err(e) => tracing::debug!(error = %e, "controller event"),
        }
    })
    .await;
}

#[cfg(test)]
mod tests;
