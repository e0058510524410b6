//! A linearizability checker for a KV register (Wing & Gong search with Lowe's memoization,
//! as in Knossos and Porcupine), partitioned per key.
//!
//! The model is Consul's KV entry as seen through the API: a value plus the ModifyIndex of
//! the write that produced it. Writes report their new ModifyIndex (they go through
//! `/v1/txn`), reads report `(value, ModifyIndex)` (`?consistent`), and check-and-set
//! succeeds exactly when the entry's index equals the expected one. Operations that timed
//! out or failed ambiguously are *indeterminate*: they may have taken effect at any point
//! after their invocation, or never.

use std::collections::{BTreeMap, HashSet};

/// What a client asked for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Call {
    /// Read the key.
    Get,
    /// Unconditional write of a (unique) value.
    Put(String),
    /// Write only if the ModifyIndex equals the given one.
    Cas(u64, String),
}

/// What came back.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Ret {
    /// A read: the value (None when absent) and its ModifyIndex (0 when absent).
    Read(Option<String>, u64),
    /// A write took effect at this ModifyIndex.
    Written(u64),
    /// A check-and-set was refused.
    CasFailed,
    /// No answer (timeout, connection error, 5xx): effect unknown.
    Unknown,
}

/// One completed (or abandoned) operation.
#[derive(Debug, Clone)]
pub struct Op {
    pub key: String,
    pub call: Call,
    pub ret: Ret,
    /// Invocation time (any monotonic unit).
    pub start: u128,
    /// Completion time; ignored for `Ret::Unknown` (treated as never returning).
    pub end: u128,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Index {
    Known(u64),
    /// Written by an indeterminate op: some index above this one.
    Above(u64),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct State {
    value: Option<String>,
    index: Index,
    /// Unread indeterminate writes taken to have applied so far (see [`Bumps`]): how many
    /// of the unconditional ones (always the earliest invoked), and which conditional ones.
    puts_used: usize,
    cas_used: Vec<usize>,
}

/// A value no read can return: what an indeterminate write that nobody read left behind.
const UNSEEN: &str = "\u{0}unseen";

/// Indeterminate writes whose value no read returned. Such a write may still have taken
/// effect, unseen, before a later write overwrote it; its only trace is then the entry's
/// index having moved, which is what makes a check-and-set fail. The search applies one
/// only when a failed check-and-set needs it (applied earlier, it could only make more
/// check-and-sets fail), which keeps it from branching on every timeout.
#[derive(Debug, Default)]
struct Bumps {
    /// Invocation times of unconditional ones, ascending.
    puts: Vec<u128>,
    /// Invocation time and expected index of conditional ones.
    cas: Vec<(u128, u64)>,
}

fn floor(i: Index) -> u64 {
    match i {
        Index::Known(k) => k,
        Index::Above(k) => k,
    }
}

/// Possible states after applying `op` to `s` (empty: `op` cannot happen here).
fn step(s: &State, op: &Op, bumps: &Bumps) -> Vec<State> {
    let unknown = op.ret == Ret::Unknown;
    let mut out = Vec::new();
    match (&op.call, &op.ret) {
        (Call::Get, Ret::Read(v, i)) => {
            let ok_val = &s.value == v;
            let ok_idx = match s.index {
                Index::Known(k) => k == *i,
                Index::Above(k) => *i > k,
            };
            if ok_val && ok_idx {
                out.push(State {
                    value: v.clone(),
                    index: Index::Known(*i),
                    ..s.clone()
                });
            }
        }
        (Call::Get, _) => out.push(s.clone()),
        (Call::Put(v), Ret::Written(j)) if *j > floor(s.index) => {
            out.push(State {
                value: Some(v.clone()),
                index: Index::Known(*j),
                ..s.clone()
            });
        }
        (Call::Put(v), _) if unknown => {
            out.push(s.clone());
            out.push(State {
                value: Some(v.clone()),
                index: Index::Above(floor(s.index)),
                ..s.clone()
            });
        }
        (Call::Cas(expect, v), Ret::Written(j)) => {
            let matches = match s.index {
                Index::Known(k) => k == *expect,
                Index::Above(k) => *expect > k,
            };
            if matches && *j > *expect {
                out.push(State {
                    value: Some(v.clone()),
                    index: Index::Known(*j),
                    ..s.clone()
                });
            }
        }
        (Call::Cas(expect, _), Ret::CasFailed) => {
            let could_differ = match s.index {
                Index::Known(k) => k != *expect,
                Index::Above(_) => true,
            };
            if could_differ {
                out.push(s.clone());
            } else {
                // The index matches: the check-and-set failed only if an unread
                // indeterminate write, invoked before it returned, moved the index first.
                let unseen = |s: &State| State {
                    value: Some(UNSEEN.to_string()),
                    index: Index::Above(floor(s.index)),
                    ..s.clone()
                };
                if bumps.puts.get(s.puts_used).is_some_and(|t| *t < op.end) {
                    let mut n = unseen(s);
                    n.puts_used += 1;
                    out.push(n);
                }
                let current = floor(s.index);
                if let Some(b) = (0..bumps.cas.len()).find(|b| {
                    let (t, e) = bumps.cas[*b];
                    t < op.end && e == current && !s.cas_used.contains(b)
                }) {
                    let mut n = unseen(s);
                    n.cas_used.push(b);
                    n.cas_used.sort_unstable();
                    out.push(n);
                }
            }
        }
        (Call::Cas(expect, v), _) if unknown => {
            out.push(s.clone());
            let matches = match s.index {
                Index::Known(k) => k == *expect,
                Index::Above(k) => *expect > k,
            };
            if matches {
                out.push(State {
                    value: Some(v.clone()),
                    index: Index::Above(*expect),
                    ..s.clone()
                });
            }
        }
        _ => {}
    }
    out
}

/// The result of checking one key's history.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyResult {
    pub key: String,
    pub ops: usize,
    pub linearizable: bool,
}

/// Check every key's history; each key is independent (P-compositionality).
pub fn check(history: &[Op]) -> Vec<KeyResult> {
    let mut by_key: BTreeMap<&str, Vec<Op>> = BTreeMap::new();
    for op in history {
        by_key.entry(op.key.as_str()).or_default().push(op.clone());
    }
    by_key
        .into_iter()
        .map(|(k, ops)| {
            let (ops, bumps) = resolve_indeterminate(ops);
            let refs: Vec<&Op> = ops.iter().collect();
            KeyResult {
                key: k.to_string(),
                ops: ops.len(),
                linearizable: check_key(&refs, &bumps),
            }
        })
        .collect()
}

/// Written values are unique, so an indeterminate write whose value some read returned
/// did take effect, at the index that read saw, before that read returned: it becomes a
/// determinate write. One whose value no read returned leaves the history and becomes one
/// of the [`Bumps`]: it may have applied unseen, or never.
fn resolve_indeterminate(ops: Vec<Op>) -> (Vec<Op>, Bumps) {
    let mut seen: BTreeMap<String, (u64, u128)> = BTreeMap::new();
    for o in &ops {
        if let (Call::Get, Ret::Read(Some(v), i)) = (&o.call, &o.ret) {
            let e = seen.entry(v.clone()).or_insert((*i, o.end));
            e.1 = e.1.min(o.end);
        }
    }
    let mut bumps = Bumps::default();
    let ops = ops
        .into_iter()
        .filter_map(|mut o| {
            if o.ret != Ret::Unknown {
                return Some(o);
            }
            let value = match &o.call {
                Call::Put(v) | Call::Cas(_, v) => v,
                Call::Get => return None,
            };
            let Some((idx, end)) = seen.get(value).copied() else {
                match o.call {
                    Call::Cas(e, _) => bumps.cas.push((o.start, e)),
                    _ => bumps.puts.push(o.start),
                }
                return None;
            };
            o.ret = Ret::Written(idx);
            o.end = end.max(o.start);
            Some(o)
        })
        .collect();
    bumps.puts.sort_unstable();
    (ops, bumps)
}

fn check_key(ops: &[&Op], bumps: &Bumps) -> bool {
    let n = ops.len();
    let words = n.div_ceil(64).max(1);
    let end = |o: &Op| {
        if o.ret == Ret::Unknown {
            u128::MAX
        } else {
            o.end
        }
    };
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|i| ops[*i].start);
    let init = State {
        value: None,
        index: Index::Known(0),
        puts_used: 0,
        cas_used: Vec::new(),
    };
    let mut seen: HashSet<(Vec<u64>, State)> = HashSet::new();
    // Iterative DFS: (linearized set, state).
    let mut stack: Vec<(Vec<u64>, State)> = vec![(vec![0u64; words], init)];
    while let Some((done, state)) = stack.pop() {
        let is_done = |i: usize| done[i / 64] & (1 << (i % 64)) != 0;
        if (0..n).all(is_done) {
            return true;
        }
        // An op may go next only if it was invoked before every pending op returned.
        let min_end = order
            .iter()
            .filter(|i| !is_done(**i))
            .map(|i| end(ops[*i]))
            .min()
            .unwrap_or(u128::MAX);
        for &i in &order {
            if is_done(i) {
                continue;
            }
            if ops[i].start > min_end {
                break;
            }
            for next in step(&state, ops[i], bumps) {
                let mut d = done.clone();
                d[i / 64] |= 1 << (i % 64);
                if seen.insert((d.clone(), next.clone())) {
                    stack.push((d, next));
                }
            }
        }
    }
    false
}

