//! KV table: set, check-and-set, lock/unlock through sessions, delete (key, tree, cas),
//! and reads by key, prefix and key listing with a separator.

use super::{Store, StoreError, Topic};
use crate::types::{Index, KvEntry};
use std::time::{Duration, Instant};

/// How a KV write is conditioned.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum KvOp {
    /// Unconditional set.
    Set,
    /// Set only if the key's ModifyIndex equals the index (0: only if the key is absent).
    Cas(Index),
    /// Acquire the key's lock for the session.
    Lock(String),
    /// Release the key's lock held by the session.
    Unlock(String),
}

impl Store {
    pub(super) fn kv_put_entry(&mut self, idx: Index, mut entry: KvEntry) {
        if let Some(existing) = self.data.kv.get(&entry.key) {
            entry.create_index = existing.create_index;
        } else {
            entry.create_index = idx;
        }
        entry.modify_index = idx;
        self.data.tombstones.remove(&entry.key);
        self.bump("kvs", idx);
        self.fire(Topic::Kv(entry.key.clone()));
        self.data.kv.insert(entry.key.clone(), entry);
    }

    /// Write a key under the given condition; `Ok(false)` when the condition failed.
    pub fn kv_set(
        &mut self,
        idx: Index,
        key: &str,
        value: Vec<u8>,
        flags: u64,
        op: &KvOp,
    ) -> Result<bool, StoreError> {
        let existing = self.data.kv.get(key).cloned();
        let mut entry = KvEntry {
            key: key.to_string(),
            flags,
            value,
            ..Default::default()
        };
        if let Some(e) = &existing {
            entry.session = e.session.clone();
            entry.lock_index = e.lock_index;
        }
        match op {
            KvOp::Set => {}
            KvOp::Cas(cas) => {
                let ok = match (&existing, *cas) {
                    (None, 0) => true,
                    (Some(_), 0) => false,
                    (Some(e), i) => e.modify_index == i,
                    (None, _) => false,
                };
                if !ok {
                    return Ok(false);
                }
            }
            KvOp::Lock(session) => {
                if !self.data.sessions.contains_key(session) {
                    return Err(StoreError::InvalidSession(session.clone()));
                }
                match existing.as_ref().and_then(|e| e.session.as_ref()) {
                    Some(holder) if holder != session => return Ok(false),
                    Some(_) => {}
                    None => {
                        entry.session = Some(session.clone());
                        entry.lock_index += 1;
                    }
                }
            }
            KvOp::Unlock(session) => match existing.as_ref().and_then(|e| e.session.as_ref()) {
                Some(holder) if holder == session => entry.session = None,
                _ => return Ok(false),
            },
        }
        self.kv_put_entry(idx, entry);
        Ok(true)
    }

    /// Delete one key; with `cas`, only if its ModifyIndex matches (`Ok(false)` otherwise).
    pub fn kv_delete(&mut self, idx: Index, key: &str, cas: Option<Index>) -> bool {
        let existing = self.data.kv.get(key);
        if let Some(c) = cas {
            match existing {
                None => return c == 0,
                Some(e) if c != 0 && e.modify_index != c => return false,
                Some(_) if c == 0 => return false,
                _ => {}
            }
        }
        if self.data.kv.remove(key).is_some() {
            self.data.tombstones.insert(key.to_string(), idx);
            self.bump("kvs", idx);
            self.fire(Topic::Kv(key.to_string()));
        }
        true
    }

