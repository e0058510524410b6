//! CLI verbs (everything except `praetor agent`), with Consul's flags, wording and exit
//! codes. They talk to an agent only through [`crate::api`].

/// Unwrap a `Result<T, i32>` or return the exit code from the verb.
macro_rules! or_exit {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(code) => return code,
        }
    };
}

mod catalog;
mod debug;
mod kv;
mod lock;
mod misc;
mod operator;
pub mod output;
mod watch;

use crate::api::{Client, ClientConfig};
use crate::flags::{FlagSet, Parsed};

/// Declare the HTTP flags every verb accepts.
pub(crate) fn http_flags(fs: &mut FlagSet) {
    fs.string(
        "http-addr",
        "The address of the Consul agent (CONSUL_HTTP_ADDR).",
    )
    .string(
        "token",
        "ACL token to use in the request (CONSUL_HTTP_TOKEN).",
    )
    .string("token-file", "File containing the ACL token.")
    .string("datacenter", "Name of the datacenter to query.")
    .bool("stale", "Permit any server to answer the read.")
    .string("ca-file", "CA file for TLS (not used over plain HTTP).")
    .string(
        "client-cert",
        "Client certificate (not used over plain HTTP).",
    )
    .string("client-key", "Client key (not used over plain HTTP).")
    .string(
        "tls-server-name",
        "TLS server name (not used over plain HTTP).",
    );
}

/// Build a client from the parsed HTTP flags.
pub(crate) fn client(p: &Parsed) -> Result<Client, String> {
    let token = match (p.get_str("token"), p.get_str("token-file")) {
        (Some(t), _) => Some(t.to_string()),
        (None, Some(f)) => Some(
            std::fs::read_to_string(f)
                .map_err(|e| format!("Error reading token file: {e}"))?
                .trim()
                .to_string(),
        ),
        _ => None,
    };
    Client::new(ClientConfig {
        address: p.get_str("http-addr").map(str::to_string),
        token,
        datacenter: p.get_str("datacenter").map(str::to_string),
        stale: p.get_bool("stale").unwrap_or(false),
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

/// Parse a verb's flags; on `-h` print the usage (exit 0), on errors the message (exit 1).
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

const COMMANDS: &[(&str, &str)] = &[
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
    ("version", "Prints the Consul version"),
    ("watch", "Watch for changes in Consul"),
];

fn usage() -> String {
    let mut s = String::from(
        "Usage: praetor [--version] [--help] <command> [<args>]\n\nAvailable commands are:\n",
    );
    for (c, d) in COMMANDS {
        s.push_str(&format!("    {c:<16}{d}\n"));
    }
    s
}

/// Run a CLI verb; `args` is argv without the program name. Returns the exit code.
pub fn run(args: &[String]) -> i32 {
    let rest = if args.is_empty() { &[][..] } else { &args[1..] };
    match args.first().map(String::as_str) {
        None | Some("-h") | Some("-help") | Some("--help") => {
            eprintln!("{}", usage());
            if args.is_empty() {
                1
            } else {
                0
            }
        }
        Some("version") | Some("-version") | Some("--version") | Some("-v") => misc::version(rest),
        Some("kv") => kv::run(rest),
        Some("catalog") => catalog::run(rest),
        Some("services") => catalog::services(rest),
        Some("members") => misc::members(rest),
        Some("info") => misc::info(rest),
        Some("reload") => misc::reload(rest),
        Some("leave") => misc::leave(rest),
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
        Some(other) => {
            eprintln!("{}", usage());
            eprintln!("Unknown command: {other:?}");
            1
        }
    }
}
