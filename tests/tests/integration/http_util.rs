//! Small blocking HTTP helpers returning status, headers and body.

use integration_tests::harness::Node;
use reqwest::blocking::{Client, Response};
use serde_json::Value;
use std::time::Duration;

pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    }
    pub fn index(&self) -> u64 {
        self.header("X-Consul-Index")
            .parse()
            .unwrap_or_else(|_| panic!("no X-Consul-Index in {:?}", self.headers))
    }
}

fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(700))
        .build()
        .expect("client")
}

fn wrap(r: Response) -> Resp {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.text().unwrap_or_default();
    Resp {
        status,
        headers,
        body,
    }
}

pub fn get(n: &Node, path: &str) -> Resp {
    wrap(client().get(n.url(path)).send().expect("GET"))
}

pub fn put(n: &Node, path: &str, body: impl Into<reqwest::blocking::Body>) -> Resp {
    wrap(client().put(n.url(path)).body(body).send().expect("PUT"))
}

pub fn put_json(n: &Node, path: &str, v: &Value) -> Resp {
    put(n, path, v.to_string())
}

pub fn delete(n: &Node, path: &str) -> Resp {
    wrap(client().delete(n.url(path)).send().expect("DELETE"))
}

pub fn request(n: &Node, method: &str, path: &str) -> Resp {
    let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    wrap(client().request(m, n.url(path)).send().expect("request"))
}

/// A server's RPC address (`ip:port`) as its gossip tags advertise it.
pub fn rpc_addr(n: &Node) -> String {
    let me = get(n, "/v1/agent/self").json();
    format!(
        "{}:{}",
        me["Member"]["Addr"].as_str().unwrap(),
        me["Member"]["Tags"]["port"].as_str().unwrap()
    )
}

/// One of three servers (`-bootstrap-expect=3`), started without waiting for a leader,
/// joining `join` if given, with these config files.
pub fn cluster_server(name: &str, join: Option<&str>, config: Vec<(String, String)>) -> Node {
    let mut extra = vec!["-retry-interval=1s".to_string()];
    if let Some(j) = join {
        extra.push(format!("-retry-join={j}"));
    }
    Node::start(integration_tests::harness::NodeOptions {
        name: Some(name.into()),
        bootstrap_expect: Some(3),
        no_wait: true,
        extra,
        config,
        ..Default::default()
    })
}
