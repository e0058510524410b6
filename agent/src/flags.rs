//! Go-`flag`-package-style command-line parsing.
//!
//! Consul's CLI (and therefore Praetor's) uses single-dash long flags with Go
//! semantics, which differ from the GNU conventions most Rust parsers follow:
//!
//! * `-name`, `--name`, `-name=value`, `--name=value` and `-name value` are all
//!   accepted; one or two leading dashes are equivalent.
//! * A boolean flag given as `-dev` means `true`; an explicit value must be
//!   attached with `=` (`-dev=false`). A bare boolean flag never consumes the
//!   next argument, so `-dev false` sets `dev` and leaves `false` as the first
//!   positional argument.
//! * A non-boolean flag without `=` always consumes the next argument as its
//!   value, even if that argument starts with a dash (as Go does).
//! * `--` ends flag parsing; so does the first non-flag argument (a lone `-`
//!   counts as a non-flag argument). Everything after is positional.
//! * A non-repeatable flag given several times keeps its last value;
//!   [`FlagKind::Repeated`] and [`FlagKind::KeyValue`] flags collect every
//!   occurrence in order.
//!
//! Errors use Go's wording, e.g. `flag provided but not defined: -foo`,
//! `flag needs an argument: -foo` or
//! `invalid value "x" for flag -http-port: parse error`.
//!
//! ```
//! # use agent::flags::{FlagSet, FlagKind};
//! let mut fs = FlagSet::new("kv put");
//! fs.bool("cas", "Perform a Check-And-Set operation.")
//!     .int("modify-index", "Index of the key to use with -cas.")
//!     .int("flags", "Unsigned integer flags to attach to the key.");
//! let args = ["-cas", "-modify-index=5", "-flags", "42", "key", "value"];
//! let parsed = fs.parse(&args).unwrap();
//! assert_eq!(parsed.get_bool("cas"), Some(true));
//! assert_eq!(parsed.get_int("modify-index"), Some(5));
//! assert_eq!(parsed.positional(), ["key", "value"]);
//! ```

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// Errors produced while parsing command-line flags. Display texts follow Go's
/// `flag` package so the CLI output matches Consul's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlagError {
    /// A flag that was not declared on the [`FlagSet`].
    #[error("flag provided but not defined: -{0}")]
    Undefined(String),
    /// A non-boolean flag at the end of the arguments without a value.
    #[error("flag needs an argument: -{0}")]
    MissingValue(String),
    /// A value that does not parse as the flag's kind.
    #[error("invalid value {value:?} for flag -{name}: {reason}")]
    InvalidValue {
        /// Flag name without dashes.
        name: String,
        /// The offending value as given.
        value: String,
        /// Short reason, e.g. `parse error` or `value out of range`.
        reason: String,
    },
    /// An invalid boolean value (`-dev=maybe`).
    #[error("invalid boolean value {value:?} for -{name}: parse error")]
    InvalidBool {
        /// Flag name without dashes.
        name: String,
        /// The offending value as given.
        value: String,
    },
    /// Malformed flag such as `---x` or `-=x`.
    #[error("bad flag syntax: {0}")]
    BadSyntax(String),
    /// `-h`, `-help` or `--help` was given and not declared as a flag.
    #[error("flag: help requested")]
    Help,
    /// Positional arguments where the command accepts none
    /// (see [`Parsed::expect_no_positional`]).
    #[error("unexpected extra arguments: {}", .0.join(" "))]
    ExtraArguments(Vec<String>),
}

/// The kind of value a flag takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagKind {
    /// `-name` (true) or `-name=true|false|1|0|t|f|...`; never consumes the next argument.
    Bool,
    /// Any string; last occurrence wins.
    String,
    /// A signed 64-bit decimal integer; last occurrence wins.
    Int,
    /// A Go duration such as `30s`, `1m30s` or `250ms`, validated at parse time
    /// and kept as the original string (see [`parse_duration`]).
    Duration,
    /// A string that may be given several times; every value is kept in order.
    Repeated,
    /// A repeatable `key:value` pair (e.g. `-node-meta rack:r1`); the value part
    /// may be empty, the key may not.
    KeyValue,
}

