//! Linking (docs/build.md).
//!
//! RocksDB: `.cargo/config.toml` sets `ROCKSDB_STATIC`, so librocksdb-sys links Debian's
//! `librocksdb.a`; the compression libraries that archive calls are linked here.
//!
//! Release link layout for the `praetor` binary ("Release profile and link order"):
//! `link-order.txt` lists the functions an idle `agent -dev` runs: its start, two HTTP
//! requests, a minute of timers (written by `bench/link-order.sh` from a callgrind run).
//! The linker places them first and together, so the code an idle agent has touched sits
//! in a few MiB instead of all over the binary's text: the kernel maps file pages around
//! each fault in 64 KiB windows, and code used once at start-up stays mapped. Relative relocations are packed (DT_RELR) so the loader does not read
//! half a megabyte of them at start.
//!
//! Both need LLD (the linker rustc uses by default for x86_64-unknown-linux-gnu since 1.90)
//! and apply to release builds for that target only; any other linker, target or profile
//! links as usual. `PRAETOR_LINK_ORDER=0` turns them off.

use std::process::Command;

fn main() {
    if std::env::var_os("ROCKSDB_STATIC").is_some() {
        // Debian's librocksdb.a calls these; static too, from the -dev packages
        // librocksdb-dev depends on.
        for lib in ["snappy", "lz4", "zstd", "bz2", "z"] {
            println!("cargo:rustc-link-lib=static={lib}");
        }
    }
    println!("cargo:rerun-if-env-changed=ROCKSDB_STATIC");
    println!("cargo:rerun-if-changed=link-order.txt");
    println!("cargo:rerun-if-env-changed=PRAETOR_LINK_ORDER");
    println!("cargo:rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    if env("PROFILE") != "release"
        || env("TARGET") != "x86_64-unknown-linux-gnu"
        || env("PRAETOR_LINK_ORDER") == "0"
    {
        return;
    }
    // A linker chosen by hand (-C linker=..., -C linker-features=...) may not be LLD.
    if env("CARGO_ENCODED_RUSTFLAGS").contains("link")
        || std::env::var_os("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER").is_some()
    {
        println!("cargo:warning=custom linker settings: praetor links without its link order");
        return;
    }
    if !rustc_links_with_lld() {
        println!("cargo:warning=rustc before 1.90 links with the system linker: praetor links without its link order");
        return;
    }
    let order = format!("{}/link-order.txt", env("CARGO_MANIFEST_DIR"));
    for arg in [
        format!("-Wl,--symbol-ordering-file={order}"),
        // Names of functions since renamed or removed are skipped, not errors.
        "-Wl,--no-warn-symbol-ordering".to_string(),
        "-Wl,-z,pack-relative-relocs".to_string(),
    ] {
        println!("cargo:rustc-link-arg-bin=praetor={arg}");
    }
}

/// rustc 1.90 and later link x86_64-unknown-linux-gnu programs with its bundled LLD.
fn rustc_links_with_lld() -> bool {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let Ok(out) = Command::new(rustc).arg("--version").output() else {
        return false;
    };
    let version = String::from_utf8_lossy(&out.stdout);
    // "rustc 1.95.0 (59807616e 2026-04-14)"
    let mut parts = version
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .split('.')
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (1, 90)
}
