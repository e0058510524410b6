//! `debug [-output DIR] [-duration D] [-archive=false]`: collect what a bug report needs
//! from an agent: its configuration (secrets already redacted by `/v1/agent/self`), members,
//! metrics sampled at the start and the end, host facts, and the agent's logs (through
//! `/v1/agent/monitor` at debug level) for the duration. Written to a directory and, by
//! default, packed with `tar -czf`.

use super::{connect, http_flags, parse};
use crate::flags::FlagSet;
use serde_json::{json, Value};
use std::io::Read;
use std::time::{Duration, Instant};

fn write(dir: &std::path::Path, name: &str, v: &Value) -> Result<(), String> {
    let bytes = serde_json::to_vec_pretty(v).map_err(|e| e.to_string())?;
    std::fs::write(dir.join(name), bytes).map_err(|e| format!("writing {name}: {e}"))
}

fn host_facts() -> Value {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kb = |k: &str| -> u64 {
        meminfo
            .lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    json!({
        "Hostname": std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default().trim(),
        "OS": std::env::consts::OS,
        "Arch": std::env::consts::ARCH,
        "CPUs": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "MemTotalBytes": mem_kb("MemTotal:") * 1024,
        "MemAvailableBytes": mem_kb("MemAvailable:") * 1024,
        "Kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(),
    })
}

/// `debug`
pub(super) fn run(args: &[String]) -> i32 {
    let mut fs = FlagSet::new("debug");
    http_flags(&mut fs);
    fs.string(
        "output",
        "Directory to write the bundle to (default: ./consul-debug-<timestamp>).",
    )
    .duration(
        "duration",
        "How long to capture logs and metrics (default 30s).",
    )
    .duration(
        "interval",
        "Accepted for compatibility; metrics are taken at the start and the end.",
    )
    .bool("archive", "Pack the bundle as a .tar.gz (default true).")
    .repeated(
        "capture",
        "Accepted for compatibility; everything is captured.",
    );
    let p = or_exit!(parse(&fs, args, "Usage: praetor debug [options]"));
    let c = or_exit!(connect(&p, "Error connecting to Consul agent"));
    let duration = p
        .get_duration("duration")
        .unwrap_or(Duration::from_secs(30));
    let stamp = crate::monitor::timestamp().replace([':', '.'], "-");
    let out = std::path::PathBuf::from(
        p.get_str("output")
            .map(str::to_string)
            .unwrap_or_else(|| format!("consul-debug-{stamp}")),
    );
    if out.exists() {
        eprintln!("Output directory already exists: {}", out.display());
        return 1;
    }
    if let Err(e) = std::fs::create_dir_all(&out) {
        eprintln!("Could not create output directory: {e}");
        return 1;
    }
    let me: Value = match c.get_json("/v1/agent/self", &[]) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("Error querying agent: {e}");
            return 1;
        }
    };
    let collect = || -> Result<(), String> {
        write(&out, "agent.json", &me)?;
        write(
            &out,
            "members.json",
            &c.get_json::<Value>("/v1/agent/members", &[])
                .map_err(|e| e.to_string())?,
        )?;
        write(
            &out,
            "metrics-start.json",
            &c.get_json::<Value>("/v1/agent/metrics", &[])
                .map_err(|e| e.to_string())?,
        )?;
        write(&out, "host.json", &host_facts())?;
        Ok(())
    };
    if let Err(e) = collect() {
        eprintln!("Error collecting debug data: {e}");
        return 1;
    }
    println!("==> Starting debugger and capturing static information...");
    println!(
        "==> Capturing logs and metrics for {}",
        crate::types::format_duration(duration)
    );
    // Logs: stream the monitor for the duration.
    let addr = p
        .get_str("http-addr")
        .map(str::to_string)
        .or_else(|| std::env::var("CONSUL_HTTP_ADDR").ok())
        .unwrap_or_else(|| "127.0.0.1:8500".into());
    let mut logs = Vec::new();
    if let Ok(base) = crate::api::base_url(&addr) {
        let started = Instant::now();
        let resp = reqwest::blocking::Client::builder()
            .timeout(duration + Duration::from_secs(1))
            .build()
            .and_then(|cl| {
                cl.get(format!("{base}/v1/agent/monitor?loglevel=debug"))
                    .send()
            });
        if let Ok(mut r) = resp {
            let mut buf = [0u8; 8192];
            while started.elapsed() < duration {
                match r.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => logs.extend_from_slice(&buf[..n]),
                }
            }
        }
        let rest = duration.saturating_sub(started.elapsed());
        std::thread::sleep(rest);
    }
    if let Err(e) = std::fs::write(out.join("consul.log"), &logs) {
        eprintln!("Error writing logs: {e}");
        return 1;
    }
    let end = c
        .get_json::<Value>("/v1/agent/metrics", &[])
        .unwrap_or(Value::Null);
    let index = json!({
        "Version": 1, "AgentVersion": crate::CONSUL_COMPAT_VERSION, "Praetor": env!("CARGO_PKG_VERSION"),
        "Timestamp": crate::monitor::timestamp(), "Duration": crate::types::format_duration(duration),
        "Targets": ["agent", "host", "members", "metrics", "logs"],
    });
    if write(&out, "metrics-end.json", &end)
        .and_then(|_| write(&out, "index.json", &index))
        .is_err()
    {
        eprintln!("Error writing debug data");
        return 1;
    }
    if !p.get_bool("archive").unwrap_or(true) {
        println!("==> Saved debug directory: {}", out.display());
        return 0;
    }
    let archive = format!("{}.tar.gz", out.display());
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(|p| p.to_path_buf())
        .unwrap_or_else(|| ".".into());
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let status = std::process::Command::new("tar")
        .arg("-czf")
        .arg(&archive)
        .arg("-C")
        .arg(&parent)
        .arg(&name)
        .status();
    match status {
        Ok(s) if s.success() => {
            let _ = std::fs::remove_dir_all(&out);
            println!("==> Saved debug archive: {archive}");
            0
        }
        _ => {
            eprintln!(
                "Error creating the archive with tar; the bundle is left in {}",
                out.display()
            );
            1
        }
    }
}
