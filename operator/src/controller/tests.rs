//! Reconcile flows against a mock API server and a fake Praetor API.

use std::sync::Arc;
use std::time::Duration;

use kube::runtime::controller::Action;
use serde_json::{json, Value};

use super::{error_policy, reconcile, Context, Error, REQUEUE_PROGRESSING, REQUEUE_SETTLED};
use crate::crd::v1alpha1::ConsulCluster;
use crate::fixtures::{
    cluster, defaults, list, metadata_list, mock_client, server_pod, ApiServer, FakeConsul,
};

const NS: &str = "/api/v1/namespaces/default";
const STS: &str = "/apis/apps/v1/namespaces/default/statefulsets/c-server";
const PDBS: &str = "/apis/policy/v1/namespaces/default/poddisruptionbudgets";
const STATUS: &str = "/apis/praetor.dev/v1alpha1/namespaces/default/consulclusters/c/status";

fn start(
    c: ConsulCluster,
    fake: Arc<FakeConsul>,
) -> (
    ApiServer,
    tokio::task::JoinHandle<Result<Action, Error>>,
    Arc<Context>,
) {
    let (client, api) = mock_client();
    let ctx = Arc::new(Context {
        client,
        consul: fake,
        defaults: defaults(),
    });
    let task = tokio::spawn(reconcile(Arc::new(c), ctx.clone()));
    (api, task, ctx)
}

fn sts_json(replicas: i32, update_revision: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "c-server", "namespace": "default"},
        "spec": {"replicas": replicas, "serviceName": "c-server",
                 "selector": {"matchLabels": {"app.kubernetes.io/instance": "c"}},
                 "template": {}},
        "status": {"replicas": replicas, "updateRevision": update_revision}
    })
}

fn pods_json(pods: &[k8s_openapi::api::core::v1::Pod]) -> Value {
    list(
        "Pod",
        "v1",
        pods.iter()
            .map(|p| serde_json::to_value(p).unwrap())
            .collect(),
    )
}

/// Expects the existing StatefulSet lookup and (when it exists) the pod list.
async fn expect_dereference(api: &mut ApiServer, sts: Option<Value>, pods: Value) {
    let seen = api.expect("GET", STS).await;
    match sts {
        None => seen.fail(404, "NotFound"),
        Some(s) => {
            seen.respond(200, s);
            let seen = api.expect("GET", &format!("{NS}/pods")).await;
            assert!(
                seen.uri.contains("labelSelector="),
                "pods are listed by label: {}",
                seen.uri
            );
            seen.respond(200, pods);
        }
    }
}

/// Expects the server-side applies; answers the StatefulSet with `update_revision` in its
/// status. Returns the applied StatefulSet and ConfigMap bodies.
async fn expect_applies(
    api: &mut ApiServer,
    update_revision: Option<&str>,
    pdb: bool,
) -> (Value, Value) {
    let cm = api
        .expect("PATCH", &format!("{NS}/configmaps/c-server-config"))
        .await;
    assert!(
        cm.uri.contains("fieldManager=praetor-operator"),
        "{}",
        cm.uri
    );
    assert!(cm.uri.contains("force=true"), "{}", cm.uri);
    let cm_body = cm.body.clone();
    cm.echo();
    api.expect("PATCH", &format!("{NS}/services/c-server"))
        .await
        .echo();
    api.expect("PATCH", &format!("{NS}/services/c"))
        .await
        .echo();
    let sts = api.expect("PATCH", STS).await;
    let sts_body = sts.body.clone();
    let mut reply = sts.body.clone();
    if let Some(rev) = update_revision {
        reply["status"] = json!({"replicas": 3, "updateRevision": rev});
    }
    sts.respond(200, reply);
    if pdb {
        api.expect("PATCH", &format!("{PDBS}/c-server"))
            .await
            .echo();
    }
    (sts_body, cm_body)
}

