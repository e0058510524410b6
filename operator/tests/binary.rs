//! Black-box test of the `operator` binary against a fake Kubernetes API server (axum on
//! 127.0.0.1, reached through a kubeconfig): at start-up it stores a webhook certificate in
//! the Secret, patches the CA into the MutatingWebhookConfiguration, and then serves the
//! webhook over HTTPS with that certificate; its controller reconciles a listed
//! ConsulCluster into applied objects and a status.

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine;
use serde_json::{json, Value};

const SECRET: &str = "/api/v1/namespaces/praetor-system/secrets/praetor-operator-webhook-tls";
const MWC: &str =
    "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/praetor-operator";

#[derive(Default)]
struct Seen {
    secret: Option<Value>,
    mwc_patch: Option<Value>,
    /// Paths and bodies of the other PATCH requests (the reconcile's applies).
    patches: Vec<(String, Value)>,
}

/// Collections the operator lists or watches; GETs of anything else are single objects,
/// which do not exist.
const COLLECTIONS: &[&str] = &[
    "consulclusters",
    "servicedefinitions",
    "statefulsets",
    "services",
    "configmaps",
    "poddisruptionbudgets",
    "pods",
];

fn consul_cluster() -> Value {
    json!({
        "apiVersion": "praetor.dev/v1alpha1", "kind": "ConsulCluster",
        "metadata": {"name": "demo", "namespace": "default", "uid": "uid-demo",
                     "resourceVersion": "7", "generation": 1},
        "spec": {"replicas": 3}
    })
}

type Shared = Arc<Mutex<Seen>>;

fn json_response(status: StatusCode, v: Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        v.to_string(),
    )
        .into_response()
}

fn mwc() -> Value {
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "praetor-operator", "resourceVersion": "1"},
        "webhooks": [{
            "name": "inject.praetor.dev",
            "admissionReviewVersions": ["v1"],
            "sideEffects": "None",
            "clientConfig": {"service": {"name": "praetor-operator-webhook", "namespace": "praetor-system", "path": "/mutate"}}
        }]
    })
}

async fn api(State(seen): State<Shared>, req: Request) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let body: Bytes = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    match (method, path.as_str()) {
        (Method::GET, SECRET) => {
            let stored = seen.lock().unwrap().secret.clone();
            match stored {
                Some(s) => json_response(StatusCode::OK, s),
                None => json_response(
                    StatusCode::NOT_FOUND,
                    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404}),
                ),
            }
        }
        (Method::PATCH, SECRET) => {
            seen.lock().unwrap().secret = Some(body.clone());
            json_response(StatusCode::OK, body)
        }
        (Method::GET, MWC) => json_response(StatusCode::OK, mwc()),
        (Method::PATCH, MWC) => {
            seen.lock().unwrap().mwc_patch = Some(body);
            json_response(StatusCode::OK, mwc())
        }
        // Watches end at once; the watcher re-lists after its backoff.
        (Method::GET, _) if query.contains("watch=true") => {
            (StatusCode::OK, [("content-type", "application/json")], "").into_response()
        }
        // Lists: one ConsulCluster, nothing else.
        (Method::GET, p) if COLLECTIONS.iter().any(|c| p.ends_with(&format!("/{c}"))) => {
            let items = if p.ends_with("/consulclusters") {
                vec![consul_cluster()]
            } else {
                vec![]
            };
            json_response(
                StatusCode::OK,
                json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "7"}, "items": items}),
            )
        }
        (Method::GET, _) => json_response(
            StatusCode::NOT_FOUND,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404}),
        ),
        (Method::PATCH, p) => {
            seen.lock()
                .unwrap()
                .patches
                .push((p.to_string(), body.clone()));
            let mut reply = body;
            if p.ends_with("/status") {
                reply = consul_cluster();
            }
            json_response(StatusCode::OK, reply)
        }
        _ => json_response(
            StatusCode::METHOD_NOT_ALLOWED,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 405}),
        ),
    }
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn operator_binary_prepares_and_serves_the_webhook() {
    let seen: Shared = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api_addr = listener.local_addr().unwrap();
    let app = Router::new().fallback(api).with_state(seen.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{api_addr}\n\
             contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: nobody\n    namespace: default\n\
             current-context: fake\nusers:\n- name: nobody\n  user: {{}}\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let _child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_operator"))
            .env_clear()
            .env("KUBECONFIG", &kubeconfig)
            .env("HOME", dir.path())
            .env("RUST_LOG", "warn")
            .env("POD_NAMESPACE", "praetor-system")
            .env("PRAETOR_WEBHOOK_PORT", port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );

    let secret = wait_for("the certificate Secret", || {
        seen.lock().unwrap().secret.clone()
    })
    .await;
    assert_eq!(secret["type"], "kubernetes.io/tls");
    let b64 = base64::engine::general_purpose::STANDARD;
    let field = |k: &str| {
        String::from_utf8(b64.decode(secret["data"][k].as_str().unwrap()).unwrap()).unwrap()
    };
    let ca = field("ca.crt");
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(field("tls.key").contains("PRIVATE KEY"));

    let patch = wait_for("the caBundle patch", || {
        seen.lock().unwrap().mwc_patch.clone()
    })
    .await;
    assert_eq!(patch[0]["op"], "add");
    assert_eq!(patch[0]["path"], "/webhooks/0/clientConfig/caBundle");
    assert_eq!(
        b64.decode(patch[0]["value"].as_str().unwrap()).unwrap(),
        ca.as_bytes()
    );

    // The webhook answers over HTTPS for its Service name, trusted through that CA.
    let host = "praetor-operator-webhook.praetor-system.svc";
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap())
        .resolve(host, format!("127.0.0.1:{port}").parse().unwrap())
        .build()
        .unwrap();
    let health = wait_for_async(|| {
        let http = http.clone();
        async move {
            let r = http
                .get(format!("https://{host}:{port}/healthz"))
                .send()
                .await
                .ok()?;
            r.text().await.ok()
        }
    })
    .await;
    assert_eq!(health, "ok");

    // A pod nothing selects is admitted unchanged.
    let review = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "u-9", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "default", "operation": "CREATE", "userInfo": {},
            "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                       "spec": {"containers": [{"name": "app", "image": "nginx"}]}}
        }
    });
    let answer: Value = http
        .post(format!("https://{host}:{port}/mutate"))
        .json(&review)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["response"]["uid"], "u-9");
    assert_eq!(answer["response"]["allowed"], true);
    assert!(answer["response"].get("patch").is_none());

    // The ConsulCluster the fake lists is reconciled: every object is applied, then the
    // status is written.
    let status = wait_for("the ConsulCluster status", || {
        seen.lock()
            .unwrap()
            .patches
            .iter()
            .find(|(p, _)| p.ends_with("/consulclusters/demo/status"))
            .map(|(_, b)| b.clone())
    })
    .await;
    assert_eq!(status["status"]["servers"], 3);
    let applied: Vec<String> = seen
        .lock()
        .unwrap()
        .patches
        .iter()
        .map(|(p, _)| p.clone())
        .collect();
    for path in [
        "/api/v1/namespaces/default/configmaps/demo-server-config",
        "/api/v1/namespaces/default/services/demo-server",
        "/api/v1/namespaces/default/services/demo",
        "/apis/apps/v1/namespaces/default/statefulsets/demo-server",
        "/apis/policy/v1/namespaces/default/poddisruptionbudgets/demo-server",
    ] {
        assert!(
            applied.iter().any(|p| p == path),
            "{path} not applied: {applied:?}"
        );
    }
}

async fn wait_for_async<T, F, Fut>(mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting for the webhook"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
