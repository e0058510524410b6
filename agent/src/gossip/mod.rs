//! Gossip membership (Consul's serf LAN pool) on SWIM, with the `foca` crate: members with
//! their tags and status (alive, leaving, left, failed), join, graceful leave, force-leave,
//! failure detection, and a stream of membership events for the agent.
//!
//! foca does the protocol and owns no I/O; `task.rs` drives it with one UDP socket, a timer
//! queue and a command channel. Why foca: see docs/gossip.md.

pub mod keyring;
pub mod task;
pub mod vivaldi;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot};

/// A member's identity on the wire: its gossip address, a bump that makes a restarted
/// member win over its old self, its node name and tags (role, dc, RPC port, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberId {
    pub addr: SocketAddr,
    pub bump: u64,
    pub name: String,
    pub tags: BTreeMap<String, String>,
}

impl foca::Identity for MemberId {
    type Addr = SocketAddr;

    fn renew(&self) -> Option<Self> {
        Some(MemberId {
            bump: self.bump.wrapping_add(1).max(1),
            ..self.clone()
        })
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        self.bump > adversary.bump
    }
}

/// Serf's member status codes (as `/v1/agent/members` reports them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemberStatus {
    /// 1
    Alive,
    /// 2
    Leaving,
    /// 3
    Left,
    /// 4
    Failed,
}

impl MemberStatus {
    /// Serf's numeric code.
    pub fn code(&self) -> u8 {
        match self {
            MemberStatus::Alive => 1,
            MemberStatus::Leaving => 2,
            MemberStatus::Left => 3,
            MemberStatus::Failed => 4,
        }
    }

    /// Serf's word (`members` CLI).
    pub fn as_str(&self) -> &'static str {
        match self {
            MemberStatus::Alive => "alive",
            MemberStatus::Leaving => "leaving",
            MemberStatus::Left => "left",
            MemberStatus::Failed => "failed",
        }
    }
}

/// A member as the agent sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub name: String,
    pub addr: SocketAddr,
    pub tags: BTreeMap<String, String>,
    pub status: MemberStatus,
}

/// Errors from the gossip layer.
#[derive(Debug, thiserror::Error)]
pub enum GossipError {
    /// Binding the UDP socket failed.
    #[error("binding gossip socket {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    /// No join address could be reached.
    #[error("{0}")]
    Join(String),
    /// The gossip task is gone (shutting down).
    #[error("gossip layer stopped")]
    Stopped,
}

/// Timing of the SWIM protocol; `lan()` follows Consul's LAN defaults.
#[derive(Debug, Clone)]
pub struct GossipConfig {
    pub probe_period: Duration,
    pub probe_rtt: Duration,
    pub suspect_to_down: Duration,
    /// Encrypt every packet with these keys (Consul's `encrypt`).
    pub keyring: Option<keyring::Keyring>,
}

impl GossipConfig {
    /// Consul's WAN profile: slower probes for links between datacenters.
    pub fn wan() -> Self {
        GossipConfig {
            probe_period: Duration::from_secs(5),
            probe_rtt: Duration::from_secs(3),
            suspect_to_down: Duration::from_secs(30),
            keyring: None,
        }
    }

    /// Consul's LAN profile: probe every second, 500 ms probe timeout.
    pub fn lan() -> Self {
        GossipConfig {
            probe_period: Duration::from_secs(1),
            probe_rtt: Duration::from_millis(500),
            suspect_to_down: Duration::from_secs(4),
            keyring: None,
        }
    }
}

pub(crate) type Members = Arc<RwLock<BTreeMap<String, Member>>>;

/// This member's coordinate and the latest ones heard from others, by name.
pub(crate) type Coords = Arc<RwLock<(vivaldi::Coordinate, BTreeMap<String, vivaldi::Coordinate>)>>;

pub(crate) enum Cmd {
    Join(Vec<SocketAddr>, oneshot::Sender<usize>),
    User(Vec<u8>),
    /// Apply a keyring operation on every alive member (this one included).
    KeyOp(task::KeyOp, String),
    /// Ask every alive member for its keys; answers gathered for a short while.
    KeyList(oneshot::Sender<Vec<(String, Vec<String>)>>),
    Leave(oneshot::Sender<()>),
    ForceLeave(String, bool, oneshot::Sender<bool>),
}

/// Handle to the running gossip layer.
#[derive(Clone)]
pub struct Gossip {
    cmd: mpsc::Sender<Cmd>,
    members: Members,
    events: broadcast::Sender<Member>,
    user: broadcast::Sender<Vec<u8>>,
    coords: Coords,
    /// The address other members reach us on.
    pub local_addr: SocketAddr,
    name: String,
    previous: Vec<SocketAddr>,
}

