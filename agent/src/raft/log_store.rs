//! The Raft log on RocksDB (`logs` column family, big-endian index keys, JSON entries) with
//! vote, committed id and purge point in `meta`. Every write is synced before it is
//! reported durable.
//!
//! Group commit: `append` writes its batch to RocksDB without waiting for the disk (the
//! entries are readable at once, as openraft requires) and hands the flush callback to one
//! flusher thread, which syncs the write-ahead log once for every callback queued while the
//! previous sync ran and then reports them all durable. Raft's core loop never waits for the
//! disk, the leader replicates while its own sync runs, and concurrent writes share fsyncs
//! (etcd's raft loop works the same way).

use super::typ::{Entry, LogId, StorageError, StorageIOError, Vote};
use super::{bin_to_id, id_to_bin, TypeConfig, CF_LOGS, CF_META};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader};
use rocksdb::{Direction, IteratorMode, WriteBatch, WriteOptions, DB};
use serde::{de::DeserializeOwned, Serialize};
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::mpsc;
use std::sync::{Arc, Weak};

/// The log store; cheap to clone (it is also its own log reader).
#[derive(Clone)]
pub struct LogStore {
    db: Arc<DB>,
    /// Callbacks of appends written but not yet synced, for the flusher thread.
    flush_tx: mpsc::Sender<LogFlushed<TypeConfig>>,
}

/// The flusher thread: sync the WAL once per group of waiting appends. It holds the
/// database weakly and ends when the last `LogStore` clone is dropped.
fn run_flusher(db: Weak<DB>, rx: mpsc::Receiver<LogFlushed<TypeConfig>>) {
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        group.extend(rx.try_iter());
        let started = std::time::Instant::now();
        let res = match db.upgrade() {
            Some(db) => db.flush_wal(true).map_err(|e| e.to_string()),
            None => Err("the log store is closed".to_string()),
        };
        crate::metrics::sample("praetor.raft.log_sync_time", started.elapsed());
        crate::metrics::incr("praetor.raft.log_sync", 1);
        crate::metrics::incr("praetor.raft.log_sync_appends", group.len() as u64);
        for cb in group {
            cb.log_io_completed(res.clone().map_err(std::io::Error::other));
        }
    }
}

fn sync_opts() -> WriteOptions {
    let mut o = WriteOptions::default();
    o.set_sync(true);
    o
}

impl LogStore {
    /// A log store over an opened database.
    pub fn new(db: Arc<DB>) -> Self {
        let (flush_tx, rx) = mpsc::channel();
        let weak = Arc::downgrade(&db);
        std::thread::Builder::new()
            .name("raft-log-sync".into())
            .spawn(move || run_flusher(weak, rx))
            .expect("spawn the Raft log sync thread");
        LogStore { db, flush_tx }
    }

    fn cf(&self, name: &str) -> &rocksdb::ColumnFamily {
        self.db
            .cf_handle(name)
            .expect("column family created at open")
    }

    fn get_meta<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StorageIOError> {
        let v = self
            .db
            .get_cf(self.cf(CF_META), key)
            .map_err(|e| StorageIOError::read(&e))?;
        match v {
            None => Ok(None),
            Some(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| StorageIOError::read(&e)),
        }
    }

    /// Write a `meta` value, synced to disk before returning when `sync`.
    fn put_meta<T: Serialize>(&self, key: &str, v: &T, sync: bool) -> Result<(), StorageIOError> {
        let b = serde_json::to_vec(v).map_err(|e| StorageIOError::write(&e))?;
        let opts = if sync {
            sync_opts()
        } else {
            WriteOptions::default()
        };
        self.db
            .put_cf_opt(self.cf(CF_META), key, b, &opts)
            .map_err(|e| StorageIOError::write(&e))
    }

    /// Number of entries currently in the log (for `operator raft` and tests).
    pub fn len(&self) -> usize {
        self.db
            .iterator_cf(self.cf(CF_LOGS), IteratorMode::Start)
            .count()
    }

    /// Whether the log is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let start = match range.start_bound() {
            Bound::Included(x) => *x,
            Bound::Excluded(x) => *x + 1,
            Bound::Unbounded => 0,
        };
        let mut out = Vec::new();
        let it = self.db.iterator_cf(
            self.cf(CF_LOGS),
            IteratorMode::From(&id_to_bin(start), Direction::Forward),
        );
        for item in it {
            let (k, v) = item.map_err(|e| StorageIOError::read_logs(&e))?;
            let id = bin_to_id(&k);
            if !range.contains(&id) {
                break;
            }
            let entry: Entry =
                serde_json::from_slice(&v).map_err(|e| StorageIOError::read_logs(&e))?;
            out.push(entry);
        }
        Ok(out)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last = match self
            .db
            .iterator_cf(self.cf(CF_LOGS), IteratorMode::End)
            .next()
        {
            None => None,
            Some(item) => {
                let (_, v) = item.map_err(|e| StorageIOError::read_logs(&e))?;
                let e: Entry =
                    serde_json::from_slice(&v).map_err(|e| StorageIOError::read_logs(&e))?;
                Some(e.log_id)
            }
        };
        let last_purged: Option<LogId> = self.get_meta("last_purged")?;
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id: last.or(last_purged),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        self.put_meta("vote", vote, true).map_err(Into::into)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        self.get_meta("vote").map_err(Into::into)
    }

    /// Not synced: the committed id is only a hint for a restart (it lets the state machine
    /// re-apply up to it at once); a lost update means a lower hint, which is safe, and the
    /// entries it names were synced before they could be committed. Syncing it would put
    /// an fsync into Raft's core loop on every commit.
    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.put_meta("committed", &committed, false)
            .map_err(Into::into)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.get_meta::<Option<LogId>>("committed")?.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = WriteBatch::default();
        let cf = self.cf(CF_LOGS);
        for e in entries {
            let b = serde_json::to_vec(&e).map_err(|err| StorageIOError::write_logs(&err))?;
            batch.put_cf(cf, id_to_bin(e.log_id.index), b);
        }
        // Readable now; durable when the flusher's next WAL sync completes.
        match self.db.write(batch) {
            Ok(()) => {
                if let Err(mpsc::SendError(cb)) = self.flush_tx.send(callback) {
                    // The flusher is gone (cannot happen while a store lives): sync here.
                    let r = self.db.flush_wal(true).map_err(|e| e.to_string());
                    cb.log_io_completed(r.map_err(std::io::Error::other));
                }
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(StorageIOError::write_logs(&e).into())
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.db
            .delete_range_cf(
                self.cf(CF_LOGS),
                id_to_bin(log_id.index),
                id_to_bin(u64::MAX),
            )
            .map_err(|e| StorageIOError::write_logs(&e))?;
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.put_meta("last_purged", &log_id, true)?;
        self.db
            .delete_range_cf(self.cf(CF_LOGS), id_to_bin(0), id_to_bin(log_id.index + 1))
            .map_err(|e| StorageIOError::write_logs(&e))?;
        Ok(())
    }
}