/// Declaration of one flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagSpec {
    /// Name without leading dashes.
    pub name: String,
    /// Value kind.
    pub kind: FlagKind,
    /// One-line (or longer) help text shown by [`FlagSet::usage`].
    pub help: String,
}

/// A set of declared flags for one command. Declare flags with the builder
/// methods, then call [`FlagSet::parse`].
#[derive(Debug, Clone, Default)]
pub struct FlagSet {
    name: String,
    flags: Vec<FlagSpec>,
    index: HashMap<String, usize>,
}

impl FlagSet {
    /// Creates an empty flag set; `name` is the command name (used by [`FlagSet::usage`] callers).
    pub fn new(name: &str) -> Self {
        FlagSet {
            name: name.to_string(),
            ..Default::default()
        }
    }

    /// The command name given to [`FlagSet::new`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Declares a flag. Declaring the same name again replaces the earlier declaration.
    pub fn add(&mut self, name: &str, kind: FlagKind, help: &str) -> &mut Self {
        let spec = FlagSpec {
            name: name.to_string(),
            kind,
            help: help.to_string(),
        };
        match self.index.get(name) {
            Some(&i) => self.flags[i] = spec,
            None => {
                self.index.insert(name.to_string(), self.flags.len());
                self.flags.push(spec);
            }
        }
        self
    }

    /// Declares a boolean flag.
    pub fn bool(&mut self, name: &str, help: &str) -> &mut Self {
        self.add(name, FlagKind::Bool, help)
    }

    /// Declares a string flag.
    pub fn string(&mut self, name: &str, help: &str) -> &mut Self {
        self.add(name, FlagKind::String, help)
    }

    /// Declares an integer flag.
    pub fn int(&mut self, name: &str, help: &str) -> &mut Self {
        self.add(name, FlagKind::Int, help)
    }

    /// Declares a Go-duration flag.
    pub fn duration(&mut self, name: &str, help: &str) -> &mut Self {
        self.add(name, FlagKind::Duration, help)
    }

    /// Declares a repeatable string flag.
    pub fn repeated(&mut self, name: &str, help: &str) -> &mut Self {
        self.add(name, FlagKind::Repeated, help)
    }

    /// Declares a repeatable `key:value` flag.
    pub fn key_value(&mut self, name: &str, help: &str) -> &mut Self {
        self.add(name, FlagKind::KeyValue, help)
    }

    /// Looks up a declared flag.
    pub fn spec(&self, name: &str) -> Option<&FlagSpec> {
        self.index.get(name).map(|&i| &self.flags[i])
    }

    /// All declared flags in declaration order.
    pub fn specs(&self) -> &[FlagSpec] {
        &self.flags
    }

    /// Parses `args` (without the program and command names).
    pub fn parse<S: AsRef<str>>(&self, args: &[S]) -> Result<Parsed, FlagError> {
        let mut out = Parsed::default();
        let mut i = 0;
        while i < args.len() {
            let arg = args[i].as_ref();
            i += 1;
            if arg.len() < 2 || !arg.starts_with('-') {
                // Not a flag ("" , "-" or a plain word): flag parsing stops here.
                i -= 1;
                break;
            }
            let body = if let Some(rest) = arg.strip_prefix("--") {
                if rest.is_empty() {
                    break; // "--" terminates the flags and is consumed.
                }
                rest
            } else {
                &arg[1..]
            };
            if body.starts_with('-') || body.starts_with('=') {
                return Err(FlagError::BadSyntax(arg.to_string()));
            }
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let Some(spec) = self.spec(name) else {
                if name == "h" || name == "help" {
                    return Err(FlagError::Help);
                }
                return Err(FlagError::Undefined(name.to_string()));
            };
            let value = if spec.kind == FlagKind::Bool {
                match inline {
                    None => "true".to_string(),
                    Some(v) => match parse_bool(v) {
                        Some(b) => b.to_string(),
                        None => {
                            return Err(FlagError::InvalidBool {
                                name: name.to_string(),
                                value: v.to_string(),
                            })
                        }
                    },
                }
            } else {
                let v = match inline {
                    Some(v) => v.to_string(),
                    None if i < args.len() => {
                        i += 1;
                        args[i - 1].as_ref().to_string()
                    }
                    None => return Err(FlagError::MissingValue(name.to_string())),
                };
                check_value(spec, &v)?;
                v
            };
            out.record(name, value);
        }
        out.positional = args[i.min(args.len())..]
            .iter()
            .map(|a| a.as_ref().to_string())
            .collect();
        Ok(out)
    }

