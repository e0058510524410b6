//! CLI verbs (everything except `praetor agent`) with Consul's flags, wording and exit
//! codes. They talk to an agent only through [`crate::api`].
//!
//! Behaviour shared by all verbs follows Consul's `mitchellh/cli` front end:
//! `-v`/`--version` anywhere (before `--`) runs `version`; `-h`/`-help`/`--help`
//! anywhere in a verb's arguments prints its help on stdout and exits 0; a flag error
//! prints Go's message and flag defaults on stderr and exits 1; a command group without
//! (or with an unknown) subcommand prints the group help on stderr and exits 1.
//! Unknown verbs print the command list on stderr and exit 1.

/// Unwrap a `Result<T, i32>` or return the exit code from the verb.
macro_rules! or_exit {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(code) => return code,
        }
    };
}

mod acl;
mod catalog;
mod debug;
mod info;
mod kv;
mod kv_impexp;
mod lifecycle;
mod lock;
mod members;
mod misc;
mod operator;
pub mod output;
mod services;
mod tls;
mod verb;
mod version;
mod watch;

pub(crate) use verb::{connect_agent, is_help, load_data_source, Verb};

use crate::api::{Client, ClientConfig};
use crate::flags::{FlagSet, Parsed};

/// Declares Consul's client and server HTTP flags on a plain [`FlagSet`] (for verbs that
/// do not use [`Verb`]).
pub(crate) fn http_flags(fs: &mut FlagSet) {
    for (name, kind, help) in verb::CLIENT_FLAGS.iter().chain(verb::SERVER_FLAGS) {
        fs.add(name, *kind, help);
    }
}

/// Builds a client from the parsed HTTP flags (`-http-addr`, `-token`, `-token-file`,
/// `-datacenter`, `-stale`); the environment fills in the rest.
pub(crate) fn client(p: &Parsed) -> Result<Client, String> {
    Client::new(ClientConfig {
        address: p.get_str("http-addr").map(str::to_string),
        token: p.get_str("token").map(str::to_string),
        token_file: p.get_str("token-file").map(str::to_string),
        datacenter: p.get_str("datacenter").map(str::to_string),
        stale: p.get_bool("stale").unwrap_or(false),
        ca_file: p.get_str("ca-file").map(str::to_string),
        client_cert: p.get_str("client-cert").map(str::to_string),
        client_key: p.get_str("client-key").map(str::to_string),
    })
    .map_err(|e| e.to_string())
}

/// A client for the parsed flags, or (after printing `what: error`) exit code 1.
pub(crate) fn connect(p: &Parsed, what: &str) -> Result<Client, i32> {
    client(p).map_err(|e| {
        if what.ends_with('!') {
            eprintln!("{what} {e}");
        } else {
            eprintln!("{what}: {e}");
        }
        1
    })
}

/// Parses a plain [`FlagSet`]: on `-h` prints the usage (exit 0), on errors the message
/// (exit 1).
pub(crate) fn parse(fs: &FlagSet, args: &[String], usage: &str) -> Result<Parsed, i32> {
    match fs.parse(args) {
        Ok(p) => Ok(p),
        Err(crate::flags::FlagError::Help) => {
            println!("{usage}\n\n{}", fs.usage());
            Err(0)
        }
        Err(e) => {
            eprintln!("{e}\n\n{usage}");
            Err(1)
        }
    }
}

/// A subcommand of a command group: name, synopsis, entry point.
pub(crate) type Sub = (&'static str, &'static str, fn(&[String]) -> i32);

/// Help of a command group: its text and the list of subcommands, as `mitchellh/cli`
/// prints it.
pub(crate) fn group_help(help: &str, subs: &[Sub]) -> String {
    let w = subs.iter().map(|(n, ..)| n.len()).max().unwrap_or(0);
    let mut s = format!("{}\n\nSubcommands:", help.trim());
    for (name, synopsis, _) in subs {
        s.push_str(&format!("\n    {name:<w$}    {synopsis}"));
    }
    s
}

/// Runs a command group: `args[0]` names the subcommand.
pub(crate) fn dispatch(args: &[String], help: &str, subs: &[Sub]) -> i32 {
    let first = args.first().map(String::as_str);
    if let Some((_, _, run)) = subs.iter().find(|(n, ..)| Some(*n) == first) {
        return run(&args[1..]);
    }
    if is_help(args) {
        println!("{}", group_help(help, subs));
        0
    } else {
        eprintln!("{}", group_help(help, subs));
        1
    }
}

