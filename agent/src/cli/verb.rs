//! [`Verb`]: one CLI command's help text and flags, parsed the way Consul's Go `flag`
//! package does on top of [`crate::flags`], which lacks a few of Go's value kinds: Go
//! `uint64`/`int` flags accept `0x`/`0o`/`0b`/leading-`0` prefixes and report `parse
//! error` or `value out of range`, and Consul's map flags (`-meta k=v`) split at `=`.
//! Those are declared here as strings and validated after parsing.

use crate::api::{go_io_error, Client};
use crate::flags::{FlagError, FlagKind, FlagSet, Parsed};
use std::collections::BTreeMap;
use std::io::Read;

/// Consul's `ClientFlags`: accepted by every verb that talks to an agent.
pub(crate) const CLIENT_FLAGS: &[(&str, FlagKind, &str)] = &[
    ("http-addr", FlagKind::String, "The address and port of the Consul HTTP agent. The value can be an IP address or DNS address, but it must also include the port. This can also be specified via the CONSUL_HTTP_ADDR environment variable. The default value is http://127.0.0.1:8500. The scheme can also be set to HTTPS by setting the environment variable CONSUL_HTTP_SSL=true."),
    ("token", FlagKind::String, "ACL token to use in the request. This can also be specified via the CONSUL_HTTP_TOKEN environment variable. If unspecified, the query will default to the token of the Consul agent at the HTTP address."),
    ("token-file", FlagKind::String, "File containing the ACL token to use in the request instead of one specified via the -token argument or CONSUL_HTTP_TOKEN environment variable. This can also be specified via the CONSUL_HTTP_TOKEN_FILE environment variable."),
    ("ca-file", FlagKind::String, "Path to a CA file to use for TLS when communicating with Consul. This can also be specified via the CONSUL_CACERT environment variable."),
    ("ca-path", FlagKind::String, "Path to a directory of CA certificates to use for TLS when communicating with Consul (accepted for compatibility)."),
    ("client-cert", FlagKind::String, "Path to a client cert file to use for TLS when 'verify_incoming' is enabled. This can also be specified via the CONSUL_CLIENT_CERT environment variable."),
    ("client-key", FlagKind::String, "Path to a client key file to use for TLS when 'verify_incoming' is enabled. This can also be specified via the CONSUL_CLIENT_KEY environment variable."),
    ("tls-server-name", FlagKind::String, "The server name to use as the SNI host when connecting via TLS (accepted for compatibility)."),
];

/// Consul's `ServerFlags`: accepted by verbs that read from the servers.
pub(crate) const SERVER_FLAGS: &[(&str, FlagKind, &str)] = &[
    ("datacenter", FlagKind::String, "Name of the datacenter to query. If unspecified, this will default to the datacenter of the queried agent."),
    ("stale", FlagKind::Bool, "Permit any Consul server (non-leader) to respond to this request. This allows for lower latency and higher throughput, but can result in stale data. This option has no effect on non-read operations. The default value is false."),
];

const TENANCY_FLAGS: &[(&str, FlagKind, &str)] = &[
    (
        "namespace",
        FlagKind::String,
        "Specifies the namespace to query (Consul Enterprise; accepted for compatibility).",
    ),
    (
        "partition",
        FlagKind::String,
        "Specifies the admin partition to query (Consul Enterprise; accepted for compatibility).",
    ),
];

/// Go value kinds that [`crate::flags`] does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GoKind {
    Uint,
    Int,
    Map,
}

/// A verb: help text plus HTTP flags and the verb's own flags.
pub(crate) struct Verb {
    help: &'static str,
    http: FlagSet,
    own: FlagSet,
    go_kinds: BTreeMap<String, GoKind>,
    defaults: BTreeMap<String, &'static str>,
}

impl Verb {
    /// A verb with the given help text (starting `Usage: praetor ...`) and no flags yet.
    pub(crate) fn new(help: &'static str) -> Verb {
        Verb {
            help,
            http: FlagSet::new("http"),
            own: FlagSet::new("own"),
            go_kinds: BTreeMap::new(),
            defaults: BTreeMap::new(),
        }
    }

