//! The check runners: HTTP, TCP, UDP, script, gRPC health and alias, each behind
//! [`CheckRunner`]. A run returns a status and an output; the supervisor applies the status
//! handler and the output limit.

use crate::agent::Agent;
use crate::types::{CheckDefinition, HEALTH_CRITICAL, HEALTH_PASSING, HEALTH_WARNING};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// One run's result.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    pub status: &'static str,
    pub output: String,
}

fn res(status: &'static str, output: impl Into<String>) -> CheckResult {
    CheckResult {
        status,
        output: output.into(),
    }
}

/// A boxed future, so runners can sit behind `dyn CheckRunner`.
pub type BoxFut<'a> = Pin<Box<dyn Future<Output = CheckResult> + Send + 'a>>;

/// Something that can check once.
pub trait CheckRunner: Send + Sync {
    /// Run the check once (the caller bounds it with the timeout).
    fn check<'a>(&'a self, agent: &'a Agent) -> BoxFut<'a>;
}

/// Build the runner for a definition (None for TTL and unknown kinds).
pub fn runner_for(
    def: &CheckDefinition,
    timeout: Duration,
    max_output: usize,
) -> Option<Box<dyn CheckRunner>> {
    Some(match def.kind() {
        "http" => Box::new(HttpCheck::new(def, timeout, max_output)),
        "tcp" => Box::new(TcpCheck {
            addr: def.tcp.clone(),
            timeout,
        }),
        "udp" => Box::new(UdpCheck {
            addr: def.udp.clone(),
            timeout,
        }),
        "script" => Box::new(ScriptCheck {
            args: def.args.clone(),
            script: def.script.clone(),
            timeout,
            max_output,
        }),
        "grpc" => Box::new(GrpcCheck::new(def, timeout)),
        "alias" => Box::new(AliasCheck {
            node: def.alias_node.clone(),
            service: def.alias_service.clone(),
        }),
        _ => return None,
    })
}

/// HTTP: 2xx passing, 429 warning, anything else critical.
pub struct HttpCheck {
    client: Option<reqwest::Client>,
    url: String,
    method: reqwest::Method,
    headers: Vec<(String, String)>,
    body: String,
    max_output: usize,
}

impl HttpCheck {
    fn new(def: &CheckDefinition, timeout: Duration, max_output: usize) -> Self {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .danger_accept_invalid_certs(def.tls_skip_verify)
            .redirect(reqwest::redirect::Policy::limited(10))
            .build()
            .ok();
        let method = reqwest::Method::from_bytes(if def.method.is_empty() {
            b"GET"
        } else {
            def.method.as_bytes()
        })
        .unwrap_or(reqwest::Method::GET);
        HttpCheck {
            client,
            url: def.http.clone(),
            method,
            headers: def
                .header
                .iter()
                .flat_map(|(k, vs)| vs.iter().map(move |v| (k.clone(), v.clone())))
                .collect(),
            body: def.body.clone(),
            max_output,
        }
    }
}

impl CheckRunner for HttpCheck {
    fn check<'a>(&'a self, _agent: &'a Agent) -> BoxFut<'a> {
        Box::pin(async move {
            let Some(client) = &self.client else {
                return res(HEALTH_CRITICAL, "http client could not be built");
            };
            let mut rb = client
                .request(self.method.clone(), &self.url)
                .header("User-Agent", "Consul Health Check");
            for (k, v) in &self.headers {
                rb = rb.header(k, v);
            }
            if !self.body.is_empty() {
                rb = rb.body(self.body.clone());
            }
            match rb.send().await {
                Err(e) => res(HEALTH_CRITICAL, format!("Get \"{}\": {e}", self.url)),
                Ok(mut r) => {
                    let code = r.status();
                    let mut body = Vec::new();
                    while body.len() < self.max_output {
                        match r.chunk().await {
                            Ok(Some(c)) => body.extend_from_slice(&c),
                            _ => break,
                        }
                    }
                    body.truncate(self.max_output);
                    let out = format!(
                        "HTTP {} {}: {} Output: {}",
                        self.method,
                        self.url,
                        code,
                        String::from_utf8_lossy(&body)
                    );
                    let status = if code.is_success() {
                        HEALTH_PASSING
                    } else if code.as_u16() == 429 {
                        HEALTH_WARNING
                    } else {
                        HEALTH_CRITICAL
                    };
                    res(status, out)
                }
            }
        })
    }
}

