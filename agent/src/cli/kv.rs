//! `kv put|get|delete|export|import` with Consul's flags and messages.

use super::output::detailed;
use super::{connect, http_flags, parse};
use crate::api::KvPair;
use crate::flags::FlagSet;
use base64::Engine;
use std::io::{Read, Write};

const USAGE: &str = "Usage: praetor kv <subcommand> [options] [args]\n\n  Subcommands: delete, export, get, import, put";

pub(super) fn run(args: &[String]) -> i32 {
    let rest = if args.is_empty() { &[][..] } else { &args[1..] };
    match args.first().map(String::as_str) {
        Some("put") => put(rest),
        Some("get") => get(rest),
        Some("delete") => delete(rest),
        Some("export") => export(rest),
        Some("import") => import(rest),
        Some("-h") | Some("-help") | Some("--help") => {
            println!("{USAGE}");
            0
        }
        _ => {
            eprintln!("{USAGE}");
            1
        }
    }
}

/// Data from an argument: `@file`, `-` (stdin), or the literal text.
fn data_arg(arg: Option<&String>) -> Result<Vec<u8>, String> {
    match arg.map(String::as_str) {
        None => Ok(Vec::new()),
        Some("-") => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .map_err(|e| format!("Failed to read stdin: {e}"))?;
            Ok(buf)
        }
        Some(s) if s.starts_with('@') => {
            std::fs::read(&s[1..]).map_err(|e| format!("Failed to read file: {e}"))
        }
        Some(s) => Ok(s.as_bytes().to_vec()),
    }
}

fn put(args: &[String]) -> i32 {
    let mut fs = FlagSet::new("kv put");
    http_flags(&mut fs);
    fs.bool("cas", "Perform a Check-And-Set operation.")
        .int(
            "modify-index",
            "Unsigned integer representing the ModifyIndex of the key (with -cas).",
        )
        .int(
            "flags",
            "Unsigned integer value to assign to this key-value pair.",
        )
        .bool("base64", "Treat the data as base 64 encoded.")
        .bool("acquire", "Obtain a lock on the key (requires -session).")
        .bool(
            "release",
            "Forfeit the lock on the key (requires -session).",
        )
        .string(
            "session",
            "User-defined identifier for this session as a string.",
        );
    let usage = "Usage: praetor kv put [options] KEY [DATA]";
    let p = or_exit!(parse(&fs, args, usage));
    let pos = p.positional();
    let Some(key) = pos.first() else {
        eprintln!("Error! Missing KEY argument");
        return 1;
    };
    if pos.len() > 2 {
        eprintln!("Too many arguments (expected 1 or 2, got {})", pos.len());
        return 1;
    }
    let mut data = match data_arg(pos.get(1)) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("Error! {e}");
            return 1;
        }
    };
    if p.get_bool("base64").unwrap_or(false) {
        match base64::engine::general_purpose::STANDARD
            .decode(String::from_utf8_lossy(&data).trim())
        {
            Ok(d) => data = d,
            Err(e) => {
                eprintln!("Error! Cannot base 64 decode data: {e}");
                return 1;
            }
        }
    }
    let cas = p.get_bool("cas").unwrap_or(false);
    let (acquire, release) = (
        p.get_bool("acquire").unwrap_or(false),
        p.get_bool("release").unwrap_or(false),
    );
    let session = p.get_str("session").unwrap_or("").to_string();
    if p.is_set("modify-index") && !cas {
        eprintln!("Cannot specify -modify-index without -cas!");
        return 1;
    }
    if (acquire || release) && session.is_empty() {
        eprintln!("Error! Missing -session (required with -acquire and -release)");
        return 1;
    }
    let mut q = Vec::new();
    if let Some(f) = p.get_int("flags") {
        q.push(("flags", f.to_string()));
    }
    if cas {
        q.push(("cas", p.get_int("modify-index").unwrap_or(0).to_string()));
    }
    if acquire {
        q.push(("acquire", session.clone()));
    }
    if release {
        q.push(("release", session.clone()));
    }
    let c = or_exit!(connect(&p, "Error!"));
    match c.kv_put(key, data, &q) {
        Ok(true) if acquire => println!("Success! Lock acquired on: {key}"),
        Ok(true) if release => println!("Success! Lock released on: {key}"),
        Ok(true) => println!("Success! Data written to: {key}"),
        Ok(false) if acquire => {
            eprintln!("Error! Did not acquire lock");
            return 1;
        }
        Ok(false) if release => {
            eprintln!("Error! Did not release lock");
            return 1;
        }
        Ok(false) => {
            eprintln!("Error! Did not write to {key}: CAS failed");
            return 1;
        }
        Err(e) => {
            eprintln!("Error! Failed writing data: {e}");
            return 1;
        }
    }
    0
}

