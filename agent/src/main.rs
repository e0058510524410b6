//! `praetor`: `praetor agent ...` runs an agent; every other verb is a CLI command that talks
//! to an agent over HTTP.

/// jemalloc rather than glibc's malloc: when 50,000 parked blocking queries were answered at
/// once, a fifth of the agent's time went to glibc's chunk coalescing (`malloc_consolidate`,
/// `unlink_chunk`); with jemalloc they are all answered in 0.86-0.90 s instead of 1.07-1.17 s
/// (docs/benchmarks.md).
#[cfg(feature = "jemalloc")]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.first().map(String::as_str) {
        Some("agent") => agent::run::agent_main(&args[1..]),
        _ => agent::cli::run(&args),
    };
    std::process::exit(code);
}