const COMMANDS: &[(&str, &str)] = &[
    ("acl", "Interact with Consul's ACLs"),
    ("agent", "Runs a Consul agent"),
    ("catalog", "Interact with the catalog"),
    ("debug", "Records a debugging archive for operators"),
    ("event", "Fire a new event"),
    (
        "force-leave",
        "Forces a member of the cluster to enter the \"left\" state",
    ),
    ("info", "Provides debugging information for operators."),
    ("join", "Tell Consul agent to join cluster"),
    ("keygen", "Generates a new encryption key"),
    ("keyring", "Manages gossip layer encryption keys"),
    ("kv", "Interact with the key-value store"),
    (
        "leave",
        "Gracefully leaves the Consul cluster and shuts down",
    ),
    ("lock", "Execute a command holding a lock"),
    ("members", "Lists the members of a Consul cluster"),
    ("monitor", "Stream logs from a Consul agent"),
    (
        "operator",
        "Provides cluster-level tools for Consul operators",
    ),
    ("reload", "Triggers the agent to reload configuration files"),
    ("rtt", "Estimates network round trip time between nodes"),
    ("services", "Interact with services"),
    (
        "snapshot",
        "Saves, restores and inspects snapshots of Consul server state",
    ),
    ("tls", "Builtin helpers for creating CAs and certificates"),
    ("version", "Prints the Consul version"),
    ("watch", "Watch for changes in Consul"),
];

/// The top-level usage: every command with its synopsis (`mitchellh/cli`'s
/// `BasicHelpFunc` layout).
pub fn usage() -> String {
    let w = COMMANDS.iter().map(|(c, _)| c.len()).max().unwrap_or(0);
    let mut s = String::from(
        "Usage: praetor [--version] [--help] <command> [<args>]\n\nAvailable commands are:\n",
    );
    for (c, d) in COMMANDS {
        s.push_str(&format!("    {c:<w$}    {d}\n"));
    }
    s
}

/// Runs a CLI verb; `args` is argv without the program name (e.g.
/// `["kv", "put", "-cas", "-modify-index=5", "foo", "bar"]`). Prints to stdout/stderr
/// itself and returns the process exit code.
pub fn run(args: &[String]) -> i32 {
    // Consul's main turns `-v`/`--version` anywhere before `--` into `version`.
    if args
        .iter()
        .take_while(|a| *a != "--")
        .any(|a| a == "-v" || a == "--version")
    {
        return version::run(&[]);
    }
    let rest = args.get(1..).unwrap_or(&[]);
    match args.first().map(String::as_str) {
        Some("-h") | Some("-help") | Some("--help") => {
            println!("{}", usage());
            0
        }
        Some("version") | Some("-version") => version::run(rest),
        Some("kv") => kv::run(rest),
        Some("acl") => acl::run(rest),
        Some("catalog") => catalog::run(rest),
        Some("services") => services::run(rest),
        Some("members") => members::run(rest),
        Some("info") => info::run(rest),
        Some("reload") => lifecycle::reload(rest),
        Some("leave") => lifecycle::leave(rest),
        Some("join") => misc::join(rest),
        Some("force-leave") => misc::force_leave(rest),
        Some("keygen") => misc::keygen(rest),
        Some("keyring") => misc::keyring(rest),
        Some("rtt") => misc::rtt(rest),
        Some("event") => misc::event(rest),
        Some("monitor") => misc::monitor(rest),
        Some("snapshot") => operator::snapshot(rest),
        Some("lock") => lock::run(rest),
        Some("debug") => debug::run(rest),
        Some("watch") => watch::run(rest),
        Some("operator") => operator::run(rest),
        Some("tls") => tls::run(rest),
        _ => {
            eprintln!("{}", usage());
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn usage_lists_commands_aligned() {
        let u = usage();
        assert!(u.starts_with("Usage: praetor [--version] [--help] <command> [<args>]\n"));
        assert!(u.contains("\n    kv             Interact with the key-value store\n"));
        assert!(u.contains("\n    force-leave    Forces a member"));
    }

    #[test]
    fn unknown_verbs_and_groups_exit_1() {
        assert_eq!(run(&args(&["nosuchverb"])), 1);
        assert_eq!(run(&[]), 1);
        assert_eq!(run(&args(&["kv"])), 1);
        assert_eq!(run(&args(&["kv", "bogus"])), 1);
        assert_eq!(run(&args(&["catalog"])), 1);
        assert_eq!(run(&args(&["services", "nope"])), 1);
    }

    #[test]
    fn help_exits_0() {
        assert_eq!(run(&args(&["-h"])), 0);
        assert_eq!(run(&args(&["kv", "-h"])), 0);
        assert_eq!(run(&args(&["kv", "put", "-h"])), 0);
        assert_eq!(run(&args(&["kv", "put", "key", "-help"])), 0);
        assert_eq!(run(&args(&["catalog", "nodes", "--help"])), 0);
        assert_eq!(run(&args(&["members", "-h"])), 0);
        assert_eq!(run(&args(&["version", "-v"])), 0);
    }

    #[test]
    fn group_help_layout() {
        fn nop(_: &[String]) -> i32 {
            0
        }
        let subs: &[Sub] = &[("get", "Gets", nop), ("delete", "Deletes", nop)];
        assert_eq!(
            group_help("\nUsage: x\n", subs),
            "Usage: x\n\nSubcommands:\n    get       Gets\n    delete    Deletes"
        );
    }
}