/// TCP: a connection within the timeout is passing.
pub struct TcpCheck {
    addr: String,
    timeout: Duration,
}

impl CheckRunner for TcpCheck {
    fn check<'a>(&'a self, _agent: &'a Agent) -> BoxFut<'a> {
        Box::pin(async move {
            match tokio::time::timeout(self.timeout, tokio::net::TcpStream::connect(&self.addr))
                .await
            {
                Ok(Ok(_)) => res(
                    HEALTH_PASSING,
                    format!("TCP connect {}: Success", self.addr),
                ),
                Ok(Err(e)) => res(HEALTH_CRITICAL, format!("dial tcp {}: {e}", self.addr)),
                Err(_) => res(
                    HEALTH_CRITICAL,
                    format!("dial tcp {}: i/o timeout", self.addr),
                ),
            }
        })
    }
}

/// UDP: a datagram is sent; an answer or silence is passing, a refusal (ICMP) critical.
pub struct UdpCheck {
    addr: String,
    timeout: Duration,
}

impl CheckRunner for UdpCheck {
    fn check<'a>(&'a self, _agent: &'a Agent) -> BoxFut<'a> {
        Box::pin(async move {
            let bind = if self.addr.starts_with('[') {
                "[::]:0"
            } else {
                "0.0.0.0:0"
            };
            let sock = match tokio::net::UdpSocket::bind(bind).await {
                Ok(s) => s,
                Err(e) => return res(HEALTH_CRITICAL, format!("udp: {e}")),
            };
            if let Err(e) = sock.connect(&self.addr).await {
                return res(HEALTH_CRITICAL, format!("dial udp {}: {e}", self.addr));
            }
            if let Err(e) = sock.send(b"consul-check").await {
                return res(HEALTH_CRITICAL, format!("write udp {}: {e}", self.addr));
            }
            let mut buf = [0u8; 1024];
            match tokio::time::timeout(self.timeout, sock.recv(&mut buf)).await {
                Ok(Ok(_)) => res(HEALTH_PASSING, format!("UDP send {}: Success", self.addr)),
                Ok(Err(e)) => res(HEALTH_CRITICAL, format!("read udp {}: {e}", self.addr)),
                Err(_) => res(
                    HEALTH_PASSING,
                    format!(
                        "UDP send {}: Success (no response before timeout)",
                        self.addr
                    ),
                ),
            }
        })
    }
}

/// Script: exit 0 passing, 1 warning, else critical; killed (with its process group) on
/// timeout; output capped while the rest is drained.
pub struct ScriptCheck {
    args: Vec<String>,
    script: String,
    timeout: Duration,
    max_output: usize,
}

async fn read_capped<R: tokio::io::AsyncRead + Unpin>(mut r: R, max: usize) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = vec![0u8; 8192];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => return kept,
            Ok(n) => {
                let room = max.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
}

