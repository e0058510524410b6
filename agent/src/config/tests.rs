//! End-to-end tests of [`super::load`]: files, directories, precedence,
//! definitions and validation.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::json;
use tempfile::TempDir;

use super::*;

/// A temp dir to hold config files plus a data dir.
struct Env {
    dir: TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn write(&self, name: &str, data: &str) -> PathBuf {
        let p = self.path(name);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).expect("mkdir");
        }
        fs::write(&p, data).expect("write");
        p
    }
    fn data_dir(&self) -> String {
        let d = self.path("data");
        fs::create_dir_all(&d).expect("mkdir data");
        d.display().to_string()
    }
    /// Parses `args` (with `-data-dir` and `-node` added) and loads.
    fn load(&self, args: &[&str]) -> Result<RuntimeConfig, ConfigError> {
        let mut all: Vec<String> =
            vec![format!("-data-dir={}", self.data_dir()), "-node=n1".into()];
        all.extend(args.iter().map(|s| s.to_string()));
        load(&AgentFlags::parse(&all)?)
    }
}

fn arg(flag: &str, p: &Path) -> String {
    format!("-{flag}={}", p.display())
}

fn err_text(r: Result<RuntimeConfig, ConfigError>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn defaults() {
    let env = Env::new();
    let rt = env.load(&[]).unwrap();
    assert_eq!(rt.datacenter, "dc1");
    assert_eq!(rt.primary_datacenter, "dc1");
    assert_eq!(rt.node_name, "n1");
    assert!(!rt.server && !rt.dev_mode && !rt.bootstrap);
    assert_eq!(rt.bind_addr, "0.0.0.0");
    assert_eq!(rt.client_addr, "127.0.0.1");
    assert_eq!(
        rt.ports,
        Ports {
            http: 8500,
            https: -1,
            dns: 8600,
            server: 8300,
            serf_lan: 8301,
            serf_wan: 8302,
            grpc: -1,
            grpc_tls: -1
        }
    );
    assert_eq!(rt.log_level, "info");
    assert_eq!(rt.domain, "consul.");
    assert!(!rt.ui_enabled);
    assert_eq!(rt.performance.raft_multiplier, 5);
    assert_eq!(rt.retry_interval, "30s");
    assert!(rt.leave_on_terminate && !rt.skip_leave_on_interrupt);
    assert_eq!(rt.default_query_time, Duration::from_secs(300));
    assert_eq!(rt.max_query_time, Duration::from_secs(600));
    assert_eq!(rt.http_addrs(), ["127.0.0.1:8500"]);
    assert!(rt.grpc_addrs().is_empty());
    assert_eq!(rt.acl["default_policy"], "allow");
    assert_eq!(rt.dns_config["udp_answer_limit"], 3);
    assert!(rt.services.is_empty() && rt.checks.is_empty());
}

#[test]
fn dev_defaults() {
    let rt = load(&AgentFlags::parse(&["-dev", "-node=d"]).unwrap()).unwrap();
    assert!(rt.dev_mode && rt.server && rt.ui_enabled);
    assert_eq!(rt.bind_addr, "127.0.0.1");
    assert_eq!(rt.log_level, "debug");
    assert_eq!(rt.ports.grpc, 8502);
    assert_eq!(rt.performance.raft_multiplier, 1);
    assert!(rt.data_dir.is_none());
    assert!(!rt.leave_on_terminate && rt.skip_leave_on_interrupt);
}

#[test]
fn for_test_config() {
    let rt = RuntimeConfig::for_test();
    assert!(rt.dev_mode && rt.server);
    assert_eq!(rt.node_name, "test-node");
    assert_eq!(rt.ports.http, 0);
    assert_eq!(rt.http_addrs(), ["127.0.0.1:0"]);
    assert_eq!(rt.ports.grpc, -1);
}

#[test]
fn json_and_hcl_files() {
    let env = Env::new();
    let j = env.write(
        "a.json",
        r#"{"datacenter": "east", "ports": {"http": 9500}, "retry_join": ["a"]}"#,
    );
    let h = env.write(
        "b.hcl",
        "server = true\nbootstrap_expect = 3\nretry_join = [\"b\"]\nnode_meta {\n  rack = \"r1\"\n}\n",
    );
    let rt = env
        .load(&[&arg("config-file", &j), &arg("config-file", &h)])
        .unwrap();
    assert_eq!(rt.datacenter, "east");
    assert_eq!(rt.ports.http, 9500);
    assert_eq!(rt.ports.dns, 8600, "maps merge key by key");
    assert_eq!(rt.retry_join, ["a", "b"], "lists append in file order");
    assert!(rt.server);
    assert_eq!(rt.bootstrap_expect, 3);
    assert_eq!(rt.node_meta["rack"], "r1");
    assert_eq!(rt.config_files_loaded, [j, h]);
}

#[test]
fn config_dir_lexical_order_and_skipped_files() {
    let env = Env::new();
    env.write(
        "conf/b.json",
        r#"{"datacenter": "from-b", "retry_join": ["b"]}"#,
    );
    env.write(
        "conf/a.hcl",
        "datacenter = \"from-a\"\nretry_join = [\"a\"]\n",
    );
    env.write("conf/c.txt", "this is not config");
    env.write("conf/sub/z.json", r#"{"datacenter": "from-sub"}"#);
    let rt = env.load(&[&arg("config-dir", &env.path("conf"))]).unwrap();
    assert_eq!(rt.datacenter, "from-b");
    assert_eq!(rt.retry_join, ["a", "b"]);
    assert_eq!(rt.config_files_loaded.len(), 2);
    assert!(rt
        .warnings
        .iter()
        .any(|w| w.contains("skipping file") && w.contains("c.txt")));
}

#[test]
fn config_format_forces_format() {
    let env = Env::new();
    env.write("conf/x.conf", "datacenter = \"forced\"\n");
    let rt = env
        .load(&[&arg("config-dir", &env.path("conf")), "-config-format=hcl"])
        .unwrap();
    assert_eq!(rt.datacenter, "forced");
    let f = env.write("y.json", "datacenter = \"hcl-in-json-name\"\n");
    let rt = env
        .load(&[&arg("config-file", &f), "-config-format", "hcl"])
        .unwrap();
    assert_eq!(rt.datacenter, "hcl-in-json-name");
    assert_eq!(
        err_text(env.load(&["-config-format=yaml"])),
        "config: -config-format must be either 'hcl' or 'json'"
    );
}

#[test]
fn files_and_dirs_in_flag_order() {
    let env = Env::new();
    env.write("d/1.json", r#"{"datacenter": "dir"}"#);
    let f = env.write("f.json", r#"{"datacenter": "file"}"#);
    let rt = env
        .load(&[&arg("config-dir", &env.path("d")), &arg("config-file", &f)])
        .unwrap();
    assert_eq!(rt.datacenter, "file");
    let rt = env
        .load(&[&arg("config-file", &f), &arg("config-dir", &env.path("d"))])
        .unwrap();
    assert_eq!(rt.datacenter, "dir");
}

#[test]
fn precedence_defaults_files_hcl_flags() {
    let env = Env::new();
    let f = env.write(
        "a.json",
        r#"{"datacenter": "file", "log_level": "warn", "domain": "file."}"#,
    );
    let rt = env
        .load(&[
            &arg("config-file", &f),
            "-hcl",
            "log_level = \"error\"\ndomain = \"hcl.\"",
            "-domain=flag.",
        ])
        .unwrap();
    assert_eq!(rt.datacenter, "file");
    assert_eq!(rt.log_level, "error", "-hcl overrides files");
    assert_eq!(rt.domain, "flag.", "flags override -hcl");
    let rt = env
        .load(&[&arg("config-file", &f), "-datacenter=cli"])
        .unwrap();
    assert_eq!(rt.datacenter, "cli");
}

#[test]
fn dev_defaults_are_overridable() {
    let env = Env::new();
    let f = env.write(
        "a.hcl",
        "bind_addr = \"10.1.2.3\"\nui_config {\n  enabled = false\n}\n",
    );
    let rt = env.load(&["-dev", &arg("config-file", &f)]).unwrap();
    assert_eq!(rt.bind_addr, "10.1.2.3");
    assert!(!rt.ui_enabled);
    assert!(rt.server);
}

#[test]
fn services_in_every_shape() {
    let env = Env::new();
    let a = env.write(
        "a.json",
        r#"{"service": {"name": "web", "port": 80, "check": {"http": "http://x", "interval": "10s"}},
            "services": [{"name": "db", "port": 5432, "checks": [{"tcp": "x:1", "interval": "5s"}]}]}"#,
    );
    let b = env.write(
        "b.hcl",
        "service {\n  name = \"api\"\n  check {\n    ttl = \"10s\"\n  }\n  check {\n    ttl = \"20s\"\n  }\n}\nservice {\n  name = \"cache\"\n}\n",
    );
    let c = env.write("c.hcl", "services = [{ name = \"q\" }]\n");
    let rt = env
        .load(&[
            &arg("config-file", &a),
            &arg("config-file", &b),
            &arg("config-file", &c),
        ])
        .unwrap();
    let names: Vec<&str> = rt
        .services
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["db", "web", "api", "cache", "q"]);
    assert_eq!(rt.services[1]["check"]["interval"], "10s");
    assert_eq!(rt.services[2]["checks"].as_array().unwrap().len(), 2);
    assert_eq!(rt.raw["services"].as_array().unwrap().len(), 5);
}

#[test]
fn checks_in_every_shape() {
    let env = Env::new();
    let a = env.write(
        "a.json",
        r#"{"check": {"id": "mem", "name": "Memory", "ttl": "30s"},
            "checks": [{"name": "disk", "args": ["/bin/df"], "interval": "1m"}]}"#,
    );
    let b = env.write("b.hcl", "check {\n  name = \"load\"\n  ttl = \"5s\"\n}\ncheck {\n  name = \"swap\"\n  ttl = \"5s\"\n}\n");
    let rt = env
        .load(&[&arg("config-file", &a), &arg("config-file", &b)])
        .unwrap();
    let names: Vec<&str> = rt
        .checks
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["disk", "Memory", "load", "swap"]);
}

