//! Praetor: a Consul-compatible service discovery agent.
//!
//! Layers, dependencies pointing one way: `config` → `types` → `store` (replicated state,
//! synchronous) → `raft` (openraft on RocksDB; `Command` is the only write path) → `rpc` →
//! `agent` facade → `http` (axum) / `cli` (through the `api` client). `checks` and `local`
//! (anti-entropy) sit beside the facade.

pub mod acl;
pub mod agent;
pub mod api;
pub mod checks;
pub mod cli;
pub mod config;
pub mod definition;
pub mod dns;
pub mod flags;
#[doc(hidden)]
pub mod fuzz;
pub mod gossip;
pub mod http;
pub mod local;
pub mod metrics;
pub mod monitor;
pub mod raft;
pub mod rpc;
pub mod run;
pub mod store;
pub mod tls;
pub mod types;

/// The Consul version whose API this build implements; reported by `version` and
/// `/v1/agent/self`, and read by clients that check the server version.
pub const CONSUL_COMPAT_VERSION: &str = "1.16.1";