impl CheckRunner for ScriptCheck {
    fn check<'a>(&'a self, _agent: &'a Agent) -> BoxFut<'a> {
        Box::pin(async move {
            let mut cmd = if !self.args.is_empty() {
                let mut c = tokio::process::Command::new(&self.args[0]);
                c.args(&self.args[1..]);
                c
            } else {
                let mut c = tokio::process::Command::new("/bin/sh");
                c.arg("-c").arg(&self.script);
                c
            };
            cmd.stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .process_group(0)
                .kill_on_drop(true);
            let mut child = match cmd.spawn() {
                Ok(c) => c,
                Err(e) => return res(HEALTH_CRITICAL, format!("Check failed to start: {e}")),
            };
            let pid = child.id();
            let (out, err) = (child.stdout.take(), child.stderr.take());
            let max = self.max_output;
            let reader = async move {
                let o = async {
                    match out {
                        Some(o) => read_capped(o, max).await,
                        None => Vec::new(),
                    }
                };
                let e = async {
                    match err {
                        Some(e) => read_capped(e, max).await,
                        None => Vec::new(),
                    }
                };
                let (mut o, e) = tokio::join!(o, e);
                o.extend(e);
                o.truncate(max);
                o
            };
            let run = async {
                let (output, status) = tokio::join!(reader, child.wait());
                (output, status)
            };
            match tokio::time::timeout(self.timeout, run).await {
                Ok((output, Ok(st))) => {
                    let text = String::from_utf8_lossy(&output).into_owned();
                    match st.code() {
                        Some(0) => res(HEALTH_PASSING, text),
                        Some(1) => res(HEALTH_WARNING, text),
                        _ => res(HEALTH_CRITICAL, text),
                    }
                }
                Ok((_, Err(e))) => res(HEALTH_CRITICAL, format!("Check failed: {e}")),
                Err(_) => {
                    if let Some(pid) = pid {
                        // The whole group: the script and anything it started.
                        unsafe {
                            libc::kill(-(pid as i32), libc::SIGKILL);
                        }
                    }
                    res(
                        HEALTH_CRITICAL,
                        format!(
                            "Timed out ({}) running check",
                            crate::types::format_duration(self.timeout)
                        ),
                    )
                }
            }
        })
    }
}

/// gRPC health protocol (`grpc.health.v1.Health/Check`) over HTTP/2.
pub struct GrpcCheck {
    client: Option<reqwest::Client>,
    url: String,
    service: String,
    target: String,
}

impl GrpcCheck {
    fn new(def: &CheckDefinition, timeout: Duration) -> Self {
        let (addr, service) = match def.grpc.split_once('/') {
            Some((a, s)) => (a.to_string(), s.to_string()),
            None => (def.grpc.clone(), String::new()),
        };
        let scheme = if def.grpc_use_tls { "https" } else { "http" };
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .http2_prior_knowledge()
            .danger_accept_invalid_certs(def.tls_skip_verify)
            .build()
            .ok();
        GrpcCheck {
            client,
            url: format!("{scheme}://{addr}/grpc.health.v1.Health/Check"),
            service,
            target: def.grpc.clone(),
        }
    }
}

/// Encode a `HealthCheckRequest{service}` as a gRPC frame.
pub fn grpc_request_frame(service: &str) -> Vec<u8> {
    let mut msg = Vec::new();
    if !service.is_empty() {
        msg.push(0x0a); // field 1, length-delimited
        let mut len = service.len();
        loop {
            let b = (len & 0x7f) as u8;
            len >>= 7;
            if len == 0 {
                msg.push(b);
                break;
            }
            msg.push(b | 0x80);
        }
        msg.extend_from_slice(service.as_bytes());
    }
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    frame.extend(msg);
    frame
}

