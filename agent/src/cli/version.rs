//! `version [-format=pretty|json]`: Consul's version output, reporting the Consul API
//! version this build implements ([`crate::CONSUL_COMPAT_VERSION`]) so tools that parse
//! `consul version` keep working, plus a final line with Praetor's own version.

use super::Verb;
use serde::Serialize;

const HELP: &str = "
Usage: praetor version [options]

  Prints the version of the Consul API this agent implements and Praetor's own
  version.
";

/// The default build date, as Consul's own unreleased builds report it.
const DEFAULT_BUILD_DATE: &str = "1970-01-01T00:00:01Z";

/// The RPC protocol versions reported (Consul's defaults).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct RpcInfo {
    default: u8,
    min: u8,
    max: u8,
}

/// Consul's `VersionInfo` JSON, with Praetor's version appended.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct VersionInfo {
    version: &'static str,
    revision: &'static str,
    prerelease: &'static str,
    #[serde(rename = "FIPS")]
    fips: &'static str,
    build_date: &'static str,
    #[serde(rename = "RPC")]
    rpc: RpcInfo,
    praetor: &'static str,
}

/// A build date from `PRAETOR_BUILD_DATE` at compile time if it looks like RFC 3339,
/// else Consul's default.
fn build_date() -> &'static str {
    match option_env!("PRAETOR_BUILD_DATE") {
        Some(d) if d.len() >= 20 && d.as_bytes().get(10) == Some(&b'T') => d,
        _ => DEFAULT_BUILD_DATE,
    }
}

fn info() -> VersionInfo {
    VersionInfo {
        version: crate::CONSUL_COMPAT_VERSION,
        revision: "praetor",
        prerelease: "",
        fips: "",
        build_date: build_date(),
        rpc: RpcInfo {
            default: 2,
            min: 2,
            max: 3,
        },
        praetor: env!("CARGO_PKG_VERSION"),
    }
}

/// The `pretty` format: Consul's lines, then `Praetor <version>`.
fn pretty(i: &VersionInfo) -> String {
    let mut s = format!("Consul v{}\n", i.version);
    s.push_str(&format!("Revision {}\n", i.revision));
    s.push_str(&format!("Build Date {}\n", i.build_date));
    let supplement = if i.rpc.default < i.rpc.max {
        format!(
            " (agent will automatically use protocol >{} when speaking to compatible agents)",
            i.rpc.default
        )
    } else {
        String::new()
    };
    s.push_str(&format!(
        "Protocol {} spoken by default, understands {} to {}{supplement}\n",
        i.rpc.default, i.rpc.min, i.rpc.max
    ));
    s.push_str(&format!("Praetor {}\n", i.praetor));
    s
}

/// `version`
pub(super) fn run(args: &[String]) -> i32 {
    let mut v = Verb::new(HELP);
    v.string("format", Some("pretty"), "Output format {pretty|json}");
    let p = or_exit!(v.parse(args));
    let i = info();
    match p.get_str("format").unwrap_or("pretty") {
        "pretty" => {
            // Consul's UI adds a newline after the formatter's own.
            println!("{}", pretty(&i));
            0
        }
        "json" => match super::output::marshal_indent(&i, "   ") {
            Ok(s) => {
                println!("{s}");
                0
            }
            Err(e) => {
                eprintln!("Failed to marshal version info: {e}");
                1
            }
        },
        other => {
            eprintln!("Unknown format: {other}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pretty_matches_consul_layout() {
        let s = pretty(&info());
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(
            lines[0],
            format!("Consul v{}", crate::CONSUL_COMPAT_VERSION)
        );
        assert_eq!(lines[1], "Revision praetor");
        assert!(lines[2].starts_with("Build Date ") && lines[2].ends_with('Z'));
        assert_eq!(
            lines[3],
            "Protocol 2 spoken by default, understands 2 to 3 (agent will automatically use protocol >2 when speaking to compatible agents)"
        );
        assert_eq!(lines[4], format!("Praetor {}", env!("CARGO_PKG_VERSION")));
    }

    #[test]
    fn json_field_order_and_indent() {
        let s = super::super::output::marshal_indent(&info(), "   ").unwrap();
        assert!(s.starts_with("{\n   \"Version\": \""));
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["Version"], crate::CONSUL_COMPAT_VERSION);
        assert_eq!(v["RPC"]["Max"], 3);
        assert_eq!(v["FIPS"], "");
        let keys: Vec<&str> = [
            "Version",
            "Revision",
            "Prerelease",
            "FIPS",
            "BuildDate",
            "RPC",
            "Praetor",
        ]
        .into_iter()
        .collect();
        let pos: Vec<usize> = keys
            .iter()
            .map(|k| s.find(&format!("\"{k}\"")).unwrap())
            .collect();
        assert!(pos.windows(2).all(|w| w[0] < w[1]), "{s}");
    }

    #[test]
    fn unknown_format_fails() {
        assert_eq!(run(&["-format=xml".to_string()]), 1);
        assert_eq!(run(&["-format=json".to_string()]), 0);
    }
}