/// Expects the three orphan listings, answering with the given existing names.
async fn expect_orphan_lists(api: &mut ApiServer, cms: &[&str], svcs: &[&str], pdbs: &[&str]) {
    api.expect("GET", &format!("{NS}/configmaps"))
        .await
        .respond(200, metadata_list(cms));
    api.expect("GET", &format!("{NS}/services"))
        .await
        .respond(200, metadata_list(svcs));
    api.expect("GET", PDBS)
        .await
        .respond(200, metadata_list(pdbs));
}

async fn expect_status(api: &mut ApiServer) -> Value {
    let seen = api.expect("PATCH", STATUS).await;
    let status = seen.body["status"].clone();
    let mut reply = serde_json::to_value(cluster("c", 3)).unwrap();
    reply["status"] = status.clone();
    seen.respond(200, reply);
    status
}

fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == type_)
        .unwrap_or_else(|| panic!("no {type_} condition in {status}"))
}

async fn finish(task: tokio::task::JoinHandle<Result<Action, Error>>) -> Result<Action, Error> {
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("reconcile finished")
        .expect("reconcile did not panic")
}

#[tokio::test]
async fn create_builds_everything_without_asking_praetor() {
    let fake = Arc::new(FakeConsul::with_servers("c", 3, 0));
    let (mut api, task, _) = start(cluster("c", 3), fake.clone());
    expect_dereference(&mut api, None, Value::Null).await;
    let (sts, cm) = expect_applies(&mut api, None, true).await;
    assert_eq!(sts["spec"]["replicas"], 3);
    assert_eq!(sts["spec"]["updateStrategy"]["type"], "OnDelete");
    assert_eq!(sts["metadata"]["ownerReferences"][0]["uid"], "uid-c");
    let conf: Value = serde_json::from_str(cm["data"]["server.json"].as_str().unwrap()).unwrap();
    assert_eq!(conf["bootstrap_expect"], 3);
    expect_orphan_lists(&mut api, &["c-server-config"], &["c", "c-server"], &[]).await;
    let status = expect_status(&mut api).await;
    assert_eq!(status["servers"], 3);
    assert_eq!(status["readyServers"], 0);
    assert_eq!(condition(&status, "Available")["reason"], "NoLeader");
    assert_eq!(
        condition(&status, "Progressing")["reason"],
        "ServersStarting"
    );
    let action = finish(task).await.unwrap();
    assert_eq!(action, Action::requeue(REQUEUE_PROGRESSING));
    assert!(
        fake.calls().is_empty(),
        "no servers yet: {:?}",
        fake.calls()
    );
}

#[tokio::test]
async fn steady_cluster_is_a_no_op() {
    let fake = Arc::new(FakeConsul::with_servers("c", 3, 0));
    let (mut api, task, _) = start(cluster("c", 3), fake.clone());
    let pods: Vec<_> = (0..3).map(|i| server_pod("c", i, "r1", true)).collect();
    expect_dereference(&mut api, Some(sts_json(3, "r1")), pods_json(&pods)).await;
    let (sts, _) = expect_applies(&mut api, Some("r1"), true).await;
    assert_eq!(sts["spec"]["replicas"], 3);
    expect_orphan_lists(
        &mut api,
        &["c-server-config"],
        &["c", "c-server"],
        &["c-server"],
    )
    .await;
    let status = expect_status(&mut api).await;
    assert_eq!(status["readyServers"], 3);
    assert_eq!(status["leader"], "10.0.0.10:8300");
    assert_eq!(status["outdatedServers"], 0);
    assert_eq!(condition(&status, "Available")["status"], "True");
    assert_eq!(condition(&status, "Progressing")["status"], "False");
    api.expect_silence().await;
    assert_eq!(
        finish(task).await.unwrap(),
        Action::requeue(REQUEUE_SETTLED)
    );
    assert_eq!(
        fake.calls(),
        vec!["leader http://c-server.default.svc.cluster.local:8500".to_string()]
    );
}

