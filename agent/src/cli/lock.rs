//! `lock [-n N] [-name] [-timeout] [-shell=false] PREFIX COMMAND...`: run a command while
//! holding a lock (Consul's `api.Lock` on `PREFIX/.lock`) or, with `-n > 1`, one of N slots
//! of a semaphore (`api.Semaphore`: contender keys `PREFIX/<session>` plus the
//! `PREFIX/.lock` holder document updated by check-and-set). The session is renewed while
//! the command runs; if the lock is lost the command is killed.

use super::{client, connect, http_flags, parse};
use crate::api::{Client, KvPair};
use crate::flags::FlagSet;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn create_session(c: &Client, name: &str) -> Result<String, String> {
    let a = c
        .put_json(
            "/v1/session/create",
            &[],
            &json!({"Name": name, "TTL": "15s", "LockDelay": "1s", "Behavior": "release"}),
        )
        .map_err(|e| format!("Failed to create session: {e}"))?;
    let v: Value = a.json().map_err(|e| e.to_string())?;
    v["ID"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| "Failed to create session: no ID".into())
}

fn renew_loop(c: Client, sid: String, stop: Arc<AtomicBool>, lost: Arc<AtomicBool>) {
    while !stop.load(Ordering::SeqCst) {
        for _ in 0..50 {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        match c.call(
            "PUT",
            &format!("/v1/session/renew/{sid}"),
            &[],
            None,
            &[404],
        ) {
            Ok(a) if a.status == 404 => {
                lost.store(true, Ordering::SeqCst);
                return;
            }
            _ => {}
        }
    }
}

fn kv_with_index(c: &Client, key: &str, index: u64) -> Result<(u64, Option<KvPair>), String> {
    let q = if index > 0 {
        vec![("index", index.to_string()), ("wait", "5s".to_string())]
    } else {
        vec![]
    };
    let a = c
        .call(
            "GET",
            &format!("/v1/kv/{}", crate::api::encode_path(key)),
            &q,
            None,
            &[404],
        )
        .map_err(|e| e.to_string())?;
    if a.status == 404 {
        return Ok((a.index, None));
    }
    let v: Vec<KvPair> = a.json().map_err(|e| e.to_string())?;
    Ok((a.index, v.into_iter().next()))
}

fn acquire_lock(
    c: &Client,
    key: &str,
    sid: &str,
    deadline: Option<Instant>,
) -> Result<bool, String> {
    let mut index = 0;
    loop {
        if c.kv_put(
            key,
            Vec::new(),
            &[
                ("acquire", sid.to_string()),
                ("flags", "3304740253564472344".into()),
            ],
        )
        .map_err(|e| e.to_string())?
        {
            return Ok(true);
        }
        if deadline.map(|d| Instant::now() >= d).unwrap_or(false) {
            return Ok(false);
        }
        // Wait for the holder to go (the key changes), then try again after the lock delay.
        let (i, _) = kv_with_index(c, key, index)?;
        index = i;
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn holders_doc(kv: &Option<KvPair>) -> (u64, i64, BTreeMap<String, bool>) {
    match kv {
        None => (0, 0, BTreeMap::new()),
        Some(kv) => {
            let v: Value = serde_json::from_slice(&kv.bytes()).unwrap_or(Value::Null);
            let holders = v["Holders"]
                .as_object()
                .map(|m| m.keys().map(|k| (k.clone(), true)).collect())
                .unwrap_or_default();
            (kv.modify_index, v["Limit"].as_i64().unwrap_or(0), holders)
        }
    }
}

fn acquire_slot(
    c: &Client,
    prefix: &str,
    sid: &str,
    limit: i64,
    deadline: Option<Instant>,
) -> Result<bool, String> {
    let contender = format!("{prefix}/{sid}");
    if !c
        .kv_put(&contender, Vec::new(), &[("acquire", sid.to_string())])
        .map_err(|e| e.to_string())?
    {
        return Err("Failed to create contender entry".into());
    }
    let lock_key = format!("{prefix}/.lock");
    let mut index = 0;
    loop {
        let (_, cur) = kv_with_index(c, &lock_key, 0)?;
        let (mi, lim, mut holders) = holders_doc(&cur);
        if lim != 0 && lim != limit {
            return Err(format!(
                "Semaphore limit conflict (lock: {lim}, local: {limit})"
            ));
        }
        // Prune holders whose contender key (held by their session) is gone.
        let live: Vec<String> = c
            .kv_list(&format!("{prefix}/"))
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter(|k| k.session.is_some())
            .map(|k| k.key)
            .collect();
        holders.retain(|h, _| live.iter().any(|k| k == &format!("{prefix}/{h}")));
        if (holders.len() as i64) < limit {
            holders.insert(sid.to_string(), true);
            let doc = json!({"Limit": limit, "Holders": holders});
            if c.kv_put(
                &lock_key,
                doc.to_string().into_bytes(),
                &[
                    ("cas", mi.to_string()),
                    ("flags", "16210313421097356768".into()),
                ],
            )
            .map_err(|e| e.to_string())?
            {
                return Ok(true);
            }
            continue;
        }
        if deadline.map(|d| Instant::now() >= d).unwrap_or(false) {
            return Ok(false);
        }
        let (i, _) = kv_with_index(c, &lock_key, index)?;
        index = i;
    }
}

fn release_slot(c: &Client, prefix: &str, sid: &str) {
    let lock_key = format!("{prefix}/.lock");
    for _ in 0..10 {
        let Ok((_, cur)) = kv_with_index(c, &lock_key, 0) else {
            break;
        };
        let (mi, limit, mut holders) = holders_doc(&cur);
        if holders.remove(sid).is_none() {
            break;
        }
        let doc = json!({"Limit": limit, "Holders": holders});
        if c.kv_put(
            &lock_key,
            doc.to_string().into_bytes(),
            &[("cas", mi.to_string())],
        )
        .unwrap_or(false)
        {
            break;
        }
    }
    let _ = c.kv_delete(&format!("{prefix}/{sid}"), &[]);
}

/// `lock`
pub(super) fn run(args: &[String]) -> i32 {
    let mut fs = FlagSet::new("lock");
    http_flags(&mut fs);
    fs.int(
        "n",
        "Optional limit on the number of concurrent lock holders (semaphore).",
    )
    .string("name", "Optional name to associate with the lock session.")
    .duration(
        "timeout",
        "Maximum amount of time to wait to acquire the lock.",
    )
    .bool("shell", "Use a shell to run the command (default true).")
    .bool("verbose", "Enable verbose (debugging) output.")
    .int("try", "Deprecated: like -timeout with a number of seconds.")
    .bool("pass-stdin", "Pass stdin to the child process.")
    .bool("monitor-retry", "Ignored.")
    .int("child-exit-code", "Ignored.");
    let usage = "Usage: praetor lock [options] prefix child...";
    let p = or_exit!(parse(&fs, args, usage));
    let pos = p.positional();
    if pos.len() < 2 {
        eprintln!("Key prefix and child command must be specified\n\n{usage}");
        return 1;
    }
    let prefix = pos[0].trim_end_matches('/').to_string();
    let child_args = &pos[1..];
    let limit = p.get_int("n").unwrap_or(1);
    if limit < 1 {
        eprintln!("Lock holder limit must be positive");
        return 1;
    }
    let c = or_exit!(connect(&p, "Error connecting to Consul agent"));
    let name = p
        .get_str("name")
        .map(str::to_string)
        .unwrap_or_else(|| format!("Consul lock for '{}' at '{prefix}'", child_args.join(" ")));
    let sid = match create_session(&c, &name) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    let lost = Arc::new(AtomicBool::new(false));
    {
        let c2 = match client(&p) {
            Ok(c) => c,
            Err(_) => return 1,
        };
        let (s, st, l) = (sid.clone(), stop.clone(), lost.clone());
        std::thread::spawn(move || renew_loop(c2, s, st, l));
    }
    let deadline = p
        .get_duration("timeout")
        .filter(|d| !d.is_zero())
        .map(|d| Instant::now() + d);
    let lock_key = format!("{prefix}/.lock");
    let acquired = if limit == 1 {
        acquire_lock(&c, &lock_key, &sid, deadline)
    } else {
        acquire_slot(&c, &prefix, &sid, limit, deadline)
    };
    let cleanup = |c: &Client| {
        stop.store(true, Ordering::SeqCst);
        if limit == 1 {
            let _ = c.kv_put(&lock_key, Vec::new(), &[("release", sid.clone())]);
        } else {
            release_slot(c, &prefix, &sid);
        }
        let _ = c.call("PUT", &format!("/v1/session/destroy/{sid}"), &[], None, &[]);
    };
    match acquired {
        Ok(true) => {}
        Ok(false) => {
            eprintln!("Shutdown triggered or timeout during lock acquisition");
            cleanup(&c);
            return 1;
        }
        Err(e) => {
            eprintln!("Lock acquisition failed: {e}");
            cleanup(&c);
            return 1;
        }
    }
    let mut cmd = if p.get_bool("shell").unwrap_or(true) {
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c").arg(child_args.join(" "));
        cmd
    } else {
        let mut cmd = Command::new(&child_args[0]);
        cmd.args(&child_args[1..]);
        cmd
    };
    cmd.env("CONSUL_LOCK_HELD", "true");
    let mut child = match cmd.spawn() {
        Ok(ch) => ch,
        Err(e) => {
            eprintln!("Error running handler: {e}");
            cleanup(&c);
            return 1;
        }
    };
    // Watch the lock while the child runs; kill it if the lock is lost.
    let code = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st.code().unwrap_or(1),
            Ok(None) => {}
            Err(e) => {
                eprintln!("Error waiting for handler: {e}");
                break 1;
            }
        }
        let held = if limit == 1 {
            kv_with_index(&c, &lock_key, 0)
                .map(|(_, kv)| kv.and_then(|k| k.session) == Some(sid.clone()))
                .unwrap_or(true)
        } else {
            kv_with_index(&c, &format!("{prefix}/{sid}"), 0)
                .map(|(_, kv)| kv.and_then(|k| k.session) == Some(sid.clone()))
                .unwrap_or(true)
        };
        if !held || lost.load(Ordering::SeqCst) {
            eprintln!("Lock lost, killing child");
            let _ = child.kill();
            let _ = child.wait();
            break 1;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    cleanup(&c);
    code
}
