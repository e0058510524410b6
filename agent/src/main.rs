//! `praetor`: `praetor agent ...` runs an agent; every other verb is a CLI command that talks
//! to an agent over HTTP.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.first().map(String::as_str) {
        Some("agent") => agent::run::agent_main(&args[1..]),
        _ => agent::cli::run(&args),
    };
    std::process::exit(code);
}
