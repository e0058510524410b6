//! TLS: certificates from `praetor tls ca create` / `tls cert create`, the HTTPS API with
//! client certificates, and a cluster (3 servers + a client agent) whose internal RPC
//! (Raft, forwarding) runs over mutual TLS; an agent with another CA's certificate is
//! refused, and so is plain HTTP on the server port.

use crate::http_util::*;
use integration_tests::harness::{praetor_bin, wait_until, Node, NodeOptions, TIMEOUT};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(60);

/// Run `praetor tls ...` in `dir`; panics on failure.
fn tls_cli(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(praetor_bin())
        .arg("tls")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("praetor tls");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "tls {args:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let out = tls_cli(dir.path(), &["ca", "create"]);
        assert_eq!(
            out,
            "==> Saved consul-agent-ca.pem\n==> Saved consul-agent-ca-key.pem\n"
        );
        let out = tls_cli(dir.path(), &["cert", "create", "-server"]);
        assert!(out.contains("==> Saved dc1-server-consul-0.pem"), "{out}");
        tls_cli(dir.path(), &["cert", "create", "-client"]);
        tls_cli(dir.path(), &["cert", "create", "-cli"]);
        Pki { dir }
    }

    fn path(&self, f: &str) -> PathBuf {
        self.dir.path().join(f)
    }

    /// The agent configuration for mutual TLS with `cert` (`dc1-server-consul-0`, ...).
    fn config(&self, cert: &str) -> Vec<(String, String)> {
        vec![(
            "tls.json".into(),
            serde_json::json!({
                "tls": {
                    "defaults": {
                        "ca_file": self.path("consul-agent-ca.pem"),
                        "cert_file": self.path(&format!("{cert}.pem")),
                        "key_file": self.path(&format!("{cert}-key.pem")),
                        "verify_incoming": true,
                        "verify_outgoing": true
                    },
                    "internal_rpc": {"verify_server_hostname": true}
                },
                "ports": {"https": 0}
            })
            .to_string(),
        )]
    }

    fn https_client(&self, with_cert: bool) -> reqwest::blocking::Client {
        let ca = std::fs::read(self.path("consul-agent-ca.pem")).unwrap();
        let mut b = reqwest::blocking::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
            .timeout(Duration::from_secs(10));
        if with_cert {
            let mut pem = std::fs::read(self.path("dc1-cli-consul-0.pem")).unwrap();
            pem.extend(std::fs::read(self.path("dc1-cli-consul-0-key.pem")).unwrap());
            b = b.identity(reqwest::Identity::from_pem(&pem).unwrap());
        }
        b.build().unwrap()
    }
}

fn server(name: &str, pki: &Pki, join: Option<&str>) -> Node {
    cluster_server(name, join, pki.config("dc1-server-consul-0"))
}

