//! Raft: openraft type configuration, RocksDB-backed log store and state machine, and the
//! HTTP network between servers.
//!
//! One RocksDB database holds three column families: `logs` (the Raft log), `meta` (vote,
//! committed id, purge point) and `sm` (the latest state-machine snapshot). Log appends
//! are written with `sync` before openraft is told they are durable, so an acknowledged
//! write survives `kill -9`.

// openraft's error types are large by design and are what its traits return.
#![allow(clippy::result_large_err)]

pub mod command;
pub mod log_store;
pub mod network;
pub mod state_machine;

pub use command::{Command, CommandResponse};
use openraft::BasicNode;
use rocksdb::{ColumnFamilyDescriptor, Options, DB};
use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;

openraft::declare_raft_types!(
    /// Praetor's Raft type configuration.
    pub TypeConfig:
        D = Command,
        R = CommandResponse,
        NodeId = u64,
        Node = BasicNode,
);

/// Short aliases for openraft's generic types.
pub mod typ {
    use super::TypeConfig;
    pub type Raft = openraft::Raft<TypeConfig>;
    pub type NodeId = u64;
    pub type Entry = openraft::Entry<TypeConfig>;
    pub type LogId = openraft::LogId<NodeId>;
    pub type Vote = openraft::Vote<NodeId>;
    pub type StorageError = openraft::StorageError<NodeId>;
    pub type StorageIOError = openraft::StorageIOError<NodeId>;
    pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, openraft::BasicNode>;
    pub type StoredMembership = openraft::StoredMembership<NodeId, openraft::BasicNode>;
    pub type Snapshot = openraft::Snapshot<TypeConfig>;
    pub type RaftMetrics = openraft::RaftMetrics<NodeId, openraft::BasicNode>;
}

/// Column family names.
pub(crate) const CF_LOGS: &str = "logs";
pub(crate) const CF_META: &str = "meta";
pub(crate) const CF_SM: &str = "sm";

/// Open (or create) the RocksDB database under `dir`.
pub fn open_db(dir: &Path) -> Result<Arc<DB>, rocksdb::Error> {
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    // Small memtables: the log is append-mostly and snapshots hold the state, so 4 MiB per
    // column family keeps memory (and the preallocated WAL) small.
    opts.set_write_buffer_size(4 * 1024 * 1024);
    opts.set_max_write_buffer_number(2);
    opts.set_manifest_preallocation_size(64 * 1024);
    opts.set_keep_log_file_num(3);
    opts.set_max_log_file_size(4 * 1024 * 1024);
    let cfs = [CF_LOGS, CF_META, CF_SM]
        .iter()
        .map(|n| {
            let mut cf = Options::default();
            cf.set_write_buffer_size(4 * 1024 * 1024);
            cf.set_max_write_buffer_number(2);
            ColumnFamilyDescriptor::new(*n, cf)
        })
        .collect::<Vec<_>>();
    Ok(Arc::new(DB::open_cf_descriptors(&opts, dir, cfs)?))
}

/// Big-endian log index, so RocksDB's byte order is log order.
pub(crate) fn id_to_bin(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

pub(crate) fn bin_to_id(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_be_bytes(a)
}
