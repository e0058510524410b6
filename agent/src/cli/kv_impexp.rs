//! `kv export [PREFIX]` and `kv import [-prefix P] DATA|@file|-`, in Consul's JSON
//! format: a tab-indented array of `{"key", "flags", "value" (base64)}`.

use super::kv::decode_base64;
use super::output::marshal_indent;
use super::{connect_agent, Verb};
use crate::api::KvPair;
use base64::Engine;
use serde::Serialize;
use serde_json::Value;

/// One exported entry (Consul's `impexp.Entry`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(super) struct Entry {
    key: String,
    flags: u64,
    value: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    namespace: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    partition: String,
}

impl Entry {
    fn from_pair(p: &KvPair) -> Entry {
        Entry {
            key: p.key.clone(),
            flags: p.flags,
            value: base64::engine::general_purpose::STANDARD.encode(&p.value),
            namespace: p.namespace.clone().unwrap_or_default(),
            partition: p.partition.clone().unwrap_or_default(),
        }
    }
}

/// The JSON `kv export` prints for `pairs` (Go's `json.MarshalIndent(.., "", "\t")`).
pub(super) fn export_json(pairs: &[KvPair]) -> Result<String, String> {
    let entries: Vec<Entry> = pairs.iter().map(Entry::from_pair).collect();
    marshal_indent(&entries, "\t")
}

const EXPORT_HELP: &str = "
Usage: praetor kv export [KEY_OR_PREFIX]

  Prints every key-value pair under the prefix as JSON, in the format that
  \"praetor kv import\" (and \"consul kv import\") reads:

      $ praetor kv export vault > vault.json
";