#[test]
fn https_and_a_cluster_over_mutual_tls() {
    let pki = Pki::new();
    let s1 = server("tls1", &pki, None);
    let s2 = server("tls2", &pki, Some(&s1.serf));
    let s3 = server("tls3", &pki, Some(&s1.serf));
    for s in [&s1, &s2, &s3] {
        s.wait_ready();
        assert!(s.https.starts_with("https://127.0.0.1:"), "{}", s.https);
    }
    wait_until(LONG, "three raft peers", || {
        (get(&s2, "/v1/status/peers").json().as_array()?.len() == 3).then_some(())
    });
    // writes on every server reach the leader over mutual TLS and replicate
    for (i, s) in [&s1, &s2, &s3].iter().enumerate() {
        assert_eq!(put(s, &format!("/v1/kv/tls/{i}"), "v").body, "true");
    }
    wait_until(LONG, "replicated keys", || {
        let r = get(&s3, "/v1/kv/tls/?keys&stale");
        (r.json().as_array()?.len() == 3).then_some(())
    });

    // a client agent with a client certificate forwards over TLS
    let c = Node::start(NodeOptions {
        name: Some("tls-c".into()),
        client: true,
        extra: vec![
            "-retry-interval=1s".into(),
            format!("-retry-join={}", s2.serf),
        ],
        config: pki.config("dc1-client-consul-0"),
        ..Default::default()
    });
    assert_eq!(put(&c, "/v1/kv/tls/client", "c").body, "true");
    assert_eq!(get(&c, "/v1/kv/tls/client?raw").body, "c");
    wait_until(LONG, "four nodes in the catalog", || {
        (get(&c, "/v1/catalog/nodes").json().as_array()?.len() == 4).then_some(())
    });

    // HTTPS needs a certificate signed by the CA (verify_incoming)
    let url = format!("{}/v1/kv/tls/client?raw", s1.https);
    let r = pki.https_client(true).get(&url).send().unwrap();
    assert_eq!((r.status().as_u16(), r.text().unwrap()), (200, "c".into()));
    assert!(pki.https_client(false).get(&url).send().is_err());
    // the CLI with -ca-file/-client-cert/-client-key
    let cli = |extra: &[&str]| {
        let mut args = vec!["kv", "get"];
        let addr = format!("-http-addr={}", s1.https);
        args.push(&addr);
        args.extend_from_slice(extra);
        args.push("tls/client");
        s1.cli(&args)
    };
    let ca = format!("-ca-file={}", pki.path("consul-agent-ca.pem").display());
    let cert = format!(
        "-client-cert={}",
        pki.path("dc1-cli-consul-0.pem").display()
    );
    let key = format!(
        "-client-key={}",
        pki.path("dc1-cli-consul-0-key.pem").display()
    );
    let (code, out, err) = cli(&[&ca, &cert, &key]);
    assert_eq!((code, out.trim()), (0, "c"), "{err}");
    let (code, _, _) = cli(&[&ca]);
    assert_eq!(code, 1, "no client certificate");

    // plain HTTP on the server RPC port is refused
    let plain = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
        .get(format!("http://{}/raft/state", rpc_addr(&s1)))
        .send();
    assert!(
        plain.map(|r| !r.status().is_success()).unwrap_or(true),
        "plain HTTP must not reach the RPC port"
    );

    // an agent whose certificate comes from another CA cannot use the servers
    let other = Pki::new();
    let rogue = Node::start(NodeOptions {
        name: Some("rogue".into()),
        client: true,
        no_wait: true,
        extra: vec![
            "-retry-interval=1s".into(),
            format!("-retry-join={}", s2.serf),
        ],
        config: other.config("dc1-client-consul-0"),
        ..Default::default()
    });
    std::thread::sleep(Duration::from_secs(2));
    let r = put(&rogue, "/v1/kv/tls/rogue", "x");
    assert_ne!(r.status, 200, "{}", r.body);
    assert_eq!(get(&s1, "/v1/kv/tls/rogue").status, 404);
    let _ = TIMEOUT;
}

#[test]
fn https_without_certificates_fails_to_start() {
    let n = Node::try_start(&[
        "agent",
        "-dev",
        "-https-port=0",
        "-http-port=0",
        "-dns-port=-1",
    ]);
    let text =
        String::from_utf8_lossy(&n.stderr).into_owned() + &String::from_utf8_lossy(&n.stdout);
    assert!(!n.status.success());
    assert!(
        text.contains("HTTPS") && text.contains("cert_file"),
        "{text}"
    );
}

/// `limits.http_max_conns_per_client` also holds on the HTTPS listener: a client IP over
/// the limit has its next connection closed before the handshake; once it closes one, it
/// is let in again.
#[test]
fn https_connections_per_client_are_limited() {
    use std::io::Read;
    use std::net::TcpStream;
    let pki = Pki::new();
    let mut config = pki.config("dc1-server-consul-0");
    config.push((
        "limits.json".into(),
        r#"{"limits": {"http_max_conns_per_client": 2}}"#.into(),
    ));
    let n = Node::start(NodeOptions {
        dev: true,
        config,
        ..Default::default()
    });
    let addr = n.https.trim_start_matches("https://").to_string();
    let open = || {
        let s = TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(700)))
            .unwrap();
        s
    };
    // Closed by the server: a read ends (EOF or reset) instead of timing out.
    let closed = |mut s: TcpStream| match s.read(&mut [0u8; 16]) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    };
    let first = open();
    let _second = open();
    std::thread::sleep(Duration::from_millis(200));
    assert!(closed(open()), "a third connection is closed");
    drop(first);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !closed(open()),
        "below the limit again: accepted, awaiting a handshake"
    );
    // With one connection held, a request on a second one is served as usual.
    std::thread::sleep(Duration::from_millis(300));
    let r = pki
        .https_client(true)
        .get(format!("{}/v1/status/leader", n.https))
        .send()
        .unwrap();
    assert!(r.status().is_success());
}
