//! Blocking-query notification: waiters register interest in topics (a KV key, a KV prefix,
//! a catalog table, a service name) and writers fire exactly the topics they touched, so an
//! unrelated write wakes nobody.
//!
//! A waiter registers *before* it reads the store; `Notify::notify_one` keeps a permit when
//! the waiter is not yet parked, so a write landing between the read and the wait is never
//! lost.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// Something a blocking query can wait on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Topic {
    /// One KV key.
    Kv(String),
    /// Every KV key under a prefix (the empty prefix is the whole store).
    KvPrefix(String),
    /// A whole table: `nodes`, `services`, `checks`, `sessions`, `kvs`.
    Table(&'static str),
    /// Instances and health of one service name.
    Service(String),
    /// One node: its record, services and checks.
    Node(String),
    /// One session.
    Session(String),
}

type Waiters = HashMap<u64, Arc<Notify>>;

/// Registry of parked blocking queries.
#[derive(Default)]
pub struct WatchHub {
    next_id: AtomicU64,
    topics: Mutex<HashMap<Topic, Waiters>>,
}

/// A registration; dropping it unregisters the waiter from every topic.
pub struct Subscription {
    hub: Arc<WatchHub>,
    id: u64,
    /// Shared with the caller, who re-subscribes with the same topics after each wake-up.
    topics: Arc<[Topic]>,
    notify: Arc<Notify>,
}

impl Subscription {
    /// Wait until one of the topics fires (returns at once if one fired since registering).
    pub async fn changed(&self) {
        self.notify.notified().await
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut map = self.hub.topics.lock().unwrap_or_else(|e| e.into_inner());
        for t in self.topics.iter() {
            if let Some(w) = map.get_mut(t) {
                w.remove(&self.id);
                if w.is_empty() {
                    map.remove(t);
                }
            }
        }
    }
}

impl WatchHub {
    /// A new, empty hub.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Register interest in `topics`.
    pub fn subscribe(self: &Arc<Self>, topics: impl Into<Arc<[Topic]>>) -> Subscription {
        let topics = topics.into();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let notify = Arc::new(Notify::new());
        {
            let mut map = self.topics.lock().unwrap_or_else(|e| e.into_inner());
            for t in topics.iter() {
                map.entry(t.clone()).or_default().insert(id, notify.clone());
            }
        }
        Subscription {
            hub: self.clone(),
            id,
            topics,
            notify,
        }
    }

    /// Number of registered waiters (all topics), for metrics and tests.
    pub fn waiter_count(&self) -> usize {
        let map = self.topics.lock().unwrap_or_else(|e| e.into_inner());
        map.values().map(|w| w.len()).sum()
    }

    /// Wake every waiter on any of `fired`. A KV key also fires every prefix of itself.
    pub fn fire(&self, fired: &[Topic]) {
        let map = self.topics.lock().unwrap_or_else(|e| e.into_inner());
        if map.is_empty() {
            return;
        }
        let wake = |t: &Topic| {
            if let Some(w) = map.get(t) {
                for n in w.values() {
                    n.notify_one();
                }
            }
        };
        for t in fired {
            wake(t);
            if let Topic::Kv(key) = t {
                for (i, _) in key.char_indices() {
                    wake(&Topic::KvPrefix(key[..i].to_string()));
                }
                wake(&Topic::KvPrefix(key.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn exact_and_prefix_waiters_wake_unrelated_do_not() {
        let hub = WatchHub::new();
        let exact = hub.subscribe(vec![Topic::Kv("a/b".into())]);
        let prefix = hub.subscribe(vec![Topic::KvPrefix("a/".into())]);
        let other = hub.subscribe(vec![Topic::Kv("z".into())]);
        hub.fire(&[Topic::Kv("a/b".into())]);
        tokio::time::timeout(Duration::from_millis(100), exact.changed())
            .await
            .expect("exact woken");
        tokio::time::timeout(Duration::from_millis(100), prefix.changed())
            .await
            .expect("prefix woken");
        assert!(
            tokio::time::timeout(Duration::from_millis(50), other.changed())
                .await
                .is_err(),
            "unrelated waiter must not wake"
        );
        assert_eq!(hub.waiter_count(), 3);
        drop(exact);
        drop(prefix);
        drop(other);
        assert_eq!(hub.waiter_count(), 0);
    }

    #[tokio::test]
    async fn fire_before_wait_is_not_lost() {
        let hub = WatchHub::new();
        let s = hub.subscribe(vec![Topic::Table("nodes")]);
        hub.fire(&[Topic::Table("nodes")]);
        tokio::time::timeout(Duration::from_millis(100), s.changed())
            .await
            .expect("permit kept");
    }
}