#[tokio::test]
async fn scale_down_removes_the_raft_peer_before_shrinking() {
    let fake = Arc::new(FakeConsul::with_servers("c", 3, 0));
    let (mut api, task, _) = start(cluster("c", 1), fake.clone());
    let pods: Vec<_> = (0..3).map(|i| server_pod("c", i, "r1", true)).collect();
    expect_dereference(&mut api, Some(sts_json(3, "r1")), pods_json(&pods)).await;

    api.expect("PATCH", &format!("{NS}/configmaps/c-server-config"))
        .await
        .echo();
    api.expect("PATCH", &format!("{NS}/services/c-server"))
        .await
        .echo();
    api.expect("PATCH", &format!("{NS}/services/c"))
        .await
        .echo();
    let sts = api.expect("PATCH", STS).await;
    // By the time the StatefulSet shrinks, the server is out of Raft.
    assert_eq!(sts.body["spec"]["replicas"], 2);
    assert_eq!(
        fake.calls(),
        vec![
            "leader http://c-server.default.svc.cluster.local:8500".to_string(),
            "raft_servers http://10.0.0.10:8500".to_string(),
            "leave http://10.0.0.12:8500".to_string(),
            "remove_peer http://10.0.0.10:8500 id-c-server-2".to_string(),
        ]
    );
    sts.echo();
    // One server wanted: the PodDisruptionBudget is an orphan now.
    expect_orphan_lists_then_delete_pdb(&mut api).await;
    let status = expect_status(&mut api).await;
    assert_eq!(status["servers"], 2);
    assert_eq!(condition(&status, "Progressing")["reason"], "ScalingDown");
    assert_eq!(
        finish(task).await.unwrap(),
        Action::requeue(REQUEUE_PROGRESSING)
    );
}

async fn expect_orphan_lists_then_delete_pdb(api: &mut ApiServer) {
    api.expect("GET", &format!("{NS}/configmaps"))
        .await
        .respond(200, metadata_list(&["c-server-config"]));
    api.expect("GET", &format!("{NS}/services"))
        .await
        .respond(200, metadata_list(&["c", "c-server"]));
    api.expect("GET", PDBS)
        .await
        .respond(200, metadata_list(&["c-server"]));
    api.expect("DELETE", &format!("{PDBS}/c-server"))
        .await
        .respond(
            200,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}),
        );
}

#[tokio::test]
async fn scale_down_without_leader_keeps_the_servers() {
    let fake = Arc::new(FakeConsul::leaderless());
    let (mut api, task, _) = start(cluster("c", 1), fake.clone());
    let pods: Vec<_> = (0..3).map(|i| server_pod("c", i, "r1", false)).collect();
    expect_dereference(&mut api, Some(sts_json(3, "r1")), pods_json(&pods)).await;
    api.expect("PATCH", &format!("{NS}/configmaps/c-server-config"))
        .await
        .echo();
    api.expect("PATCH", &format!("{NS}/services/c-server"))
        .await
        .echo();
    api.expect("PATCH", &format!("{NS}/services/c"))
        .await
        .echo();
    let sts = api.expect("PATCH", STS).await;
    assert_eq!(
        sts.body["spec"]["replicas"], 3,
        "no shrinking without a leader"
    );
    sts.echo();
    expect_orphan_lists_then_delete_pdb(&mut api).await;
    let status = expect_status(&mut api).await;
    assert_eq!(
        condition(&status, "Progressing")["reason"],
        "ScaleDownBlocked"
    );
    finish(task).await.unwrap();
    assert!(fake.calls().iter().all(|c| !c.starts_with("remove_peer")));
}

