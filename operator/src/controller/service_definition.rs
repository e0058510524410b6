//! The ServiceDefinition controller: checks a definition (pure, shared with the webhook)
//! and reports in its status whether its cluster exists and how many pods it selects and
//! how many of them carry the sidecar. The registration itself happens in the sidecars.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{ListParams, Patch, PatchParams};
use kube::core::{Selector, SelectorExt};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use serde_json::json;

use super::Context;
use crate::crd::v1alpha1::{CheckSpec, ConsulCluster, ServiceDefinition, ServiceDefinitionStatus};
use crate::webhook::patch::SIDECAR_CONTAINER;

/// Why a ServiceDefinition is unusable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DefinitionError {
    /// The selector cannot be turned into a label selector.
    #[error("spec.selector: {0}")]
    Selector(String),
    /// The selector would select every pod in the namespace.
    #[error("spec.selector must not be empty: it would select every pod")]
    EmptySelector,
    /// A check sets no kind or several.
    #[error("check {index}: exactly one of http, tcp, grpc and ttl must be set")]
    CheckKind {
        /// Index in `spec.checks`.
        index: usize,
    },
    /// A check that runs periodically has no interval.
    #[error("check {index}: http, tcp and grpc checks need an interval")]
    CheckInterval {
        /// Index in `spec.checks`.
        index: usize,
    },
    /// The service name is not a DNS label (it must resolve as `<name>.service.consul`).
    #[error("service name {0:?} must be a DNS label")]
    ServiceName(String),
}

/// Errors of the ServiceDefinition reconcile.
#[derive(Debug, thiserror::Error)]
pub enum SdError {
    /// Reading the ConsulCluster failed.
    #[error("reading ConsulCluster {name}: {source}")]
    GetCluster {
        /// Its name.
        name: String,
        /// The cause.
        #[source]
        source: kube::Error,
    },
    /// Listing the selected pods failed.
    #[error("listing the selected pods: {0}")]
    ListPods(#[source] kube::Error),
    /// Writing the status failed.
    #[error("writing the ServiceDefinition status: {0}")]
    PatchStatus(#[source] kube::Error),
}

fn check_kinds(c: &CheckSpec) -> usize {
    [&c.http, &c.tcp, &c.grpc, &c.ttl]
        .iter()
        .filter(|k| k.is_some())
        .count()
}

/// Validates a definition and returns its pod selector. Pure.
pub fn validate_definition(sd: &ServiceDefinition) -> Result<Selector, DefinitionError> {
    let name = sd.service_name();
    let dns_label = !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !name.starts_with('-');
    if !dns_label {
        return Err(DefinitionError::ServiceName(name));
    }
    for (index, c) in sd.spec.checks.iter().enumerate() {
        if check_kinds(c) != 1 {
            return Err(DefinitionError::CheckKind { index });
        }
        if c.ttl.is_none() && c.interval.is_none() {
            return Err(DefinitionError::CheckInterval { index });
        }
    }
    let selector = Selector::try_from(sd.spec.selector.clone())
        .map_err(|e| DefinitionError::Selector(e.to_string()))?;
    if selector.selects_all() {
        return Err(DefinitionError::EmptySelector);
    }
    Ok(selector)
}

/// Whether `sd` selects a pod with these labels (false for invalid definitions).
pub fn selects(
    sd: &ServiceDefinition,
    labels: &std::collections::BTreeMap<String, String>,
) -> bool {
    validate_definition(sd).is_ok_and(|s| s.matches(labels))
}

fn ready_condition(
    ok: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
    previous: &[Condition],
    now: &Time,
) -> Condition {
    let status = if ok { "True" } else { "False" };
    let last_transition_time = previous
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| now.clone());
    Condition {
        type_: "Ready".into(),
        status: status.into(),
        reason: reason.into(),
        message,
        observed_generation: generation,
        last_transition_time,
    }
}

/// Reconciles one ServiceDefinition (status only).
pub async fn reconcile(sd: Arc<ServiceDefinition>, ctx: Arc<Context>) -> Result<Action, SdError> {
    let ns = sd.namespace().unwrap_or_default();
    let name = sd.name_any();
    let previous = sd
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let generation = sd.metadata.generation;
    let mut status = ServiceDefinitionStatus {
        observed_generation: generation,
        ..Default::default()
    };
    let condition = match validate_definition(&sd) {
        Err(e) => ready_condition(
            false,
            "InvalidSpec",
            e.to_string(),
            generation,
            &previous,
            &now,
        ),
        Ok(selector) => {
            let cluster = Api::<ConsulCluster>::namespaced(ctx.client.clone(), &ns)
                .get_opt(&sd.spec.cluster)
                .await
                .map_err(|source| SdError::GetCluster {
                    name: sd.spec.cluster.clone(),
                    source,
                })?;
            let pods = Api::<Pod>::namespaced(ctx.client.clone(), &ns)
                .list(&ListParams::default().labels_from(&selector))
                .await
                .map_err(SdError::ListPods)?;
            status.matching_pods = pods.items.len() as i32;
            status.injected_pods = pods
                .items
                .iter()
                .filter(|p| {
                    p.spec
                        .as_ref()
                        .is_some_and(|s| s.containers.iter().any(|c| c.name == SIDECAR_CONTAINER))
                })
                .count() as i32;
            match cluster {
                None => ready_condition(
                    false,
                    "ClusterNotFound",
                    format!("ConsulCluster {} does not exist in {ns}", sd.spec.cluster),
                    generation,
                    &previous,
                    &now,
                ),
                Some(_) => ready_condition(
                    true,
                    "Accepted",
                    format!(
                        "{} of {} selected pods carry the sidecar",
                        status.injected_pods, status.matching_pods
                    ),
                    generation,
                    &previous,
                    &now,
                ),
            }
        }
    };
    status.conditions = vec![condition];
    Api::<ServiceDefinition>::namespaced(ctx.client.clone(), &ns)
        .patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": status })),
        )
        .await
        .map_err(SdError::PatchStatus)?;
    Ok(Action::requeue(Duration::from_secs(120)))
}

