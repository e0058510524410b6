//! The task that drives foca: one UDP socket (packets tagged `0` for SWIM and `1` for our
//! control messages), a timer queue delivering foca's timers in order, and commands from
//! the `Gossip` handle. Membership notifications update the shared member table.

use super::{Cmd, GossipConfig, Member, MemberId, MemberStatus, Members};
use foca::{AccumulatingRuntime, Config, Foca, OwnedNotification, PostcardCodec, Timer};
use foca_rand::SeedableRng;
use serde::{Deserialize, Serialize};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::Instant;

const TAG_SWIM: u8 = 0;
const TAG_CONTROL: u8 = 1;
/// How long a join waits for the contacted members to answer.
const JOIN_WAIT: Duration = Duration::from_secs(5);
/// How often a member measures a round trip for its coordinate.
const PING_INTERVAL: Duration = Duration::from_millis(500);

/// A keyring operation sent to every member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyOp {
    Install,
    Use,
    Remove,
}

#[derive(Serialize, Deserialize)]
enum Control {
    /// The sender is leaving gracefully.
    Leave { name: String, bump: u64 },
    /// An operator forced a failed member out.
    ForceLeave { name: String, prune: bool },
    /// A user event (`consul event`), opaque here.
    User { data: Vec<u8> },
    /// Apply a keyring operation.
    Key { op: KeyOp, key: String },
    /// Which keys do you have? Answer to `reply_to`.
    KeyQuery { id: u64, reply_to: SocketAddr },
    /// My keys, primary first.
    KeyReply {
        id: u64,
        name: String,
        keys: Vec<String>,
    },
    /// A round-trip probe for network coordinates; answer to `reply_to`.
    Ping { id: u64, reply_to: SocketAddr },
    /// The answer, with the responder's coordinate.
    Pong {
        id: u64,
        name: String,
        coord: super::vivaldi::Coordinate,
    },
}

type KeyAnswers = Vec<(String, Vec<String>)>;

type Swim = Foca<MemberId, PostcardCodec, foca_rand::rngs::StdRng, foca::NoCustomBroadcast>;

struct State {
    foca: Swim,
    rt: AccumulatingRuntime<MemberId>,
    socket: UdpSocket,
    members: Members,
    events: broadcast::Sender<Member>,
    user: broadcast::Sender<Vec<u8>>,
    timers: BinaryHeap<Reverse<(Instant, u64)>>,
    timer_items: HashMap<u64, Timer<MemberId>>,
    seq: u64,
    /// Latest identity bump seen per member name.
    bumps: HashMap<String, u64>,
    joins: Vec<(Vec<SocketAddr>, Instant, oneshot::Sender<usize>)>,
    snapshot: Option<std::path::PathBuf>,
    keyring: Option<super::keyring::Keyring>,
    key_queries: HashMap<u64, (Instant, KeyAnswers, oneshot::Sender<KeyAnswers>)>,
    vivaldi: super::vivaldi::Client,
    coords: super::Coords,
    pings: HashMap<u64, (Instant, SocketAddr)>,
    next_ping: Instant,
}

/// What the task shares with the `Gossip` handle.
pub(super) struct Shared {
    pub coords: super::Coords,
    pub members: Members,
    pub events: broadcast::Sender<Member>,
    pub user: broadcast::Sender<Vec<u8>>,
    pub rx: mpsc::Receiver<Cmd>,
    pub snapshot: Option<std::path::PathBuf>,
}