fn print_detailed(kv: &KvPair, b64: bool) -> String {
    let value = if b64 {
        base64::engine::general_purpose::STANDARD.encode(kv.bytes())
    } else {
        String::from_utf8_lossy(&kv.bytes()).into_owned()
    };
    detailed(&[
        ("CreateIndex", kv.create_index.to_string()),
        ("Flags", kv.flags.to_string()),
        ("Key", kv.key.clone()),
        ("LockIndex", kv.lock_index.to_string()),
        ("ModifyIndex", kv.modify_index.to_string()),
        (
            "Session",
            kv.session
                .clone()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "-".into()),
        ),
        ("Value", value),
    ])
}

fn get(args: &[String]) -> i32 {
    let mut fs = FlagSet::new("kv get");
    http_flags(&mut fs);
    fs.bool("base64", "Base 64 encode the value.")
        .bool("detailed", "Provide additional metadata about the key.")
        .bool(
            "keys",
            "List keys which start with the given prefix, but not their values.",
        )
        .bool(
            "recurse",
            "Recursively look at all keys prefixed with the given path.",
        )
        .string(
            "separator",
            "String to use as a separator between keys (default \"/\" with -keys).",
        );
    let p = or_exit!(parse(
        &fs,
        args,
        "Usage: praetor kv get [options] [KEY_OR_PREFIX]"
    ));
    let key = p.positional().first().cloned().unwrap_or_default();
    let (b64, det) = (
        p.get_bool("base64").unwrap_or(false),
        p.get_bool("detailed").unwrap_or(false),
    );
    let c = or_exit!(connect(&p, "Error!"));
    let show = |kv: &KvPair| -> Vec<u8> {
        if b64 {
            base64::engine::general_purpose::STANDARD
                .encode(kv.bytes())
                .into_bytes()
        } else {
            kv.bytes()
        }
    };
    let mut out = std::io::stdout().lock();
    if p.get_bool("keys").unwrap_or(false) {
        let sep = p.get_str("separator").unwrap_or("/");
        match c.kv_keys(&key, sep) {
            Ok(keys) => {
                for k in keys {
                    let _ = writeln!(out, "{k}");
                }
                0
            }
            Err(e) => {
                eprintln!("Error querying Consul agent: {e}");
                1
            }
        }
    } else if p.get_bool("recurse").unwrap_or(false) {
        match c.kv_list(&key) {
            Ok(list) => {
                for (i, kv) in list.iter().enumerate() {
                    if det {
                        if i > 0 {
                            let _ = writeln!(out);
                        }
                        let _ = write!(out, "{}", print_detailed(kv, b64));
                    } else {
                        let _ = write!(out, "{}:", kv.key);
                        let _ = out.write_all(&show(kv));
                        let _ = writeln!(out);
                    }
                }
                0
            }
            Err(e) => {
                eprintln!("Error querying Consul agent: {e}");
                1
            }
        }
    } else {
        if key.is_empty() {
            eprintln!("Error! Missing KEY argument");
            return 1;
        }
        match c.kv_get(&key) {
            Ok(Some(kv)) => {
                if det {
                    let _ = write!(out, "{}", print_detailed(&kv, b64));
                } else {
                    let _ = out.write_all(&show(&kv));
                    let _ = writeln!(out);
                }
                0
            }
            Ok(None) => {
                eprintln!("Error! No key exists at: {key}");
                1
            }
            Err(e) => {
                eprintln!("Error querying Consul agent: {e}");
                1
            }
        }
    }
}