/// Retries failed ServiceDefinition reconciles.
pub fn error_policy(sd: Arc<ServiceDefinition>, error: &SdError, _ctx: Arc<Context>) -> Action {
    tracing::warn!(definition = %sd.name_any(), error = %error, "reconcile failed");
    Action::requeue(Duration::from_secs(30))
}

/// Runs the ServiceDefinition controller until a termination signal arrives.
pub async fn run(ctx: Arc<Context>, namespace: Option<&str>) {
    let api: Api<ServiceDefinition> = match namespace {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    };
    Controller::new(api, watcher::Config::default())
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|_| async {})
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{
        cluster, defaults, list, mock_client, pod_with_labels, service_definition, FakeConsul,
    };
    use std::collections::BTreeMap;

    const SD_STATUS: &str =
        "/apis/praetor.dev/v1alpha1/namespaces/default/servicedefinitions/web/status";

    fn ctx(client: kube::Client) -> Arc<Context> {
        Arc::new(Context {
            client,
            consul: Arc::new(FakeConsul::default()),
            defaults: defaults(),
        })
    }

    #[tokio::test]
    async fn status_counts_pods_and_reports_missing_cluster() {
        let (client, mut api) = mock_client();
        let sd = service_definition("web", "praetor", &[("app", "web")]);
        let task = tokio::spawn(reconcile(Arc::new(sd), ctx(client)));
        api.expect(
            "GET",
            "/apis/praetor.dev/v1alpha1/namespaces/default/consulclusters/praetor",
        )
        .await
        .fail(404, "NotFound");
        let pods = api.expect("GET", "/api/v1/namespaces/default/pods").await;
        assert!(pods.uri.contains("labelSelector=app%3Dweb"), "{}", pods.uri);
        let mut injected = pod_with_labels("web-1", &[("app", "web")], None);
        injected
            .spec
            .as_mut()
            .unwrap()
            .containers
            .push(k8s_openapi::api::core::v1::Container {
                name: SIDECAR_CONTAINER.into(),
                ..Default::default()
            });
        let plain = pod_with_labels("web-2", &[("app", "web")], None);
        pods.respond(
            200,
            list(
                "Pod",
                "v1",
                vec![
                    serde_json::to_value(injected).unwrap(),
                    serde_json::to_value(plain).unwrap(),
                ],
            ),
        );
        let st = api.expect("PATCH", SD_STATUS).await;
        let status = st.body["status"].clone();
        st.respond(
            200,
            serde_json::to_value(service_definition("web", "praetor", &[("app", "web")])).unwrap(),
        );
        assert_eq!(status["matchingPods"], 2);
        assert_eq!(status["injectedPods"], 1);
        assert_eq!(status["conditions"][0]["reason"], "ClusterNotFound");
        assert_eq!(status["conditions"][0]["status"], "False");
        task.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn accepted_definition_and_api_errors() {
        let (client, mut api) = mock_client();
        let sd = service_definition("web", "praetor", &[("app", "web")]);
        let task = tokio::spawn(reconcile(Arc::new(sd.clone()), ctx(client.clone())));
        api.expect(
            "GET",
            "/apis/praetor.dev/v1alpha1/namespaces/default/consulclusters/praetor",
        )
        .await
        .respond(200, serde_json::to_value(cluster("praetor", 3)).unwrap());
        api.expect("GET", "/api/v1/namespaces/default/pods")
            .await
            .respond(200, list("Pod", "v1", vec![]));
        let st = api.expect("PATCH", SD_STATUS).await;
        assert_eq!(st.body["status"]["conditions"][0]["reason"], "Accepted");
        st.respond(200, serde_json::to_value(&sd).unwrap());
        task.await.unwrap().unwrap();

        // 403 listing pods: an error, not a panic.
        let task = tokio::spawn(reconcile(Arc::new(sd), ctx(client)));
        api.expect(
            "GET",
            "/apis/praetor.dev/v1alpha1/namespaces/default/consulclusters/praetor",
        )
        .await
        .respond(200, serde_json::to_value(cluster("praetor", 3)).unwrap());
        api.expect("GET", "/api/v1/namespaces/default/pods")
            .await
            .fail(403, "Forbidden");
        assert!(matches!(task.await.unwrap(), Err(SdError::ListPods(_))));
    }

    #[tokio::test]
    async fn invalid_definition_reads_nothing() {
        let (client, mut api) = mock_client();
        let sd = service_definition("web", "praetor", &[]);
        let task = tokio::spawn(reconcile(Arc::new(sd.clone()), ctx(client)));
        let st = api.expect("PATCH", SD_STATUS).await;
        assert_eq!(st.body["status"]["conditions"][0]["reason"], "InvalidSpec");
        st.respond(200, serde_json::to_value(&sd).unwrap());
        task.await.unwrap().unwrap();
    }

    #[test]
    fn validates_checks_and_selector() {
        let sd = service_definition("web", "praetor", &[("app", "web")]);
        assert!(validate_definition(&sd).is_ok());
        assert!(selects(
            &sd,
            &BTreeMap::from([("app".into(), "web".into())])
        ));
        assert!(!selects(
            &sd,
            &BTreeMap::from([("app".into(), "db".into())])
        ));

        let mut two_kinds = sd.clone();
        two_kinds.spec.checks[0].tcp = Some("localhost:80".into());
        assert_eq!(
            validate_definition(&two_kinds).unwrap_err(),
            DefinitionError::CheckKind { index: 0 }
        );
        let mut no_interval = sd.clone();
        no_interval.spec.checks[0].interval = None;
        assert_eq!(
            validate_definition(&no_interval).unwrap_err(),
            DefinitionError::CheckInterval { index: 0 }
        );
        let empty = service_definition("web", "praetor", &[]);
        assert_eq!(
            validate_definition(&empty).unwrap_err(),
            DefinitionError::EmptySelector
        );
        let mut bad_name = sd;
        bad_name.spec.name = Some("web_api".into());
        assert!(matches!(
            validate_definition(&bad_name),
            Err(DefinitionError::ServiceName(_))
        ));
    }
}