    fn add_http(&mut self, flags: &[(&str, FlagKind, &str)]) -> &mut Self {
        for (name, kind, help) in flags {
            self.http.add(name, *kind, help);
        }
        self
    }

    /// Adds Consul's client HTTP flags (`-http-addr`, `-token`, `-token-file`, TLS files).
    pub(crate) fn client_flags(&mut self) -> &mut Self {
        self.add_http(CLIENT_FLAGS)
    }

    /// Adds Consul's server flags (`-datacenter`, `-stale`).
    pub(crate) fn server_flags(&mut self) -> &mut Self {
        self.add_http(SERVER_FLAGS)
    }

    /// Adds the Enterprise `-namespace` and `-partition` flags (accepted, unused).
    pub(crate) fn tenancy_flags(&mut self) -> &mut Self {
        for (name, kind, help) in TENANCY_FLAGS {
            self.own.add(name, *kind, help);
        }
        self
    }

    /// A boolean flag.
    pub(crate) fn bool(&mut self, name: &str, help: &str) -> &mut Self {
        self.own.bool(name, help);
        self
    }

    /// A string flag; `default` is only shown in the flag listing.
    pub(crate) fn string(
        &mut self,
        name: &str,
        default: Option<&'static str>,
        help: &str,
    ) -> &mut Self {
        self.own.string(name, help);
        if let Some(d) = default {
            self.defaults.insert(name.to_string(), d);
        }
        self
    }

    /// A repeatable string flag (Consul's `AppendSliceValue`).
    pub(crate) fn list(&mut self, name: &str, help: &str) -> &mut Self {
        self.own.repeated(name, help);
        self
    }

    fn go(&mut self, name: &str, kind: GoKind, help: &str) -> &mut Self {
        if kind == GoKind::Map {
            self.own.repeated(name, help);
        } else {
            self.own.string(name, help);
        }
        self.go_kinds.insert(name.to_string(), kind);
        self
    }

    /// A Go `uint64` flag (read with [`uint`]).
    pub(crate) fn uint(&mut self, name: &str, help: &str) -> &mut Self {
        self.go(name, GoKind::Uint, help)
    }

    /// A Go `int` flag (read with [`int`]).
    pub(crate) fn int(&mut self, name: &str, help: &str) -> &mut Self {
        self.go(name, GoKind::Int, help)
    }

    /// A repeatable `key=value` flag (Consul's `FlagMapValue`; read with [`map`]).
    pub(crate) fn map(&mut self, name: &str, help: &str) -> &mut Self {
        self.go(name, GoKind::Map, help)
    }

