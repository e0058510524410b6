//! `watch -type key|keyprefix|services|nodes|service|checks|event [...] [handler]`: runs a
//! blocking query in a loop and, on every change, prints the JSON result or pipes it to the
//! handler command's standard input.

use super::{connect, http_flags, parse};
use crate::flags::FlagSet;
use std::io::Write;
use std::process::{Command, Stdio};

/// `watch`
pub(super) fn run(args: &[String]) -> i32 {
    let mut fs = FlagSet::new("watch");
    http_flags(&mut fs);
    fs.string(
        "type",
        "Specifies the watch type: key, keyprefix, services, nodes, service, checks, event.",
    )
    .string("key", "Specifies the key to watch (type key).")
    .string(
        "prefix",
        "Specifies the key prefix to watch (type keyprefix).",
    )
    .string(
        "service",
        "Specifies the service to watch (types service, checks).",
    )
    .repeated("tag", "Service tag to filter on (type service).")
    .bool("passingonly", "Only passing instances (type service).")
    .string("state", "Check state to filter on (type checks).")
    .string("name", "Event name to watch (type event).")
    .string("shell", "Use a shell to run the handler (default true).");
    let usage = "Usage: praetor watch [options] [child...]";
    let p = or_exit!(parse(&fs, args, usage));
    let kind = p.get_str("type").unwrap_or("");
    let s = |k: &str| p.get_str(k).unwrap_or("").to_string();
    let mut query: Vec<(&str, String)> = Vec::new();
    let path = match kind {
        "key" if !s("key").is_empty() => format!("/v1/kv/{}", crate::api::encode_path(&s("key"))),
        "keyprefix" if p.is_set("prefix") => {
            query.push(("recurse", String::new()));
            format!("/v1/kv/{}", crate::api::encode_path(&s("prefix")))
        }
        "services" => "/v1/catalog/services".into(),
        "nodes" => "/v1/catalog/nodes".into(),
        "service" if !s("service").is_empty() => {
            for t in p.get_all("tag") {
                query.push(("tag", t.to_string()));
            }
            if p.get_bool("passingonly").unwrap_or(false) {
                query.push(("passing", String::new()));
            }
            format!("/v1/health/service/{}", s("service"))
        }
        "checks" if !s("service").is_empty() => format!("/v1/health/checks/{}", s("service")),
        "checks" => format!(
            "/v1/health/state/{}",
            if s("state").is_empty() {
                "any".into()
            } else {
                s("state")
            }
        ),
        "event" => {
            if !s("name").is_empty() {
                query.push(("name", s("name")));
            }
            "/v1/event/list".into()
        }
        "" => {
            eprintln!("Watch type must be specified\n\n{usage}");
            return 1;
        }
        other => {
            eprintln!("Error: Unsupported watch type or missing parameters for type {other:?}");
            return 1;
        }
    };
    let c = or_exit!(connect(&p, "Error connecting to Consul agent"));
    let handler: Vec<String> = p.positional().to_vec();
    let mut index = 0u64;
    let mut last_body: Option<Vec<u8>> = None;
    loop {
        let mut q = query.clone();
        if index > 0 {
            q.push(("index", index.to_string()));
            q.push(("wait", "5m".to_string()));
        }
        let a = match c.call("GET", &path, &q, None, &[404]) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("Error querying Consul agent: {e}");
                std::thread::sleep(std::time::Duration::from_secs(1));
                continue;
            }
        };
        if a.index < index {
            index = 0; // the index went backwards (snapshot restore): start over
        } else {
            index = a.index;
        }
        let body = if a.status == 404 {
            b"null".to_vec()
        } else {
            a.body
        };
        if last_body.as_ref() == Some(&body) {
            continue;
        }
        last_body = Some(body.clone());
        if handler.is_empty() {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(&body);
            let _ = writeln!(out);
            let _ = out.flush();
            continue;
        }
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c").arg(handler.join(" ")).stdin(Stdio::piped());
        match cmd.spawn() {
            Ok(mut child) => {
                if let Some(mut stdin) = child.stdin.take() {
                    let _ = stdin.write_all(&body);
                }
                let _ = child.wait();
            }
            Err(e) => eprintln!("Error running handler: {e}"),
        }
    }
}