#[tokio::test]
async fn upgrade_restarts_one_outdated_follower() {
    let fake = Arc::new(FakeConsul::with_servers("c", 3, 2));
    let (mut api, task, _) = start(cluster("c", 3), fake.clone());
    let pods: Vec<_> = (0..3).map(|i| server_pod("c", i, "r1", true)).collect();
    expect_dereference(&mut api, Some(sts_json(3, "r1")), pods_json(&pods)).await;
    // The template changed: the StatefulSet now reports revision r2.
    expect_applies(&mut api, Some("r2"), true).await;
    expect_orphan_lists(
        &mut api,
        &["c-server-config"],
        &["c", "c-server"],
        &["c-server"],
    )
    .await;
    // c-server-2 leads, so the highest follower goes first.
    api.expect("DELETE", &format!("{NS}/pods/c-server-1"))
        .await
        .respond(200, serde_json::to_value(&pods[1]).unwrap());
    let status = expect_status(&mut api).await;
    assert_eq!(status["outdatedServers"], 3);
    assert_eq!(
        condition(&status, "Progressing")["reason"],
        "RollingUpgrade"
    );
    api.expect_silence().await;
    assert_eq!(
        finish(task).await.unwrap(),
        Action::requeue(REQUEUE_PROGRESSING)
    );
}

#[tokio::test]
async fn upgrade_waits_while_a_server_is_not_ready() {
    let fake = Arc::new(FakeConsul::with_servers("c", 3, 0));
    let (mut api, task, _) = start(cluster("c", 3), fake);
    let pods = vec![
        server_pod("c", 0, "r1", true),
        server_pod("c", 1, "r1", true),
        server_pod("c", 2, "r2", false),
    ];
    expect_dereference(&mut api, Some(sts_json(3, "r2")), pods_json(&pods)).await;
    expect_applies(&mut api, Some("r2"), true).await;
    expect_orphan_lists(
        &mut api,
        &["c-server-config"],
        &["c", "c-server"],
        &["c-server"],
    )
    .await;
    let status = expect_status(&mut api).await;
    assert_eq!(status["outdatedServers"], 2);
    assert_eq!(
        condition(&status, "Progressing")["reason"],
        "UpgradeWaiting"
    );
    finish(task).await.unwrap();
}

#[tokio::test]
async fn unreachable_praetor_shows_in_status() {
    let fake = Arc::new(FakeConsul {
        unreachable: true,
        ..FakeConsul::with_servers("c", 3, 0)
    });
    let (mut api, task, _) = start(cluster("c", 3), fake);
    let pods: Vec<_> = (0..3).map(|i| server_pod("c", i, "r1", false)).collect();
    expect_dereference(&mut api, Some(sts_json(3, "r1")), pods_json(&pods)).await;
    expect_applies(&mut api, Some("r1"), true).await;
    expect_orphan_lists(
        &mut api,
        &["c-server-config"],
        &["c", "c-server"],
        &["c-server"],
    )
    .await;
    let status = expect_status(&mut api).await;
    assert_eq!(condition(&status, "Available")["reason"], "LeaderUnknown");
    assert!(condition(&status, "Available")["message"]
        .as_str()
        .unwrap()
        .contains("unreachable"));
    finish(task).await.unwrap();
}

#[tokio::test]
async fn invalid_spec_is_reported_and_waits_for_a_change() {
    let fake = Arc::new(FakeConsul::default());
    let mut invalid = cluster("c", 0);
    invalid.status = Some(crate::crd::v1alpha1::ConsulClusterStatus {
        servers: 3,
        ready_servers: 3,
        leader: Some("10.0.0.10:8300".into()),
        ..Default::default()
    });
    let (mut api, task, ctx) = start(invalid, fake.clone());
    let status = expect_status(&mut api).await;
    assert_eq!(condition(&status, "Progressing")["reason"], "InvalidSpec");
    assert!(condition(&status, "Progressing")["message"]
        .as_str()
        .unwrap()
        .contains("spec.replicas"));
    // What was last seen of the servers stays.
    assert_eq!(status["readyServers"], 3);
    assert_eq!(status["leader"], "10.0.0.10:8300");
    assert!(fake.calls().is_empty());
    let err = finish(task).await.unwrap_err();
    assert!(matches!(err, Error::InvalidCluster(_)), "{err}");
    assert_eq!(
        error_policy(Arc::new(cluster("c", 0)), &err, ctx),
        Action::await_change()
    );
}