    fn type_name(&self, name: &str, kind: FlagKind) -> &'static str {
        match (self.go_kinds.get(name), kind) {
            (Some(GoKind::Uint), _) => "uint",
            (Some(GoKind::Int), _) | (None, FlagKind::Int) => "int",
            (Some(GoKind::Map), _) | (None, FlagKind::Repeated | FlagKind::KeyValue) => "value",
            (None, FlagKind::Bool) => "",
            (None, FlagKind::Duration) => "duration",
            (None, FlagKind::String) if name == "http-addr" => "address",
            (None, FlagKind::String) if self.http.spec(name).is_some() => "value",
            (None, FlagKind::String) => "string",
        }
    }

    fn merged(&self) -> FlagSet {
        let mut fs = FlagSet::new("verb");
        for s in self.http.specs().iter().chain(self.own.specs()) {
            fs.add(&s.name, s.kind, &s.help);
        }
        fs
    }

    fn listing(&self, fs: &FlagSet) -> String {
        let mut specs: Vec<_> = fs.specs().iter().collect();
        specs.sort_by(|a, b| a.name.cmp(&b.name));
        let mut out = String::new();
        for s in specs {
            match self.type_name(&s.name, s.kind) {
                "" => out.push_str(&format!("  -{}\n", s.name)),
                t => out.push_str(&format!("  -{}=<{t}>\n", s.name)),
            }
            for line in wrap(&s.help, 75) {
                out.push_str(&format!("     {line}\n"));
            }
            out.push('\n');
        }
        out
    }

    /// The full help: text, then `HTTP API Options` and `Command Options` (Consul's
    /// `flags.Usage` layout).
    pub(crate) fn help(&self) -> String {
        let mut out = format!("{}\n\n", self.help.trim());
        if !self.http.specs().is_empty() {
            out.push_str("HTTP API Options\n\n");
            out.push_str(&self.listing(&self.http));
        }
        if !self.own.specs().is_empty() {
            out.push_str("Command Options\n\n");
            out.push_str(&self.listing(&self.own));
        }
        out.trim_end_matches('\n').to_string()
    }

    /// Go's `FlagSet.PrintDefaults` text for the error path.
    fn defaults_text(&self) -> String {
        let fs = self.merged();
        let mut specs: Vec<_> = fs.specs().iter().collect();
        specs.sort_by(|a, b| a.name.cmp(&b.name));
        let mut out = String::new();
        for s in specs {
            let mut line = format!("  -{}", s.name);
            let t = self.type_name(&s.name, s.kind);
            if !t.is_empty() {
                line.push(' ');
                line.push_str(t);
            }
            line.push_str(if line.len() <= 4 { "\t" } else { "\n    \t" });
            line.push_str(&s.help.replace('\n', "\n    \t"));
            if let Some(d) = self.defaults.get(&s.name) {
                line.push_str(&format!(" (default {d:?})"));
            }
            out.push_str(&line);
            out.push('\n');
        }
        out
    }

    fn flag_error(&self, e: &FlagError) -> i32 {
        eprintln!("{e}");
        eprint!("Usage:\n{}", self.defaults_text());
        1
    }

    /// Parses `args`. Help anywhere before `--` prints the help on stdout (`Err(0)`); a
    /// flag error prints Go's message and the defaults on stderr (`Err(1)`).
    pub(crate) fn parse(&self, args: &[String]) -> Result<Parsed, i32> {
        if is_help(args) {
            println!("{}", self.help());
            return Err(0);
        }
        let p = match self.merged().parse(args) {
            Ok(p) => p,
            Err(FlagError::Help) => {
                println!("{}", self.help());
                return Err(0);
            }
            Err(e) => return Err(self.flag_error(&e)),
        };
        for (name, kind) in &self.go_kinds {
            for v in p.get_all(name) {
                let reason = match kind {
                    GoKind::Uint => parse_go_uint(v).err().map(str::to_string),
                    GoKind::Int => parse_go_int(v).err().map(str::to_string),
                    GoKind::Map => {
                        (!v.contains('=')).then(|| format!("Missing \"=\" value in argument: {v}"))
                    }
                };
                if let Some(reason) = reason {
                    return Err(self.flag_error(&FlagError::InvalidValue {
                        name: name.clone(),
                        value: v.to_string(),
                        reason,
                    }));
                }
            }
        }
        Ok(p)
    }
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for para in text.lines() {
        let mut line = String::new();
        for word in para.split_whitespace() {
            if !line.is_empty() && line.len() + 1 + word.len() > width {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        lines.push(line);
    }
    lines
}

/// Whether the arguments ask for help (`-h`, `-help`, `--help` before any `--`), as
/// `mitchellh/cli` checks.
pub(crate) fn is_help(args: &[String]) -> bool {
    args.iter()
        .take_while(|a| *a != "--")
        .any(|a| a == "-h" || a == "-help" || a == "--help")
}

/// Parses a Go `strconv.ParseUint(s, 0, 64)` value.
pub(crate) fn parse_go_uint(s: &str) -> Result<u64, &'static str> {
    let (digits, radix) = if let Some(r) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (r, 16)
    } else if let Some(r) = s.strip_prefix("0b").or_else(|| s.strip_prefix("0B")) {
        (r, 2)
    } else if let Some(r) = s.strip_prefix("0o").or_else(|| s.strip_prefix("0O")) {
        (r, 8)
    } else if s.len() > 1 && s.starts_with('0') {
        (&s[1..], 8)
    } else {
        (s, 10)
    };
    let prefixed = digits.len() != s.len();
    // Underscores may only separate digits (or a base prefix and a digit).
    let bad_underscore = s.ends_with('_') || s.contains("__") || (!prefixed && s.starts_with('_'));
    let clean: String = digits.chars().filter(|c| *c != '_').collect();
    if clean.is_empty() || bad_underscore || clean.starts_with(['+', '-']) {
        return Err("parse error");
    }
    u64::from_str_radix(&clean, radix).map_err(|e| match e.kind() {
        std::num::IntErrorKind::PosOverflow => "value out of range",
        _ => "parse error",
    })
}