pub(super) fn spawn(socket: UdpSocket, id: MemberId, cfg: GossipConfig, shared: Shared) {
    let Shared {
        coords,
        members,
        events,
        user,
        rx,
        snapshot,
    } = shared;
    let mut config = Config::new_lan(NonZeroU32::new(16).unwrap_or(NonZeroU32::MIN));
    config.probe_period = cfg.probe_period;
    config.probe_rtt = cfg.probe_rtt;
    config.suspect_to_down_after = cfg.suspect_to_down;
    // Consul's reconnect_timeout: failed members are remembered (and retried) for 72 h.
    config.remove_down_after = Some(Duration::from_secs(72 * 3600));
    let keyring = cfg.keyring.clone();
    let rng = foca_rand::rngs::StdRng::seed_from_u64(rand::random());
    let foca = Foca::new(id, config, rng, PostcardCodec);
    let state = State {
        foca,
        rt: AccumulatingRuntime::new(),
        socket,
        members,
        events,
        user,
        timers: BinaryHeap::new(),
        timer_items: HashMap::new(),
        seq: 0,
        bumps: HashMap::new(),
        joins: Vec::new(),
        snapshot,
        keyring,
        key_queries: HashMap::new(),
        vivaldi: super::vivaldi::Client::new(),
        coords,
        pings: HashMap::new(),
        next_ping: Instant::now() + Duration::from_millis(500),
    };
    tokio::spawn(run(state, rx));
}

async fn run(mut st: State, mut rx: mpsc::Receiver<Cmd>) {
    let mut buf = vec![0u8; 65536];
    loop {
        let next_timer = st.timers.peek().map(|Reverse((t, _))| *t);
        let next_join = st
            .joins
            .iter()
            .map(|(_, d, _)| *d)
            .chain(st.key_queries.values().map(|(d, ..)| *d))
            .chain(std::iter::once(st.next_ping))
            .min();
        let wake = match (next_timer, next_join) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => Instant::now() + Duration::from_secs(3600),
        };
        tokio::select! {
            r = st.socket.recv_from(&mut buf) => {
                if let Ok((n, _from)) = r {
                    let opened = match &st.keyring {
                        Some(k) => k.open(&buf[..n]),
                        None => Some(buf[..n].to_vec()),
                    };
                    match opened {
                        Some(data) => st.packet(&data).await,
                        None => tracing::debug!("dropped a gossip packet that does not open with our keys"),
                    }
                }
            }
            cmd = rx.recv() => match cmd {
                // Every handle dropped: stop silently (others will see us fail).
                None => return,
                Some(Cmd::Join(addrs, tx)) => {
                    for a in &addrs {
                        let seed = MemberId { addr: *a, bump: 0, name: String::new(), tags: BTreeMap::new() };
                        if let Err(e) = st.foca.announce(seed, &mut st.rt) {
                            tracing::debug!(error = %e, "announce failed");
                        }
                    }
                    st.joins.push((addrs, Instant::now() + JOIN_WAIT, tx));
                }
                Some(Cmd::User(data)) => {
                    st.send_control(&Control::User { data }).await;
                }
                Some(Cmd::KeyOp(op, key)) => {
                    st.apply_key_op(op, &key);
                    st.send_control(&Control::Key { op, key }).await;
                }
                Some(Cmd::KeyList(tx)) => {
                    let id: u64 = rand::random();
                    let me = st.foca.identity().clone();
                    let mine = st.keyring.as_ref().map(|k| k.list()).unwrap_or_default();
                    st.key_queries.insert(id, (Instant::now() + Duration::from_secs(1), vec![(me.name.clone(), mine)], tx));
                    st.send_control(&Control::KeyQuery { id, reply_to: me.addr }).await;
                }
                Some(Cmd::Leave(tx)) => {
                    st.leave().await;
                    let _ = tx.send(());
                    return;
                }
                Some(Cmd::ForceLeave(name, prune, tx)) => {
                    let known = st.force_leave(&name, prune);
                    if known {
                        st.send_control(&Control::ForceLeave { name, prune }).await;
                    }
                    let _ = tx.send(known);
                }
            },
            _ = tokio::time::sleep_until(wake) => {
                let now = Instant::now();
                while let Some(Reverse((t, seq))) = st.timers.peek().copied() {
                    if t > now {
                        break;
                    }
                    st.timers.pop();
                    if let Some(timer) = st.timer_items.remove(&seq) {
                        if let Err(e) = st.foca.handle_timer(timer, &mut st.rt) {
                            tracing::debug!(error = %e, "gossip timer");
                        }
                    }
                }
                                st.finish_joins(false);
                st.finish_key_queries(false);
                if Instant::now() >= st.next_ping {
                    st.ping().await;
                }
            }
        }
        st.drain().await;
    }
}