/// One operation per line (`start end call ret`, the call and result as `Debug` prints
/// them), for keeping a failing history and checking it again with [`parse_history`].
pub fn format_history(ops: &[&Op]) -> String {
    ops.iter()
        .map(|o| format!("{} {} {} {:?} {:?}\n", o.key, o.start, o.end, o.call, o.ret))
        .collect()
}

/// The operations of a [`format_history`] text; None at the first line it cannot read.
pub fn parse_history(text: &str) -> Option<Vec<Op>> {
    fn quoted(s: &str) -> Option<String> {
        Some(s.trim().strip_prefix('"')?.strip_suffix('"')?.to_string())
    }
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let mut it = line.splitn(4, ' ');
            let key = it.next()?.to_string();
            let start = it.next()?.parse().ok()?;
            let end = it.next()?.parse().ok()?;
            let rest = it.next()?;
            // The call ends at its closing parenthesis (or is `Get`).
            let (call, ret) = if let Some(r) = rest.strip_prefix("Get ") {
                (Call::Get, r)
            } else {
                let close = rest.find(") ")?;
                let (c, r) = (&rest[..=close], &rest[close + 2..]);
                let args = c.split_once('(')?.1.strip_suffix(')')?;
                if c.starts_with("Put(") {
                    (Call::Put(quoted(args)?), r)
                } else {
                    let (i, v) = args.split_once(", ")?;
                    (Call::Cas(i.parse().ok()?, quoted(v)?), r)
                }
            };
            let ret = match ret.trim() {
                "CasFailed" => Ret::CasFailed,
                "Unknown" => Ret::Unknown,
                r if r.starts_with("Written(") => Ret::Written(
                    r.strip_prefix("Written(")?
                        .strip_suffix(')')?
                        .parse()
                        .ok()?,
                ),
                r => {
                    let args = r.strip_prefix("Read(")?.strip_suffix(')')?;
                    let (v, i) = args.rsplit_once(", ")?;
                    let v = match v {
                        "None" => None,
                        v => Some(quoted(v.strip_prefix("Some(")?.strip_suffix(')')?)?),
                    };
                    Ret::Read(v, i.parse().ok()?)
                }
            };
            Some(Op {
                key,
                call,
                ret,
                start,
                end,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(call: Call, ret: Ret, start: u128, end: u128) -> Op {
        Op {
            key: "k".into(),
            call,
            ret,
            start,
            end,
        }
    }

    #[test]
    fn sequential_history_is_linearizable() {
        let h = vec![
            op(Call::Get, Ret::Read(None, 0), 0, 1),
            op(Call::Put("a".into()), Ret::Written(5), 2, 3),
            op(Call::Get, Ret::Read(Some("a".into()), 5), 4, 5),
            op(Call::Cas(5, "b".into()), Ret::Written(7), 6, 7),
            op(Call::Cas(5, "c".into()), Ret::CasFailed, 8, 9),
            op(Call::Get, Ret::Read(Some("b".into()), 7), 10, 11),
        ];
        assert!(check(&h)[0].linearizable);
    }

    #[test]
    fn stale_read_is_caught() {
        let h = vec![
            op(Call::Put("a".into()), Ret::Written(5), 0, 1),
            op(Call::Put("b".into()), Ret::Written(6), 2, 3),
            op(Call::Get, Ret::Read(Some("a".into()), 5), 4, 5),
        ];
        assert!(!check(&h)[0].linearizable);
    }

    #[test]
    fn concurrent_ops_may_reorder() {
        let h = vec![
            op(Call::Put("a".into()), Ret::Written(5), 0, 10),
            op(Call::Get, Ret::Read(None, 0), 1, 2),
            op(Call::Get, Ret::Read(Some("a".into()), 5), 3, 4),
        ];
        assert!(check(&h)[0].linearizable);
        let bad = vec![
            op(Call::Put("a".into()), Ret::Written(5), 0, 10),
            op(Call::Get, Ret::Read(Some("a".into()), 5), 1, 2),
            op(Call::Get, Ret::Read(None, 0), 3, 4),
        ];
        assert!(
            !check(&bad)[0].linearizable,
            "a read may not go back in time"
        );
    }

    #[test]
    fn lost_acknowledged_write_is_caught() {
        let h = vec![
            op(Call::Put("a".into()), Ret::Written(5), 0, 1),
            op(Call::Get, Ret::Read(None, 0), 2, 3),
        ];
        assert!(!check(&h)[0].linearizable);
    }

    #[test]
    fn indeterminate_writes_may_or_may_not_apply() {
        let applied = vec![
            op(Call::Put("x".into()), Ret::Unknown, 0, 0),
            op(Call::Get, Ret::Read(Some("x".into()), 9), 5, 6),
        ];
        assert!(check(&applied)[0].linearizable);
        let not_applied = vec![
            op(Call::Put("x".into()), Ret::Unknown, 0, 0),
            op(Call::Get, Ret::Read(None, 0), 5, 6),
        ];
        assert!(check(&not_applied)[0].linearizable);
        let phantom = vec![op(
            Call::Get,
            Ret::Read(Some("never-written".into()), 3),
            0,
            1,
        )];
        assert!(!check(&phantom)[0].linearizable);
    }

    #[test]
    fn cas_semantics_are_enforced() {
        let h = vec![
            op(Call::Put("a".into()), Ret::Written(5), 0, 1),
            op(Call::Cas(4, "b".into()), Ret::Written(6), 2, 3),
        ];
        assert!(
            !check(&h)[0].linearizable,
            "cas with a wrong index cannot succeed"
        );
        let h = vec![
            op(Call::Put("a".into()), Ret::Written(5), 0, 1),
            op(Call::Cas(5, "b".into()), Ret::CasFailed, 2, 3),
        ];
        assert!(
            !check(&h)[0].linearizable,
            "cas with the right index cannot fail"
        );
    }

    #[test]
    fn unread_indeterminate_writes_can_explain_a_failed_cas() {
        // "x" timed out and nobody read it, but it applied: the check-and-set against
        // index 5 then fails, and "c" is written on top.
        let h = vec![
            op(Call::Put("a".into()), Ret::Written(5), 0, 1),
            op(Call::Put("x".into()), Ret::Unknown, 2, 0),
            op(Call::Cas(5, "b".into()), Ret::CasFailed, 3, 4),
            op(Call::Put("c".into()), Ret::Written(9), 5, 6),
            op(Call::Get, Ret::Read(Some("c".into()), 9), 7, 8),
        ];
        assert!(check(&h)[0].linearizable);
        // Invoked only after the check-and-set returned, it cannot explain the failure.
        let late = vec![
            op(Call::Put("a".into()), Ret::Written(5), 0, 1),
            op(Call::Cas(5, "b".into()), Ret::CasFailed, 3, 4),
            op(Call::Put("x".into()), Ret::Unknown, 5, 0),
        ];
        assert!(!check(&late)[0].linearizable);
        // Nor if the old value is read again after the failure.
        let reread = vec![
            op(Call::Put("a".into()), Ret::Written(5), 0, 1),
            op(Call::Put("x".into()), Ret::Unknown, 2, 0),
            op(Call::Cas(5, "b".into()), Ret::CasFailed, 3, 4),
            op(Call::Get, Ret::Read(Some("a".into()), 5), 5, 6),
        ];
        assert!(!check(&reread)[0].linearizable);
        // An indeterminate check-and-set applies only where its expected index matches.
        let cas = |expect| {
            vec![
                op(Call::Put("a".into()), Ret::Written(5), 0, 1),
                op(Call::Cas(expect, "x".into()), Ret::Unknown, 2, 0),
                op(Call::Cas(5, "b".into()), Ret::CasFailed, 3, 4),
            ]
        };
        assert!(check(&cas(5))[0].linearizable);
        assert!(!check(&cas(4))[0].linearizable);
    }

    #[test]
    fn histories_survive_formatting() {
        let h = [
            op(Call::Get, Ret::Read(None, 0), 0, 1),
            op(Call::Put("a, b".into()), Ret::Written(5), 2, 3),
            op(Call::Get, Ret::Read(Some("a, b".into()), 5), 4, 5),
            op(Call::Cas(5, "c".into()), Ret::CasFailed, 6, 7),
            op(Call::Cas(5, "d".into()), Ret::Unknown, 8, 0),
        ];
        let refs: Vec<&Op> = h.iter().collect();
        let back = parse_history(&format_history(&refs)).unwrap();
        assert_eq!(
            format_history(&back.iter().collect::<Vec<_>>()),
            format_history(&refs)
        );
        assert!(parse_history("k 1 2 Frob Unknown").is_none());
    }
}