#[tokio::test]
async fn forbidden_read_is_an_error() {
    let (mut api, task, ctx) = start(cluster("c", 3), Arc::new(FakeConsul::default()));
    api.expect("GET", STS).await.fail(403, "Forbidden");
    let err = finish(task).await.unwrap_err();
    assert!(matches!(err, Error::Dereference(_)), "{err}");
    assert!(err.to_string().contains("StatefulSet c-server"), "{err}");
    assert_eq!(
        error_policy(Arc::new(cluster("c", 3)), &err, ctx),
        Action::requeue(Duration::from_secs(15))
    );
}

#[tokio::test]
async fn apply_conflict_is_an_error() {
    let (mut api, task, _) = start(cluster("c", 3), Arc::new(FakeConsul::default()));
    expect_dereference(&mut api, None, Value::Null).await;
    api.expect("PATCH", &format!("{NS}/configmaps/c-server-config"))
        .await
        .fail(409, "Conflict");
    let err = finish(task).await.unwrap_err();
    assert!(matches!(err, Error::Apply(_)), "{err}");
    assert!(
        err.to_string().contains("ConfigMap c-server-config"),
        "{err}"
    );
}

#[tokio::test]
async fn missing_cluster_on_status_write_is_an_error() {
    let (mut api, task, _) = start(cluster("c", 3), Arc::new(FakeConsul::default()));
    expect_dereference(&mut api, None, Value::Null).await;
    expect_applies(&mut api, None, true).await;
    expect_orphan_lists(&mut api, &[], &[], &[]).await;
    api.expect("PATCH", STATUS).await.fail(404, "NotFound");
    let err = finish(task).await.unwrap_err();
    assert!(matches!(err, Error::PatchStatus(_)), "{err}");
}

#[tokio::test]
async fn orphans_are_deleted_and_a_vanished_one_is_fine() {
    let (mut api, task, _) = start(cluster("c", 3), Arc::new(FakeConsul::default()));
    expect_dereference(&mut api, None, Value::Null).await;
    expect_applies(&mut api, None, true).await;
    api.expect("GET", &format!("{NS}/configmaps"))
        .await
        .respond(200, metadata_list(&["c-server-config", "c-old-config"]));
    api.expect("DELETE", &format!("{NS}/configmaps/c-old-config"))
        .await
        .fail(404, "NotFound");
    api.expect("GET", &format!("{NS}/services"))
        .await
        .respond(200, metadata_list(&["c", "c-server", "c-ui"]));
    api.expect("DELETE", &format!("{NS}/services/c-ui"))
        .await
        .respond(
            200,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}),
        );
    api.expect("GET", PDBS)
        .await
        .respond(200, metadata_list(&["c-server"]));
    expect_status(&mut api).await;
    finish(task).await.unwrap();
}

#[tokio::test]
async fn failed_peer_removal_stops_before_shrinking() {
    let fake = Arc::new(FakeConsul {
        remove_fails: Some(false),
        ..FakeConsul::with_servers("c", 3, 0)
    });
    let (mut api, task, _) = start(cluster("c", 1), fake);
    let pods: Vec<_> = (0..3).map(|i| server_pod("c", i, "r1", true)).collect();
    expect_dereference(&mut api, Some(sts_json(3, "r1")), pods_json(&pods)).await;
    let err = finish(task).await.unwrap_err();
    assert!(matches!(err, Error::Membership(_)), "{err}");
    // Nothing was applied: the StatefulSet keeps its three servers.
    api.expect_silence().await;
}