#[test]
fn camel_case_and_snake_case_definitions() {
    let env = Env::new();
    let f = env.write(
        "a.json",
        r#"{"services": [
            {"ID": "web1", "Name": "web", "Port": 80, "Tags": ["a"], "EnableTagOverride": true,
             "Meta": {"v": "1"}, "Weights": {"Passing": 3, "Warning": 1},
             "Check": {"CheckID": "web-http", "HTTP": "http://x", "Interval": "10s",
                       "DeregisterCriticalServiceAfter": "90m", "TLSSkipVerify": true}},
            {"id": "web2", "name": "web", "port": 81, "enable_tag_override": false,
             "checks": [{"script_args": ["/x"], "interval": "10s", "docker_container_id": "c"}]}
        ],
        "Checks": [{"ID": "c1", "Name": "c", "ServiceID": "web1", "ScriptArgs": ["/bin/true"], "Interval": "5s"}],
        "NodeName": "camel", "DataCenter": "dcx"}"#,
    );
    let rt = load(&AgentFlags::parse(&["-dev", &arg("config-file", &f)]).unwrap()).unwrap();
    assert_eq!(rt.node_name, "camel");
    assert_eq!(rt.datacenter, "dcx");
    assert_eq!(rt.services[0]["ID"], "web1", "original spellings are kept");
    assert_eq!(
        rt.services[0]["Check"]["DeregisterCriticalServiceAfter"],
        "90m"
    );
    assert_eq!(rt.services[1]["checks"][0]["script_args"], json!(["/x"]));
    assert_eq!(rt.checks[0]["ScriptArgs"], json!(["/bin/true"]));
}

