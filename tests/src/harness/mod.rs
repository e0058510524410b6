//! Harness: locate the binary, run agents (`Node`), poll with a bounded wait.

pub mod node;
pub mod wait;

pub use node::{Node, NodeOptions};
pub use wait::{wait_until, TIMEOUT};

use std::path::PathBuf;

/// The `praetor` binary under test: `$PRAETOR_BIN`, else the workspace target directory
/// (`$CARGO_TARGET_DIR` or `target/`), release build preferred when newer.
pub fn praetor_bin() -> PathBuf {
    if let Ok(p) = std::env::var("PRAETOR_BIN") {
        return PathBuf::from(p);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target"));
    let candidates = [target.join("debug/praetor"), target.join("release/praetor")];
    let newest = candidates
        .iter()
        .filter_map(|p| {
            std::fs::metadata(p)
                .and_then(|m| m.modified())
                .ok()
                .map(|t| (t, p.clone()))
        })
        .max_by_key(|(t, _)| *t)
        .map(|(_, p)| p);
    newest.unwrap_or_else(|| {
        panic!(
            "praetor binary not found under {}: run `cargo build -p agent --bin praetor` first or set PRAETOR_BIN",
            target.display()
        )
    })
}
