//! `info`: the agent's `/v1/agent/self` `Stats`, one `section:` header per group and
//! `\tkey = value` lines, both sorted, as Consul prints them.

use super::{connect_agent, Verb};
use serde_json::{Map, Value};

const HELP: &str = "
Usage: praetor info [options]

  Provides debugging information for operators.
";

/// Renders the stats sections; `Err` carries Consul's message for a malformed section
/// (after the lines printed so far).
pub(super) fn render_stats(stats: &Map<String, Value>) -> (String, Option<String>) {
    let mut out = String::new();
    // serde_json's map iterates in sorted key order, as Consul sorts.
    for (section, vals) in stats {
        out.push_str(section);
        out.push_str(":\n");
        let Some(vals) = vals.as_object() else {
            return (out, Some(format!("Got invalid subkey in stats: {vals}")));
        };
        for (k, v) in vals {
            let shown = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            out.push_str(&format!("\t{k} = {shown}\n"));
        }
    }
    (out, None)
}

/// `info`
pub(super) fn run(args: &[String]) -> i32 {
    let mut v = Verb::new(HELP);
    v.client_flags();
    let p = or_exit!(v.parse(args));
    let c = or_exit!(connect_agent(&p));
    let me = match c.agent_self() {
        Ok(m) => m,
        Err(e) => {
            eprintln!("Error querying agent: {e}");
            return 1;
        }
    };
    let Some(stats) = me.get("Stats") else {
        eprintln!(
            "Agent response did not contain 'Stats' key: {}",
            Value::Object(me.clone())
        );
        return 1;
    };
    let empty = Map::new();
    let (out, err) = render_stats(stats.as_object().unwrap_or(&empty));
    print!("{out}");
    match err {
        Some(e) => {
            eprintln!("{e}");
            1
        }
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sections_sorted_with_tab_lines() {
        let stats = json!({
            "runtime": {"goroutines": "12", "arch": "amd64"},
            "agent": {"checks": "0", "services": "1"},
            "raft": {"state": "Leader", "num_peers": 0},
        });
        let (out, err) = render_stats(stats.as_object().unwrap());
        assert!(err.is_none());
        assert_eq!(
            out,
            "agent:\n\tchecks = 0\n\tservices = 1\nraft:\n\tnum_peers = 0\n\tstate = Leader\n\
             runtime:\n\tarch = amd64\n\tgoroutines = 12\n"
        );
        let (out, err) = render_stats(json!({"bad": "x"}).as_object().unwrap());
        assert_eq!(out, "bad:\n");
        assert_eq!(err.unwrap(), "Got invalid subkey in stats: \"x\"");
    }
}
