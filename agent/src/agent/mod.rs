//! The `Agent` facade: owns Raft, the store, the watch hub and the local state, and gives
//! the HTTP and DNS layers three things: `apply` a command, `read` the store, and the
//! leader/consistency metadata for response headers.

mod local_ops;
mod sessions;

use crate::config::RuntimeConfig;
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
    raft: Raft,
    raft_id: u64,
    store: SharedStore,
    hub: Arc<WatchHub>,
    pub(crate) local: Mutex<LocalState>,
    sync_notify: Notify,
    session_timers: Mutex<HashMap<String, Instant>>,
    pub(crate) ttl_timers: crate::checks::TtlTimers,
    http_client: reqwest::Client,
    /// The server RPC address (Raft and forwarding).
    pub rpc_addr: SocketAddr,
    started: Instant,
    /// Where this agent keeps its state (a temporary directory in `-dev`).
    pub data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    /// Set when the agent is asked to leave/shut down.
    pub shutdown: tokio::sync::watch::Sender<bool>,
}

fn raft_id_from_uuid(id: &str) -> u64 {
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

/// The anti-entropy interval: Consul's internal `ae_interval` (default 1 minute).
pub(crate) fn ae_interval(cfg: &RuntimeConfig) -> Duration {
    cfg.raw
        .get("ae_interval")
        .and_then(|v| v.as_str())
        .and_then(|s| crate::types::parse_duration(s).ok())
        .unwrap_or(Duration::from_secs(60))
}

impl Agent {
    /// Start an agent: open storage, bind the server port, start Raft (bootstrapping a
    /// single server when asked), and register this node once a leader is known.
    pub async fn start(cfg: RuntimeConfig) -> Result<Arc<Agent>, AgentError> {
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
        let raft_dir: PathBuf = data_dir.join("raft");
        let db = open_db(&raft_dir).map_err(|e| {
            AgentError::Startup(format!("opening raft store {}: {e}", raft_dir.display()))
        })?;

        let hub = WatchHub::new();
        let store: SharedStore = Arc::new(RwLock::new(Store::new(hub.clone())));
        let sm = StateMachine::open(db.clone(), store.clone())
            .map_err(|e| AgentError::Startup(e.to_string()))?;
        let log = LogStore::new(db);

        let bind_ip = cfg.bind_addr.clone();
        let server_port = cfg.ports.server.max(0) as u16;
        let listener = tokio::net::TcpListener::bind((bind_ip.as_str(), server_port))
            .await
            .map_err(|e| {
                AgentError::Startup(format!("binding server port {bind_ip}:{server_port}: {e}"))
            })?;
        let bound = listener
            .local_addr()
            .map_err(|e| AgentError::Startup(e.to_string()))?;
        let advertise_ip = cfg
            .advertise_addr
            .clone()
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| {
                if bound.ip().is_unspecified() {
                    "127.0.0.1".to_string()
                } else {
                    bound.ip().to_string()
                }
            });
        let rpc_addr: SocketAddr = format!("{advertise_ip}:{}", bound.port())
            .parse()
            .map_err(|e| AgentError::Startup(format!("advertise address {advertise_ip}: {e}")))?;

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

        let rpc_router = rpc::router(raft.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, rpc_router).await {
                tracing::error!(error = %e, "server RPC listener failed");
            }
        });
        tracing::info!(addr = %rpc_addr, "server RPC listening on {}", bound);

        let mut tagged = BTreeMap::new();
        let addr = rpc_addr.ip().to_string();
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
        let agent = Arc::new(Agent {
            node_name: cfg.node_name.clone(),
            datacenter: cfg.datacenter.clone(),
            node_id,
            raft,
            raft_id,
            store,
            hub,
            local: Mutex::new(LocalState::new(node)),
            sync_notify: Notify::new(),
            session_timers: Mutex::new(HashMap::new()),
            ttl_timers: Default::default(),
            http_client: reqwest::Client::new(),
            rpc_addr,
            started: Instant::now(),
            data_dir: data_dir.clone(),
            _tmp: tmp,
            shutdown,
            config: RwLock::new(Arc::new(cfg)),
        });

        let cfg = agent.config();
        let single = cfg.dev_mode || cfg.bootstrap || cfg.bootstrap_expect == 1;
        if cfg.server && single {
            let initialized = agent
                .raft
                .is_initialized()
                .await
                .map_err(|e| AgentError::Raft(e.to_string()))?;
            if !initialized {
                let mut members = BTreeMap::new();
                members.insert(raft_id, BasicNode::new(rpc_addr.to_string()));
                agent
                    .raft
                    .initialize(members)
                    .await
                    .map_err(|e| AgentError::Raft(format!("bootstrap: {e}")))?;
            }
        }
        agent.load_config_definitions(&cfg)?;
        agent.restore_local_registrations()?;
        agent.add_serf_check();
        tokio::spawn(local_ops::sync_loop(agent.clone()));
        tokio::spawn(sessions::ttl_loop(agent.clone()));
        crate::checks::spawn_runners(agent.clone());
        Ok(agent)
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<RuntimeConfig> {
        self.config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn set_config(&self, cfg: RuntimeConfig) {
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(cfg);
    }

    /// Seconds since start.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// The Raft handle (operator endpoints, tests).
    pub fn raft(&self) -> &Raft {
        &self.raft
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
    pub fn subscribe(&self, topics: Vec<Topic>) -> Subscription {
        self.hub.subscribe(topics)
    }

    /// The watch hub (metrics).
    pub fn hub(&self) -> &Arc<WatchHub> {
        &self.hub
    }

    /// Whether a leader is known, and its RPC address.
    pub fn leader(&self) -> Option<(u64, String)> {
        let m = self.raft.metrics();
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
        if self.is_leader() {
            return 0;
        }
        let m = self.raft.metrics();
        let m = m.borrow();
        m.millis_since_quorum_ack.unwrap_or(0)
    }

    /// Raft voters' RPC addresses.
    pub fn peers(&self) -> Vec<String> {
        let m = self.raft.metrics();
        let m = m.borrow();
        let mem = m.membership_config.membership();
        mem.voter_ids()
            .filter_map(|id| mem.get_node(&id).map(|n| n.addr.clone()))
            .collect()
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

    /// Make a read consistent as requested before the caller reads the store.
    pub async fn barrier(&self, c: Consistency) -> Result<(), AgentError> {
        match c {
            Consistency::Stale => Ok(()),
            Consistency::Default => {
                if self.leader().is_none() && !self.wait_for_leader(Duration::from_secs(7)).await {
                    return Err(AgentError::NoLeader);
                }
                Ok(())
            }
            Consistency::Consistent => {
                self.raft
                    .ensure_linearizable()
                    .await
                    .map(|_| ())
                    .map_err(|e| match e {
                        openraft::error::RaftError::APIError(_) => AgentError::NoLeader,
                        other => AgentError::Raft(other.to_string()),
                    })
            }
        }
    }

    /// Replicate a command (forwarding it to the leader when this server is not) and return
    /// its result once applied.
    pub async fn apply(&self, cmd: Command) -> Result<CommandResponse, AgentError> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let r = rpc::apply_local(&self.raft, cmd.clone()).await;
            let leader_addr = match r {
                ForwardResult::Applied(resp) => return Ok(resp),
                ForwardResult::Failed(e) => return Err(AgentError::Raft(e)),
                ForwardResult::NotLeader { leader } => leader.map(|(_, a)| a),
            };
            if let Some(addr) = leader_addr {
                match rpc::forward_apply(&self.http_client, &addr, &cmd).await {
                    Ok(ForwardResult::Applied(resp)) => return Ok(resp),
                    Ok(ForwardResult::Failed(e)) => return Err(AgentError::Raft(e)),
                    Ok(ForwardResult::NotLeader { .. }) | Err(_) => {}
                }
            }
            if Instant::now() >= deadline {
                return Err(AgentError::NoLeader);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
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

    /// Stop Raft (on leave or shutdown).
    pub async fn shutdown(&self) {
        let _ = self.shutdown.send(true);
        let _ = self.raft.shutdown().await;
    }

    /// The `serfHealth` check's current status for this node.
    pub fn serf_check_id(&self) -> &'static str {
        SERF_CHECK_ID
    }
}