/// Decode the serving status (field 1) from a `HealthCheckResponse` frame.
pub fn grpc_response_status(frame: &[u8]) -> Option<u64> {
    if frame.len() < 5 {
        return None;
    }
    let len = u32::from_be_bytes([frame[1], frame[2], frame[3], frame[4]]) as usize;
    let msg = frame.get(5..5 + len)?;
    if msg.is_empty() {
        return Some(0); // UNKNOWN is the default value and is not encoded
    }
    if msg[0] != 0x08 {
        return None;
    }
    let mut v = 0u64;
    for (i, b) in msg[1..].iter().enumerate() {
        v |= ((b & 0x7f) as u64) << (7 * i);
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

impl CheckRunner for GrpcCheck {
    fn check<'a>(&'a self, _agent: &'a Agent) -> BoxFut<'a> {
        Box::pin(async move {
            let Some(client) = &self.client else {
                return res(HEALTH_CRITICAL, "grpc client could not be built");
            };
            let r = client
                .post(&self.url)
                .header("content-type", "application/grpc")
                .header("te", "trailers")
                .body(grpc_request_frame(&self.service))
                .send()
                .await;
            let r = match r {
                Ok(r) => r,
                Err(e) => return res(HEALTH_CRITICAL, format!("gRPC {}: {e}", self.target)),
            };
            if let Some(st) = r.headers().get("grpc-status").and_then(|v| v.to_str().ok()) {
                if st != "0" {
                    let msg = r
                        .headers()
                        .get("grpc-message")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    return res(
                        HEALTH_CRITICAL,
                        format!("gRPC {} serving status: error {st} {msg}", self.target),
                    );
                }
            }
            match r
                .bytes()
                .await
                .ok()
                .as_deref()
                .and_then(grpc_response_status)
            {
                Some(1) => res(
                    HEALTH_PASSING,
                    format!("gRPC check {}: success", self.target),
                ),
                Some(s) => {
                    let name = match s {
                        0 => "UNKNOWN",
                        2 => "NOT_SERVING",
                        3 => "SERVICE_UNKNOWN",
                        _ => "unexpected",
                    };
                    res(
                        HEALTH_CRITICAL,
                        format!("gRPC {} serving status: {name}", self.target),
                    )
                }
                None => res(
                    HEALTH_CRITICAL,
                    format!("gRPC {}: bad or missing response", self.target),
                ),
            }
        })
    }
}

/// Alias: mirrors the health of a service (on `alias_node`, else on this agent's node).
pub struct AliasCheck {
    node: String,
    service: String,
}

impl CheckRunner for AliasCheck {
    fn check<'a>(&'a self, agent: &'a Agent) -> BoxFut<'a> {
        Box::pin(async move {
            use crate::dns::lookup::DnsLookup;
            let node = if self.node.is_empty() {
                agent.node_name.clone()
            } else {
                self.node.clone()
            };
            if self.service.is_empty() {
                // Alias of a node: its node-level checks.
                let checks = agent.read(|s| s.node_checks(&node).1);
                if checks.is_empty() {
                    return res(
                        HEALTH_CRITICAL,
                        format!("No checks found for node {node:?}"),
                    );
                }
                let st = crate::store::catalog::aggregate_status(&checks);
                return res(st, format!("All checks of node {node:?}: {st}"));
            }
            match agent.service(&agent.datacenter, &self.service, None).await {
                Ok(list) => {
                    let mine: Vec<_> = list.into_iter().filter(|i| i.node.node == node).collect();
                    if mine.is_empty() {
                        return res(
                            HEALTH_CRITICAL,
                            format!("Service {:?} not found on node {node:?}", self.service),
                        );
                    }
                    let st = if mine.iter().any(|i| i.status == HEALTH_CRITICAL) {
                        HEALTH_CRITICAL
                    } else if mine.iter().any(|i| i.status == HEALTH_WARNING) {
                        HEALTH_WARNING
                    } else {
                        HEALTH_PASSING
                    };
                    res(st, format!("Aliased service {:?}: {st}", self.service))
                }
                Err(e) => res(HEALTH_CRITICAL, format!("alias: {e}")),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_frames() {
        let f = grpc_request_frame("");
        assert_eq!(f, vec![0, 0, 0, 0, 0]);
        let f = grpc_request_frame("svc");
        assert_eq!(f, vec![0, 0, 0, 0, 5, 0x0a, 3, b's', b'v', b'c']);
        assert_eq!(grpc_response_status(&[0, 0, 0, 0, 2, 0x08, 1]), Some(1));
        assert_eq!(grpc_response_status(&[0, 0, 0, 0, 2, 0x08, 2]), Some(2));
        assert_eq!(grpc_response_status(&[0, 0, 0, 0, 0]), Some(0));
        assert_eq!(grpc_response_status(&[0, 0]), None);
    }
}
