//! ACLs: bootstrap, tokens/policies/roles over HTTP and the CLI, and a matrix proving a
//! token without the right policy can read or write nothing it should not, over HTTP,
//! DNS and the CLI, on a server and through a client agent; ACL state survives restarts.

use crate::http_util::*;
use integration_tests::harness::{wait_until, Node, NodeOptions, TIMEOUT};
use reqwest::blocking::Client;
use serde_json::{json, Value};
use std::process::Command;

const MGMT: &str = "11111111-2222-3333-4444-555555555555";
const DNS_SECRET: &str = "dddddddd-2222-3333-4444-555555555555";

fn acl_config(default_policy: &str) -> Vec<(String, String)> {
    vec![(
        "acl.hcl".into(),
        format!(
            r#"acl {{
  enabled = true
  default_policy = "{default_policy}"
  tokens {{
    initial_management = "{MGMT}"
    dns = "{DNS_SECRET}"
  }}
}}"#
        ),
    )]
}

/// A request with a token in `X-Consul-Token` (None: no token).
fn call(n: &Node, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> Resp {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut rb = Client::new().request(m, n.url(path));
    if let Some(t) = token {
        rb = rb.header("X-Consul-Token", t);
    }
    if let Some(b) = body {
        rb = rb.body(b.to_string());
    }
    let r = rb.send().expect("request");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    Resp {
        status,
        headers,
        body: r.text().unwrap_or_default(),
    }
}

/// Wait for a leader and for the leader to have created the initial management token.
fn wait_acl_ready(n: &Node) {
    wait_until(TIMEOUT, "ACLs initialized", || {
        (call(n, "GET", "/v1/acl/token/self", Some(MGMT), None).status == 200).then_some(())
    });
}

fn start(name: &str, default_policy: &str, dev: bool) -> Node {
    let n = Node::start(NodeOptions {
        dev,
        name: Some(name.into()),
        config: acl_config(default_policy),
        no_wait: true,
        ..Default::default()
    });
    wait_acl_ready(&n);
    wait_until(TIMEOUT, "the node in the catalog", || {
        let r = call(
            &n,
            "GET",
            &format!("/v1/catalog/node/{name}"),
            Some(MGMT),
            None,
        );
        (r.status == 200).then_some(())
    });
    n
}

fn dig_short(n: &Node, name: &str) -> (String, Vec<String>) {
    let (host, port) = n.dns.rsplit_once(':').unwrap();
    let run = |extra: &[&str]| {
        let out = Command::new("dig")
            .args([&format!("@{host}"), "-p", port, "+time=2", "+tries=1"])
            .args(extra)
            .arg(name)
            .output()
            .expect("dig (dnsutils) is installed by scripts/deps.sh");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let full = run(&[]);
    let status = full
        .lines()
        .find_map(|l| l.split("status: ").nth(1))
        .map(|s| s.split(',').next().unwrap_or("").to_string())
        .unwrap_or_default();
    let mut short: Vec<String> = run(&["+short"])
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    short.sort();
    (status, short)
}

fn register(n: &Node, name: &str, port: u16) {
    let r = call(
        n,
        "PUT",
        "/v1/catalog/register",
        Some(MGMT),
        Some(
            &json!({"Node": "ext", "Address": "10.0.0.9",
                "Service": {"Service": name, "Port": port}})
            .to_string(),
        ),
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

/// Create a policy and a token holding it; returns the token's secret.
fn token_with(n: &Node, policy: &str, rules: &str) -> String {
    let r = call(
        n,
        "PUT",
        "/v1/acl/policy",
        Some(MGMT),
        Some(&json!({"Name": policy, "Rules": rules}).to_string()),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = call(
        n,
        "PUT",
        "/v1/acl/token",
        Some(MGMT),
        Some(&json!({"Description": policy, "Policies": [{"Name": policy}]}).to_string()),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["SecretID"].as_str().unwrap().to_string()
}

/// (method, path, body, status for the token, for anonymous, for management)
type Case<'a> = (&'a str, &'a str, Option<&'a str>, u16, u16, u16);

const WEB_RULES: &str = r#"
service "web" { policy = "read" }
node_prefix "" { policy = "read" }
key_prefix "app/" { policy = "write" }
key "app/secret" { policy = "deny" }
"#;

#[test]
fn a_token_without_the_right_policy_gets_nothing_over_http_dns_and_cli() {
    let n = start("acl1", "deny", true);
    register(&n, "web", 80);
    register(&n, "db", 5432);
    for k in ["app/x", "app/secret", "other"] {
        assert_eq!(
            call(&n, "PUT", &format!("/v1/kv/{k}"), Some(MGMT), Some("v")).body,
            "true"
        );
    }
    let t = token_with(&n, "web-reader", WEB_RULES);
    let tok = Some(t.as_str());
    let txn_other = json!([{"KV": {"Verb": "set", "Key": "other", "Value": "eA=="}}]).to_string();
    let txn_app = json!([{"KV": {"Verb": "set", "Key": "app/t", "Value": "eA=="}}]).to_string();
    let svc_db = json!({"Name": "db", "Port": 1}).to_string();
    let svc_web = json!({"Name": "web", "Port": 1}).to_string();
    let session = json!({"Name": "s"}).to_string();
    // (method, path, body, status for the token, for anonymous, for management)
    let matrix: Vec<Case> = vec![
        ("GET", "/v1/kv/app/x", None, 200, 403, 200),
        ("PUT", "/v1/kv/app/y", Some("1"), 200, 403, 200),
        ("PUT", "/v1/kv/other", Some("1"), 403, 403, 200),
        ("GET", "/v1/kv/other", None, 403, 403, 200),
        ("GET", "/v1/kv/app/secret", None, 403, 403, 200),
        ("PUT", "/v1/kv/app/secret", Some("1"), 403, 403, 200),
        ("GET", "/v1/catalog/service/web", None, 200, 200, 200),
        ("GET", "/v1/catalog/node/ext", None, 200, 403, 200),
        (
            "PUT",
            "/v1/agent/service/register",
            Some(&svc_db),
            403,
            403,
            200,
        ),
        (
            "PUT",
            "/v1/agent/service/register",
            Some(&svc_web),
            403,
            403,
            200,
        ),
        ("GET", "/v1/agent/self", None, 403, 403, 200),
        ("GET", "/v1/agent/metrics", None, 403, 403, 200),
        ("PUT", "/v1/agent/reload", None, 403, 403, 200),
        (
            "GET",
            "/v1/operator/raft/configuration",
            None,
            403,
            403,
            200,
        ),
        ("GET", "/v1/snapshot", None, 403, 403, 200),
        ("GET", "/v1/acl/tokens", None, 403, 403, 200),
        ("GET", "/v1/acl/policies", None, 403, 403, 200),
        ("PUT", "/v1/session/create", Some(&session), 403, 403, 200),
        ("PUT", "/v1/txn", Some(&txn_other), 409, 409, 200),
        ("PUT", "/v1/txn", Some(&txn_app), 200, 409, 200),
        ("PUT", "/v1/event/fire/deploy", None, 403, 403, 200),
        ("GET", "/v1/status/leader", None, 200, 200, 200),
        // last: management deletes the tree (put back below)
        ("DELETE", "/v1/kv/app/?recurse", None, 403, 403, 200),
    ];
    for (method, path, body, want_tok, want_anon, want_mgmt) in &matrix {
        for (who, token, want) in [
            ("token", tok, want_tok),
            ("anonymous", None, want_anon),
            ("management", Some(MGMT), want_mgmt),
        ] {
            let r = call(&n, method, path, token, *body);
            assert_eq!(
                r.status, *want,
                "{who}: {method} {path} answered {} {}",
                r.status, r.body
            );
            if r.status == 403 {
                assert!(r.body.starts_with("Permission denied"), "{}", r.body);
            }
        }
    }
    for k in ["app/x", "app/secret"] {
        assert_eq!(
            call(&n, "PUT", &format!("/v1/kv/{k}"), Some(MGMT), Some("v")).body,
            "true"
        );
    }
    for id in ["web", "db"] {
        let path = format!("/v1/agent/service/deregister/{id}");
        assert_eq!(call(&n, "PUT", &path, Some(MGMT), None).status, 200);
    }
    wait_until(TIMEOUT, "the agent's web instance to be gone", || {
        let r = call(&n, "GET", "/v1/health/service/web", Some(MGMT), None);
        (r.json().as_array()?.len() == 1).then_some(())
    });
    // the denial names the token and the permission, as Consul's does
    let r = call(&n, "GET", "/v1/kv/other", tok, None);
    assert!(
        r.body.contains("lacks permission 'key:read' on \"other\""),
        "{}",
        r.body
    );
    assert!(call(&n, "GET", "/v1/kv/other", None, None)
        .body
        .starts_with("Permission denied: anonymous token"));
    // unknown tokens are refused; Bearer and ?token= are read too
    let r = call(&n, "GET", "/v1/kv/app/x", Some("nope"), None);
    assert_eq!((r.status, r.body.as_str()), (403, "ACL not found"));
    let bearer = Client::new()
        .get(n.url("/v1/kv/app/x"))
        .header("Authorization", format!("Bearer {t}"))
        .send()
        .unwrap();
    assert_eq!(bearer.status().as_u16(), 200);
    assert_eq!(
        call(&n, "GET", &format!("/v1/kv/other?token={t}"), None, None).status,
        403
    );
    assert_eq!(
        call(&n, "GET", &format!("/v1/kv/app/x?token={t}"), None, None).status,
        200
    );

    // lists are filtered, and say so
    let r = call(&n, "GET", "/v1/kv/?recurse", tok, None);
    let keys: Vec<String> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["Key"].as_str().unwrap().to_string())
        .collect();
    assert!(keys.contains(&"app/x".to_string()), "{keys:?}");
    assert!(!keys.contains(&"app/secret".to_string()) && !keys.contains(&"other".to_string()));
    assert_eq!(r.header("X-Consul-Results-Filtered-By-ACLs"), "true");
    let r = call(&n, "GET", "/v1/kv/?keys", tok, None);
    assert!(
        !r.body.contains("other") && r.body.contains("app/x"),
        "{}",
        r.body
    );
    let r = call(&n, "GET", "/v1/catalog/services", tok, None);
    let svcs = r.json();
    assert!(
        svcs.get("web").is_some() && svcs.get("db").is_none(),
        "{svcs}"
    );
    assert_eq!(r.header("X-Consul-Results-Filtered-By-ACLs"), "true");
    let full = call(&n, "GET", "/v1/catalog/services", Some(MGMT), None);
    assert!(full.json().get("db").is_some());
    assert_eq!(full.header("X-Consul-Results-Filtered-By-ACLs"), "");
    assert_eq!(
        call(&n, "GET", "/v1/health/service/db", tok, None).json(),
        json!([])
    );
    assert_eq!(
        call(&n, "GET", "/v1/health/service/web", tok, None)
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        call(&n, "GET", "/v1/catalog/nodes", None, None).json(),
        json!([])
    );
    // (the management row above set "other" to "x" through a transaction)
    let txn_y = json!([{"KV": {"Verb": "set", "Key": "other", "Value": "eQ=="}}]).to_string();
    let r = call(&n, "PUT", "/v1/txn", tok, Some(&txn_y));
    assert!(
        r.json()["Errors"][0]["What"]
            .as_str()
            .unwrap()
            .starts_with("Permission denied"),
        "{}",
        r.body
    );
    // nothing was written by a refused transaction
    assert_eq!(
        call(&n, "GET", "/v1/kv/other?raw", Some(MGMT), None).body,
        "x"
    );

    // DNS answers with what the DNS token may see: nothing while it does not exist...
    let (status, _) = dig_short(&n, "web.service.consul");
    assert_ne!(status, "NOERROR", "an unknown DNS token must not answer");
    // ...then only the services its policy allows
    let r = call(
        &n,
        "PUT",
        "/v1/acl/policy",
        Some(MGMT),
        Some(&json!({"Name": "dns", "Rules": "service \"web\" { policy = \"read\" }\nnode_prefix \"\" { policy = \"read\" }"}).to_string()),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = call(
        &n,
        "PUT",
        "/v1/acl/token",
        Some(MGMT),
        Some(&json!({"SecretID": DNS_SECRET, "Policies": [{"Name": "dns"}]}).to_string()),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        dig_short(&n, "web.service.consul"),
        ("NOERROR".into(), vec!["10.0.0.9".to_string()])
    );
    assert_eq!(dig_short(&n, "db.service.consul").0, "NXDOMAIN");
    assert_eq!(
        dig_short(&n, "ext.node.consul"),
        ("NOERROR".into(), vec!["10.0.0.9".to_string()])
    );

    // the CLI carries -token / CONSUL_HTTP_TOKEN and reports denials with exit 1
    let (code, _, err) = n.cli(&["kv", "put", &format!("-token={t}"), "other", "x"]);
    assert_eq!(code, 1);
    assert!(err.contains("Permission denied"), "{err}");
    let (code, out, _) = n.cli(&["kv", "get", &format!("-token={t}"), "app/x"]);
    assert_eq!((code, out.trim()), (0, "v"));
    let (code, _, err) = n.cli(&["kv", "get", "other"]);
    assert_eq!(code, 1, "anonymous CLI read: {err}");
    let (code, out, _) = n.cli(&["catalog", "services", &format!("-token={t}")]);
    assert_eq!((code, out.trim()), (0, "web"));
    let (code, _, err) = n.cli(&["acl", "token", "list", &format!("-token={t}")]);
    assert_eq!(code, 1);
    assert!(
        err.contains("Failed to retrieve the token list") && err.contains("403"),
        "{err}"
    );
}

fn cli_tok(n: &Node, args: &[&str]) -> (i32, String, String) {
    let mut a: Vec<&str> = args.to_vec();
    let tok = format!("-token={MGMT}");
    a.insert(
        if args[0] == "acl" {
            3.min(args.len())
        } else {
            1
        },
        &tok,
    );
    n.cli(&a)
}

#[test]
fn tokens_policies_and_roles_crud_bootstrap_and_restart() {
    let mut n = start("acl2", "deny", false);
    // bootstrap works once, whatever else exists
    let b = call(&n, "PUT", "/v1/acl/bootstrap", None, None);
    assert_eq!(b.status, 200, "{}", b.body);
    let boot = b.json();
    assert_eq!(boot["ID"], boot["SecretID"]);
    assert_eq!(boot["Policies"][0]["Name"], "global-management");
    let again = call(&n, "PUT", "/v1/acl/bootstrap", None, None);
    assert_eq!(again.status, 403);
    assert!(
        again
            .body
            .starts_with("Permission denied: ACL bootstrap no longer allowed (reset index: "),
        "{}",
        again.body
    );
    let boot_secret = boot["SecretID"].as_str().unwrap().to_string();
    assert_eq!(
        call(&n, "GET", "/v1/acl/tokens", Some(&boot_secret), None).status,
        200
    );

    // policies: bad rules and names, unique names, the built-in one is protected
    let bad = call(
        &n,
        "PUT",
        "/v1/acl/policy",
        Some(MGMT),
        Some(r#"{"Name":"x","Rules":"key_prefix \"\" { policy = \"rw\" }"}"#),
    );
    assert_eq!(
        (bad.status, bad.body.as_str()),
        (400, "Invalid key policy: \"rw\"")
    );
    let bad = call(
        &n,
        "PUT",
        "/v1/acl/policy",
        Some(MGMT),
        Some(r#"{"Name":"bad name!"}"#),
    );
    assert_eq!(bad.status, 400);
    let rules_json = r#"{"key_prefix": {"ro/": {"policy": "read"}}}"#;
    let p = call(
        &n,
        "PUT",
        "/v1/acl/policy",
        Some(MGMT),
        Some(&json!({"Name": "ro", "Rules": rules_json}).to_string()),
    );
    assert_eq!(p.status, 200, "{}", p.body);
    let pid = p.json()["ID"].as_str().unwrap().to_string();
    let dup = call(
        &n,
        "PUT",
        "/v1/acl/policy",
        Some(MGMT),
        Some(r#"{"Name":"ro"}"#),
    );
    assert_eq!(dup.status, 400, "{}", dup.body);
    assert_eq!(
        call(
            &n,
            "DELETE",
            "/v1/acl/policy/00000000-0000-0000-0000-000000000001",
            Some(MGMT),
            None
        )
        .status,
        400
    );
    assert_eq!(
        call(&n, "GET", "/v1/acl/policy/name/ro", Some(MGMT), None).json()["ID"],
        pid.as_str()
    );
    let list = call(&n, "GET", "/v1/acl/policies", Some(MGMT), None).json();
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p.get("Rules").is_none()));

    // a role links the policy; a token links the role
    let r = call(
        &n,
        "PUT",
        "/v1/acl/role",
        Some(MGMT),
        Some(&json!({"Name": "reader", "Policies": [{"Name": "ro"}]}).to_string()),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let rid = r.json()["ID"].as_str().unwrap().to_string();
    let t = call(
        &n,
        "PUT",
        "/v1/acl/token",
        Some(MGMT),
        Some(&json!({"Description": "via role", "Roles": [{"Name": "reader"}]}).to_string()),
    );
    assert_eq!(t.status, 200, "{}", t.body);
    let tj = t.json();
    let (acc, sec) = (
        tj["AccessorID"].as_str().unwrap().to_string(),
        tj["SecretID"].as_str().unwrap().to_string(),
    );
    assert_eq!(tj["Roles"][0]["ID"], rid.as_str());
    call(&n, "PUT", "/v1/kv/ro/a", Some(MGMT), Some("1"));
    assert_eq!(call(&n, "GET", "/v1/kv/ro/a", Some(&sec), None).status, 200);
    assert_eq!(
        call(&n, "PUT", "/v1/kv/ro/a", Some(&sec), Some("2")).status,
        403
    );
    // token/self shows the secret to its holder; reads by others without acl:write hide it
    let me = call(&n, "GET", "/v1/acl/token/self", Some(&sec), None).json();
    assert_eq!(me["AccessorID"], acc.as_str());
    assert_eq!(
        call(&n, "GET", "/v1/acl/token/self", Some("nope"), None).status,
        403
    );
    // the token is resolved again after its policy changes
    let up = call(
        &n,
        "PUT",
        &format!("/v1/acl/policy/{pid}"),
        Some(MGMT),
        Some(
            &json!({"Name": "ro", "Rules": "key_prefix \"ro/\" { policy = \"write\" }"})
                .to_string(),
        ),
    );
    assert_eq!(up.status, 200, "{}", up.body);
    assert_eq!(
        call(&n, "PUT", "/v1/kv/ro/a", Some(&sec), Some("2")).body,
        "true"
    );
    // missing objects
    let missing = call(
        &n,
        "GET",
        "/v1/acl/token/00000000-0000-0000-0000-00000000dead",
        Some(MGMT),
        None,
    );
    assert_eq!(missing.status, 404);
    assert_eq!(
        call(
            &n,
            "DELETE",
            "/v1/acl/role/00000000-0000-0000-0000-00000000dead",
            Some(MGMT),
            None
        )
        .status,
        404
    );
    // clone, update, delete
    let c = call(
        &n,
        "PUT",
        &format!("/v1/acl/token/{acc}/clone"),
        Some(MGMT),
        Some(r#"{"Description":"cloned"}"#),
    );
    assert_eq!(c.status, 200, "{}", c.body);
    let cj = c.json();
    assert_ne!(cj["SecretID"], sec.as_str());
    assert_eq!(cj["Roles"][0]["ID"], rid.as_str());
    let u = call(
        &n,
        "PUT",
        &format!("/v1/acl/token/{acc}"),
        Some(MGMT),
        Some(r#"{"Description":"renamed","SecretID":"00000000-0000-0000-0000-000000000009"}"#),
    );
    assert_eq!(u.status, 400, "the secret cannot change: {}", u.body);

    // ACL state is in the replicated store: it survives a restart
    n.restart();
    wait_acl_ready(&n);
    assert_eq!(
        call(&n, "PUT", "/v1/kv/ro/b", Some(&sec), Some("2")).body,
        "true"
    );
    assert_eq!(
        call(&n, "PUT", "/v1/acl/bootstrap", None, None).status,
        403,
        "bootstrap stays done after a restart"
    );

    // the CLI: policy/role/token verbs with Consul's wording
    std::fs::write(
        n.dir().join("rules.hcl"),
        "key_prefix \"cli/\" { policy = \"write\" }\n",
    )
    .unwrap();
    let rules_arg = format!("-rules=@{}", n.dir().join("rules.hcl").display());
    let (code, out, err) = cli_tok(&n, &["acl", "policy", "create", "-name=cli", &rules_arg]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("Name:         cli") && out.contains("key_prefix \"cli/\""),
        "{out}"
    );
    let (code, out, err) = cli_tok(
        &n,
        &[
            "acl",
            "token",
            "create",
            "-description=cli token",
            "-policy-name=cli",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let secret = out
        .lines()
        .find_map(|l| l.strip_prefix("SecretID:"))
        .unwrap()
        .trim()
        .to_string();
    let accessor = out
        .lines()
        .find_map(|l| l.strip_prefix("AccessorID:"))
        .unwrap()
        .trim()
        .to_string();
    assert!(
        out.contains("Policies:\n   ") && out.contains(" - cli\n"),
        "{out}"
    );
    let (code, _, err) = n.cli(&["kv", "put", &format!("-token={secret}"), "cli/k", "v"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = cli_tok(
        &n,
        &["acl", "token", "read", &format!("-id={}", &accessor[..8])],
    );
    assert_eq!(code, 0);
    assert!(out.contains("Description:      cli token"), "{out}");
    let (code, out, _) = cli_tok(&n, &["acl", "policy", "list"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("cli:\n   ID:") && out.contains("global-management:"),
        "{out}"
    );
    let (code, out, _) = cli_tok(&n, &["acl", "token", "list", "-format=json"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert!(v.as_array().unwrap().len() >= 5);
    let (code, out, _) = cli_tok(&n, &["acl", "token", "delete", &format!("-id={accessor}")]);
    assert_eq!(
        (code, out.trim()),
        (
            0,
            format!("Token \"{accessor}\" deleted successfully").as_str()
        )
    );
    let (code, _, _) = n.cli(&["kv", "put", &format!("-token={secret}"), "cli/k", "v"]);
    assert_eq!(code, 1, "a deleted token no longer works");
    let (code, out, _) = cli_tok(&n, &["acl", "role", "read", "-name=reader"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("Name:         reader") && out.contains(" - ro\n"),
        "{out}"
    );
    let (code, out, _) = cli_tok(&n, &["acl", "policy", "delete", "-name=cli"]);
    assert_eq!(code, 0);
    assert!(out.ends_with("deleted successfully\n"), "{out}");
    let (code, _, err) = n.cli(&["acl", "bootstrap"]);
    assert_eq!(code, 1);
    assert!(err.starts_with("Failed ACL bootstrapping:"), "{err}");
}

#[test]
fn acl_endpoints_answer_401_when_disabled() {
    let n = Node::dev();
    let r = call(&n, "GET", "/v1/acl/tokens", None, None);
    assert_eq!((r.status, r.body.as_str()), (401, "ACL support disabled"));
    assert_eq!(call(&n, "PUT", "/v1/acl/bootstrap", None, None).status, 401);
    // and everything else is allowed without a token
    assert_eq!(put(&n, "/v1/kv/k", "v").body, "true");
}

#[test]
fn client_agents_enforce_with_tokens_resolved_by_the_servers() {
    let s = start("acl-s", "deny", false);
    let c = Node::start(NodeOptions {
        name: Some("acl-c".into()),
        client: true,
        no_wait: true,
        config: acl_config("deny"),
        extra: vec![
            "-retry-interval=1s".into(),
            format!("-retry-join={}", s.serf),
        ],
        ..Default::default()
    });
    wait_until(TIMEOUT, "the client to reach the servers", || {
        (call(&c, "GET", "/v1/kv/app/x", Some(MGMT), None).status == 404).then_some(())
    });
    let t = token_with(&s, "web-reader", WEB_RULES);
    // local agent endpoints on the client
    assert_eq!(
        call(&c, "GET", "/v1/agent/self", Some(&t), None).status,
        403
    );
    assert_eq!(
        call(&c, "GET", "/v1/agent/self", Some(MGMT), None).status,
        200
    );
    assert_eq!(
        call(&c, "GET", "/v1/agent/self", Some("nope"), None).status,
        403
    );
    let svc = json!({"Name": "web", "Port": 8080}).to_string();
    assert_eq!(
        call(
            &c,
            "PUT",
            "/v1/agent/service/register",
            Some(&t),
            Some(&svc)
        )
        .status,
        403
    );
    assert_eq!(
        call(
            &c,
            "PUT",
            "/v1/agent/service/register",
            Some(MGMT),
            Some(&svc)
        )
        .status,
        200
    );
    // forwarded requests are checked by the server
    assert_eq!(
        call(&c, "PUT", "/v1/kv/app/c", Some(&t), Some("1")).body,
        "true"
    );
    assert_eq!(
        call(&c, "PUT", "/v1/kv/other", Some(&t), Some("1")).status,
        403
    );
    assert_eq!(call(&c, "GET", "/v1/kv/app/c", None, None).status, 403);
    // the registered service reaches the catalog and the token can read it
    wait_until(TIMEOUT, "web in the catalog", || {
        let r = call(&c, "GET", "/v1/catalog/service/web", Some(&t), None);
        (r.json().as_array()?.len() == 1).then_some(())
    });
}
