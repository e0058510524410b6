//! Test fixtures: object builders, a fake Praetor API, and a mock Kubernetes API server
//! (tower-test) that plays scripted answers and lets tests assert each request.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::{Container, Pod, PodCondition, PodSpec, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::client::Body;
use kube::Client;
use serde_json::{json, Value};

use crate::consul::{ConsulApi, ConsulApiError, RaftServer};
use crate::controller::build::pod_name;
use crate::controller::validate::{validate, Defaults, ValidatedCluster};
use crate::crd::v1alpha1::{
    CheckSpec, ConsulCluster, ConsulClusterSpec, ServiceDefinition, ServiceDefinitionSpec,
    StorageSpec,
};

/// Operator defaults used by the tests.
pub fn defaults() -> Defaults {
    Defaults {
        image: "ghcr.io/praetor-dev/praetor:0.1.0".into(),
        cluster_domain: "cluster.local".into(),
    }
}

/// A ConsulCluster in `default` with the given replicas and defaults otherwise.
pub fn cluster(name: &str, replicas: i32) -> ConsulCluster {
    let mut c = ConsulCluster::new(
        name,
        ConsulClusterSpec {
            replicas,
            image: None,
            image_pull_policy: None,
            datacenter: "dc1".into(),
            storage: StorageSpec::default(),
            resources: None,
            gossip_encryption: None,
            tls: None,
            acl: None,
            ui: true,
            extra_config: None,
        },
    );
    c.metadata.namespace = Some("default".into());
    c.metadata.uid = Some(format!("uid-{name}"));
    c.metadata.generation = Some(1);
    c
}

/// [`cluster`], validated.
pub fn validated(name: &str, replicas: i32) -> ValidatedCluster {
    validate(&cluster(name, replicas), &defaults()).expect("fixture cluster is valid")
}

/// The IP of server pod `ordinal` in fixtures: `10.0.0.1<ordinal>`.
pub fn pod_ip(ordinal: i32) -> String {
    format!("10.0.0.1{ordinal}")
}

/// A server pod of `cluster` with a template revision and readiness.
pub fn server_pod(cluster: &str, ordinal: i32, revision: &str, ready: bool) -> Pod {
    let mut labels = crate::controller::build::server_selector(cluster);
    labels.insert("controller-revision-hash".into(), revision.into());
    Pod {
        metadata: ObjectMeta {
            name: Some(pod_name(cluster, ordinal)),
            namespace: Some("default".into()),
            labels: Some(labels),
            ..Default::default()
        },
        spec: None,
        status: Some(PodStatus {
            pod_ip: Some(pod_ip(ordinal)),
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                ..Default::default()
            }]),
            ..Default::default()
        }),
    }
}

/// An application pod with labels and optional annotations.
pub fn pod_with_labels(
    name: &str,
    labels: &[(&str, &str)],
    annotations: Option<&[(&str, &str)]>,
) -> Pod {
    let map = |kv: &[(&str, &str)]| -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(map(labels)),
            annotations: annotations.map(map),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "app".into(),
                image: Some("nginx:1.27".into()),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A ServiceDefinition for port 8080 with one HTTP check, selecting `labels`.
pub fn service_definition(name: &str, cluster: &str, labels: &[(&str, &str)]) -> ServiceDefinition {
    let mut sd = ServiceDefinition::new(
        name,
        ServiceDefinitionSpec {
            cluster: cluster.into(),
            name: None,
            port: 8080,
            tags: vec!["v1".into()],
            meta: BTreeMap::new(),
            checks: vec![CheckSpec {
                http: Some("http://localhost:8080/healthz".into()),
                interval: Some("10s".into()),
                ..Default::default()
            }],
            selector: LabelSelector {
                match_labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            },
        },
    );
    sd.metadata.namespace = Some("default".into());
    sd
}

/// A fake Praetor API: a fixed leader and Raft configuration; records every call.
#[derive(Default)]
pub struct FakeConsul {
    /// The leader's Raft address.
    pub leader: Mutex<Option<String>>,
    /// The Raft configuration.
    pub servers: Mutex<Vec<RaftServer>>,
    /// Calls made, as `"<method> <base> [arg]"`.
    pub calls: Mutex<Vec<String>>,
    /// Make every call fail.
    pub unreachable: bool,
    /// `remove_peer` answers an error; `Some(true)`: the server is gone anyway (the leader
    /// removed it by itself), `Some(false)`: it stays.
    pub remove_fails: Option<bool>,
}

impl FakeConsul {
    /// `n` servers of `cluster`, server `leader` leading.
    pub fn with_servers(cluster: &str, n: i32, leader: i32) -> Self {
        let servers = (0..n)
            .map(|i| RaftServer {
                id: format!("id-{}", pod_name(cluster, i)),
                node: pod_name(cluster, i),
                address: format!("{}:8300", pod_ip(i)),
                leader: i == leader,
                voter: true,
            })
            .collect();
        Self {
            leader: Mutex::new(Some(format!("{}:8300", pod_ip(leader)))),
            servers: Mutex::new(servers),
            ..Default::default()
        }
    }

    /// A cluster without a leader.
    pub fn leaderless() -> Self {
        Self::default()
    }

    /// The calls made so far.
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    fn record(&self, call: String) -> Result<(), ConsulApiError> {
        self.calls.lock().unwrap().push(call.clone());
        if self.unreachable {
            return Err(ConsulApiError::Status {
                url: call,
                status: 503,
                body: "unreachable".into(),
            });
        }
        Ok(())
    }
}

#[async_trait]
impl ConsulApi for FakeConsul {
    async fn leader(&self, base: &str) -> Result<Option<String>, ConsulApiError> {
        self.record(format!("leader {base}"))?;
        Ok(self.leader.lock().unwrap().clone())
    }
    async fn raft_servers(&self, base: &str) -> Result<Vec<RaftServer>, ConsulApiError> {
        self.record(format!("raft_servers {base}"))?;
        Ok(self.servers.lock().unwrap().clone())
    }
    async fn remove_peer(&self, base: &str, id: &str) -> Result<(), ConsulApiError> {
        self.record(format!("remove_peer {base} {id}"))?;
        if let Some(gone) = self.remove_fails {
            if gone {
                self.servers.lock().unwrap().retain(|s| s.id != id);
            }
            return Err(ConsulApiError::Status {
                url: format!("{base}/v1/operator/raft/peer"),
                status: 500,
                body: "mock failure".into(),
            });
        }
        self.servers.lock().unwrap().retain(|s| s.id != id);
        Ok(())
    }
    async fn transfer_leader(&self, base: &str) -> Result<(), ConsulApiError> {
        self.record(format!("transfer_leader {base}"))
    }
    async fn leave(&self, base: &str) -> Result<(), ConsulApiError> {
        self.record(format!("leave {base}"))
    }
}

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// A mock Kubernetes API server: each `expect` takes the next request, checks its method
/// and path, and answers.
pub struct ApiServer {
    handle: Handle,
}

/// One request the client sent.
pub struct Seen {
    /// Path and query.
    pub uri: String,
    /// JSON body (`Null` when empty).
    pub body: Value,
    send: tower_test::mock::SendResponse<Response<Body>>,
}

impl Seen {
    /// Answers with `status` and a JSON body.
    pub fn respond(self, status: u16, body: Value) {
        let resp = Response::builder()
            .status(StatusCode::from_u16(status).unwrap())
            .header("content-type", "application/json")
            .body(Body::from(serde_json::to_vec(&body).unwrap()))
            .unwrap();
        self.send.send_response(resp);
    }

    /// Answers 200 with the request body (what server-side apply returns, roughly).
    pub fn echo(self) {
        let body = self.body.clone();
        self.respond(200, body);
    }

    /// Answers with a Kubernetes `Status` error.
    pub fn fail(self, code: u16, reason: &str) {
        self.respond(
            code,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                   "message": format!("mock {reason}"), "reason": reason, "code": code}),
        );
    }
}