    /// Usage text in Consul's style: flags sorted by name, each followed by its
    /// help text indented and wrapped at ~80 columns.
    ///
    /// ```text
    ///   -http-port=<value>
    ///      Sets the HTTP API port to listen on.
    /// ```
    pub fn usage(&self) -> String {
        let mut specs: Vec<&FlagSpec> = self.flags.iter().collect();
        specs.sort_by(|a, b| a.name.cmp(&b.name));
        let mut out = String::new();
        for spec in specs {
            match spec.kind {
                FlagKind::Bool => out.push_str(&format!("  -{}\n", spec.name)),
                _ => out.push_str(&format!("  -{}=<value>\n", spec.name)),
            }
            for line in wrap(&spec.help, 72) {
                out.push_str("     ");
                out.push_str(&line);
                out.push('\n');
            }
            out.push('\n');
        }
        out
    }
}

fn check_value(spec: &FlagSpec, v: &str) -> Result<(), FlagError> {
    let invalid = |reason: &str| FlagError::InvalidValue {
        name: spec.name.clone(),
        value: v.to_string(),
        reason: reason.to_string(),
    };
    match spec.kind {
        FlagKind::Int => match parse_int(v) {
            Ok(_) => Ok(()),
            Err(reason) => Err(invalid(reason)),
        },
        FlagKind::Duration => parse_duration(v)
            .map(|_| ())
            .map_err(|_| invalid("parse error")),
        FlagKind::KeyValue => match split_key_value(v) {
            Some(_) => Ok(()),
            None => Err(invalid("expected key:value")),
        },
        FlagKind::Bool | FlagKind::String | FlagKind::Repeated => Ok(()),
    }
}

/// Parses a boolean the way Go's `strconv.ParseBool` does
/// (`1 t T TRUE true True 0 f F FALSE false False`).
pub fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

fn parse_int(s: &str) -> Result<i64, &'static str> {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("parse error");
    }
    s.parse::<i64>().map_err(|_| "value out of range")
}

/// Splits `key:value` at the first colon, trimming whitespace around both
/// parts. Returns `None` when the key is empty. A missing colon yields an empty value.
pub fn split_key_value(s: &str) -> Option<(String, String)> {
    let (k, v) = s.split_once(':').unwrap_or((s, ""));
    let k = k.trim();
    if k.is_empty() {
        return None;
    }
    Some((k.to_string(), v.trim().to_string()))
}

/// Parses a Go duration string (`"300ms"`, `"1.5h"`, `"2h45m"`, `"0"`) like
/// `time.ParseDuration`. Units: `ns`, `us`/`µs`, `ms`, `s`, `m`, `h`.
/// Negative durations are rejected since [`Duration`] cannot represent them.
/// Error texts follow Go, e.g. `time: invalid duration "x"`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let invalid = || format!("time: invalid duration {s:?}");
    let mut rest = s;
    let mut negative = false;
    if let Some(r) = rest.strip_prefix('-') {
        negative = true;
        rest = r;
    } else if let Some(r) = rest.strip_prefix('+') {
        rest = r;
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(|b| b.is_ascii_digit()).count();
        let int_part = &rest[..int_len];
        rest = &rest[int_len..];
        let mut frac_part = "";
        if let Some(r) = rest.strip_prefix('.') {
            let frac_len = r.bytes().take_while(|b| b.is_ascii_digit()).count();
            frac_part = &r[..frac_len];
            rest = &r[frac_len..];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(invalid());
        }
        let unit_len = rest
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map(|(i, _)| i)
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(format!("time: missing unit in duration {s:?}")),
            other => return Err(format!("time: unknown unit {other:?} in duration {s:?}")),
        };
        let whole: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| invalid())?
        };
        let mut nanos = whole.checked_mul(scale).ok_or_else(invalid)?;
        // Fractional part: at most 30 significant digits matter for u128 math.
        let mut frac_scale = scale;
        for d in frac_part.bytes().take(30) {
            frac_scale /= 10;
            nanos += u128::from(d - b'0') * frac_scale;
        }
        total = total.checked_add(nanos).ok_or_else(invalid)?;
        if total > u128::from(i64::MAX as u64) {
            return Err(invalid());
        }
    }
    if negative && total > 0 {
        return Err(format!("time: negative duration {s:?} is not allowed"));
    }
    Ok(Duration::from_nanos(total as u64))
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

