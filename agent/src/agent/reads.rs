//! Linearizable reads share quorum rounds (etcd's ReadIndex batching): a read waits for a
//! round of leadership confirmation that *started after it arrived*, and every read that
//! arrived before a round started is answered by that round. Under load one heartbeat round
//! serves many reads instead of one round each.

use super::Agent;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// How long one confirmation round may take.
const ROUND_TIMEOUT: Duration = Duration::from_secs(7);

/// Shared state of the rounds.
pub(crate) struct ReadBatcher {
    /// Rounds started so far (a round's id is the count after it started).
    started: AtomicU64,
    /// Held by the caller running a round; waiters queue on it (FIFO) and find the result
    /// of the round that ran while they waited. A cancelled runner just lets the next one run.
    runner: tokio::sync::Mutex<()>,
    /// The last finished round: its id and the read index (or why it failed).
    done: Mutex<(u64, Result<u64, String>)>,
}

impl Default for ReadBatcher {
    fn default() -> Self {
        ReadBatcher {
            started: AtomicU64::new(0),
            runner: tokio::sync::Mutex::new(()),
            done: Mutex::new((0, Ok(0))),
        }
    }
}

impl Agent {
    /// Confirm leadership with a quorum and return the index a linearizable read must see.
    pub(crate) async fn linearizable_index(&self) -> Result<u64, String> {
        let raft = self.raft.as_ref().ok_or("not a server")?;
        let b = &self.reads;
        let arrival = b.started.load(Ordering::SeqCst);
        let _turn = b.runner.lock().await;
        {
            let d = b.done.lock().unwrap_or_else(|e| e.into_inner());
            if d.0 > arrival {
                return d.1.clone();
            }
        }
        let id = b.started.fetch_add(1, Ordering::SeqCst) + 1;
        let r = match tokio::time::timeout(ROUND_TIMEOUT, raft.ensure_linearizable()).await {
            Ok(Ok(log)) => Ok(log.map(|l| l.index).unwrap_or(0)),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("timed out confirming leadership".to_string()),
        };
        *b.done.lock().unwrap_or_else(|e| e.into_inner()) = (id, r.clone());
        r
    }
}
