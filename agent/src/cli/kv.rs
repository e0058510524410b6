//! `kv put|get|delete` (and the `kv` group; `export`/`import` live in
//! [`super::kv_impexp`]) with Consul's flags, messages and exit codes.

use super::output::{stdout_bytes, tabwrite};
use super::verb::{flag, uint};
use super::{connect_agent, dispatch, load_data_source, Sub, Verb};
use crate::api::KvPair;
use base64::Engine;

const HELP: &str = "
Usage: praetor kv <subcommand> [options] [args]

  Subcommands for reading and writing the key-value store. For example:

      $ praetor kv put redis/config/connections 5
      $ praetor kv get redis/config/connections
      $ praetor kv get -detailed redis/config/connections
      $ praetor kv delete redis/config/connections

  Ask a subcommand for help for its flags and more examples.
";

const SUBS: &[Sub] = &[
    ("delete", "Removes data from the KV store", delete),
    (
        "export",
        "Exports a tree from the KV store as JSON",
        super::kv_impexp::export,
    ),
    ("get", "Retrieves or lists data from the KV store", get),
    (
        "import",
        "Imports a tree stored as JSON to the KV store",
        super::kv_impexp::import,
    ),
    ("put", "Sets or updates data in the KV store", put),
];

/// `kv <subcommand>`
pub(super) fn run(args: &[String]) -> i32 {
    dispatch(args, HELP, SUBS)
}

const PUT_HELP: &str = "
Usage: praetor kv put [options] KEY [DATA]

  Writes DATA at KEY. DATA may be given inline, read from a file with \"@path\",
  or read from stdin with \"-\"; without DATA the key gets an empty value.

      $ praetor kv put config/redis/maxconns 5
      $ praetor kv put config/program/license @license.lic
      $ echo \"abcd1234\" | praetor kv put config/program/license -

  With -cas the write only happens if the key's ModifyIndex still equals
  -modify-index (0: only if the key does not exist):

      $ praetor kv put -cas -modify-index=844 config/redis/maxconns 5
";

/// Go's `base64.StdEncoding.DecodeString` (which skips `\r` and `\n`) with its error text.
pub(super) fn decode_base64(data: &[u8]) -> Result<Vec<u8>, String> {
    let positions: Vec<usize> = (0..data.len())
        .filter(|&i| data[i] != b'\r' && data[i] != b'\n')
        .collect();
    let clean: Vec<u8> = positions.iter().map(|&i| data[i]).collect();
    base64::engine::general_purpose::STANDARD
        .decode(&clean)
        .map_err(|e| {
            use base64::DecodeError as D;
            let at = match e {
                D::InvalidByte(o, _) | D::InvalidLastSymbol(o, _) => o,
                D::InvalidLength(_) | D::InvalidPadding => clean.len(),
            };
            let orig = positions.get(at).copied().unwrap_or(data.len());
            format!("illegal base64 data at input byte {orig}")
        })
}

