//! Cross-process integration tests: every test starts real `praetor` processes on loopback.
//! One test binary (hickory-dns's layout): `cargo test -p integration-tests`.

mod acl;
mod agent_api;
mod antientropy;
mod catalog;
mod checks;
mod cli;
mod cluster;
mod compat;
mod config;
mod coordinate;
mod dns;
mod encryption;
mod events;
mod filter;
mod hostile;
mod http_util;
mod kv;
mod linearizable;
mod multidc;
mod patroni;
mod persistence;
mod query;
mod sessions;
mod snapshot;
mod telemetry;
mod tls;
mod txn;
mod ui;