/// The result of [`FlagSet::parse`]: flag values plus positional arguments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    values: HashMap<String, Vec<String>>,
    order: Vec<(String, String)>,
    positional: Vec<String>,
}

impl Parsed {
    fn record(&mut self, name: &str, value: String) {
        self.values
            .entry(name.to_string())
            .or_default()
            .push(value.clone());
        self.order.push((name.to_string(), value));
    }

    /// Whether the flag was given at least once.
    pub fn is_set(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    /// Last value of a boolean flag, `None` if not given.
    pub fn get_bool(&self, name: &str) -> Option<bool> {
        self.get_str(name).and_then(parse_bool)
    }

    /// Last value of a flag as given, `None` if not given.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .and_then(|v| v.last())
            .map(String::as_str)
    }

    /// Last value of an integer flag, `None` if not given (or not an integer).
    pub fn get_int(&self, name: &str) -> Option<i64> {
        self.get_str(name).and_then(|s| parse_int(s).ok())
    }

    /// Last value of a duration flag, `None` if not given (or not a duration).
    pub fn get_duration(&self, name: &str) -> Option<Duration> {
        self.get_str(name).and_then(|s| parse_duration(s).ok())
    }

    /// Every value given for the flag, in order (empty if not given).
    pub fn get_all(&self, name: &str) -> Vec<&str> {
        self.values
            .get(name)
            .map(|v| v.iter().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// The `key:value` pairs of a [`FlagKind::KeyValue`] flag; later keys override earlier ones.
    pub fn get_map(&self, name: &str) -> BTreeMap<String, String> {
        self.get_all(name)
            .into_iter()
            .filter_map(split_key_value)
            .collect()
    }

    /// Every `(flag name, value)` pair in command-line order. Useful when the
    /// relative order of different flags matters (e.g. `-config-file` vs `-config-dir`).
    pub fn occurrences(&self) -> &[(String, String)] {
        &self.order
    }

    /// Arguments after the flags.
    pub fn positional(&self) -> &[String] {
        &self.positional
    }

    /// Errors with [`FlagError::ExtraArguments`] if there are positional arguments.
    pub fn expect_no_positional(&self) -> Result<(), FlagError> {
        if self.positional.is_empty() {
            Ok(())
        } else {
            Err(FlagError::ExtraArguments(self.positional.clone()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> FlagSet {
        let mut fs = FlagSet::new("test");
        fs.bool("dev", "Dev mode.")
            .string("node", "Node name.")
            .int("http-port", "HTTP port.")
            .duration("retry-interval", "Retry interval.")
            .repeated("join", "Join address.")
            .key_value("node-meta", "Node metadata.");
        fs
    }

    fn parse(args: &[&str]) -> Result<Parsed, FlagError> {
        set().parse(args)
    }

    #[test]
    fn single_and_double_dash_forms() {
        for args in [
            vec!["-node", "n1"],
            vec!["--node", "n1"],
            vec!["-node=n1"],
            vec!["--node=n1"],
        ] {
            let p = parse(&args).unwrap();
            assert_eq!(p.get_str("node"), Some("n1"), "{args:?}");
            assert!(p.positional().is_empty());
        }
    }

    #[test]
    fn bool_forms() {
        assert_eq!(parse(&["-dev"]).unwrap().get_bool("dev"), Some(true));
        assert_eq!(parse(&["--dev"]).unwrap().get_bool("dev"), Some(true));
        assert_eq!(parse(&["-dev=true"]).unwrap().get_bool("dev"), Some(true));
        assert_eq!(parse(&["-dev=false"]).unwrap().get_bool("dev"), Some(false));
        assert_eq!(parse(&["-dev=0"]).unwrap().get_bool("dev"), Some(false));
        assert_eq!(parse(&["-dev=T"]).unwrap().get_bool("dev"), Some(true));
        assert_eq!(parse(&[]).unwrap().get_bool("dev"), None);
    }

    #[test]
    fn bare_bool_does_not_consume_next_arg() {
        let p = parse(&["-dev", "false", "-node", "x"]).unwrap();
        assert_eq!(p.get_bool("dev"), Some(true));
        assert_eq!(p.positional(), ["false", "-node", "x"]);
        assert_eq!(p.get_str("node"), None);
    }

    #[test]
    fn invalid_bool() {
        let err = parse(&["-dev=maybe"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid boolean value \"maybe\" for -dev: parse error"
        );
        assert!(parse(&["-dev="]).is_err());
    }

    #[test]
    fn value_flag_consumes_next_even_if_dashed() {
        let p = parse(&["-node", "-weird", "pos"]).unwrap();
        assert_eq!(p.get_str("node"), Some("-weird"));
        assert_eq!(p.positional(), ["pos"]);
    }

    #[test]
    fn empty_inline_value_is_allowed_for_strings() {
        let p = parse(&["-node="]).unwrap();
        assert_eq!(p.get_str("node"), Some(""));
        assert!(p.is_set("node"));
    }

    #[test]
    fn value_may_contain_equals() {
        let p = parse(&["-node=a=b"]).unwrap();
        assert_eq!(p.get_str("node"), Some("a=b"));
    }

    #[test]
    fn last_value_wins_for_scalars() {
        let p = parse(&["-node=a", "-node", "b", "-http-port=1", "-http-port=2"]).unwrap();
        assert_eq!(p.get_str("node"), Some("b"));
        assert_eq!(p.get_int("http-port"), Some(2));
    }

    #[test]
    fn repeated_flags_collect_in_order() {
        let p = parse(&["-join", "a", "-join=b", "--join", "c"]).unwrap();
        assert_eq!(p.get_all("join"), ["a", "b", "c"]);
        assert!(p.get_all("node").is_empty());
    }

    #[test]
    fn key_value_flags() {
        let p = parse(&[
            "-node-meta",
            "rack:r1",
            "-node-meta=zone: z:1",
            "-node-meta=x",
        ])
        .unwrap();
        let m = p.get_map("node-meta");
        assert_eq!(m["rack"], "r1");
        assert_eq!(m["zone"], "z:1");
        assert_eq!(m["x"], "");
        let err = parse(&["-node-meta", ":v"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value \":v\" for flag -node-meta: expected key:value"
        );
    }

    #[test]
    fn double_dash_terminates() {
        let p = parse(&["-dev", "--", "-node", "x"]).unwrap();
        assert_eq!(p.get_bool("dev"), Some(true));
        assert_eq!(p.positional(), ["-node", "x"]);
    }

    #[test]
    fn first_positional_terminates() {
        let p = parse(&["-dev", "key", "-node", "x"]).unwrap();
        assert_eq!(p.positional(), ["key", "-node", "x"]);
        let p = parse(&["-", "-dev"]).unwrap();
        assert_eq!(p.positional(), ["-", "-dev"]);
        assert_eq!(p.get_bool("dev"), None);
    }

    #[test]
    fn undefined_flag() {
        let err = parse(&["-foo"]).unwrap_err();
        assert_eq!(err, FlagError::Undefined("foo".into()));
        assert_eq!(err.to_string(), "flag provided but not defined: -foo");
        let err = parse(&["--foo=1"]).unwrap_err();
        assert_eq!(err.to_string(), "flag provided but not defined: -foo");
    }

    #[test]
    fn missing_value() {
        let err = parse(&["-node"]).unwrap_err();
        assert_eq!(err.to_string(), "flag needs an argument: -node");
        let err = parse(&["-dev", "-http-port"]).unwrap_err();
        assert_eq!(err.to_string(), "flag needs an argument: -http-port");
    }

    #[test]
    fn bad_int() {
        let err = parse(&["-http-port", "x"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value \"x\" for flag -http-port: parse error"
        );
        let err = parse(&["-http-port=99999999999999999999"]).unwrap_err();
        assert!(err.to_string().ends_with("value out of range"));
        assert_eq!(
            parse(&["-http-port=-1"]).unwrap().get_int("http-port"),
            Some(-1)
        );
        assert_eq!(
            parse(&["-http-port=+7"]).unwrap().get_int("http-port"),
            Some(7)
        );
    }

    #[test]
    fn bad_syntax_and_help() {
        assert_eq!(
            parse(&["---x"]).unwrap_err(),
            FlagError::BadSyntax("---x".into())
        );
        assert_eq!(
            parse(&["-=x"]).unwrap_err().to_string(),
            "bad flag syntax: -=x"
        );
        assert_eq!(parse(&["-h"]).unwrap_err(), FlagError::Help);
        assert_eq!(parse(&["--help"]).unwrap_err(), FlagError::Help);
    }

    #[test]
    fn duration_flags() {
        let p = parse(&["-retry-interval=1m30s"]).unwrap();
        assert_eq!(p.get_str("retry-interval"), Some("1m30s"));
        assert_eq!(
            p.get_duration("retry-interval"),
            Some(Duration::from_secs(90))
        );
        let err = parse(&["-retry-interval", "soon"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value \"soon\" for flag -retry-interval: parse error"
        );
    }

    #[test]
    fn go_durations() {
        let ok = [
            ("0", 0u64),
            ("1s", 1_000_000_000),
            ("300ms", 300_000_000),
            ("1.5h", 5_400_000_000_000),
            ("2h45m", 9_900_000_000_000),
            ("1µs", 1_000),
            ("1us", 1_000),
            ("10ns", 10),
            (".5s", 500_000_000),
            ("1.s", 1_000_000_000),
            ("+2s", 2_000_000_000),
            ("-0s", 0),
        ];
        for (s, nanos) in ok {
            assert_eq!(parse_duration(s), Ok(Duration::from_nanos(nanos)), "{s}");
        }
        for s in [
            "",
            "s",
            "1",
            "1x",
            "x1s",
            ".s",
            "1s2",
            "-1s",
            "99999999999h",
        ] {
            assert!(parse_duration(s).is_err(), "{s} should fail");
        }
        assert_eq!(
            parse_duration("5").unwrap_err(),
            "time: missing unit in duration \"5\""
        );
        assert_eq!(
            parse_duration("5d").unwrap_err(),
            "time: unknown unit \"d\" in duration \"5d\""
        );
    }

    #[test]
    fn occurrences_keep_command_line_order() {
        let mut fs = FlagSet::new("agent");
        fs.repeated("config-file", "").repeated("config-dir", "");
        let p = fs
            .parse(&["-config-dir=d1", "-config-file=f1", "-config-dir", "d2"])
            .unwrap();
        let names: Vec<&str> = p.occurrences().iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["config-dir", "config-file", "config-dir"]);
        assert_eq!(p.occurrences()[2].1, "d2");
    }

    #[test]
    fn expect_no_positional() {
        assert!(parse(&["-dev"]).unwrap().expect_no_positional().is_ok());
        let err = parse(&["a", "b"])
            .unwrap()
            .expect_no_positional()
            .unwrap_err();
        assert_eq!(err.to_string(), "unexpected extra arguments: a b");
    }

    #[test]
    fn works_with_owned_strings() {
        let args: Vec<String> = vec!["-node".into(), "n".into(), "rest".into()];
        let p = set().parse(&args).unwrap();
        assert_eq!(p.get_str("node"), Some("n"));
        assert_eq!(p.positional(), ["rest"]);
    }

    #[test]
    fn redeclaring_replaces() {
        let mut fs = set();
        fs.string("dev", "now a string");
        assert_eq!(fs.spec("dev").unwrap().kind, FlagKind::String);
        assert_eq!(fs.specs().len(), 6);
    }

    #[test]
    fn usage_lists_sorted_flags() {
        let u = set().usage();
        let dev = u.find("  -dev\n").unwrap();
        let port = u.find("  -http-port=<value>\n").unwrap();
        let node = u.find("  -node=<value>\n").unwrap();
        assert!(dev < port && port < node);
        assert!(u.contains("     HTTP port.\n"));
        let mut fs = FlagSet::new("x");
        fs.string("long", &"word ".repeat(40));
        assert!(fs.usage().lines().all(|l| l.len() <= 80));
    }
}