    /// Delete every key under `prefix`.
    pub fn kv_delete_tree(&mut self, idx: Index, prefix: &str) {
        let keys: Vec<String> = self
            .data
            .kv
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, _)| k.clone())
            .collect();
        for k in keys {
            self.kv_delete(idx, &k, None);
        }
    }

    /// Forget tombstones of deletions at or before `upto` (Consul's tombstone GC).
    pub fn kv_reap_tombstones(&mut self, upto: Index) -> usize {
        let before = self.data.tombstones.len();
        let reaped: Vec<String> = self
            .data
            .tombstones
            .iter()
            .filter(|(_, i)| **i <= upto)
            .map(|(k, _)| k.clone())
            .collect();
        for k in reaped {
            self.data.tombstones.remove(&k);
        }
        self.data.tombstone_floor = self.data.tombstone_floor.max(upto);
        before - self.data.tombstones.len()
    }

    /// The oldest tombstone's index, if any.
    pub fn kv_oldest_tombstone(&self) -> Option<Index> {
        self.data.tombstones.values().min().copied()
    }

    /// Remember a lock delay for `key` (set when a session holding it is invalidated).
    pub(crate) fn set_lock_delay(&mut self, key: &str, delay_ns: u64) {
        if delay_ns > 0 {
            self.lock_delay.insert(
                key.to_string(),
                Instant::now() + Duration::from_nanos(delay_ns),
            );
        }
    }

    /// The time a lock on `key` may be acquired again, if a lock delay is in force.
    pub fn kv_lock_delay(&self, key: &str) -> Option<Instant> {
        self.lock_delay
            .get(key)
            .copied()
            .filter(|t| *t > Instant::now())
    }

    /// One entry, with its `ModifyIndex` as the read's index (as Consul's `KVS.Get`), so a
    /// blocking query on the key sees no other key's writes; a missing key reads at the
    /// table's index.
    pub fn kv_get(&self, key: &str) -> (Index, Option<KvEntry>) {
        match self.data.kv.get(key) {
            Some(e) => (e.modify_index.max(1), Some(e.clone())),
            None => (self.max_index(&["kvs"]), None),
        }
    }

    fn prefix_index(&self, prefix: &str, entries_max: Index) -> Index {
        let tomb = self
            .data
            .tombstones
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, i)| *i)
            .max()
            .unwrap_or(0);
        let idx = entries_max.max(tomb).max(self.data.tombstone_floor);
        if idx == 0 {
            self.max_index(&["kvs"])
        } else {
            idx
        }
    }

    /// Every entry under `prefix`, in key order.
    pub fn kv_list(&self, prefix: &str) -> (Index, Vec<KvEntry>) {
        let entries: Vec<KvEntry> = self
            .data
            .kv
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v.clone())
            .collect();
        let max = entries.iter().map(|e| e.modify_index).max().unwrap_or(0);
        (self.prefix_index(prefix, max), entries)
    }

    /// Keys under `prefix`; with a separator, keys are folded at the first separator after
    /// the prefix (`a/b/c` under `a/` with `/` gives `a/b/`).
    pub fn kv_keys(&self, prefix: &str, separator: &str) -> (Index, Vec<String>) {
        let mut out: Vec<String> = Vec::new();
        let mut max = 0;
        for (k, e) in self
            .data
            .kv
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
        {
            max = max.max(e.modify_index);
            let rest = &k[prefix.len()..];
            let item = match (!separator.is_empty())
                .then(|| rest.find(separator))
                .flatten()
            {
                Some(pos) => format!("{}{}", prefix, &rest[..pos + separator.len()]),
                None => k.clone(),
            };
            if out.last() != Some(&item) {
                out.push(item);
            }
        }
        (self.prefix_index(prefix, max), out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_store;

    #[test]
    fn set_get_and_indexes() {
        let mut s = test_store();
        assert_eq!(s.kv_get("a").0, 1, "index is at least 1 on an empty store");
        assert!(s.kv_set(5, "a", b"1".to_vec(), 0, &KvOp::Set).unwrap());
        assert!(s.kv_set(6, "a", b"2".to_vec(), 7, &KvOp::Set).unwrap());
        let (idx, e) = s.kv_get("a");
        let e = e.unwrap();
        assert_eq!((idx, e.create_index, e.modify_index, e.flags), (6, 5, 6, 7));
        assert_eq!(e.value, b"2");
        // Other keys' writes move the table's index, not this key's.
        assert!(s.kv_set(9, "b", b"x".to_vec(), 0, &KvOp::Set).unwrap());
        assert_eq!(s.kv_get("a").0, 6);
        assert_eq!(
            s.kv_get("missing").0,
            9,
            "a missing key reads at the table's index"
        );
    }

    #[test]
    fn cas_semantics() {
        let mut s = test_store();
        assert!(s.kv_set(2, "k", vec![], 0, &KvOp::Cas(0)).unwrap());
        assert!(!s.kv_set(3, "k", vec![], 0, &KvOp::Cas(0)).unwrap());
        assert!(!s.kv_set(3, "k", vec![], 0, &KvOp::Cas(1)).unwrap());
        assert!(s.kv_set(3, "k", vec![1], 0, &KvOp::Cas(2)).unwrap());
        assert!(!s.kv_set(4, "k", vec![2], 0, &KvOp::Cas(2)).unwrap());
        assert!(!s.kv_set(4, "missing", vec![], 0, &KvOp::Cas(9)).unwrap());
        assert!(!s.kv_delete(5, "k", Some(2)));
        assert!(s.kv_delete(5, "k", Some(3)));
        assert!(s.kv_get("k").1.is_none());
    }

    #[test]
    fn list_keys_separator_and_tombstones() {
        let mut s = test_store();
        for (i, k) in ["a/b", "a/c/d", "a/c/e", "b"].iter().enumerate() {
            s.kv_set(10 + i as u64, k, vec![], 0, &KvOp::Set).unwrap();
        }
        let (idx, l) = s.kv_list("a/");
        assert_eq!(l.len(), 3);
        assert_eq!(idx, 12);
        assert_eq!(s.kv_keys("a/", "/").1, vec!["a/b", "a/c/"]);
        assert_eq!(s.kv_keys("", "/").1, vec!["a/", "b"]);
        assert_eq!(s.kv_keys("a/", "").1, vec!["a/b", "a/c/d", "a/c/e"]);
        s.kv_delete_tree(20, "a/c");
        let (idx, l) = s.kv_list("a/");
        assert_eq!((idx, l.len()), (20, 1), "tombstones raise the prefix index");
        assert_eq!(
            s.kv_list("zzz").0,
            20,
            "empty prefix falls back to the table index"
        );
    }

    #[test]
    fn reaped_tombstones_never_lower_a_prefix_index() {
        let mut s = test_store();
        s.kv_set(5, "p/a", vec![], 0, &KvOp::Set).unwrap();
        s.kv_set(6, "p/b", vec![], 0, &KvOp::Set).unwrap();
        s.kv_delete(9, "p/b", None);
        assert_eq!(s.kv_list("p/").0, 9);
        assert_eq!(s.kv_reap_tombstones(9), 1);
        assert!(s.data.tombstones.is_empty());
        assert_eq!(
            s.kv_list("p/").0,
            9,
            "the floor keeps the index from going back to 5"
        );
        assert_eq!(s.kv_oldest_tombstone(), None);
    }

    #[test]
    fn lock_requires_valid_session_and_excludes_others() {
        let mut s = test_store();
        let err = s
            .kv_set(2, "l", vec![], 0, &KvOp::Lock("nope".into()))
            .unwrap_err();
        assert_eq!(err, StoreError::InvalidSession("nope".into()));
        for id in ["s1", "s2"] {
            s.data.sessions.insert(
                id.into(),
                crate::types::Session {
                    id: id.into(),
                    ..Default::default()
                },
            );
        }
        assert!(s
            .kv_set(3, "l", b"x".to_vec(), 0, &KvOp::Lock("s1".into()))
            .unwrap());
        assert!(!s
            .kv_set(4, "l", b"y".to_vec(), 0, &KvOp::Lock("s2".into()))
            .unwrap());
        assert!(s
            .kv_set(5, "l", b"z".to_vec(), 0, &KvOp::Lock("s1".into()))
            .unwrap());
        let e = s.kv_get("l").1.unwrap();
        assert_eq!((e.lock_index, e.session.as_deref()), (1, Some("s1")));
        assert!(!s
            .kv_set(6, "l", vec![], 0, &KvOp::Unlock("s2".into()))
            .unwrap());
        assert!(s
            .kv_set(7, "l", vec![], 0, &KvOp::Unlock("s1".into()))
            .unwrap());
        assert!(s
            .kv_set(8, "l", vec![], 0, &KvOp::Lock("s2".into()))
            .unwrap());
        assert_eq!(s.kv_get("l").1.unwrap().lock_index, 2);
    }
}