impl Gossip {
    /// Bind `bind` (port 0 picks one) and start gossiping as `name` with `tags`; the
    /// advertised address uses `advertise_ip` when given.
    pub async fn start(
        bind: SocketAddr,
        advertise_ip: Option<std::net::IpAddr>,
        name: String,
        tags: BTreeMap<String, String>,
        config: GossipConfig,
    ) -> Result<Gossip, GossipError> {
        Self::start_with_snapshot(bind, advertise_ip, name, tags, config, None).await
    }

    /// As [`Gossip::start`], keeping the addresses of alive members in `snapshot` (Serf's
    /// `local.snapshot`) so that a restarted agent can rejoin them ([`Gossip::previous_peers`]).
    pub async fn start_with_snapshot(
        bind: SocketAddr,
        advertise_ip: Option<std::net::IpAddr>,
        name: String,
        tags: BTreeMap<String, String>,
        config: GossipConfig,
        snapshot: Option<std::path::PathBuf>,
    ) -> Result<Gossip, GossipError> {
        let previous: Vec<SocketAddr> = snapshot
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let socket =
            tokio::net::UdpSocket::bind(bind)
                .await
                .map_err(|source| GossipError::Bind {
                    addr: bind.to_string(),
                    source,
                })?;
        let bound = socket.local_addr().map_err(|source| GossipError::Bind {
            addr: bind.to_string(),
            source,
        })?;
        let ip = advertise_ip.unwrap_or_else(|| {
            if bound.ip().is_unspecified() {
                std::net::IpAddr::from([127, 0, 0, 1])
            } else {
                bound.ip()
            }
        });
        let local_addr = SocketAddr::new(ip, bound.port());
        let bump = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(1)
            .max(1);
        let id = MemberId {
            addr: local_addr,
            bump,
            name: name.clone(),
            tags: tags.clone(),
        };
        let members: Members = Arc::new(RwLock::new(BTreeMap::new()));
        members.write().unwrap_or_else(|e| e.into_inner()).insert(
            name.clone(),
            Member {
                name: name.clone(),
                addr: local_addr,
                tags,
                status: MemberStatus::Alive,
            },
        );
        let (events, _) = broadcast::channel(256);
        let (user, _) = broadcast::channel(256);
        let (cmd, rx) = mpsc::channel(64);
        let coords: Coords = Arc::new(RwLock::new(Default::default()));
        let shared = task::Shared {
            coords: coords.clone(),
            members: members.clone(),
            events: events.clone(),
            user: user.clone(),
            rx,
            snapshot,
        };
        task::spawn(socket, id, config, shared);
        let previous = previous.into_iter().filter(|a| *a != local_addr).collect();
        Ok(Gossip {
            cmd,
            members,
            events,
            user,
            coords,
            local_addr,
            name,
            previous,
        })
    }

    /// Members' addresses remembered from the previous run (for rejoin after restart).
    pub fn previous_peers(&self) -> Vec<String> {
        self.previous.iter().map(|a| a.to_string()).collect()
    }

    /// This member's network coordinate.
    pub fn coordinate(&self) -> vivaldi::Coordinate {
        self.coords
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .clone()
    }

    /// Coordinates last heard from other members, by name.
    pub fn peer_coordinates(&self) -> BTreeMap<String, vivaldi::Coordinate> {
        self.coords
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .clone()
    }

