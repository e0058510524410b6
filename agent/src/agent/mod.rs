//! The `Agent` facade: owns Raft, the store, the watch hub and the local state, and gives
//! the HTTP and DNS layers three things: `apply` a command, `read` the store, and the
//! leader/consistency metadata for response headers.

pub mod acl;
mod cluster;
mod events;
pub use events::UserEvent;
mod local_ops;
pub mod query;
mod reads;
mod sessions;
mod writes;

use crate::config::RuntimeConfig;
use crate::gossip::{Gossip, GossipConfig, MemberStatus};
use crate::local::{LocalState, SyncOp};
use crate::raft::network::Network;
use crate::raft::state_machine::{SharedStore, StateMachine};
use crate::raft::typ::Raft;
use crate::raft::{log_store::LogStore, open_db, Command, CommandResponse};
use crate::rpc::{self, ForwardResult};
use crate::store::{Store, StoreError, Subscription, Topic, WatchHub};
use crate::types::{Node, SERF_CHECK_ID};
use openraft::{BasicNode, SnapshotPolicy};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// How long a request waits for a leader or a commit (Consul's `rpc_hold_timeout`).
pub const RPC_HOLD_TIMEOUT: Duration = Duration::from_secs(7);

/// Errors from the facade; the HTTP layer maps them to status codes.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// No leader is known (Consul's text).
    #[error("No cluster leader")]
    NoLeader,
    /// The store rejected the write.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// Raft failed.
    #[error("raft: {0}")]
    Raft(String),
    /// Opening storage or binding a port failed at start-up.
    #[error("{0}")]
    Startup(String),
    /// A bad request for the local agent (unknown service or check, bad definition).
    #[error("{0}")]
    BadRequest(String),
    /// Something named does not exist.
    #[error("{0}")]
    NotFound(String),
}

/// Read consistency requested by a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Consistency {
    /// Leader's view (Consul's default).
    #[default]
    Default,
    /// Verified with a quorum before reading.
    Consistent,
    /// Any server's local view.
    Stale,
}

impl Consistency {
    /// The `X-Consul-Effective-Consistency` value.
    pub fn as_str(&self) -> &'static str {
        match self {
            Consistency::Default => "leader",
            Consistency::Consistent => "consistent",
            Consistency::Stale => "stale",
        }
    }
}

/// The running agent.
pub struct Agent {
    config: RwLock<Arc<RuntimeConfig>>,
    /// This node's name.
    pub node_name: String,
    /// This node's UUID.
    pub node_id: String,
    /// The datacenter.
    pub datacenter: String,
    raft: Option<Raft>,
    raft_id: u64,
    /// Writes to the local Raft hold this shared; a leadership transfer holds it
    /// exclusively so no append renews the followers' leader leases while it runs.
    write_gate: Arc<tokio::sync::RwLock<()>>,
    /// Group commit of concurrent KV writes on the leader.
    writes: writes::WriteBatcher,
    acl_cache: Mutex<acl::AclCache>,
    /// `acl { }` of the configuration in force, parsed once per load.
    acl: RwLock<Arc<crate::acl::AclConfig>>,
    reads: reads::ReadBatcher,
    gossip: Option<Gossip>,
    wan: Option<Gossip>,
    events: Mutex<events::EventLog>,
    rpc_listener: Mutex<Option<tokio::net::TcpListener>>,
    store: SharedStore,
    hub: Arc<WatchHub>,
    pub(crate) local: Mutex<LocalState>,
    sync_notify: Notify,
    session_timers: Mutex<HashMap<String, Instant>>,
    pub(crate) ttl_timers: crate::checks::TtlTimers,
    pub(crate) checks: crate::checks::Supervisor,
    http_client: reqwest::Client,
    /// Pooled streams for writes and read indexes forwarded to the leader.
    calls: crate::raft::network::CallPool,
    /// The server RPC address (Raft and forwarding); on clients, the advertise address.
    pub rpc_addr: SocketAddr,
    started: Instant,
    /// Where this agent keeps its state (a temporary directory in `-dev`).
    pub data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    /// Set when the agent is asked to leave/shut down.
    pub shutdown: tokio::sync::watch::Sender<bool>,
}