fn delete(args: &[String]) -> i32 {
    let mut fs = FlagSet::new("kv delete");
    http_flags(&mut fs);
    fs.bool("cas", "Perform a Check-And-Set operation.")
        .int("modify-index", "ModifyIndex of the key (with -cas).")
        .bool("recurse", "Recursively delete all keys with the path.");
    let p = match parse(
        &fs,
        args,
        "Usage: praetor kv delete [options] KEY_OR_PREFIX",
    ) {
        Ok(p) => p,
        Err(c) => return c,
    };
    let key = p.positional().first().cloned().unwrap_or_default();
    let recurse = p.get_bool("recurse").unwrap_or(false);
    let cas = p.get_bool("cas").unwrap_or(false);
    if key.is_empty() && !recurse {
        eprintln!("Error! Missing KEY argument");
        return 1;
    }
    if cas && recurse {
        eprintln!("Cannot specify both -cas and -recurse!");
        return 1;
    }
    if p.is_set("modify-index") && !cas {
        eprintln!("Cannot specify -modify-index without -cas!");
        return 1;
    }
    let mut q = Vec::new();
    if recurse {
        q.push(("recurse", String::new()));
    }
    if cas {
        q.push(("cas", p.get_int("modify-index").unwrap_or(0).to_string()));
    }
    let c = or_exit!(connect(&p, "Error!"));
    match c.kv_delete(&key, &q) {
        Ok(true) if recurse => println!("Success! Deleted keys with prefix: {key}"),
        Ok(true) => println!("Success! Deleted key: {key}"),
        Ok(false) => {
            eprintln!("Error! Did not delete key {key}: CAS failed");
            return 1;
        }
        Err(e) => {
            eprintln!("Error! Did not delete key {key}: {e}");
            return 1;
        }
    }
    0
}

/// One entry of `kv export` / `kv import` (Consul's format).
#[derive(serde::Serialize, serde::Deserialize)]
struct Exported {
    key: String,
    flags: u64,
    value: String,
}

fn export(args: &[String]) -> i32 {
    let mut fs = FlagSet::new("kv export");
    http_flags(&mut fs);
    let p = or_exit!(parse(
        &fs,
        args,
        "Usage: praetor kv export [options] [PREFIX]"
    ));
    let prefix = p.positional().first().cloned().unwrap_or_default();
    let c = or_exit!(connect(&p, "Error!"));
    match c.kv_list(&prefix) {
        Ok(list) => {
            let out: Vec<Exported> = list
                .iter()
                .map(|kv| Exported {
                    key: kv.key.clone(),
                    flags: kv.flags,
                    value: kv.value.clone().unwrap_or_default(),
                })
                .collect();
            match serde_json::to_string_pretty(&out) {
                Ok(s) => {
                    println!("{s}");
                    0
                }
                Err(e) => {
                    eprintln!("Error exporting KV data: {e}");
                    1
                }
            }
        }
        Err(e) => {
            eprintln!("Error querying Consul agent: {e}");
            1
        }
    }
}

fn import(args: &[String]) -> i32 {
    let mut fs = FlagSet::new("kv import");
    http_flags(&mut fs);
    fs.string("prefix", "Key prefix for imported data.");
    let p = or_exit!(parse(
        &fs,
        args,
        "Usage: praetor kv import [options] [DATA]"
    ));
    let data = match data_arg(p.positional().first()) {
        Ok(d) if !d.is_empty() => d,
        Ok(_) => {
            eprintln!("Error! Missing DATA argument");
            return 1;
        }
        Err(e) => {
            eprintln!("Error! {e}");
            return 1;
        }
    };
    let entries: Vec<Exported> = match serde_json::from_slice(&data) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("Cannot unmarshal data: {e}");
            return 1;
        }
    };
    let c = or_exit!(connect(&p, "Error!"));
    let prefix = p.get_str("prefix").unwrap_or("");
    for e in entries {
        let value = match base64::engine::general_purpose::STANDARD.decode(&e.value) {
            Ok(v) => v,
            Err(err) => {
                eprintln!("Error base 64 decoding value for key {}: {err}", e.key);
                return 1;
            }
        };
        let key = format!("{prefix}{}", e.key);
        if let Err(err) = c.kv_put(&key, value, &[("flags", e.flags.to_string())]) {
            eprintln!("Error! Failed writing data for key {key}: {err}");
            return 1;
        }
        println!("Imported: {key}");
    }
    0
}