fn put(args: &[String]) -> i32 {
    let mut v = Verb::new(PUT_HELP);
    v.client_flags().server_flags().tenancy_flags();
    v.bool("acquire", "Obtain a lock on the key. If the key does not exist, this operation will create the key and obtain the lock. The session must already exist and be specified via the -session flag. The default value is false.")
        .bool("base64", "Treat the data as base 64 encoded. The default value is false.")
        .bool("cas", "Perform a Check-And-Set operation. Specifying this value also requires the -modify-index flag to be set. The default value is false.")
        .uint("flags", "Unsigned integer value to assign to this key-value pair. This value is not read by Consul, so clients can use this value however makes sense for their use case. The default value is 0 (no flags).")
        .uint("modify-index", "Unsigned integer representing the ModifyIndex of the key. This is used in combination with the -cas flag.")
        .bool("release", "Forfeit the lock on the key at the given path. This requires the -session flag to be set. The key must be held by the session in order to be unlocked. The default value is false.")
        .string("session", None, "User-defined identifer for this session as a string. This is commonly used with the -acquire and -release operations to build robust locking, but it can be set on any key. The default value is empty (no session).");
    let p = or_exit!(v.parse(args));
    let pos = p.positional();
    let (key, data) = match pos.len() {
        0 => {
            eprintln!("Error! Missing KEY argument");
            return 1;
        }
        1 => (pos[0].clone(), Vec::new()),
        2 => match load_data_source(&pos[1]) {
            Ok(d) => (pos[0].clone(), d),
            Err(e) => {
                eprintln!("Error! {e}");
                return 1;
            }
        },
        n => {
            eprintln!("Error! Too many arguments (expected 1 or 2, got {n})");
            return 1;
        }
    };
    let data = if flag(&p, "base64") {
        match decode_base64(&data) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("Error! Cannot base 64 decode data: {e}");
                return 1;
            }
        }
    } else {
        data
    };
    let (cas, acquire, release) = (flag(&p, "cas"), flag(&p, "acquire"), flag(&p, "release"));
    let session = p.get_str("session").unwrap_or("").to_string();
    if (acquire || release) && session.is_empty() {
        eprintln!("Error! Missing -session (required with -acquire and -release)");
        return 1;
    }
    let c = or_exit!(connect_agent(&p));
    let pair = KvPair {
        key: key.clone(),
        modify_index: uint(&p, "modify-index"),
        flags: uint(&p, "flags"),
        value: data,
        session: (!session.is_empty()).then_some(session),
        ..Default::default()
    };
    if cas {
        return match c.kv_cas(&pair) {
            Err(e) => {
                eprintln!("Error! Did not write to {key}: {e}");
                1
            }
            Ok(false) if pair.modify_index == 0 => {
                eprintln!("Error! Did not write to {key}: CAS performed with index=0 and key already exists.");
                1
            }
            Ok(false) => {
                eprintln!("Error! Did not write to {key}: CAS failed");
                1
            }
            Ok(true) => {
                println!("Success! Data written to: {key}");
                0
            }
        };
    }
    let (result, done, refused) = if acquire {
        (
            c.kv_acquire(&pair),
            "Success! Lock acquired on:",
            "Error! Did not acquire lock",
        )
    } else if release {
        (
            c.kv_release(&pair),
            "Success! Lock released on:",
            "Error! Did not release lock",
        )
    } else {
        // A plain put ignores the agent's true/false, as Consul does.
        (
            c.kv_write(&pair).map(|_| true),
            "Success! Data written to:",
            "",
        )
    };
    match result {
        Err(e) => {
            eprintln!("Error! Failed writing data: {e}");
            1
        }
        Ok(false) => {
            eprintln!("{refused}");
            1
        }
        Ok(true) => {
            println!("{done} {key}");
            0
        }
    }
}

/// Consul's `prettyKVPair`: the aligned `-detailed` block (no trailing newline unless
/// `keys_only`, whose last line is `Session`).
pub(super) fn pretty_pair(pair: &KvPair, b64: bool, keys_only: bool) -> Vec<u8> {
    let mut t = format!(
        "CreateIndex\t{}\nFlags\t{}\nKey\t{}\nLockIndex\t{}\nModifyIndex\t{}\nSession\t{}\n",
        pair.create_index,
        pair.flags,
        pair.key,
        pair.lock_index,
        pair.modify_index,
        pair.session.as_deref().unwrap_or("-"),
    )
    .into_bytes();
    if let Some(part) = &pair.partition {
        t.extend_from_slice(format!("Partition\t{part}\n").as_bytes());
    }
    if let Some(ns) = &pair.namespace {
        t.extend_from_slice(format!("Namespace\t{ns}\n").as_bytes());
    }
    if !keys_only {
        t.extend_from_slice(b"Value\t");
        if b64 {
            t.extend_from_slice(
                base64::engine::general_purpose::STANDARD
                    .encode(&pair.value)
                    .as_bytes(),
            );
        } else {
            t.extend_from_slice(&pair.value);
        }
    }
    tabwrite(&t, 0, 6)
}

/// The value as printed: raw bytes, or base64 with `-base64`.
fn shown(value: &[u8], b64: bool) -> Vec<u8> {
    if b64 {
        base64::engine::general_purpose::STANDARD
            .encode(value)
            .into_bytes()
    } else {
        value.to_vec()
    }
}

/// What `kv get -recurse` (optionally `-keys`, `-detailed`) prints for `pairs`.
pub(super) fn render_list(pairs: &[KvPair], keys: bool, detailed: bool, b64: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, pair) in pairs.iter().enumerate() {
        if detailed {
            out.extend(pretty_pair(pair, b64 && !keys, keys));
            out.push(b'\n');
            if i + 1 < pairs.len() {
                out.push(b'\n');
            }
        } else if keys {
            out.extend_from_slice(pair.key.as_bytes());
            out.push(b'\n');
        } else {
            out.extend_from_slice(pair.key.as_bytes());
            out.push(b':');
            out.extend(shown(&pair.value, b64));
            out.push(b'\n');
        }
    }
    out
}

const GET_HELP: &str = "
Usage: praetor kv get [options] [KEY_OR_PREFIX]

  Prints the value stored at KEY (an error if there is no such key; nothing if
  the key has an empty value). The key defaults to \"\", the root of the store.

      $ praetor kv get foo
      $ praetor kv get -detailed foo

  -recurse lists every pair under the prefix as KEY:VALUE lines, -keys lists
  only the key names (folded at -separator):

      $ praetor kv get -recurse foo
      $ praetor kv get -keys foo