/// A client wired to a fresh mock API server.
pub fn mock_client() -> (Client, ApiServer) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    (Client::new(service, "default"), ApiServer { handle })
}

impl ApiServer {
    /// Takes the next request and asserts its method and path (without the query).
    pub async fn expect(&mut self, method: &str, path: &str) -> Seen {
        let (req, send) = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            self.handle.next_request(),
        )
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {method} {path}"))
        .unwrap_or_else(|| panic!("client gone before {method} {path}"));
        let uri = req.uri().to_string();
        assert_eq!(
            (req.method().as_str(), req.uri().path()),
            (method, path),
            "unexpected request {uri}"
        );
        let bytes = req.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        Seen { uri, body, send }
    }

    /// Asserts that no further request arrives within a short time.
    pub async fn expect_silence(&mut self) {
        let next = tokio::time::timeout(
            std::time::Duration::from_millis(200),
            self.handle.next_request(),
        )
        .await;
        if let Ok(Some((req, _))) = next {
            panic!("unexpected request {} {}", req.method(), req.uri());
        }
    }
}

/// An empty metadata list as `list_metadata` expects.
pub fn metadata_list(names: &[&str]) -> Value {
    json!({
        "apiVersion": "meta.k8s.io/v1",
        "kind": "PartialObjectMetadataList",
        "metadata": {},
        "items": names.iter().map(|n| json!({
            "apiVersion": "meta.k8s.io/v1",
            "kind": "PartialObjectMetadata",
            "metadata": {"name": n, "namespace": "default"}
        })).collect::<Vec<_>>(),
    })
}

/// A list of objects of `kind`.
pub fn list(kind: &str, api_version: &str, items: Vec<Value>) -> Value {
    json!({"apiVersion": api_version, "kind": format!("{kind}List"), "metadata": {}, "items": items})
}

/// The config keys Praetor's agent knows, read from its key tables
/// (`agent/src/config/keys.rs`, entries `k("name", ..)` and `ka("name", ..)`), so the
/// configs the operator renders are checked against the agent without linking it.
pub fn agent_config_keys() -> std::collections::BTreeSet<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../agent/src/config/keys.rs");
    let src = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let mut keys = std::collections::BTreeSet::new();
    for prefix in ["k(\"", "ka(\""] {
        for (i, _) in src.match_indices(prefix) {
            // Only whole identifiers `k`/`ka`, not the end of e.g. `check("`.
            let prev = src[..i].chars().last();
            if prev.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let rest = &src[i + prefix.len()..];
            if let Some(end) = rest.find('"') {
                keys.insert(rest[..end].to_string());
            }
        }
    }
    assert!(keys.len() > 100, "found only {} keys in {path}", keys.len());
    keys
}

/// Asserts that every object key in `v` is a key Praetor's agent knows, not descending into
/// the values of `free_form` keys (maps with user-chosen keys, or free-form objects).
pub fn assert_known_keys(v: &Value, free_form: &[&str], path: &str) {
    thread_local! {
        static KEYS: std::collections::BTreeSet<String> = agent_config_keys();
    }
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let known = KEYS.with(|keys| keys.contains(k));
                assert!(known, "{path}/{k}: not a key Praetor's agent knows");
                if !free_form.contains(&k.as_str()) {
                    assert_known_keys(child, free_form, &format!("{path}/{k}"));
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                assert_known_keys(item, free_form, &format!("{path}/{i}"));
            }
        }
        _ => {}
    }
}