/// `kv export`
pub(super) fn export(args: &[String]) -> i32 {
    let mut v = Verb::new(EXPORT_HELP);
    v.client_flags().server_flags().tenancy_flags();
    let p = or_exit!(v.parse(args));
    let key = match p.positional() {
        [] => String::new(),
        [k] => k.strip_prefix('/').unwrap_or(k).to_string(),
        more => {
            eprintln!("Too many arguments (expected 1, got {})", more.len());
            return 1;
        }
    };
    let c = or_exit!(connect_agent(&p));
    let pairs = match c.kv_list(&key) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("Error querying Consul agent: {e}");
            return 1;
        }
    };
    match export_json(&pairs) {
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

/// Go's `path.Clean`.
fn clean_path(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            s => parts.push(s),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// The key an entry is imported under: Go's `path.Join(prefix, key)`, keeping a trailing
/// `/` of the entry's key (a "directory" key).
pub(super) fn import_key(prefix: &str, key: &str) -> String {
    let parts: Vec<&str> = [prefix, key]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect();
    let mut out = if parts.is_empty() {
        String::new()
    } else {
        clean_path(&parts.join("/"))
    };
    if key.ends_with('/') {
        out.push('/');
    }
    out
}

/// An entry to import: key, flags and decoded value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Import {
    /// Key as given in the data.
    pub key: String,
    /// Flags.
    pub flags: u64,
    /// Value (still base64).
    pub value: String,
}

/// Parses `kv import` data: a JSON array of entries whose field names match
/// case-insensitively, as Go's decoder does (`null` is an empty list).
pub(super) fn parse_entries(data: &[u8]) -> Result<Vec<Import>, String> {
    let v: Value = serde_json::from_slice(data).map_err(|e| e.to_string())?;
    let items = match v {
        Value::Null => return Ok(Vec::new()),
        Value::Array(a) => a,
        other => {
            return Err(format!(
                "json: cannot unmarshal {} into Go value of type []*impexp.Entry",
                json_kind(&other)
            ))
        }
    };
    let mut out = Vec::new();
    for item in items {
        let obj = match item {
            Value::Null => continue,
            Value::Object(o) => o,
            other => {
                return Err(format!(
                    "json: cannot unmarshal {} into Go value of type impexp.Entry",
                    json_kind(&other)
                ))
            }
        };
        let mut e = Import {
            key: String::new(),
            flags: 0,
            value: String::new(),
        };
        for (k, val) in &obj {
            let field = k.to_ascii_lowercase();
            let wrong = |ty: &str| {
                format!(
                    "json: cannot unmarshal {} into Go struct field Entry.{field} of type {ty}",
                    json_kind(val)
                )
            };
            match (field.as_str(), val) {
                (_, Value::Null) => {}
                ("key", Value::String(s)) => e.key = s.clone(),
                ("value", Value::String(s)) => e.value = s.clone(),
                ("namespace" | "partition", Value::String(_)) => {}
                ("flags", Value::Number(n)) => {
                    e.flags = n.as_u64().ok_or_else(|| wrong("uint64"))?
                }
                ("key" | "value" | "namespace" | "partition", _) => return Err(wrong("string")),
                ("flags", _) => return Err(wrong("uint64")),
                _ => {}
            }
        }
        out.push(e);
    }
    Ok(out)
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

const IMPORT_HELP: &str = "
Usage: praetor kv import [options] [DATA]

  Writes the key-value pairs of JSON produced by \"praetor kv export\". DATA is
  the JSON itself, \"@path\" to read a file, or \"-\" to read stdin:

      $ praetor kv import @filename.json
      $ cat filename.json | praetor kv import -
";

/// `kv import`
pub(super) fn import(args: &[String]) -> i32 {
    let mut v = Verb::new(IMPORT_HELP);
    v.client_flags().server_flags().tenancy_flags();
    v.string("prefix", None, "Key prefix for imported data");
    let p = or_exit!(v.parse(args));
    let data = match p.positional() {
        [] => Err("Missing DATA argument".to_string()),
        [d] if d.is_empty() => Err("Empty DATA argument".to_string()),
        [d] => super::load_data_source(d),
        more => Err(format!(
            "Too many arguments (expected 1, got {})",
            more.len()
        )),
    };
    let data = match data {
        Ok(d) => d,
        Err(e) => {
            eprintln!("Error! {e}");
            return 1;
        }
    };
    let c = or_exit!(connect_agent(&p));
    let entries = match parse_entries(&data) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("Cannot unmarshal data: {e}");
            return 1;
        }
    };
    let prefix = p.get_str("prefix").unwrap_or("");
    for e in entries {
        let value = match decode_base64(e.value.as_bytes()) {
            Ok(v) => v,
            Err(err) => {
                eprintln!("Error base 64 decoding value for key {}: {err}", e.key);
                return 1;
            }
        };
        let pair = KvPair {
            key: import_key(prefix, &e.key),
            flags: e.flags,
            value,
            ..Default::default()
        };
        if let Err(err) = c.kv_write(&pair) {
            eprintln!("Error! Failed writing data for key {}: {err}", pair.key);
            return 1;
        }
        println!("Imported: {}", pair.key);
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_format() {
        let pairs = vec![
            KvPair {
                key: "a/b".into(),
                flags: 42,
                value: b"hi".to_vec(),
                ..Default::default()
            },
            KvPair::new("a/<c>", Vec::new()),
        ];
        assert_eq!(
            export_json(&pairs).unwrap(),
            "[\n\t{\n\t\t\"key\": \"a/b\",\n\t\t\"flags\": 42,\n\t\t\"value\": \"aGk=\"\n\t},\n\
             \t{\n\t\t\"key\": \"a/\\u003cc\\u003e\",\n\t\t\"flags\": 0,\n\t\t\"value\": \"\"\n\t}\n]"
        );
        assert_eq!(export_json(&[]).unwrap(), "[]");
    }

    #[test]
    fn import_round_trips_export() {
        let pairs = vec![KvPair {
            key: "x/y".into(),
            flags: 7,
            value: b"val".to_vec(),
            ..Default::default()
        }];
        let entries = parse_entries(export_json(&pairs).unwrap().as_bytes()).unwrap();
        assert_eq!(
            entries,
            vec![Import {
                key: "x/y".into(),
                flags: 7,
                value: "dmFs".into()
            }]
        );
        // Go matches field names case-insensitively and ignores unknown ones
        let e = parse_entries(br#"[{"Key":"k","FLAGS":1,"Value":"","extra":true}]"#).unwrap();
        assert_eq!((e[0].key.as_str(), e[0].flags), ("k", 1));
        assert!(parse_entries(b"null").unwrap().is_empty());
        assert!(parse_entries(b"{}")
            .unwrap_err()
            .contains("cannot unmarshal object"));
        assert!(parse_entries(br#"[{"flags":"x"}]"#)
            .unwrap_err()
            .contains("Entry.flags of type uint64"));
        assert!(parse_entries(b"not json").is_err());
    }

    #[test]
    fn import_keys_join_like_go() {
        assert_eq!(import_key("", "a/b"), "a/b");
        assert_eq!(import_key("pre", "a/b"), "pre/a/b");
        assert_eq!(import_key("pre/", "/a//b"), "pre/a/b");
        assert_eq!(import_key("pre", "dir/"), "pre/dir/");
        assert_eq!(import_key("", "dir/"), "dir/");
        assert_eq!(import_key("p", ""), "p");
        assert_eq!(import_key("", ""), "");
        assert_eq!(import_key("a/../b", "./c"), "b/c");
    }

    #[test]
    fn import_argument_errors() {
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(import(&a(&["-http-addr=127.0.0.1:1"])), 1);
        assert_eq!(import(&a(&["-http-addr=127.0.0.1:1", ""])), 1);
        assert_eq!(import(&a(&["-http-addr=127.0.0.1:1", "a", "b"])), 1);
        assert_eq!(import(&a(&["-http-addr=127.0.0.1:1", "not json"])), 1);
        assert_eq!(export(&a(&["-http-addr=127.0.0.1:1", "a", "b"])), 1);
    }
}
