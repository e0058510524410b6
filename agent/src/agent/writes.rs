//! Group commit on the leader (etcd's proposal batching): concurrent KV writes go to Raft
//! as one `Command::Batch` entry, so they share one log append, one replication round and
//! one fsync on every server instead of paying for them one by one.
//!
//! A batch holds writes to distinct keys only: every command of an entry is applied at the
//! entry's index, and two versions of one key must never share a `ModifyIndex` (a
//! check-and-set against it would match the wrong version). A write whose key is already
//! in the batch being gathered starts the next one. Batches form while earlier ones are
//! in flight: at most `IN_FLIGHT` are submitted at a time, and writes arriving meanwhile
//! wait in the queue and join the next batch. One waiting write goes alone, unwrapped.

use crate::raft::typ::Raft;
use crate::raft::{Command, CommandResponse};
use crate::rpc::{self, ForwardResult};
use std::collections::HashSet;
use std::sync::{Arc, OnceLock};
use tokio::sync::{mpsc, oneshot, RwLock, Semaphore};

/// Writes in one batch at most.
const MAX_BATCH: usize = 256;
/// Batches submitted to Raft and not yet answered, at most.
const IN_FLIGHT: usize = 1;

type Item = (Command, oneshot::Sender<ForwardResult>);

/// The queue of writes waiting to be batched (its task starts with the first write).
#[derive(Default)]
pub struct WriteBatcher {
    tx: OnceLock<mpsc::UnboundedSender<Item>>,
}

/// The key a batchable command writes (KV set and delete of one key); None: not batched.
pub fn batch_key(cmd: &Command) -> Option<&str> {
    match cmd {
        Command::KvSet { key, .. } | Command::KvDelete { key, .. } => Some(key),
        _ => None,
    }
}

impl WriteBatcher {
    /// Commit `cmd` (a batchable command) through Raft in a batch with concurrent writes.
    /// `gate` is the agent's write gate, held shared while a batch is submitted.
    pub async fn write(&self, raft: &Raft, gate: &Arc<RwLock<()>>, cmd: Command) -> ForwardResult {
        let tx = self.tx.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(run(raft.clone(), gate.clone(), rx));
            tx
        });
        let (done, wait) = oneshot::channel();
        if tx.send((cmd, done)).is_err() {
            return ForwardResult::Failed("the write queue has stopped".into());
        }
        wait.await
            .unwrap_or_else(|_| ForwardResult::Failed("the write queue has stopped".into()))
    }
}

async fn run(raft: Raft, gate: Arc<RwLock<()>>, mut rx: mpsc::UnboundedReceiver<Item>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut carry: Option<Item> = None;
    loop {
        let first = match carry.take() {
            Some(item) => item,
            None => match rx.recv().await {
                Some(item) => item,
                None => return,
            },
        };
        // While every slot is busy, writes queue up behind `first` and join its batch.
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut keys: HashSet<String> = HashSet::new();
        keys.extend(batch_key(&first.0).map(str::to_string));
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            let Ok(item) = rx.try_recv() else { break };
            match batch_key(&item.0) {
                Some(k) if keys.insert(k.to_string()) => batch.push(item),
                _ => {
                    carry = Some(item);
                    break;
                }
            }
        }
        let (raft, gate) = (raft.clone(), gate.clone());
        tokio::spawn(async move {
            let _permit = permit;
            commit(&raft, &gate, batch).await;
        });
    }
}

async fn commit(raft: &Raft, gate: &RwLock<()>, mut batch: Vec<Item>) {
    let _gate = gate.read().await;
    if batch.len() == 1 {
        if let Some((cmd, done)) = batch.pop() {
            let _ = done.send(rpc::raft_write(raft, cmd).await);
        }
        return;
    }
    crate::metrics::incr("praetor.raft.write_batch", 1);
    crate::metrics::incr("praetor.raft.write_batch_commands", batch.len() as u64);
    let (cmds, waiters): (Vec<Command>, Vec<_>) = batch.into_iter().unzip();
    let n = cmds.len();
    match rpc::raft_write(raft, Command::Batch(cmds)).await {
        ForwardResult::Applied(CommandResponse::Batch(rs)) if rs.len() == n => {
            for (done, r) in waiters.into_iter().zip(rs) {
                let _ = done.send(ForwardResult::Applied(r));
            }
        }
        ForwardResult::Applied(other) => {
            for done in waiters {
                let _ = done.send(ForwardResult::Failed(format!(
                    "unexpected response to a write batch: {other:?}"
                )));
            }
        }
        ForwardResult::NotLeader { leader } => {
            for done in waiters {
                let _ = done.send(ForwardResult::NotLeader {
                    leader: leader.clone(),
                });
            }
        }
        ForwardResult::Failed(e) => {
            for done in waiters {
                let _ = done.send(ForwardResult::Failed(e.clone()));
            }
        }
    }
}