impl State {
    /// Seal a packet for the wire when encryption is on.
    fn wire(&self, pkt: Vec<u8>) -> Option<Vec<u8>> {
        match &self.keyring {
            Some(k) => k.seal(&pkt),
            None => Some(pkt),
        }
    }

    fn apply_key_op(&self, op: KeyOp, key: &str) {
        let Some(k) = &self.keyring else {
            tracing::warn!("keyring operation ignored: gossip encryption is not enabled");
            return;
        };
        let r = match op {
            KeyOp::Install => k.install(key),
            KeyOp::Use => k.use_key(key),
            KeyOp::Remove => k.remove(key),
        };
        if let Err(e) = r {
            tracing::warn!(error = %e, ?op, "keyring operation failed");
        }
    }

    fn finish_key_queries(&mut self, _force: bool) {
        let now = Instant::now();
        let alive = self
            .members
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|m| m.status == MemberStatus::Alive)
            .count();
        let done: Vec<u64> = self
            .key_queries
            .iter()
            .filter(|(_, (d, answers, _))| *d <= now || answers.len() >= alive)
            .map(|(id, _)| *id)
            .collect();
        for id in done {
            if let Some((_, answers, tx)) = self.key_queries.remove(&id) {
                let _ = tx.send(answers);
            }
        }
    }

    /// Probe one random alive member for network coordinates.
    async fn ping(&mut self) {
        self.next_ping = Instant::now() + PING_INTERVAL;
        let now = Instant::now();
        self.pings
            .retain(|_, (t, _)| now.duration_since(*t) < Duration::from_secs(5));
        let me = self.foca.identity().clone();
        let targets: Vec<SocketAddr> = self
            .members
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|m| m.status == MemberStatus::Alive && m.name != me.name)
            .map(|m| m.addr)
            .collect();
        if targets.is_empty() {
            return;
        }
        let to = targets[rand::random::<usize>() % targets.len()];
        let id: u64 = rand::random();
        self.pings.insert(id, (now, to));
        self.send_one(
            &Control::Ping {
                id,
                reply_to: me.addr,
            },
            to,
        )
        .await;
    }

    async fn send_one(&self, c: &Control, to: SocketAddr) {
        let Ok(body) = serde_json::to_vec(c) else {
            return;
        };
        let mut pkt = vec![TAG_CONTROL];
        pkt.extend(body);
        if let Some(p) = self.wire(pkt) {
            let _ = self.socket.send_to(&p, to).await;
        }
    }

    async fn packet(&mut self, data: &[u8]) {
        match data.split_first() {
            Some((&TAG_SWIM, rest)) => {
                if let Err(e) = self.foca.handle_data(rest, &mut self.rt) {
                    tracing::trace!(error = %e, "bad gossip packet");
                }
            }
            Some((&TAG_CONTROL, rest)) => match serde_json::from_slice::<Control>(rest) {
                Ok(Control::Leave { name, bump }) => {
                    let known_bump = self.bumps.get(&name).copied().unwrap_or(0);
                    if bump >= known_bump {
                        self.set_status(&name, MemberStatus::Left);
                    }
                }
                Ok(Control::ForceLeave { name, prune }) => {
                    self.force_leave(&name, prune);
                }
                Ok(Control::User { data }) => {
                    let _ = self.user.send(data);
                }
                Ok(Control::Key { op, key }) => self.apply_key_op(op, &key),
                Ok(Control::Ping { id, reply_to }) => {
                    let pong = Control::Pong {
                        id,
                        name: self.foca.identity().name.clone(),
                        coord: self.vivaldi.coord.clone(),
                    };
                    self.send_one(&pong, reply_to).await;
                }
                Ok(Control::Pong { id, name, coord }) => {
                    if let Some((sent, _)) = self.pings.remove(&id) {
                        self.vivaldi.update(&name, &coord, sent.elapsed());
                        let mut c = self.coords.write().unwrap_or_else(|e| e.into_inner());
                        c.0 = self.vivaldi.coord.clone();
                        c.1.insert(name, coord);
                    }
                }
                Ok(Control::KeyQuery { id, reply_to }) => {
                    let reply = Control::KeyReply {
                        id,
                        name: self.foca.identity().name.clone(),
                        keys: self.keyring.as_ref().map(|k| k.list()).unwrap_or_default(),
                    };
                    if let Ok(body) = serde_json::to_vec(&reply) {
                        let mut pkt = vec![TAG_CONTROL];
                        pkt.extend(body);
                        if let Some(p) = self.wire(pkt) {
                            let _ = self.socket.send_to(&p, reply_to).await;
                        }
                    }
                }
                Ok(Control::KeyReply { id, name, keys }) => {
                    if let Some((_, answers, _)) = self.key_queries.get_mut(&id) {
                        if !answers.iter().any(|(n, _)| n == &name) {
                            answers.push((name, keys));
                        }
                    }
                    self.finish_key_queries(false);
                }
                Err(e) => tracing::trace!(error = %e, "bad control packet"),
            },
            _ => {}
        }
    }

    fn set_status(&mut self, name: &str, status: MemberStatus) {
        let changed = {
            let mut m = self.members.write().unwrap_or_else(|e| e.into_inner());
            match m.get_mut(name) {
                Some(mem) if mem.status != status => {
                    mem.status = status;
                    Some(mem.clone())
                }
                _ => None,
            }
        };
        if let Some(mem) = changed {
            let metric = match mem.status {
                MemberStatus::Failed => "consul.serf.member.failed",
                MemberStatus::Left => "consul.serf.member.left",
                _ => "consul.serf.member.update",
            };
            crate::metrics::incr(metric, 1);
            tracing::info!(member = %mem.name, status = mem.status.as_str(), "member status changed");
            let _ = self.events.send(mem);
        }
    }

    fn force_leave(&mut self, name: &str, prune: bool) -> bool {
        let status = self
            .members
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .map(|m| m.status);
        match status {
            None => false,
            Some(MemberStatus::Alive) if name != self.foca.identity().name => {
                // Serf ignores force-leave for a live member (it would just rejoin).
                true
            }
            Some(_) => {
                self.set_status(name, MemberStatus::Left);
                if prune {
                    self.members
                        .write()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(name);
                }
                true
            }
        }
    }

    async fn send_control(&mut self, c: &Control) {
        let Ok(body) = serde_json::to_vec(c) else {
            return;
        };
        let mut pkt = vec![TAG_CONTROL];
        pkt.extend(body);
        let me = self.foca.identity().name.clone();
        let targets: Vec<SocketAddr> = self
            .members
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|m| m.status == MemberStatus::Alive && m.name != me)
            .map(|m| m.addr)
            .collect();
        let Some(pkt) = self.wire(pkt) else { return };
        // Control messages are small and idempotent: send each a few times over UDP.
        for _ in 0..3 {
            for t in &targets {
                let _ = self.socket.send_to(&pkt, t).await;
            }
        }
    }

    async fn leave(&mut self) {
        let me = self.foca.identity().clone();
        self.set_status(&me.name, MemberStatus::Leaving);
        self.send_control(&Control::Leave {
            name: me.name.clone(),
            bump: me.bump,
        })
        .await;
        if let Err(e) = self.foca.leave_cluster(&mut self.rt) {
            tracing::debug!(error = %e, "leave_cluster");
        }
        self.drain().await;
        self.set_status(&me.name, MemberStatus::Left);
    }

    fn finish_joins(&mut self, _force: bool) {
        let now = Instant::now();
        let members = self
            .members
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut still = Vec::new();
        for (addrs, deadline, tx) in self.joins.drain(..) {
            let reached = addrs
                .iter()
                .filter(|a| {
                    members
                        .values()
                        .any(|m| m.addr == **a && m.status == MemberStatus::Alive)
                })
                .count();
            if reached == addrs.len() || now >= deadline {
                let _ = tx.send(reached);
            } else {
                still.push((addrs, deadline, tx));
            }
        }
        self.joins = still;
    }

    async fn drain(&mut self) {
        while let Some((dst, data)) = self.rt.to_send() {
            let mut pkt = Vec::with_capacity(data.len() + 1);
            pkt.push(TAG_SWIM);
            pkt.extend_from_slice(&data);
            let Some(pkt) = self.wire(pkt) else { continue };
            if let Err(e) = self.socket.send_to(&pkt, dst.addr).await {
                tracing::trace!(error = %e, to = %dst.addr, "gossip send");
            }
        }
        let now = Instant::now();
        while let Some((delay, timer)) = self.rt.to_schedule() {
            self.seq += 1;
            self.timers.push(Reverse((now + delay, self.seq)));
            self.timer_items.insert(self.seq, timer);
        }
        let mut changed = false;
        while let Some(n) = self.rt.to_notify() {
            match n {
                OwnedNotification::MemberUp(id) => {
                    changed = true;
                    self.member_up(id)
                }
                OwnedNotification::MemberDown(id) => {
                    changed = true;
                    self.member_down(id)
                }
                OwnedNotification::Rename(_, new) => {
                    changed = true;
                    self.member_up(new)
                }
                OwnedNotification::Rejoin(id) => {
                    tracing::info!(
                        bump = id.bump,
                        "rejoined the cluster with a renewed identity"
                    )
                }
                _ => {}
            }
        }
        if changed {
            self.finish_joins(false);
            self.write_snapshot();
        }
    }

    /// Remember the alive members' addresses (best effort).
    fn write_snapshot(&self) {
        let Some(path) = &self.snapshot else { return };
        let me = self.foca.identity().addr;
        let addrs: Vec<SocketAddr> = self
            .members
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|m| m.status == MemberStatus::Alive && m.addr != me)
            .map(|m| m.addr)
            .collect();
        if let Ok(bytes) = serde_json::to_vec(&addrs) {
            let tmp = path.with_extension("tmp");
            if let Some(dir) = path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            if std::fs::write(&tmp, bytes)
                .and_then(|_| std::fs::rename(&tmp, path))
                .is_err()
            {
                tracing::debug!(path = %path.display(), "writing the serf snapshot failed");
            }
        }
    }

    fn member_up(&mut self, id: MemberId) {
        // Our own name is ours alone (an older identity of ours may still be gossiped), and
        // an older identity of another member never replaces a newer one.
        if id.name.is_empty()
            || id.name == self.foca.identity().name
            || self.bumps.get(&id.name).copied().unwrap_or(0) > id.bump
        {
            return;
        }
        self.bumps.insert(id.name.clone(), id.bump);
        let mem = Member {
            name: id.name.clone(),
            addr: id.addr,
            tags: id.tags.clone(),
            status: MemberStatus::Alive,
        };
        let changed = {
            let mut m = self.members.write().unwrap_or_else(|e| e.into_inner());
            let changed = m.get(&id.name) != Some(&mem);
            m.insert(id.name.clone(), mem.clone());
            changed
        };
        if changed {
            crate::metrics::incr("consul.serf.member.join", 1);
            tracing::info!(member = %mem.name, addr = %mem.addr, "member joined");
            let _ = self.events.send(mem);
        }
    }

    fn member_down(&mut self, id: MemberId) {
        if id.name == self.foca.identity().name {
            return;
        }
        let current = self
            .members
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id.name)
            .cloned();
        let Some(cur) = current else { return };
        // An old identity of a member that has since come back at another address.
        if cur.addr != id.addr || self.bumps.get(&id.name).copied().unwrap_or(0) > id.bump {
            return;
        }
        if cur.status == MemberStatus::Left || cur.status == MemberStatus::Leaving {
            self.set_status(&id.name, MemberStatus::Left);
        } else {
            self.set_status(&id.name, MemberStatus::Failed);
        }
    }
}