/// The Raft node id of a node UUID (a stable hash of its text).
pub fn raft_id_from_uuid(id: &str) -> u64 {
    // FNV-1a over the UUID text: stable, and distinct UUIDs give distinct ids in practice.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in id.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

fn load_or_create_node_id(
    dir: &std::path::Path,
    given: Option<&str>,
) -> Result<String, AgentError> {
    let path = dir.join("node-id");
    if let Some(g) = given.filter(|g| !g.is_empty()) {
        uuid::Uuid::parse_str(g)
            .map_err(|_| AgentError::Startup(format!("node ID {g:?} is not a valid UUID")))?;
        std::fs::write(&path, g)
            .map_err(|e| AgentError::Startup(format!("writing {}: {e}", path.display())))?;
        return Ok(g.to_lowercase());
    }
    if let Ok(s) = std::fs::read_to_string(&path) {
        let s = s.trim().to_string();
        if uuid::Uuid::parse_str(&s).is_ok() {
            return Ok(s);
        }
    }
    let id = uuid::Uuid::new_v4().to_string();
    std::fs::write(&path, &id)
        .map_err(|e| AgentError::Startup(format!("writing {}: {e}", path.display())))?;
    Ok(id)
}

/// An integer tuning key from the merged config (Consul's `raft_snapshot_threshold`, ...).
fn raw_u64(cfg: &RuntimeConfig, key: &str, default: u64) -> u64 {
    cfg.raw
        .get(key)
        .and_then(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
        .unwrap_or(default)
}

/// The gossip keyring when `encrypt` is set (kept in `data_dir/serf/<file>` outside -dev).
fn keyring_for(
    cfg: &RuntimeConfig,
    data_dir: &std::path::Path,
    file: &str,
) -> Result<Option<crate::gossip::keyring::Keyring>, AgentError> {
    let Some(key) = cfg.encrypt.as_deref().filter(|k| !k.is_empty()) else {
        return Ok(None);
    };
    let path = (!cfg.dev_mode).then(|| data_dir.join("serf").join(file));
    crate::gossip::keyring::Keyring::new(key, path)
        .map(Some)
        .map_err(|e| AgentError::Startup(format!("gossip encryption key: {e}")))
}

/// The anti-entropy interval: Consul's internal `ae_interval` (default 1 minute).
pub(crate) fn ae_interval(cfg: &RuntimeConfig) -> Duration {
    cfg.raw
        .get("ae_interval")
        .and_then(|v| v.as_str())
        .and_then(|s| crate::types::parse_duration(s).ok())
        .unwrap_or(Duration::from_secs(60))
}

impl Agent {
    /// Start an agent: open storage and start Raft (servers), start gossip, bootstrap a
    /// single server when asked, and start the background loops. The server RPC listener is
    /// bound here and served by the caller ([`Agent::take_rpc_listener`]), which mounts the
    /// HTTP API on it as well so client agents can forward reads.
    pub async fn start(cfg: RuntimeConfig) -> Result<Arc<Agent>, AgentError> {
        let acl_config = crate::acl::AclConfig::from_value(&cfg.acl)
            .map_err(|e| AgentError::Startup(e.to_string()))?;
        let tls = crate::tls::AgentTls::from_config(&cfg);
        if tls.rpc.verify_outgoing {
            let name = format!(
                "server.{}.{}",
                cfg.datacenter,
                cfg.domain.trim_end_matches('.')
            );
            let c = tls
                .rpc
                .client_config(&name)
                .map_err(|e| AgentError::Startup(e.to_string()))?;
            crate::tls::install_rpc(crate::tls::RpcTransport::tls(c));
        }
        let (data_dir, tmp) = match &cfg.data_dir {
            Some(d) if !cfg.dev_mode => (d.clone(), None),
            _ => {
                let t = tempfile::Builder::new()
                    .prefix("praetor-dev-")
                    .tempdir()
                    .map_err(|e| AgentError::Startup(format!("creating temp data dir: {e}")))?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        std::fs::create_dir_all(&data_dir).map_err(|e| {
            AgentError::Startup(format!("creating data dir {}: {e}", data_dir.display()))
        })?;
        let node_id = load_or_create_node_id(&data_dir, cfg.node_id.as_deref())?;
        let raft_id = raft_id_from_uuid(&node_id);
        let hub = WatchHub::new();
        let store: SharedStore = Arc::new(RwLock::new(Store::new(hub.clone())));

        let bind_ip = cfg.bind_addr.clone();
        let advertise_ip: std::net::IpAddr =
            match cfg.advertise_addr.as_deref().filter(|a| !a.is_empty()) {
                Some(a) => a
                    .parse()
                    .map_err(|e| AgentError::Startup(format!("advertise address {a}: {e}")))?,
                None => match bind_ip.parse::<std::net::IpAddr>() {
                    Ok(ip) if !ip.is_unspecified() => ip,
                    _ => std::net::IpAddr::from([127, 0, 0, 1]),
                },
            };

        let (raft, listener, rpc_addr) = if cfg.server {
            let raft_dir: PathBuf = data_dir.join("raft");
            let db = open_db(&raft_dir).map_err(|e| {
                AgentError::Startup(format!("opening raft store {}: {e}", raft_dir.display()))
            })?;
            let sm = StateMachine::open(db.clone(), store.clone())
                .map_err(|e| AgentError::Startup(e.to_string()))?;
            let log = LogStore::new(db);
            let server_port = cfg.ports.server.max(0) as u16;
            let listener = tokio::net::TcpListener::bind((bind_ip.as_str(), server_port))
                .await
                .map_err(|e| {
                    AgentError::Startup(format!("binding server port {bind_ip}:{server_port}: {e}"))
                })?;
            let bound = listener
                .local_addr()
                .map_err(|e| AgentError::Startup(e.to_string()))?;
            let rpc_addr = SocketAddr::new(advertise_ip, bound.port());
            let mult = cfg.performance.raft_multiplier.max(1) as u64;
            let raft_config = openraft::Config {
                cluster_name: cfg.datacenter.clone(),
                heartbeat_interval: 50 * mult,
                election_timeout_min: 150 * mult,
                election_timeout_max: 300 * mult,
                snapshot_policy: SnapshotPolicy::LogsSinceLast(raw_u64(
                    &cfg,
                    "raft_snapshot_threshold",
                    16384,
                )),
                max_in_snapshot_log_to_keep: raw_u64(&cfg, "raft_trailing_logs", 10240),
                ..Default::default()
            }
            .validate()
            .map_err(|e| AgentError::Startup(format!("raft config: {e}")))?;
            let raft = Raft::new(raft_id, Arc::new(raft_config), Network::new(), log, sm)
                .await
                .map_err(|e| AgentError::Startup(format!("starting raft: {e}")))?;
            tracing::info!(addr = %rpc_addr, "server RPC bound");
            (Some(raft), Some(listener), rpc_addr)
        } else {
            (
                None,
                None,
                SocketAddr::new(advertise_ip, cfg.ports.server.max(0) as u16),
            )
        };

        let gossip = if cfg.ports.serf_lan >= 0 {
            let bind: SocketAddr = format!(
                "{}:{}",
                cfg.serf_lan_bind.clone().unwrap_or_else(|| bind_ip.clone()),
                cfg.ports.serf_lan
            )
            .parse()
            .map_err(|e| AgentError::Startup(format!("serf LAN bind address: {e}")))?;
            let tags = cluster::member_tags(&cfg, &node_id, rpc_addr.port());
            let snapshot = (!cfg.dev_mode).then(|| data_dir.join("serf").join("local.snapshot"));
            let mut gcfg = GossipConfig::lan();
            gcfg.keyring = keyring_for(&cfg, &data_dir, "local.keyring")?;
            let g = Gossip::start_with_snapshot(
                bind,
                Some(advertise_ip),
                cfg.node_name.clone(),
                tags,
                gcfg,
                snapshot,
            )
            .await
            .map_err(|e| AgentError::Startup(e.to_string()))?;
            tracing::info!(addr = %g.local_addr, "serf LAN listening");
            Some(g)
        } else {
            None
        };

        // Servers also join the WAN pool (serf_wan), as `<node>.<dc>`.
        let wan = if cfg.server && cfg.ports.serf_wan >= 0 {
            let bind: SocketAddr = format!(
                "{}:{}",
                cfg.serf_wan_bind.clone().unwrap_or_else(|| bind_ip.clone()),
                cfg.ports.serf_wan
            )
            .parse()
            .map_err(|e| AgentError::Startup(format!("serf WAN bind address: {e}")))?;
            let tags = cluster::member_tags(&cfg, &node_id, rpc_addr.port());
            let snapshot = (!cfg.dev_mode).then(|| data_dir.join("serf").join("remote.snapshot"));
            let name = format!("{}.{}", cfg.node_name, cfg.datacenter);
            let mut gcfg = GossipConfig::wan();
            gcfg.keyring = keyring_for(&cfg, &data_dir, "remote.keyring")?;
            let g =
                Gossip::start_with_snapshot(bind, Some(advertise_ip), name, tags, gcfg, snapshot)
                    .await
                    .map_err(|e| AgentError::Startup(e.to_string()))?;
            tracing::info!(addr = %g.local_addr, "serf WAN listening");
            Some(g)
        } else {
            None
        };

        let mut tagged = BTreeMap::new();
        let addr = advertise_ip.to_string();
        for k in ["lan", "lan_ipv4", "wan", "wan_ipv4"] {
            tagged.insert(k.to_string(), addr.clone());
        }
        let mut meta = cfg.node_meta.clone();
        meta.insert("consul-network-segment".into(), String::new());
        meta.insert("consul-version".into(), crate::CONSUL_COMPAT_VERSION.into());
        let node = Node {
            id: node_id.clone(),
            node: cfg.node_name.clone(),
            address: addr,
            datacenter: cfg.datacenter.clone(),
            tagged_addresses: tagged,
            meta,
            create_index: 0,
            modify_index: 0,
        };
        let (shutdown, _) = tokio::sync::watch::channel(false);
        let http_client = crate::tls::rpc_client().build().unwrap_or_default();
        let agent = Arc::new(Agent {
            node_name: cfg.node_name.clone(),
            datacenter: cfg.datacenter.clone(),
            node_id,
            raft,
            raft_id,
            write_gate: Default::default(),
            writes: Default::default(),
            acl_cache: Default::default(),
            acl: RwLock::new(Arc::new(acl_config)),
            reads: Default::default(),
            gossip,
            wan,
            events: Mutex::new(Default::default()),
            rpc_listener: Mutex::new(listener),
            store,
            hub,
            local: Mutex::new(LocalState::new(node)),
            sync_notify: Notify::new(),
            session_timers: Mutex::new(HashMap::new()),
            ttl_timers: Default::default(),
            checks: Default::default(),
            // Forwarding streams are opened (upgraded) by the same client.
            calls: crate::raft::network::CallPool::new(http_client.clone()),
            http_client,
            rpc_addr,
            started: Instant::now(),
            data_dir: data_dir.clone(),
            _tmp: tmp,
            shutdown,
            config: RwLock::new(Arc::new(cfg)),
        });

        let cfg = agent.config();
        let single = cfg.dev_mode || cfg.bootstrap || cfg.bootstrap_expect == 1;
        if let (Some(raft), true) = (&agent.raft, single) {
            let initialized = raft
                .is_initialized()
                .await
                .map_err(|e| AgentError::Raft(e.to_string()))?;
            if !initialized {
                let mut members = BTreeMap::new();
                members.insert(raft_id, BasicNode::new(rpc_addr.to_string()));
                raft.initialize(members)
                    .await
                    .map_err(|e| AgentError::Raft(format!("bootstrap: {e}")))?;
            }
        }
        agent.load_config_definitions(&cfg)?;
        agent.restore_local_registrations()?;
        agent.add_serf_check();
        tokio::spawn(local_ops::sync_loop(agent.clone()));
        if agent.raft.is_some() {
            tokio::spawn(sessions::ttl_loop(agent.clone()));
        }
        crate::checks::spawn_runners(agent.clone());
        cluster::spawn(agent.clone());
        tokio::spawn(events::receive_loop(agent.clone()));
        Ok(agent)
    }

    /// The bound server RPC listener (servers only), for the caller to serve once.
    pub fn take_rpc_listener(&self) -> Option<tokio::net::TcpListener> {
        self.rpc_listener
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// Whether this agent is a server (holds Raft state).
    pub fn is_server(&self) -> bool {
        self.raft.is_some()
    }

    /// The WAN gossip pool (servers).
    pub fn wan(&self) -> Option<&Gossip> {
        self.wan.as_ref()
    }

    /// RPC addresses of the alive servers of another datacenter, from the WAN pool.
    pub fn wan_servers_of(&self, dc: &str) -> Vec<String> {
        let Some(w) = &self.wan else {
            return Vec::new();
        };
        w.members()
            .into_iter()
            .filter(|m| m.status == MemberStatus::Alive && cluster::is_server_of(m, dc))
            .filter_map(|m| cluster::rpc_addr_of(&m))
            .collect()
    }

    /// Known datacenters: this one first, then the others reachable over the WAN.
    pub fn datacenters(&self) -> Vec<String> {
        let mut others: Vec<String> = self
            .wan
            .as_ref()
            .map(|w| w.members())
            .unwrap_or_default()
            .into_iter()
            .filter(|m| m.status == MemberStatus::Alive)
            .filter_map(|m| m.tags.get("dc").cloned())
            .filter(|dc| dc != &self.datacenter)
            .collect();
        others.sort();
        others.dedup();
        // Nearest first, by the median estimated RTT to each datacenter's servers.
        if let Some(w) = &self.wan {
            let me = w.coordinate();
            let coords = w.peer_coordinates();
            let members = w.members();
            let rtt = |dc: &String| -> Duration {
                let mut d: Vec<Duration> = members
                    .iter()
                    .filter(|m| m.tags.get("dc") == Some(dc))
                    .filter_map(|m| coords.get(&m.name).map(|c| me.distance_to(c)))
                    .collect();
                d.sort();
                d.get(d.len() / 2).copied().unwrap_or(Duration::MAX)
            };
            others.sort_by_key(|dc| (rtt(dc), dc.clone()));
        }
        let mut out = vec![self.datacenter.clone()];
        out.extend(others);
        out
    }

    /// The gossip layer.
    pub fn gossip(&self) -> Option<&Gossip> {
        self.gossip.as_ref()
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<RuntimeConfig> {
        self.config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// How long a blocking query with these options may wait, under this agent's
    /// `default_query_time` and `max_query_time`.
    pub fn query_wait(&self, q: &crate::http::params::QueryOptions) -> Duration {
        let cfg = self.config();
        q.effective_wait(cfg.default_query_time, cfg.max_query_time)
    }

    pub(crate) fn set_config(&self, cfg: RuntimeConfig) {
        let acl = crate::acl::AclConfig::from_value(&cfg.acl).unwrap_or_default();
        *self.acl.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(acl);
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(cfg);
    }

    /// Seconds since start.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// The Raft handle (servers only).
    pub fn raft(&self) -> Option<&Raft> {
        self.raft.as_ref()
    }

    /// This server's Raft node id.
    pub fn raft_id(&self) -> u64 {
        self.raft_id
    }

    /// Read the store.
    pub fn read<T>(&self, f: impl FnOnce(&Store) -> T) -> T {
        let st = self.store.read().unwrap_or_else(|e| e.into_inner());
        f(&st)
    }

    /// Register a blocking-query interest.
    pub fn subscribe(&self, topics: impl Into<Arc<[Topic]>>) -> Subscription {
        self.hub.subscribe(topics)
    }

    /// The watch hub (metrics).
    pub fn hub(&self) -> &Arc<WatchHub> {
        &self.hub
    }

    /// The leader's Raft id and RPC address, when known (servers).
    pub fn leader(&self) -> Option<(u64, String)> {
        let raft = self.raft.as_ref()?;
        let m = raft.metrics();
        let m = m.borrow();
        let id = m.current_leader?;
        let addr = m
            .membership_config
            .membership()
            .get_node(&id)
            .map(|n| n.addr.clone())
            .unwrap_or_default();
        Some((id, addr))
    }

    /// Whether this server is the leader.
    pub fn is_leader(&self) -> bool {
        self.leader()
            .map(|(id, _)| id == self.raft_id)
            .unwrap_or(false)
    }

    /// Milliseconds since the leader was last heard from (0 on the leader).
    pub fn last_contact_ms(&self) -> u64 {
        let Some(raft) = &self.raft else { return 0 };
        if self.is_leader() {
            return 0;
        }
        let m = raft.metrics();
        let m = m.borrow();
        m.millis_since_quorum_ack.unwrap_or(0)
    }

    /// Raft voters' RPC addresses.
    pub fn peers(&self) -> Vec<String> {
        let Some(raft) = &self.raft else {
            return Vec::new();
        };
        let m = raft.metrics();
        let m = m.borrow();
        let mem = m.membership_config.membership();
        mem.voter_ids()
            .filter_map(|id| mem.get_node(&id).map(|n| n.addr.clone()))
            .collect()
    }

    /// RPC addresses of the alive servers of this datacenter known through gossip.
    pub fn known_servers(&self) -> Vec<String> {
        let Some(g) = &self.gossip else {
            return Vec::new();
        };
        g.members()
            .into_iter()
            .filter(|m| {
                m.status == MemberStatus::Alive && cluster::is_server_of(m, &self.datacenter)
            })
            .filter_map(|m| cluster::rpc_addr_of(&m))
            .collect()
    }

    /// A server to send this client agent's requests to (random among the alive ones).
    pub fn pick_server(&self) -> Option<String> {
        let s = self.known_servers();
        if s.is_empty() {
            None
        } else {
            Some(s[rand::random::<usize>() % s.len()].clone())
        }
    }

    /// Wait until a leader is known (bounded).
    pub async fn wait_for_leader(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.leader().is_some() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }

    /// Make a read consistent as requested before the caller reads the store. On the
    /// leader, `consistent` confirms leadership with a quorum; on a follower, the leader's
    /// read index is fetched and the local state machine waited on until it has applied it,
    /// so a follower answers as of the leader (Consul forwards such reads to the leader).
    pub async fn barrier(&self, c: Consistency) -> Result<(), AgentError> {
        if c == Consistency::Stale {
            return Ok(());
        }
        let Some(raft) = &self.raft else {
            return Ok(());
        };
        if self.leader().is_none() && !self.wait_for_leader(Duration::from_secs(7)).await {
            return Err(AgentError::NoLeader);
        }
        if self.is_leader() {
            if c == Consistency::Consistent {
                self.linearizable_index()
                    .await
                    .map_err(|_| AgentError::NoLeader)?;
            }
            return Ok(());
        }
        let (_, addr) = self.leader().ok_or(AgentError::NoLeader)?;
        let consistent = c == Consistency::Consistent;
        let idx = rpc::client::read_index(&self.calls, &self.http_client, &addr, consistent)
            .await
            .map_err(|e| {
                tracing::debug!(error = %e, leader = %addr, "no read index from the leader");
                AgentError::NoLeader
            })?;
        raft.wait(Some(Duration::from_secs(10)))
            .applied_index_at_least(Some(idx), "read barrier")
            .await
            .map_err(|e| AgentError::Raft(e.to_string()))?;
        Ok(())
    }

    /// Replicate a command (forwarding it to the leader when this agent is not) and return
    /// its result once applied.
    pub async fn apply(&self, cmd: Command) -> Result<CommandResponse, AgentError> {
        let started = Instant::now();
        let r = self.apply_inner(&cmd).await;
        if r.is_ok() {
            crate::metrics::sample(cmd.metric_name(), started.elapsed());
        }
        r
    }

    async fn apply_inner(&self, cmd: &Command) -> Result<CommandResponse, AgentError> {
        let deadline = Instant::now() + RPC_HOLD_TIMEOUT;
        let mut hint: Option<String> = None;
        loop {
            let target = match (&self.raft, hint.take()) {
                (_, Some(h)) => Some(h),
                (Some(_), None) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    match tokio::time::timeout(
                        left,
                        rpc::RpcBackend::apply_local(self, cmd.clone()),
                    )
                    .await
                    {
                        Err(_) => {
                            return Err(AgentError::Raft(
                                "timed out waiting for the write to commit (no quorum?)".into(),
                            ))
                        }
                        Ok(ForwardResult::Applied(resp)) => return Ok(resp),
                        Ok(ForwardResult::Failed(e)) => return Err(AgentError::Raft(e)),
                        Ok(ForwardResult::NotLeader { leader }) => leader.map(|(_, a)| a),
                    }
                }
                (None, None) => self.pick_server(),
            };
            if let Some(addr) = target {
                let left = deadline
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(100));
                crate::metrics::incr("consul.rpc.request", 1);
                let sent =
                    rpc::client::forward_apply(&self.calls, &self.http_client, &addr, cmd, left)
                        .await;
                match sent {
                    Ok(ForwardResult::Applied(resp)) => return Ok(resp),
                    Ok(ForwardResult::Failed(e)) => return Err(AgentError::Raft(e)),
                    Ok(ForwardResult::NotLeader { leader }) => hint = leader.map(|(_, a)| a),
                    // Not sent, so trying again is safe.
                    Err(rpc::client::ForwardError::NotSent(e)) => {
                        tracing::debug!(error = %e, server = %addr, "forwarding a write failed")
                    }
                    // Sent but no answer: it may have been applied; retrying could apply
                    // it twice (a check-and-set would then report failure for a write that
                    // happened), so the outcome is reported as unknown.
                    Err(rpc::client::ForwardError::NoAnswer(e)) => {
                        return Err(AgentError::Raft(format!(
                            "forwarding the write to {addr} failed; it may or may not have been applied: {e}"
                        )))
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err(AgentError::NoLeader);
            }
            if hint.is_none() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    /// Apply and turn a store rejection into an error.
    pub async fn apply_checked(&self, cmd: Command) -> Result<CommandResponse, AgentError> {
        match self.apply(cmd).await? {
            CommandResponse::Error(e) => Err(AgentError::Store(e)),
            other => Ok(other),
        }
    }

    pub(crate) async fn apply_sync_op(&self, op: SyncOp) -> Result<(), AgentError> {
        let cmd = match op {
            SyncOp::Register(r) => Command::Register(r),
            SyncOp::Deregister(d) => Command::Deregister(d),
        };
        self.apply_checked(cmd).await.map(|_| ())
    }

    /// Ask the anti-entropy loop to run soon.
    pub fn trigger_sync(&self) {
        self.sync_notify.notify_one();
    }

    /// Stop Raft and gossip (on leave or shutdown).
    pub async fn shutdown(&self) {
        let _ = self.shutdown.send(true);
        if let Some(raft) = &self.raft {
            let _ = raft.shutdown().await;
        }
    }

    /// Leave the cluster gracefully (gossip leave; the leader then removes this server
    /// from Raft and this node from the catalog), then shut down.
    pub async fn leave(&self) {
        if let Some(g) = &self.gossip {
            if let Err(e) = g.leave().await {
                tracing::warn!(error = %e, "gossip leave failed");
            }
        }
        self.shutdown().await;
    }

    /// The `serfHealth` check's current status for this node.
    pub fn serf_check_id(&self) -> &'static str {
        SERF_CHECK_ID
    }
}