    /// This member's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// All known members (including left and failed ones until reaped), by name.
    pub fn members(&self) -> Vec<Member> {
        self.members
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Membership changes as they happen.
    pub fn subscribe(&self) -> broadcast::Receiver<Member> {
        self.events.subscribe()
    }

    /// Install, use or remove a gossip key on every alive member.
    pub async fn key_op(&self, op: task::KeyOp, key: &str) -> Result<(), GossipError> {
        self.cmd
            .send(Cmd::KeyOp(op, key.to_string()))
            .await
            .map_err(|_| GossipError::Stopped)
    }

    /// Each alive member's installed keys (primary first), by member name.
    pub async fn key_list(&self) -> Result<Vec<(String, Vec<String>)>, GossipError> {
        let (tx, rx) = oneshot::channel();
        self.cmd
            .send(Cmd::KeyList(tx))
            .await
            .map_err(|_| GossipError::Stopped)?;
        rx.await.map_err(|_| GossipError::Stopped)
    }

    /// Send a user event (opaque bytes) to every alive member; it is delivered locally too.
    pub async fn send_user_event(&self, data: Vec<u8>) -> Result<(), GossipError> {
        let _ = self.user.send(data.clone());
        self.cmd
            .send(Cmd::User(data))
            .await
            .map_err(|_| GossipError::Stopped)
    }

    /// User events received from other members.
    pub fn subscribe_user_events(&self) -> broadcast::Receiver<Vec<u8>> {
        self.user.subscribe()
    }

    /// Join through each address (`host:port`; the port defaults to `default_port`).
    /// Returns how many of them answered, as Serf's join does.
    pub async fn join(&self, addrs: &[String], default_port: u16) -> Result<usize, GossipError> {
        let mut resolved = Vec::new();
        let mut errors = Vec::new();
        for a in addrs {
            let with_port = if a.parse::<SocketAddr>().is_ok()
                || a.rsplit_once(':')
                    .map(|(_, p)| p.parse::<u16>().is_ok())
                    .unwrap_or(false)
            {
                a.clone()
            } else {
                format!("{a}:{default_port}")
            };
            let found = tokio::net::lookup_host(with_port.as_str())
                .await
                .map(|mut it| it.next());
            match found {
                Ok(Some(sa)) => resolved.push(sa),
                Ok(None) => errors.push(format!("{a}: no address")),
                Err(e) => errors.push(format!("{a}: {e}")),
            }
        }
        if resolved.is_empty() {
            return Err(GossipError::Join(format!(
                "1 error occurred:\n\t* Failed to join {}",
                errors.join(", ")
            )));
        }
        let (tx, rx) = oneshot::channel();
        self.cmd
            .send(Cmd::Join(resolved, tx))
            .await
            .map_err(|_| GossipError::Stopped)?;
        let n = rx.await.map_err(|_| GossipError::Stopped)?;
        if n == 0 {
            return Err(GossipError::Join(format!(
                "1 error occurred:\n\t* Failed to join {}: no response",
                addrs.join(", ")
            )));
        }
        Ok(n)
    }

    /// Leave gracefully: tell the others, then stop answering.
    pub async fn leave(&self) -> Result<(), GossipError> {
        let (tx, rx) = oneshot::channel();
        self.cmd
            .send(Cmd::Leave(tx))
            .await
            .map_err(|_| GossipError::Stopped)?;
        rx.await.map_err(|_| GossipError::Stopped)
    }

    /// Mark a failed member as left (and with `prune`, forget it); tells the others too.
    /// Returns whether the member was known.
    pub async fn force_leave(&self, name: &str, prune: bool) -> Result<bool, GossipError> {
        let (tx, rx) = oneshot::channel();
        self.cmd
            .send(Cmd::ForceLeave(name.to_string(), prune, tx))
            .await
            .map_err(|_| GossipError::Stopped)?;
        rx.await.map_err(|_| GossipError::Stopped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> GossipConfig {
        GossipConfig {
            probe_period: Duration::from_millis(200),
            probe_rtt: Duration::from_millis(100),
            suspect_to_down: Duration::from_millis(800),
            keyring: None,
        }
    }

    async fn node(name: &str) -> Gossip {
        let mut tags = BTreeMap::new();
        tags.insert("role".into(), "node".into());
        Gossip::start(
            "127.0.0.1:0".parse().unwrap(),
            None,
            name.into(),
            tags,
            fast(),
        )
        .await
        .unwrap()
    }

    async fn wait_for(g: &Gossip, f: impl Fn(&[Member]) -> bool) {
        for _ in 0..200 {
            if f(&g.members()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("condition not reached: {:?}", g.members());
    }

    fn status(ms: &[Member], name: &str) -> Option<MemberStatus> {
        ms.iter().find(|m| m.name == name).map(|m| m.status)
    }

    #[tokio::test]
    async fn join_leave_and_failure() {
        let a = node("a").await;
        let b = node("b").await;
        let c = node("c").await;
        assert_eq!(b.join(&[a.local_addr.to_string()], 8301).await.unwrap(), 1);
        c.join(&[a.local_addr.to_string()], 8301).await.unwrap();
        for g in [&a, &b, &c] {
            wait_for(g, |ms| {
                ms.iter()
                    .filter(|m| m.status == MemberStatus::Alive)
                    .count()
                    == 3
            })
            .await;
        }
        b.leave().await.unwrap();
        wait_for(&a, |ms| status(ms, "b") == Some(MemberStatus::Left)).await;
        wait_for(&c, |ms| status(ms, "b") == Some(MemberStatus::Left)).await;
        // dropping every handle stops c without a goodbye: a must detect the failure
        drop(c);
        wait_for(&a, |ms| status(ms, "c") == Some(MemberStatus::Failed)).await;
        assert!(a.force_leave("c", false).await.unwrap());
        wait_for(&a, |ms| status(ms, "c") == Some(MemberStatus::Left)).await;
        assert!(a.force_leave("c", true).await.unwrap());
        wait_for(&a, |ms| status(ms, "c").is_none()).await;
        assert!(!a.force_leave("nobody", false).await.unwrap());
    }

    #[tokio::test]
    async fn join_to_nowhere_fails() {
        let a = node("a").await;
        let err = a.join(&["127.0.0.1:1".into()], 8301).await.unwrap_err();
        assert!(err.to_string().contains("Failed to join"), "{err}");
    }
}