/// Parses a Go `strconv.ParseInt(s, 0, 64)` value.
pub(crate) fn parse_go_int(s: &str) -> Result<i64, &'static str> {
    let (neg, mag) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let u = parse_go_uint(mag)?;
    if neg {
        if u > i64::MAX as u64 + 1 {
            Err("value out of range")
        } else {
            Ok((u as i128).wrapping_neg() as i64)
        }
    } else {
        i64::try_from(u).map_err(|_| "value out of range")
    }
}

/// The value of a [`Verb::uint`] flag (0 when not given).
pub(crate) fn uint(p: &Parsed, name: &str) -> u64 {
    p.get_str(name)
        .and_then(|v| parse_go_uint(v).ok())
        .unwrap_or(0)
}

/// The value of a [`Verb::int`] flag (0 when not given).
pub(crate) fn int(p: &Parsed, name: &str) -> i64 {
    p.get_str(name)
        .and_then(|v| parse_go_int(v).ok())
        .unwrap_or(0)
}

/// The pairs of a [`Verb::map`] flag, split at the first `=`; later keys win.
pub(crate) fn map(p: &Parsed, name: &str) -> BTreeMap<String, String> {
    p.get_all(name)
        .into_iter()
        .filter_map(|v| v.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A boolean flag's value (false when not given).
pub(crate) fn flag(p: &Parsed, name: &str) -> bool {
    p.get_bool(name).unwrap_or(false)
}

/// A client for the parsed HTTP flags, or (after printing Consul's
/// `Error connecting to Consul agent: ...`) exit code 1.
pub(crate) fn connect_agent(p: &Parsed) -> Result<Client, i32> {
    super::client(p).map_err(|e| {
        eprintln!("Error connecting to Consul agent: {e}");
        1
    })
}

/// Reads the whole of stdin.
pub(crate) fn read_stdin() -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    std::io::stdin()
        .read_to_end(&mut buf)
        .map_err(|e| format!("Failed to read stdin: {e}"))?;
    Ok(buf)
}

/// Consul's `LoadDataSource`: `@file` reads a file, `-` reads stdin, anything else
/// (including `""` and `-x`) is the data itself.
pub(crate) fn load_data_source(arg: &str) -> Result<Vec<u8>, String> {
    if let Some(path) = arg.strip_prefix('@') {
        return std::fs::read(path)
            .map_err(|e| format!("Failed to read file: {}", go_io_error("open", path, &e)));
    }
    if arg == "-" {
        return read_stdin();
    }
    Ok(arg.as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn go_uints() {
        assert_eq!(parse_go_uint("42"), Ok(42));
        assert_eq!(parse_go_uint("0"), Ok(0));
        assert_eq!(parse_go_uint("0x10"), Ok(16));
        assert_eq!(parse_go_uint("010"), Ok(8));
        assert_eq!(parse_go_uint("0b101"), Ok(5));
        assert_eq!(parse_go_uint("0o17"), Ok(15));
        assert_eq!(parse_go_uint("1_000"), Ok(1000));
        assert_eq!(parse_go_uint("18446744073709551615"), Ok(u64::MAX));
        assert_eq!(
            parse_go_uint("18446744073709551616"),
            Err("value out of range")
        );
        for bad in ["", "-1", "+1", "x", "0x", "1__0", "_1", "1_", "08"] {
            assert_eq!(parse_go_uint(bad), Err("parse error"), "{bad}");
        }
        assert_eq!(parse_go_int("-5"), Ok(-5));
        assert_eq!(parse_go_int("+0x10"), Ok(16));
        assert_eq!(parse_go_int("-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(
            parse_go_int("9223372036854775808"),
            Err("value out of range")
        );
    }

    fn verb() -> Verb {
        let mut v = Verb::new("Usage: praetor test [options]\n\n  Tests.\n");
        v.client_flags().server_flags();
        v.bool("cas", "Perform a CAS.")
            .uint("modify-index", "Index.")
            .int("port", "Port.")
            .map("meta", "Meta k=v.")
            .list("tag", "Tag.")
            .string("separator", Some("/"), "Separator.");
        v
    }

    #[test]
    fn parses_go_kinds() {
        let p = verb()
            .parse(&args(&[
                "-cas",
                "-modify-index=0x10",
                "-port",
                "-1",
                "-meta",
                "a=b=c",
                "-meta=x=",
                "-tag=t1",
                "-tag",
                "t2",
                "-stale",
                "key",
            ]))
            .unwrap();
        assert!(flag(&p, "cas") && flag(&p, "stale"));
        assert_eq!(uint(&p, "modify-index"), 16);
        assert_eq!(int(&p, "port"), -1);
        let m = map(&p, "meta");
        assert_eq!((m["a"].as_str(), m["x"].as_str()), ("b=c", ""));
        assert_eq!(p.get_all("tag"), ["t1", "t2"]);
        assert_eq!(p.positional(), ["key"]);
    }

    #[test]
    fn rejects_bad_values() {
        let v = verb();
        assert_eq!(v.parse(&args(&["-modify-index=-1"])).unwrap_err(), 1);
        assert_eq!(v.parse(&args(&["-meta", "novalue"])).unwrap_err(), 1);
        assert_eq!(v.parse(&args(&["-nope"])).unwrap_err(), 1);
        assert_eq!(v.parse(&args(&["k", "-h"])).unwrap_err(), 0);
        assert!(v.parse(&args(&["--", "-h"])).is_ok());
    }

    #[test]
    fn help_and_defaults_layout() {
        let h = verb().help();
        assert!(h.starts_with("Usage: praetor test [options]\n\n  Tests.\n\nHTTP API Options\n\n"));
        assert!(h.contains("\n  -http-addr=<address>\n     The address"));
        assert!(h.contains("\n  -stale\n     Permit"));
        assert!(h.contains("Command Options\n\n  -cas\n     Perform a CAS.\n\n  -meta=<value>\n"));
        assert!(h.contains("  -modify-index=<uint>\n"));
        assert!(!h.ends_with('\n'));
        assert!(h.lines().all(|l| l.len() <= 80), "{h}");
        let d = verb().defaults_text();
        assert!(d.contains("  -cas\n    \tPerform a CAS.\n"));
        assert!(d.contains("  -separator string\n    \tSeparator. (default \"/\")\n"));
        assert!(d.contains("  -port int\n"));
    }

    #[test]
    fn data_sources() {
        assert_eq!(load_data_source("plain").unwrap(), b"plain");
        assert_eq!(load_data_source("-x").unwrap(), b"-x");
        assert_eq!(load_data_source("").unwrap(), b"");
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("v.txt");
        std::fs::write(&f, b"from file").unwrap();
        assert_eq!(
            load_data_source(&format!("@{}", f.display())).unwrap(),
            b"from file"
        );
        assert_eq!(
            load_data_source("@/nonexistent/x").unwrap_err(),
            "Failed to read file: open /nonexistent/x: no such file or directory"
        );
    }
}