";

fn get(args: &[String]) -> i32 {
    let mut v = Verb::new(GET_HELP);
    v.client_flags().server_flags().tenancy_flags();
    v.bool("base64", "Base64 encode the value. The default value is false.")
        .bool("detailed", "Provide additional metadata about the key in addition to the value such as the ModifyIndex and any flags that may have been set on the key. The default value is false.")
        .bool("keys", "List keys which start with the given prefix, but not their values. This is especially useful if you only need the key names themselves. This option is commonly combined with the -separator option. The default value is false.")
        .bool("recurse", "Recursively look at all keys prefixed with the given path. The default value is false.")
        .string("separator", Some("/"), "String to use as a separator between keys. The default value is \"/\", but this option is only taken into account when paired with the -keys flag.");
    let p = or_exit!(v.parse(args));
    let key = match p.positional() {
        [] => String::new(),
        [k] => k.strip_prefix('/').unwrap_or(k).to_string(),
        more => {
            eprintln!("Too many arguments (expected 1, got {})", more.len());
            return 1;
        }
    };
    let (keys, recurse) = (flag(&p, "keys"), flag(&p, "recurse"));
    let (detailed, b64) = (flag(&p, "detailed"), flag(&p, "base64"));
    if key.is_empty() && !(recurse || keys) {
        eprintln!("Error! Missing KEY argument");
        return 1;
    }
    let c = or_exit!(connect_agent(&p));
    let query_failed = |e: crate::api::ApiError| {
        eprintln!("Error querying Consul agent: {e}");
        1
    };
    if recurse {
        return match c.kv_list(&key) {
            Ok(pairs) => {
                stdout_bytes(&render_list(&pairs, keys, detailed, b64));
                0
            }
            Err(e) => query_failed(e),
        };
    }
    if keys {
        let sep = p.get_str("separator").unwrap_or("/");
        return match c.kv_keys(&key, sep) {
            Ok(list) => {
                for k in list {
                    println!("{k}");
                }
                0
            }
            Err(e) => query_failed(e),
        };
    }
    match c.kv_get(&key) {
        Err(e) => query_failed(e),
        Ok(None) => {
            eprintln!("Error! No key exists at: {key}");
            1
        }
        Ok(Some(pair)) => {
            let mut out = if detailed {
                pretty_pair(&pair, b64, false)
            } else {
                shown(&pair.value, b64)
            };
            out.push(b'\n');
            stdout_bytes(&out);
            0
        }
    }
}

const DELETE_HELP: &str = "
Usage: praetor kv delete [options] KEY_OR_PREFIX

  Removes the value at KEY (nothing happens if there is none). With -recurse,
  removes every key that starts with the prefix:

      $ praetor kv delete foo
      $ praetor kv delete -recurse foo
";

/// Argument checks of `kv delete`, in Consul's order.
fn delete_check(key: &str, recurse: bool, cas: bool, index: u64) -> Result<(), &'static str> {
    if key.is_empty() && !recurse {
        return Err("Error! Missing KEY argument");
    }
    if cas && index == 0 {
        return Err(
            "Cannot delete a key that does not exist. Provide a -modify-index greater than than 0.",
        );
    }
    if index != 0 && !cas {
        return Err("Cannot specify -modify-index without -cas!");
    }
    if recurse && cas {
        return Err("Cannot specify both -cas and -recurse!");
    }
    Ok(())
}

