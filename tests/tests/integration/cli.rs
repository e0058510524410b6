//! CLI verbs against a running agent: output wording and exit codes as Consul's.

use integration_tests::harness::Node;

#[test]
fn kv_cli_put_get_delete() {
    let n = Node::dev();
    let (code, out, _) = n.cli(&["kv", "put", "redis/config/minconns", "1"]);
    assert_eq!(
        (code, out.trim()),
        (0, "Success! Data written to: redis/config/minconns")
    );
    let (code, out, _) = n.cli(&["kv", "get", "redis/config/minconns"]);
    assert_eq!((code, out.trim()), (0, "1"));
    n.cli(&[
        "kv",
        "put",
        "-flags=42",
        "redis/config/users/admin",
        "abcd1234",
    ]);
    let (code, out, _) = n.cli(&["kv", "get", "-recurse", "redis/config"]);
    assert_eq!(code, 0);
    assert_eq!(
        out.trim(),
        "redis/config/minconns:1\nredis/config/users/admin:abcd1234"
    );
    let (code, out, _) = n.cli(&["kv", "get", "-detailed", "redis/config/users/admin"]);
    assert_eq!(code, 0);
    assert!(out.contains("Flags") && out.contains("42"), "{out}");
    let (code, _, err) = n.cli(&["kv", "get", "nope"]);
    assert_eq!(code, 1);
    assert!(err.contains("Error! No key exists at: nope"), "{err}");
    let (code, out, _) = n.cli(&["kv", "get", "-keys", "-separator=/", "redis/"]);
    assert_eq!((code, out.trim()), (0, "redis/config/"));
    let (code, _, err) = n.cli(&[
        "kv",
        "put",
        "-cas",
        "-modify-index=1",
        "redis/config/minconns",
        "2",
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("CAS failed"), "{err}");
    let (code, out, _) = n.cli_stdin(&["kv", "put", "from/stdin", "-"], Some(b"piped"));
    assert_eq!(code, 0, "{out}");
    assert_eq!(n.cli(&["kv", "get", "from/stdin"]).1.trim(), "piped");
    let (code, out, _) = n.cli(&["kv", "export", "redis/"]);
    assert_eq!(code, 0);
    let exported: serde_json::Value = serde_json::from_str(&out).expect("export is JSON");
    assert_eq!(exported.as_array().unwrap().len(), 2);
    let (code, out, _) = n.cli(&["kv", "delete", "-recurse", "redis"]);
    assert_eq!(
        (code, out.trim()),
        (0, "Success! Deleted keys with prefix: redis")
    );
    let (code, out, _) = n.cli_stdin(
        &["kv", "import", "-"],
        Some(out_export(&exported).as_bytes()),
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Imported: redis/config/minconns"), "{out}");
    assert_eq!(
        n.cli(&["kv", "get", "redis/config/users/admin"]).1.trim(),
        "abcd1234"
    );
    let (code, out, _) = n.cli(&["kv", "delete", "from/stdin"]);
    assert_eq!((code, out.trim()), (0, "Success! Deleted key: from/stdin"));
}

fn out_export(v: &serde_json::Value) -> String {
    v.to_string()
}

#[test]
fn catalog_services_members_and_version_cli() {
    let n = Node::dev();
    let (code, out, _) = n.cli(&[
        "services",
        "register",
        "-name=web",
        "-port=80",
        "-tag=rails",
    ]);
    assert_eq!((code, out.trim()), (0, "Registered service: web"));
    let (code, out, _) = n.cli(&["catalog", "services", "-tags"]);
    assert_eq!(code, 0);
    assert!(
        out.lines()
            .any(|l| l.starts_with("web") && l.contains("rails")),
        "{out}"
    );
    let (code, out, _) = n.cli(&["catalog", "datacenters"]);
    assert_eq!((code, out.trim()), (0, "dc1"));
    let (code, out, _) = n.cli(&["catalog", "nodes"]);
    assert_eq!(code, 0);
    assert!(out.lines().next().unwrap().starts_with("Node"), "{out}");
    assert!(out.contains("node1"));
    let (code, out, _) = n.cli(&["members"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("node1") && out.contains("alive") && out.contains("server"),
        "{out}"
    );
    let (code, out, _) = n.cli(&["services", "deregister", "-id=web"]);
    assert_eq!((code, out.trim()), (0, "Deregistered service: web"));
    let (code, out, _) = n.cli(&["version", "-format=json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["Version"], "1.16.1");
    let (code, out, _) = n.cli(&["info"]);
    assert_eq!(code, 0);
    assert!(out.contains("raft:"), "{out}");
    let (code, out, _) = n.cli(&["reload"]);
    assert_eq!((code, out.trim()), (0, "Configuration reload triggered"));
    let (code, _, err) = n.cli(&["nosuchverb"]);
    assert_eq!(code, 1, "{err}");
}

#[test]
fn cli_reports_unreachable_agent() {
    let n = Node::dev();
    let out = std::process::Command::new(integration_tests::harness::praetor_bin())
        .args(["kv", "get", "-http-addr=127.0.0.1:1", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(!String::from_utf8_lossy(&out.stderr).is_empty());
    drop(n);
}

#[test]
fn leave_stops_the_agent() {
    let mut n = Node::dev();
    let (code, out, _) = n.cli(&["leave"]);
    assert_eq!((code, out.trim()), (0, "Graceful leave complete"));
    let status = n.wait_exit().expect("exited");
    assert!(status.success(), "{status:?}\n{}", n.log());
}

#[test]
fn snapshot_operator_event_and_keygen_cli() {
    let n = Node::server();
    n.cli(&["kv", "put", "snap/cli", "v"]);
    let file = n.dir().join("backup.snap");
    let f = file.to_str().unwrap();
    let (code, out, err) = n.cli(&["snapshot", "save", f]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("Saved and verified snapshot to index "),
        "{out}"
    );
    let (code, out, _) = n.cli(&["snapshot", "inspect", f]);
    assert_eq!(code, 0);
    assert!(out.contains("KVS") && out.contains("Index"), "{out}");
    n.cli(&["kv", "delete", "snap/cli"]);
    let (code, out, err) = n.cli(&["snapshot", "restore", f]);
    assert_eq!((code, out.trim()), (0, "Restored snapshot"), "{err}");
    assert_eq!(n.cli(&["kv", "get", "snap/cli"]).1.trim(), "v");
    let (code, out, _) = n.cli(&["operator", "raft", "list-peers"]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("Node") && out.contains("leader") && out.contains("node1"),
        "{out}"
    );
    let (code, out, _) = n.cli(&["event", "-name=deploy", "payload"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("Event ID: "), "{out}");
    let (code, out, _) = n.cli(&["keygen"]);
    assert_eq!(code, 0);
    assert_eq!(out.trim().len(), 44, "32 bytes in base64: {out}");
    let (code, _, err) = n.cli(&["join", "127.0.0.1:1"]);
    assert_eq!(code, 1, "{err}");
    let (code, _, err) = n.cli(&["snapshot", "restore", "/nonexistent"]);
    assert_eq!(code, 1, "{err}");
}

#[test]
fn lock_excludes_and_semaphore_limits() {
    let n = Node::dev();
    let log = n.dir().join("lock.log");
    let l = log.to_str().unwrap().to_string();
    // Each holder writes start/end around a sleep; with a lock the intervals never overlap.
    let script = format!("echo start >> {l}; sleep 0.4; echo end >> {l}");
    let spawn = |prefix: &str, extra: &[&str]| {
        let mut args: Vec<String> = vec!["lock".into()];
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push(prefix.into());
        args.push(script.clone());
        std::process::Command::new(integration_tests::harness::praetor_bin())
            .args(&args)
            .env("CONSUL_HTTP_ADDR", &n.http)
            .spawn()
            .unwrap()
    };
    let kids: Vec<_> = (0..3).map(|_| spawn("locks/app", &[])).collect();
    for mut k in kids {
        assert!(k.wait().unwrap().success());
    }
    let lines: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(lines.len(), 6, "{lines:?}");
    for pair in lines.chunks(2) {
        assert_eq!(pair, ["start", "end"], "holders overlapped: {lines:?}");
    }
    // the lock is released and its session gone
    let (_, out, _) = n.cli(&["kv", "get", "-detailed", "locks/app/.lock"]);
    assert!(out.contains("Session          -"), "{out}");

    // a semaphore of 2: at most two holders at once
    std::fs::write(&log, "").unwrap();
    let kids: Vec<_> = (0..4).map(|_| spawn("locks/sem", &["-n=2"])).collect();
    for mut k in kids {
        assert!(k.wait().unwrap().success());
    }
    let mut inside = 0;
    let mut max_inside = 0;
    for line in std::fs::read_to_string(&log).unwrap().lines() {
        inside += if line == "start" { 1 } else { -1 };
        max_inside = max_inside.max(inside);
    }
    assert_eq!(
        max_inside, 2,
        "the semaphore admits two holders at most, and does admit two"
    );
    let (code, _, err) = n.cli(&["lock", "only-prefix"]);
    assert_eq!(code, 1, "{err}");
}

#[test]
fn watch_runs_the_handler_on_changes() {
    let n = Node::dev();
    let out = n.dir().join("watch.out");
    let mut w = std::process::Command::new(integration_tests::harness::praetor_bin())
        .args([
            "watch",
            "-type=key",
            "-key=watched/k",
            &format!("cat >> {}; echo >> {}", out.display(), out.display()),
        ])
        .env("CONSUL_HTTP_ADDR", &n.http)
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    n.cli(&["kv", "put", "watched/k", "one"]);
    std::thread::sleep(std::time::Duration::from_millis(500));
    n.cli(&["kv", "put", "watched/k", "two"]);
    let got = integration_tests::harness::wait_until(
        std::time::Duration::from_secs(10),
        "two handler runs after the writes",
        || {
            let s = std::fs::read_to_string(&out).ok()?;
            (s.contains("dHdv")).then_some(s) // base64 of "two"
        },
    );
    let _ = w.kill();
    let _ = w.wait();
    assert!(got.contains("b25l"), "the first write was seen too: {got}"); // base64 of "one"
    assert!(
        got.starts_with("null"),
        "the initial state (no key) is delivered first: {got}"
    );
}

#[test]
fn debug_bundle() {
    let n = Node::dev();
    let out = n.dir().join("bundle");
    let (code, stdout, err) = n.cli(&[
        "debug",
        "-duration=2s",
        &format!("-output={}", out.display()),
    ]);
    assert_eq!(code, 0, "{err}");
    let archive = format!("{}.tar.gz", out.display());
    assert!(
        stdout.contains(&format!("Saved debug archive: {archive}")),
        "{stdout}"
    );
    let x = n.dir().join("x");
    std::fs::create_dir_all(&x).unwrap();
    assert!(std::process::Command::new("tar")
        .args(["-xzf", &archive, "-C"])
        .arg(&x)
        .status()
        .unwrap()
        .success());
    let b = x.join("bundle");
    for f in [
        "agent.json",
        "members.json",
        "metrics-start.json",
        "metrics-end.json",
        "host.json",
        "index.json",
        "consul.log",
    ] {
        assert!(b.join(f).exists(), "{f} in the bundle");
    }
    let agent: serde_json::Value =
        serde_json::from_slice(&std::fs::read(b.join("agent.json")).unwrap()).unwrap();
    assert_eq!(agent["Config"]["NodeName"], "node1");
    let logs = std::fs::read_to_string(b.join("consul.log")).unwrap();
    assert!(logs.contains("monitor attached"), "logs captured: {logs}");
    let (code, _, _) = n.cli(&[
        "debug",
        "-duration=1s",
        &format!("-output={}", out.display()),
        "-archive=false",
    ]);
    assert_eq!(code, 0);
    assert!(out.join("agent.json").exists());
}
