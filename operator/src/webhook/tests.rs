//! The webhook end to end: an AdmissionReview over HTTPS (rustls, with the rcgen
//! certificate) against a mock API server.

use base64::Engine;
use k8s_openapi::jiff::Timestamp;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use super::{certs, router, serve_tls, tls_acceptor, WebhookState};
use crate::fixtures::{
    cluster, defaults, list, mock_client, pod_with_labels, service_definition, ApiServer,
};

const SDS: &str = "/apis/praetor.dev/v1alpha1/namespaces/default/servicedefinitions";
const CCS: &str = "/apis/praetor.dev/v1alpha1/namespaces/default/consulclusters";
const HOST: &str = "praetor-webhook.praetor-system.svc";

fn review(pod: &k8s_openapi::api::core::v1::Pod) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "req-1",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "default",
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:default:deployer"},
            "object": pod,
            "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}
        }
    })
}

/// Starts the HTTPS webhook on a free port; returns the API server mock, a client that
/// trusts the generated CA, the URL, and a stopper.
async fn start() -> (
    ApiServer,
    reqwest::Client,
    String,
    tokio::sync::oneshot::Sender<()>,
) {
    let (client, api) = mock_client();
    let names = certs::service_dns_names("praetor-webhook", "praetor-system", "cluster.local");
    let cert = certs::generate(&names, Timestamp::now()).unwrap();
    let acceptor = tls_acceptor(&cert.cert_pem, &cert.key_pem).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let app = router(WebhookState {
        client,
        defaults: defaults(),
    });
    tokio::spawn(serve_tls(listener, acceptor, app, async {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.ca_pem.as_bytes()).unwrap())
        .resolve(HOST, addr)
        .build()
        .unwrap();
    (
        api,
        http,
        format!("https://{HOST}:{}/mutate", addr.port()),
        stop,
    )
}

#[tokio::test]
async fn injects_over_https() {
    let (mut api, http, url, stop) = start().await;
    let pod = pod_with_labels("web-abc", &[("app", "web")], None);
    let body = review(&pod);
    let call = tokio::spawn(async move {
        let resp = http.post(url).json(&body).send().await.unwrap();
        assert!(resp.status().is_success());
        resp.json::<Value>().await.unwrap()
    });
    let sd = serde_json::to_value(service_definition("web", "praetor", &[("app", "web")])).unwrap();
    api.expect("GET", SDS).await.respond(
        200,
        list("ServiceDefinition", "praetor.dev/v1alpha1", vec![sd]),
    );
    let cc = serde_json::to_value(cluster("praetor", 3)).unwrap();
    api.expect("GET", CCS)
        .await
        .respond(200, list("ConsulCluster", "praetor.dev/v1alpha1", vec![cc]));
    let answer = call.await.unwrap();
    let resp = &answer["response"];
    assert_eq!(answer["kind"], "AdmissionReview");
    assert_eq!(resp["uid"], "req-1");
    assert_eq!(resp["allowed"], true);
    assert_eq!(resp["patchType"], "JSONPatch", "{answer}");
    let patch = base64::engine::general_purpose::STANDARD
        .decode(resp["patch"].as_str().unwrap())
        .unwrap();
    let patch: json_patch::Patch = serde_json::from_slice(&patch).unwrap();
    let mut doc = serde_json::to_value(&pod).unwrap();
    json_patch::patch(&mut doc, &patch).unwrap();
    assert_eq!(doc["spec"]["containers"][1]["name"], "praetor-agent");
    assert_eq!(
        doc["metadata"]["annotations"]["praetor.dev/services"],
        "web"
    );
    let _ = stop.send(());
}

#[tokio::test]
async fn forbidden_list_admits_the_pod_unchanged_with_a_warning() {
    let (mut api, http, url, stop) = start().await;
    let pod = pod_with_labels("web-abc", &[("app", "web")], None);
    let body = review(&pod);
    let call = tokio::spawn(async move {
        http.post(url)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    });
    api.expect("GET", SDS).await.fail(403, "Forbidden");
    api.expect("GET", CCS)
        .await
        .respond(200, list("ConsulCluster", "praetor.dev/v1alpha1", vec![]));
    let answer = call.await.unwrap();
    let resp = &answer["response"];
    assert_eq!(resp["allowed"], true);
    assert!(resp.get("patch").is_none_or(Value::is_null));
    assert!(resp["warnings"][0]
        .as_str()
        .unwrap()
        .contains("not injected"));
    let _ = stop.send(());
}

#[tokio::test]
async fn malformed_review_is_answered_not_crashed() {
    let (_api, http, url, stop) = start().await;
    let resp = http
        .post(&url)
        .json(&json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(answer["response"]["allowed"], false);
    // Not JSON at all: axum rejects it with a client error.
    let resp = http.post(&url).body("nope").send().await.unwrap();
    assert!(resp.status().is_client_error());
    let _ = stop.send(());
}

#[tokio::test]
async fn untrusted_clients_cannot_complete_the_handshake() {
    let (_api, _http, url, stop) = start().await;
    let addr: std::net::SocketAddr = format!(
        "127.0.0.1:{}",
        url.rsplit(':').next().unwrap().trim_end_matches("/mutate")
    )
    .parse()
    .unwrap();
    let stranger = reqwest::Client::builder()
        .resolve(HOST, addr)
        .build()
        .unwrap();
    assert!(stranger.post(&url).body("{}").send().await.is_err());
    let _ = stop.send(());
}
