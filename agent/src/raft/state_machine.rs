//! The state machine: the in-memory store, applied entry by entry, with its latest snapshot
//! persisted in RocksDB (`sm` column family) so a restart resumes from the snapshot and
//! replays the committed log after it.

use super::typ::{Entry, LogId, SnapshotMeta, StorageError, StorageIOError, StoredMembership};
use super::{CommandResponse, TypeConfig, CF_SM};
use crate::store::{Store, StoreData};
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder};
use rocksdb::{WriteOptions, DB};
use serde::{Deserialize, Serialize};
use std::io::Cursor;
use std::sync::{Arc, RwLock};

/// What is persisted for a snapshot and sent to followers.
#[derive(Serialize, Deserialize)]
struct SnapshotFile {
    meta: SnapshotMeta,
    last_applied: Option<LogId>,
    membership: StoredMembership,
    data: StoreData,
}

/// Shared handle to the state; the agent reads through it.
pub type SharedStore = Arc<RwLock<Store>>;

/// The Raft state machine.
pub struct StateMachine {
    db: Arc<DB>,
    store: SharedStore,
    last_applied: Option<LogId>,
    membership: StoredMembership,
    snapshot_idx: u64,
}

impl StateMachine {
    /// Open the state machine, restoring the latest persisted snapshot into `store`.
    pub fn open(db: Arc<DB>, store: SharedStore) -> Result<Self, StorageError> {
        let mut sm = StateMachine {
            db,
            store,
            last_applied: None,
            membership: StoredMembership::default(),
            snapshot_idx: 0,
        };
        if let Some(snap) = sm.read_snapshot_file()? {
            sm.last_applied = snap.last_applied;
            sm.membership = snap.membership;
            let mut st = sm.store.write().unwrap_or_else(|e| e.into_inner());
            st.restore_data(snap.data);
        }
        Ok(sm)
    }

    fn cf(&self) -> &rocksdb::ColumnFamily {
        self.db
            .cf_handle(CF_SM)
            .expect("column family created at open")
    }

    fn read_snapshot_file(&self) -> Result<Option<SnapshotFile>, StorageError> {
        let raw = self
            .db
            .get_cf(self.cf(), "snapshot")
            .map_err(|e| StorageIOError::read_snapshot(None, &e))?;
        match raw {
            None => Ok(None),
            Some(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| StorageIOError::read_snapshot(None, &e).into()),
        }
    }

    fn write_snapshot_file(&self, bytes: &[u8]) -> Result<(), StorageError> {
        let mut o = WriteOptions::default();
        o.set_sync(true);
        self.db
            .put_cf_opt(self.cf(), "snapshot", bytes, &o)
            .map_err(|e| StorageIOError::write_snapshot(None, &e).into())
    }

    fn build(&mut self) -> Result<(Vec<u8>, SnapshotMeta), StorageError> {
        let data = self
            .store
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .data()
            .clone();
        self.snapshot_idx += 1;
        let snapshot_id = match &self.last_applied {
            Some(l) => format!("{}-{}-{}", l.leader_id, l.index, self.snapshot_idx),
            None => format!("--{}", self.snapshot_idx),
        };
        let meta = SnapshotMeta {
            last_log_id: self.last_applied,
            last_membership: self.membership.clone(),
            snapshot_id,
        };
        let file = SnapshotFile {
            meta: meta.clone(),
            last_applied: self.last_applied,
            membership: self.membership.clone(),
            data,
        };
        let bytes =
            serde_json::to_vec(&file).map_err(|e| StorageIOError::write_snapshot(None, &e))?;
        self.write_snapshot_file(&bytes)?;
        Ok((bytes, meta))
    }
}

/// Builds snapshots from a point-in-time copy of the state (taken when the builder is
/// made, under the state machine's exclusive borrow, so it matches `last_applied`).
pub struct SnapshotBuilder {
    built: Result<(Vec<u8>, SnapshotMeta), String>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        match &self.built {
            Ok((bytes, meta)) => Ok(Snapshot {
                meta: meta.clone(),
                snapshot: Box::new(Cursor::new(bytes.clone())),
            }),
            Err(msg) => Err(StorageIOError::write_snapshot(
                None,
                &std::io::Error::other(msg.clone()),
            )
            .into()),
        }
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<CommandResponse>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut out = Vec::new();
        let mut st = self.store.write().unwrap_or_else(|e| e.into_inner());
        for e in entries {
            self.last_applied = Some(e.log_id);
            match e.payload {
                EntryPayload::Blank => out.push(CommandResponse::Ok),
                EntryPayload::Normal(cmd) => out.push(cmd.apply(&mut st, e.log_id.index)),
                EntryPayload::Membership(m) => {
                    self.membership = StoredMembership::new(Some(e.log_id), m);
                    out.push(CommandResponse::Ok);
                }
            }
        }
        st.flush_watches();
        crate::metrics::incr("consul.raft.apply", out.len() as u64);
        if let Some(l) = self.last_applied {
            crate::metrics::gauge("consul.raft.applied_index", l.index as f64);
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            built: self.build().map_err(|e| e.to_string()),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let bytes = snapshot.into_inner();
        let file: SnapshotFile = serde_json::from_slice(&bytes)
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
        self.write_snapshot_file(&bytes)?;
        self.last_applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        let mut st = self.store.write().unwrap_or_else(|e| e.into_inner());
        st.restore_data(file.data);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let raw = self
            .db
            .get_cf(self.cf(), "snapshot")
            .map_err(|e| StorageIOError::read_snapshot(None, &e))?;
        let Some(bytes) = raw else { return Ok(None) };
        let file: SnapshotFile =
            serde_json::from_slice(&bytes).map_err(|e| StorageIOError::read_snapshot(None, &e))?;
        Ok(Some(Snapshot {
            meta: file.meta,
            snapshot: Box::new(Cursor::new(bytes)),
        }))
    }
}
