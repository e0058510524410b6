//! CLI verbs (everything except `praetor agent`); they talk to an agent through `api`.

/// Run a CLI verb; `args` is argv without the program name. Returns the exit code.
pub fn run(args: &[String]) -> i32 {
    match args.first().map(String::as_str) {
        Some("version") => {
            println!("Consul v{}", crate::CONSUL_COMPAT_VERSION);
            println!("Praetor {}", env!("CARGO_PKG_VERSION"));
            0
        }
        other => {
            eprintln!("Usage: praetor [--version] [--help] <command> [<args>]");
            if let Some(v) = other {
                eprintln!("unknown command: {v}");
            }
            1
        }
    }
}