fn delete(args: &[String]) -> i32 {
    let mut v = Verb::new(DELETE_HELP);
    v.client_flags().server_flags().tenancy_flags();
    v.bool("cas", "Perform a Check-And-Set operation. Specifying this value also requires the -modify-index flag to be set. The default value is false.")
        .uint("modify-index", "Unsigned integer representing the ModifyIndex of the key. This is used in combination with the -cas flag.")
        .bool("recurse", "Recursively delete all keys with the path. The default value is false.");
    let p = or_exit!(v.parse(args));
    let key = match p.positional() {
        [] => String::new(),
        [k] => k.strip_prefix('/').unwrap_or(k).to_string(),
        more => {
            eprintln!("Too many arguments (expected 1, got {})", more.len());
            return 1;
        }
    };
    let (recurse, cas, index) = (
        flag(&p, "recurse"),
        flag(&p, "cas"),
        uint(&p, "modify-index"),
    );
    if let Err(msg) = delete_check(&key, recurse, cas, index) {
        eprintln!("{msg}");
        return 1;
    }
    let c = or_exit!(connect_agent(&p));
    if recurse {
        return match c.kv_delete_tree(&key) {
            Ok(()) => {
                println!("Success! Deleted keys with prefix: {key}");
                0
            }
            Err(e) => {
                eprintln!("Error! Did not delete prefix {key}: {e}");
                1
            }
        };
    }
    if cas {
        return match c.kv_delete_cas(&key, index) {
            Ok(true) => {
                println!("Success! Deleted key: {key}");
                0
            }
            Ok(false) => {
                eprintln!("Error! Did not delete key {key}: CAS failed");
                1
            }
            Err(e) => {
                eprintln!("Error! Did not delete key {key}: {e}");
                1
            }
        };
    }
    match c.kv_delete_key(&key) {
        Ok(()) => {
            println!("Success! Deleted key: {key}");
            0
        }
        Err(e) => {
            eprintln!("Error deleting key {key}: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> KvPair {
        KvPair {
            key: "foo".into(),
            create_index: 5,
            modify_index: 9,
            flags: 42,
            value: b"bar".to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn detailed_block_matches_consul() {
        let out = String::from_utf8(pretty_pair(&pair(), false, false)).unwrap();
        assert_eq!(
            out,
            "CreateIndex      5\nFlags            42\nKey              foo\nLockIndex        0\n\
             ModifyIndex      9\nSession          -\nValue            bar"
        );
        let mut p = pair();
        p.session = Some("abc".into());
        let out = String::from_utf8(pretty_pair(&p, true, false)).unwrap();
        assert!(out.contains("Session          abc\n"));
        assert!(out.ends_with("Value            YmFy"));
        let out = String::from_utf8(pretty_pair(&p, true, true)).unwrap();
        assert!(out.ends_with("Session          abc\n"), "{out:?}");
    }

    #[test]
    fn recurse_listings() {
        let mut b = pair();
        b.key = "foo/b".into();
        b.value = vec![0xff, b'x'];
        let pairs = vec![pair(), b];
        assert_eq!(
            render_list(&pairs, false, false, false),
            b"foo:bar\nfoo/b:\xffx\n".to_vec()
        );
        assert_eq!(
            render_list(&pairs, false, false, true),
            b"foo:YmFy\nfoo/b:/3g=\n".to_vec()
        );
        assert_eq!(
            render_list(&pairs, true, false, false),
            b"foo\nfoo/b\n".to_vec()
        );
        let d = String::from_utf8_lossy(&render_list(&pairs, false, true, false)).into_owned();
        assert!(d.contains("Value            bar\n\nCreateIndex"), "{d}");
        assert!(d.ends_with("x\n"));
        // -keys -detailed: no Value line, and Consul's extra blank line after each block
        let d = String::from_utf8(render_list(&pairs[..1], true, true, false)).unwrap();
        assert!(d.ends_with("Session          -\n\n"), "{d:?}");
        assert!(render_list(&[], false, false, false).is_empty());
    }

    #[test]
    fn base64_like_go() {
        assert_eq!(decode_base64(b"aGk=\n").unwrap(), b"hi");
        assert_eq!(decode_base64(b"aG\r\nk=").unwrap(), b"hi");
        assert_eq!(
            decode_base64(b"a!k=").unwrap_err(),
            "illegal base64 data at input byte 1"
        );
        assert!(decode_base64(b"aGk").is_err());
    }

    #[test]
    fn delete_argument_checks() {
        assert_eq!(
            delete_check("", false, false, 0),
            Err("Error! Missing KEY argument")
        );
        assert!(delete_check("", true, false, 0).is_ok());
        assert!(delete_check("k", false, true, 0)
            .unwrap_err()
            .starts_with("Cannot delete a key that does not exist."));
        assert_eq!(
            delete_check("k", false, false, 3),
            Err("Cannot specify -modify-index without -cas!")
        );
        assert_eq!(
            delete_check("k", true, true, 3),
            Err("Cannot specify both -cas and -recurse!")
        );
        assert!(delete_check("k", false, true, 3).is_ok());
    }

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn argument_errors_exit_1_without_an_agent() {
        let addr = "-http-addr=127.0.0.1:1";
        assert_eq!(put(&args(&[addr])), 1);
        assert_eq!(put(&args(&[addr, "a", "b", "c"])), 1);
        assert_eq!(put(&args(&[addr, "-acquire", "k"])), 1);
        assert_eq!(put(&args(&[addr, "-base64", "k", "!!"])), 1);
        assert_eq!(put(&args(&[addr, "-flags=-1", "k"])), 1);
        assert_eq!(put(&args(&[addr, "k", "@/nonexistent/file"])), 1);
        assert_eq!(get(&args(&[addr])), 1);
        assert_eq!(get(&args(&[addr, "a", "b"])), 1);
        assert_eq!(delete(&args(&[addr, "-modify-index=3", "k"])), 1);
        // unreachable agent: exit 1 too
        assert_eq!(get(&args(&[addr, "k"])), 1);
        assert_eq!(put(&args(&[addr, "k", "v"])), 1);
    }
}