#[test]
fn unknown_top_level_key_names_key_and_file() {
    let env = Env::new();
    let f = env.write("bad.json", r#"{"servie": {"name": "web"}}"#);
    let text = err_text(env.load(&[&arg("config-file", &f)]));
    assert_eq!(
        text,
        format!("failed to parse {}: invalid config key servie", f.display())
    );
    let h = env.write(
        "bad.hcl",
        "datacenter = \"x\"\nservie {\n  name = \"web\"\n}\n",
    );
    let text = err_text(env.load(&[&arg("config-file", &h)]));
    assert!(
        text.contains("bad.hcl") && text.ends_with("invalid config key servie"),
        "{text}"
    );
}

#[test]
fn unknown_nested_key_names_path_and_file() {
    let env = Env::new();
    let f = env.write("svc.json", r#"{"services": [{"name": "web", "prot": 80}]}"#);
    match env.load(&[&arg("config-file", &f)]) {
        Err(ConfigError::UnknownKey { path, key }) => {
            assert_eq!(path, f);
            assert_eq!(key, "services[0].prot");
        }
        other => panic!("unexpected {other:?}"),
    }
    let h = env.write("svc.hcl", "service {\n  name = \"web\"\n  prot = 80\n}\n");
    assert!(
        err_text(env.load(&[&arg("config-file", &h)])).ends_with("invalid config key service.prot")
    );
    let c = env.write(
        "chk.json",
        r#"{"service": {"name": "w", "check": {"intervl": "1s"}}}"#,
    );
    assert!(err_text(env.load(&[&arg("config-file", &c)]))
        .ends_with("invalid config key service.check.intervl"));
    let p = env.write("ports.json", r#"{"ports": {"htpp": 1}}"#);
    assert!(
        err_text(env.load(&[&arg("config-file", &p)])).ends_with("invalid config key ports.htpp")
    );
}

#[test]
fn unknown_key_in_hcl_flag_names_snippet() {
    let env = Env::new();
    assert_eq!(
        err_text(env.load(&["-hcl", "bogus = 1"])),
        "failed to parse flags-0.hcl: invalid config key bogus"
    );
}

#[test]
fn valid_consul_keys_we_do_not_use_are_accepted() {
    let env = Env::new();
    let f = env.write(
        "all.hcl",
        r#"
connect {
  enabled = true
}
peering {
  enabled = false
}
audit {
  enabled = false
}
telemetry {
  prometheus_retention_time = "24h"
  disable_hostname = true
}
ui_config {
  enabled = true
  content_path = "/console"
}
auto_encrypt {
  tls = false
}
autopilot {
  cleanup_dead_servers = false
}
limits {
  http_max_conns_per_client = 500
}
tls {
  defaults {
    verify_incoming = false
  }
}
config_entries {
  bootstrap = [{ kind = "proxy-defaults", name = "global" }]
}
disable_update_check = true
enable_central_service_config = true
leave_on_terminate = true
check_update_interval = "1m"
raft_snapshot_threshold = 8192
watches = [{ type = "key", key = "foo", args = ["/bin/true"] }]
"#,
    );
    let rt = env.load(&[&arg("config-file", &f)]).unwrap();
    assert!(rt.ui_enabled);
    assert_eq!(rt.ui_content_path, "/console/");
    assert_eq!(rt.telemetry["prometheus_retention_time"], "24h");
    assert_eq!(rt.limits["http_max_conns_per_client"], 500);
    assert_eq!(
        rt.limits["rpc_max_burst"], 1000,
        "defaults survive the merge"
    );
    assert_eq!(rt.raw["peering"]["enabled"], false);
    assert_eq!(rt.raw["raft_snapshot_threshold"], 8192);
    assert_eq!(rt.watches.len(), 1);
    assert!(rt.disable_update_check && rt.leave_on_terminate);
    assert_eq!(rt.check_update_interval, Duration::from_secs(60));
}

#[test]
fn deprecated_keys_are_translated_with_warnings() {
    let env = Env::new();
    let f = env.write(
        "old.json",
        r#"{"acl_datacenter": "Primary", "acl_master_token": "s3cr3t", "ui": true, "verify_outgoing": true}"#,
    );
    let rt = env.load(&[&arg("config-file", &f)]).unwrap();
    assert_eq!(rt.primary_datacenter, "primary");
    assert_eq!(rt.acl["tokens"]["initial_management"], "s3cr3t");
    assert_eq!(rt.acl["enabled"], true);
    assert!(rt.ui_enabled);
    assert_eq!(rt.tls["defaults"]["verify_outgoing"], true);
    assert!(rt
        .warnings
        .iter()
        .any(|w| w.contains("'acl_datacenter' field is deprecated")));
}

#[test]
fn flags_override_and_append() {
    let env = Env::new();
    let f = env.write(
        "a.json",
        r#"{"retry_join": ["file"], "node_meta": {"a": "1"}, "ports": {"http": 1111}}"#,
    );
    let rt = env
        .load(&[
            &arg("config-file", &f),
            "-retry-join=flag",
            "-node-meta=b:2",
            "-http-port=2222",
            "-https-port=8501",
            "-join=j1",
            "-join-wan=w1",
            "-recursor=1.1.1.1",
            "-recursor=1.1.1.1",
        ])
        .unwrap();
    assert_eq!(rt.retry_join, ["file", "flag"]);
    assert_eq!(rt.node_meta.len(), 2);
    assert_eq!(rt.ports.http, 2222);
    assert_eq!(rt.ports.https, 8501);
    assert_eq!(rt.start_join, ["j1"]);
    assert_eq!(rt.start_join_wan, ["w1"]);
    assert_eq!(rt.recursors, ["1.1.1.1"], "recursors are de-duplicated");
}

#[test]
fn addresses_override_client_addr() {
    let env = Env::new();
    let rt = env
        .load(&[
            "-client=0.0.0.0",
            "-hcl",
            "addresses {\n  http = \"10.0.0.1 unix:///tmp/http.sock\"\n}",
            "-hcl",
            "ports = { dns = 0, grpc = 8502 }",
        ])
        .unwrap();
    assert_eq!(rt.http_addrs(), ["10.0.0.1:8500", "unix:///tmp/http.sock"]);
    assert_eq!(rt.dns_addrs(), ["0.0.0.0:0"]);
    assert_eq!(rt.grpc_addrs(), ["0.0.0.0:8502"]);
    let rt = env.load(&["-client=::1"]).unwrap();
    assert_eq!(rt.http_addrs(), ["[::1]:8500"]);
}

#[test]
fn validation_errors() {
    let env = Env::new();
    let cases: &[(&[&str], &str)] = &[
        (&["-bootstrap"], "'bootstrap = true' requires 'server = true'"),
        (&["-bootstrap-expect=3"], "'bootstrap_expect > 0' requires 'server = true'"),
        (&["-server", "-bootstrap", "-bootstrap-expect=3"], "'bootstrap_expect > 0' and 'bootstrap = true' are mutually exclusive"),
        (&["-dev", "-bootstrap-expect=3"], "'bootstrap_expect > 0' not allowed in dev mode"),
        (&["-server", "-bootstrap-expect=-1"], "bootstrap_expect cannot be -1. Must be greater than or equal to zero"),
        (&["-datacenter="], "datacenter cannot be empty"),
        (&["-datacenter=dc 1"], "datacenter can only contain lowercase alphanumeric, - or _ characters. received: \"dc 1\""),
        (&["-primary-datacenter=a.b"], "primary_datacenter can only contain lowercase alphanumeric, - or _ characters. received: \"a.b\""),
        (&["-http-port=70000"], "ports.http: invalid port: 70000"),
        (&["-raft-protocol=2"], "raft_protocol version 2 is not supported by this version of Praetor"),
        (&["-bind=nope"], "bind_addr: invalid ip address: nope"),
        (&["-advertise=0.0.0.0"], "Advertise address cannot be 0.0.0.0, :: or [::]"),
        (&["-client=127.0.0.1", "-dns-port=8500"], "HTTP address 127.0.0.1:8500 already configured for DNS"),
        (&["-encrypt=abc!"], "encrypt has invalid key: illegal base64 data at input byte 3"),
        (&["-node-meta=consul-x:1"], "node_meta invalid: Key prefix 'consul-' is reserved for internal use: consul-x"),
        (&["-log-level=loud"], "Invalid log level: loud. Valid log levels are: [trace debug info warn error]"),
        (&["-node-id=abc"], "node_id: invalid node ID \"abc\": must be a UUID like 8b1d1f88-7b1e-4c0b-9a3f-6c2d1e0a5b77"),
        (&["-alt-domain=service.example."], "alt_domain cannot start with {service,connect,node,query,addr,dc1}"),
        (&["-hcl", "performance { raft_multiplier = 11 }"], "performance.raft_multiplier cannot be 11. Must be between 1 and 10"),
        (&["-recursor=0.0.0.0"], "DNS recursor address cannot be 0.0.0.0, :: or [::]"),
    ];
    for (args, want) in cases {
        assert_eq!(&err_text(env.load(args)), want, "args {args:?}");
    }
}

#[test]
fn data_dir_required_unless_dev() {
    let text = err_text(load(&AgentFlags::parse(&["-node=x"]).unwrap()));
    assert_eq!(text, "data_dir cannot be empty");
    let env = Env::new();
    let file = env.write("file", "x");
    let text = err_text(load(
        &AgentFlags::parse(&[&arg("data-dir", &file), "-node=x"]).unwrap(),
    ));
    assert!(
        text.starts_with("data_dir ") && text.ends_with("is not a directory"),
        "{text}"
    );
}

#[test]
fn bootstrap_expect_one_means_bootstrap() {
    let env = Env::new();
    let rt = env.load(&["-server", "-bootstrap-expect=1"]).unwrap();
    assert!(rt.bootstrap);
    assert_eq!(rt.bootstrap_expect, 0);
    assert!(rt
        .warnings
        .iter()
        .any(|w| w.contains("BootstrapExpect is set to 1")));
}

#[test]
fn datacenter_is_lowercased_and_node_id_normalized() {
    let env = Env::new();
    let rt = env
        .load(&[
            "-datacenter=EAST",
            "-node-id=8B1D1F88-7B1E-4C0B-9A3F-6C2D1E0A5B77",
        ])
        .unwrap();
    assert_eq!(rt.datacenter, "east");
    assert_eq!(
        rt.node_id.as_deref(),
        Some("8b1d1f88-7b1e-4c0b-9a3f-6c2d1e0a5b77")
    );
}

#[test]
fn duplicate_service_ids_are_rejected() {
    let env = Env::new();
    let a = env.write("a.json", r#"{"service": {"name": "web", "port": 80}}"#);
    let b = env.write("b.hcl", "service {\n  name = \"web\"\n  port = 81\n}\n");
    let text = err_text(env.load(&[&arg("config-file", &a), &arg("config-file", &b)]));
    assert!(
        text.starts_with("service ID \"web\" is defined more than once"),
        "{text}"
    );
    assert!(text.contains("a.json") && text.contains("b.hcl"), "{text}");
    let ok = env.write(
        "c.json",
        r#"{"services": [{"id": "web1", "name": "web"}, {"id": "web2", "name": "web"}]}"#,
    );
    assert!(env.load(&[&arg("config-file", &ok)]).is_ok());
}

#[test]
fn invalid_definitions() {
    let env = Env::new();
    let cases = [
        (r#"{"service": {"port": 80}}"#, "missing service name"),
        (
            r#"{"service": {"name": "w", "port": "80"}}"#,
            "'service.port' expected type 'int', got unconvertible type 'string', value: '80'",
        ),
        (
            r#"{"service": {"name": "w", "socket_path": "/s", "port": 1}}"#,
            "service w cannot have both socket path /s and address/port",
        ),
        (
            r#"{"service": {"name": "w", "weights": {"passing": 0}}}"#,
            "Invalid weight definition for service w: Passing must be greater than 0",
        ),
        (r#"{"checks": [{"ttl": "1s"}]}"#, "missing check name"),
        (
            r#"{"checks": [{"name": "a"}, {"name": "a"}]}"#,
            "check ID \"a\" is defined more than once",
        ),
        (
            r#"{"check": {"name": "a", "interval": "10"}}"#,
            "check.interval: invalid duration: \"10\": time: missing unit in duration \"10\"",
        ),
        (
            r#"{"ports": {"http": "8500"}}"#,
            "'ports.http' expected type 'int'",
        ),
        (
            r#"{"retry_interval": "often"}"#,
            "retry_interval: invalid duration",
        ),
        (r#"{"server": "true"}"#, "'server' expected type 'bool'"),
    ];
    for (i, (data, want)) in cases.iter().enumerate() {
        let f = env.write(&format!("bad{i}.json"), data);
        let text = err_text(env.load(&[&arg("config-file", &f)]));
        assert!(text.contains(want), "{data}: got {text}");
    }
}

#[test]
fn parse_and_read_errors() {
    let env = Env::new();
    let f = env.write("broken.json", "{\"datacenter\": ");
    let text = err_text(env.load(&[&arg("config-file", &f)]));
    assert!(
        text.starts_with(&format!("failed to parse {}: ", f.display())),
        "{text}"
    );
    let h = env.write("broken.hcl", "datacenter = \n");
    assert!(err_text(env.load(&[&arg("config-file", &h)])).contains("broken.hcl: line "));
    let missing = env.path("missing.json");
    match env.load(&[&arg("config-file", &missing)]) {
        Err(ConfigError::ReadFile { path, .. }) => assert_eq!(path, missing),
        other => panic!("unexpected {other:?}"),
    }
    let empty = env.write("empty.json", "");
    assert!(
        env.load(&[&arg("config-file", &empty)]).is_ok(),
        "empty files are skipped"
    );
}

#[test]
fn reload_reads_files_again() {
    let env = Env::new();
    let f = env.write("a.json", r#"{"log_level": "info"}"#);
    let rt = env.load(&[&arg("config-file", &f)]).unwrap();
    env.write("a.json", r#"{"log_level": "debug"}"#);
    let again = load(&rt.flags).unwrap();
    assert_eq!(again.log_level, "debug");
    assert_eq!(again.flags, rt.flags);
}

#[test]
fn sanitized_hides_secrets() {
    let env = Env::new();
    let f = env.write(
        "s.json",
        r#"{"encrypt": "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=",
            "acl": {"enabled": true, "tokens": {"initial_management": "root-secret", "agent": "agent-secret"}},
            "service": {"name": "web", "token": "svc-secret", "Check": {"ttl": "1s", "Token": "chk-secret"}},
            "auto_config": {"intro_token": "intro-secret"}}"#,
    );
    let rt = env.load(&[&arg("config-file", &f)]).unwrap();
    let s = rt.sanitized();
    let text = s.to_string();
    for secret in [
        "root-secret",
        "agent-secret",
        "svc-secret",
        "chk-secret",
        "pUqJrVyVRj5j",
    ] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    assert_eq!(s["EncryptKey"], "hidden");
    assert_eq!(s["ACL"]["tokens"]["agent"], "hidden");
    assert_eq!(s["ACL"]["enabled"], true);
    assert_eq!(s["Services"][0]["token"], "hidden");
    assert_eq!(s["Datacenter"], "dc1");
    assert_eq!(s["NodeName"], "n1");
    assert_eq!(s["HTTPPort"], 8500);
    assert_eq!(
        rt.encrypt.as_deref(),
        Some("pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=")
    );
}

#[test]
fn error_display_is_one_line() {
    let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory");
    let e = ConfigError::ReadFile {
        path: PathBuf::from("/x.json"),
        source: io,
    };
    assert_eq!(
        e.to_string(),
        "config: failed to read /x.json: No such file or directory"
    );
    let e = ConfigError::from(FlagError::Undefined("foo".into()));
    assert_eq!(e.to_string(), "flag provided but not defined: -foo");
}
