//! Cluster behaviour: gossip tags, joining (`-join`, `-retry-join`), bootstrapping a new
//! cluster once `bootstrap_expect` servers see each other, and the leader's reconcile loop
//! that turns membership into Raft voters and catalog health (Consul's leader
//! `reconcileMember`): alive members get `serfHealth` passing, failed ones critical, left
//! ones are deregistered; servers that join become voters, servers that leave (or stay
//! failed while a quorum remains) are removed.

use super::{Agent, AgentError};
use crate::config::RuntimeConfig;
use crate::gossip::{Member, MemberStatus};
use crate::raft::Command;
use crate::rpc::{self, NodeView, RpcBackend};
use crate::store::catalog::{DeregisterRequest, RegisterRequest};
use crate::types::{HealthCheck, Node, Session, HEALTH_CRITICAL, HEALTH_PASSING, SERF_CHECK_ID};
use openraft::BasicNode;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Gossip tags as Consul sets them (`role`, `dc`, `id`, `port`, `build`, `vsn`, ...).
pub(super) fn member_tags(
    cfg: &RuntimeConfig,
    node_id: &str,
    rpc_port: u16,
) -> BTreeMap<String, String> {
    let mut t = BTreeMap::new();
    t.insert(
        "role".into(),
        if cfg.server { "consul" } else { "node" }.into(),
    );
    t.insert("dc".into(), cfg.datacenter.clone());
    t.insert("id".into(), node_id.to_string());
    t.insert(
        "build".into(),
        format!("{}:praetor", crate::CONSUL_COMPAT_VERSION),
    );
    t.insert("vsn".into(), "2".into());
    t.insert("vsn_min".into(), "2".into());
    t.insert("vsn_max".into(), "3".into());
    t.insert("segment".into(), String::new());
    if cfg.server {
        t.insert("port".into(), rpc_port.to_string());
        t.insert("expect".into(), cfg.bootstrap_expect.to_string());
        t.insert("raft_vsn".into(), "3".into());
    }
    t
}

/// Whether a member is a server of datacenter `dc`.
pub(super) fn is_server_of(m: &Member, dc: &str) -> bool {
    m.tags.get("role").map(String::as_str) == Some("consul")
        && m.tags.get("dc").map(String::as_str) == Some(dc)
}

/// A server member's RPC address (its gossip IP and the `port` tag).
pub(super) fn rpc_addr_of(m: &Member) -> Option<String> {
    let port: u16 = m.tags.get("port")?.parse().ok()?;
    Some(SocketAddr::new(m.addr.ip(), port).to_string())
}

fn raft_id_of(m: &Member) -> Option<u64> {
    m.tags.get("id").map(|id| super::raft_id_from_uuid(id))
}

/// Start the join, bootstrap, reconcile and tombstone GC loops.
pub(super) fn spawn(agent: Arc<Agent>) {
    if agent.gossip.is_none() {
        if agent.raft.is_some() {
            tokio::spawn(super::acl::acl_init_loop(agent.clone()));
            tokio::spawn(tombstone_gc_loop(agent));
        }
        return;
    }
    tokio::spawn(join_loop(agent.clone()));
    tokio::spawn(coordinate_loop(agent.clone()));
    if agent.raft.is_some() {
        tokio::spawn(super::acl::acl_init_loop(agent.clone()));
        tokio::spawn(tombstone_gc_loop(agent.clone()));
        tokio::spawn(bootstrap_loop(agent.clone()));
        tokio::spawn(reconcile_loop(agent));
    }
}

fn serf_default_port(cfg: &RuntimeConfig) -> u16 {
    if cfg.ports.serf_lan > 0 {
        cfg.ports.serf_lan as u16
    } else {
        8301
    }
}

impl Agent {
    /// Join the LAN pool through `addrs`; returns how many answered.
    pub async fn join(&self, addrs: &[String]) -> Result<usize, AgentError> {
        let g = self
            .gossip
            .as_ref()
            .ok_or_else(|| AgentError::BadRequest("gossip is disabled".into()))?;
        let port = serf_default_port(&self.config());
        g.join(addrs, port)
            .await
            .map_err(|e| AgentError::BadRequest(e.to_string()))
    }

    /// Join the WAN pool (servers) through `addrs`.
    pub async fn join_wan(&self, addrs: &[String]) -> Result<usize, AgentError> {
        let g = self.wan.as_ref().ok_or_else(|| {
            AgentError::BadRequest("this agent is not a server: no WAN pool".into())
        })?;
        let cfg = self.config();
        let port = if cfg.ports.serf_wan > 0 {
            cfg.ports.serf_wan as u16
        } else {
            8302
        };
        g.join(addrs, port)
            .await
            .map_err(|e| AgentError::BadRequest(e.to_string()))
    }

    /// Force a failed member out (`prune` forgets it).
    pub async fn force_leave(&self, node: &str, prune: bool) -> Result<(), AgentError> {
        let g = self
            .gossip
            .as_ref()
            .ok_or_else(|| AgentError::BadRequest("gossip is disabled".into()))?;
        match g.force_leave(node, prune).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(AgentError::NotFound(format!(
                "agent: No node found with name '{node}'"
            ))),
            Err(e) => Err(AgentError::Raft(e.to_string())),
        }
    }
}

async fn join_loop(agent: Arc<Agent>) {
    let cfg = agent.config();
    // Rejoin the members known before a restart (Serf's snapshot), in the background.
    let previous = agent
        .gossip
        .as_ref()
        .map(|g| g.previous_peers())
        .unwrap_or_default();
    if !previous.is_empty() {
        let a = agent.clone();
        tokio::spawn(async move {
            for attempt in 0..30 {
                match a.join(&previous).await {
                    Ok(n) => {
                        tracing::info!(joined = n, "rejoined previously known members");
                        return;
                    }
                    Err(e) => tracing::debug!(error = %e, attempt, "rejoin failed"),
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        });
    }
    if !cfg.start_join.is_empty() {
        match agent.join(&cfg.start_join).await {
            Ok(n) => tracing::info!(joined = n, "joined the cluster"),
            Err(e) => tracing::error!(error = %e, "join failed"),
        }
    }
    if !cfg.start_join_wan.is_empty() && agent.wan.is_some() {
        if let Err(e) = agent.join_wan(&cfg.start_join_wan).await {
            tracing::error!(error = %e, "WAN join failed");
        }
    }
    if !cfg.retry_join_wan.is_empty() && agent.wan.is_some() {
        let a = agent.clone();
        let addrs = cfg.retry_join_wan.clone();
        let interval = crate::types::parse_duration(&cfg.retry_interval_wan)
            .unwrap_or(Duration::from_secs(30));
        tokio::spawn(async move {
            loop {
                match a.join_wan(&addrs).await {
                    Ok(n) => {
                        tracing::info!(joined = n, "retry-join-wan succeeded");
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "retry-join-wan failed; retrying in {interval:?}")
                    }
                }
                tokio::time::sleep(interval).await;
            }
        });
    }
    if let Some(previous) = agent
        .wan
        .as_ref()
        .map(|w| w.previous_peers())
        .filter(|p| !p.is_empty())
    {
        let a = agent.clone();
        tokio::spawn(async move {
            for _ in 0..30 {
                if a.join_wan(&previous).await.is_ok() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        });
    }
    if cfg.retry_join.is_empty() {
        return;
    }
    let interval =
        crate::types::parse_duration(&cfg.retry_interval).unwrap_or(Duration::from_secs(30));
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        match agent.join(&cfg.retry_join).await {
            Ok(n) => {
                tracing::info!(joined = n, "retry-join succeeded");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, attempt, "retry-join failed; retrying in {interval:?}");
                if cfg.retry_max > 0 && attempt >= cfg.retry_max {
                    tracing::error!("retry-join: giving up after {attempt} attempts");
                    return;
                }
            }
        }
        tokio::time::sleep(interval).await;
    }
}

/// With `bootstrap_expect = N > 1`: once N servers of this datacenter see each other and none
/// has Raft state yet, the one with the lowest Raft id bootstraps the cluster with all N.
async fn bootstrap_loop(agent: Arc<Agent>) {
    let cfg = agent.config();
    let expect = cfg.bootstrap_expect as usize;
    if expect <= 1 || cfg.dev_mode || cfg.bootstrap {
        return;
    }
    let Some(raft) = agent.raft.clone() else {
        return;
    };
    let mut shutdown = agent.shutdown.subscribe();
    loop {
        if raft.is_initialized().await.unwrap_or(true) || agent.leader().is_some() {
            return;
        }
        let servers: Vec<Member> = agent
            .gossip
            .as_ref()
            .map(|g| g.members())
            .unwrap_or_default()
            .into_iter()
            .filter(|m| m.status == MemberStatus::Alive && is_server_of(m, &agent.datacenter))
            .collect();
        if servers.len() >= expect {
            let mut peers: BTreeMap<u64, BasicNode> = BTreeMap::new();
            for m in &servers {
                if let (Some(id), Some(addr)) = (raft_id_of(m), rpc_addr_of(m)) {
                    peers.insert(id, BasicNode::new(addr));
                }
            }
            let lowest = peers.keys().next().copied();
            if lowest == Some(agent.raft_id) {
                let mut anyone_initialized = false;
                for (id, n) in &peers {
                    if *id == agent.raft_id {
                        continue;
                    }
                    match rpc::client::raft_state(&agent.http_client, &n.addr).await {
                        Ok(Some(s)) if s.initialized => anyone_initialized = true,
                        Ok(_) => {}
                        Err(_) => anyone_initialized = true, // unreachable: do not guess
                    }
                }
                if !anyone_initialized {
                    tracing::info!(
                        servers = peers.len(),
                        "bootstrap_expect reached; bootstrapping the cluster"
                    );
                    if let Err(e) = raft.initialize(peers).await {
                        tracing::warn!(error = %e, "bootstrap failed");
                    }
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(300)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

async fn reconcile_loop(agent: Arc<Agent>) {
    let Some(g) = agent.gossip.clone() else {
        return;
    };
    let mut events = g.subscribe();
    let mut shutdown = agent.shutdown.subscribe();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = events.recv() => {}
            _ = shutdown.changed() => return,
        }
        if !agent.is_leader() {
            continue;
        }
        let members = g.members();
        if let Err(e) = reconcile_raft(&agent, &members).await {
            tracing::warn!(error = %e, "reconciling raft membership");
        }
        if let Err(e) = reconcile_catalog(&agent, &members).await {
            tracing::warn!(error = %e, "reconciling members into the catalog");
        }
    }
}

async fn reconcile_raft(agent: &Agent, members: &[Member]) -> Result<(), AgentError> {
    let Some(raft) = &agent.raft else {
        return Ok(());
    };
    let (voters, all, addrs): (BTreeSet<u64>, BTreeSet<u64>, BTreeMap<u64, String>) = {
        let m = raft.metrics();
        let m = m.borrow();
        let mem = m.membership_config.membership();
        (
            mem.voter_ids().collect(),
            mem.nodes().map(|(id, _)| *id).collect(),
            mem.nodes().map(|(id, n)| (*id, n.addr.clone())).collect(),
        )
    };
    let servers: Vec<(&Member, u64, String)> = members
        .iter()
        .filter(|m| is_server_of(m, &agent.datacenter))
        .filter_map(|m| Some((m, raft_id_of(m)?, rpc_addr_of(m)?)))
        .collect();
    // A server that came back on another address: update its address in the membership.
    for (m, id, addr) in &servers {
        if m.status == MemberStatus::Alive && addrs.get(id).map(|a| a != addr).unwrap_or(false) {
            tracing::info!(server = %m.name, %addr, "server address changed; updating raft membership");
            let mut nodes = BTreeMap::new();
            nodes.insert(*id, BasicNode::new(addr.clone()));
            raft.change_membership(openraft::ChangeMembers::SetNodes(nodes), false)
                .await
                .map_err(|e| AgentError::Raft(e.to_string()))?;
            return Ok(());
        }
    }
    // Alive servers that are not voters yet: add as learner, then promote.
    for (m, id, addr) in &servers {
        if m.status != MemberStatus::Alive || voters.contains(id) {
            continue;
        }
        tracing::info!(server = %m.name, "adding server to raft");
        if !all.contains(id) {
            raft.add_learner(*id, BasicNode::new(addr.clone()), true)
                .await
                .map_err(|e| AgentError::Raft(e.to_string()))?;
        }
        let mut new_voters = voters.clone();
        new_voters.insert(*id);
        raft.change_membership(new_voters, false)
            .await
            .map_err(|e| AgentError::Raft(e.to_string()))?;
        return Ok(()); // one change at a time; the loop comes back
    }
    // Servers that left, or failed while the others still form a quorum without them.
    let alive: BTreeSet<u64> = servers
        .iter()
        .filter(|(m, ..)| m.status == MemberStatus::Alive)
        .map(|(_, id, _)| *id)
        .collect();
    for (m, id, _) in &servers {
        let gone = match m.status {
            MemberStatus::Left => true,
            MemberStatus::Failed => {
                let remaining = voters.len().saturating_sub(1);
                let healthy = voters
                    .iter()
                    .filter(|v| alive.contains(v) && *v != id)
                    .count();
                remaining > 0 && healthy > remaining / 2
            }
            _ => false,
        };
        if gone && voters.contains(id) && *id != agent.raft_id {
            tracing::info!(server = %m.name, status = m.status.as_str(), "removing server from raft");
            let mut new_voters = voters.clone();
            new_voters.remove(id);
            raft.change_membership(new_voters, false)
                .await
                .map_err(|e| AgentError::Raft(e.to_string()))?;
            return Ok(());
        }
    }
    // Learners whose member is gone or unknown are dropped from the membership.
    let unknown: Vec<u64> = all
        .difference(&voters)
        .filter(|id| !alive.contains(id))
        .copied()
        .collect();
    if !unknown.is_empty() {
        raft.change_membership(
            openraft::ChangeMembers::RemoveNodes(unknown.into_iter().collect()),
            false,
        )
        .await
        .map_err(|e| AgentError::Raft(e.to_string()))?;
    }
    Ok(())
}

async fn reconcile_catalog(agent: &Agent, members: &[Member]) -> Result<(), AgentError> {
    for m in members
        .iter()
        .filter(|m| m.tags.get("dc").map(String::as_str) == Some(agent.datacenter.as_str()))
    {
        let (node, serf) = agent.read(|s| (s.node(&m.name), s.node_check(&m.name, SERF_CHECK_ID)));
        match m.status {
            MemberStatus::Alive | MemberStatus::Failed => {
                let (status, output) = if m.status == MemberStatus::Alive {
                    (HEALTH_PASSING, "Agent alive and reachable")
                } else {
                    (HEALTH_CRITICAL, "Agent not live or unreachable")
                };
                if serf.as_ref().map(|c| c.status == status).unwrap_or(false) {
                    continue;
                }
                let node_rec = node.clone().unwrap_or_else(|| Node {
                    id: m.tags.get("id").cloned().unwrap_or_default(),
                    node: m.name.clone(),
                    address: m.addr.ip().to_string(),
                    datacenter: agent.datacenter.clone(),
                    ..Default::default()
                });
                let check = HealthCheck {
                    node: m.name.clone(),
                    check_id: SERF_CHECK_ID.into(),
                    name: "Serf Health Status".into(),
                    status: status.into(),
                    output: output.into(),
                    ..Default::default()
                };
                let req = RegisterRequest {
                    node: node_rec,
                    service: None,
                    checks: vec![check],
                    skip_node_update: node.is_some(),
                };
                agent
                    .apply_checked(Command::Register(Box::new(req)))
                    .await?;
            }
            MemberStatus::Left => {
                if node.is_some() {
                    let req = DeregisterRequest {
                        node: m.name.clone(),
                        service_id: None,
                        check_id: None,
                    };
                    agent.apply_checked(Command::Deregister(req)).await?;
                }
            }
            MemberStatus::Leaving => {}
        }
    }
    Ok(())
}

impl RpcBackend for Agent {
    fn raft(&self) -> Option<&crate::raft::typ::Raft> {
        self.raft.as_ref()
    }

    async fn read_index(&self, consistent: bool) -> Result<u64, String> {
        let Some(raft) = &self.raft else {
            return Err("not a server".to_string());
        };
        if !self.is_leader() {
            return Err("not the leader".to_string());
        }
        if consistent {
            return self.linearizable_index().await;
        }
        let m = raft.metrics();
        let applied = m.borrow().last_applied.map(|l| l.index).unwrap_or(0);
        Ok(applied)
    }

    async fn apply_local(&self, cmd: Command) -> rpc::ForwardResult {
        let Some(raft) = &self.raft else {
            return rpc::ForwardResult::Failed("not a server".into());
        };
        if super::writes::batch_key(&cmd).is_some() {
            return self.writes.write(raft, &self.write_gate, cmd).await;
        }
        let _gate = self.write_gate.read().await;
        rpc::raft_write(raft, cmd).await
    }

    fn acl_resolve(&self, secret: &str) -> Option<crate::store::acl::Resolved> {
        self.acl_resolve_local(secret)
    }

    fn renew_session(&self, id: &str) -> Option<Session> {
        self.renew_session_local(id)
    }

    fn node_view(&self, node: &str) -> NodeView {
        self.read(|s| NodeView {
            node: s.node(node),
            services: s.node_services(node).1.map(|(_, v)| v).unwrap_or_default(),
            checks: s.node_checks(node).1,
        })
    }
}

impl Agent {
    /// Hand leadership to `target` (a voter's Raft id; None: the most up-to-date follower).
    /// openraft 0.9 has no transfer call, so this is done with its runtime switches: the
    /// other followers' election timers and this leader's heartbeats are paused until the
    /// followers' leader leases run out, then the target is told to start an election,
    /// which it wins with an up-to-date log. Everything is switched back on afterwards,
    /// whatever the outcome.
    pub async fn transfer_leadership(&self, target: Option<u64>) -> Result<u64, AgentError> {
        let raft = self
            .raft
            .as_ref()
            .ok_or_else(|| AgentError::BadRequest("not a server".into()))?;
        if !self.is_leader() {
            return Err(AgentError::BadRequest(
                "only the leader can transfer leadership".into(),
            ));
        }
        let (voters, addrs, last, matched, lease) = {
            let m = raft.metrics();
            let m = m.borrow();
            let mem = m.membership_config.membership();
            let voters: Vec<u64> = mem.voter_ids().collect();
            let addrs: BTreeMap<u64, String> =
                mem.nodes().map(|(id, n)| (*id, n.addr.clone())).collect();
            let matched: BTreeMap<u64, u64> = m
                .replication
                .as_ref()
                .map(|r| {
                    r.iter()
                        .map(|(id, l)| (*id, l.map(|l| l.index).unwrap_or(0)))
                        .collect()
                })
                .unwrap_or_default();
            let lease = Duration::from_millis(raft.config().election_timeout_max);
            (voters, addrs, m.last_log_index.unwrap_or(0), matched, lease)
        };
        let target = match target {
            Some(t) if t == self.raft_id => {
                return Err(AgentError::BadRequest(
                    "the target is already the leader".into(),
                ))
            }
            Some(t) if !voters.contains(&t) => {
                return Err(AgentError::BadRequest(format!("server {t} is not a voter")))
            }
            Some(t) => t,
            None => voters
                .iter()
                .filter(|v| **v != self.raft_id)
                .max_by_key(|v| matched.get(v).copied().unwrap_or(0))
                .copied()
                .ok_or_else(|| {
                    AgentError::BadRequest("no other voter to transfer leadership to".into())
                })?,
        };
        // Let the target catch up first.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let m = raft.metrics().borrow().clone();
            let t = m
                .replication
                .as_ref()
                .and_then(|r| r.get(&target).copied().flatten())
                .map(|l| l.index)
                .unwrap_or(0);
            if t >= last {
                break;
            }
            if std::time::Instant::now() > deadline {
                return Err(AgentError::Raft(format!(
                    "server {target} did not catch up with the leader"
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let others: Vec<String> = voters
            .iter()
            .filter(|v| **v != self.raft_id && **v != target)
            .filter_map(|v| addrs.get(v).cloned())
            .collect();
        let target_addr = addrs
            .get(&target)
            .cloned()
            .ok_or_else(|| AgentError::Raft("target has no address".into()))?;
        // Hold new writes back (they wait, then go to the new leader) so no append
        // renews the followers' leader leases while the transfer runs.
        let gate = self.write_gate.write().await;
        for a in &others {
            let _ = rpc::client::elect_timer(&self.http_client, a, false).await;
        }
        raft.runtime_config().heartbeat(false);
        raft.runtime_config().elect(false);
        // A vote can still be refused (a lease renewed just before the pause, a slow
        // timer); try a few times before giving up.
        let mut new_leader = None;
        for _ in 0..5 {
            tokio::time::sleep(lease + Duration::from_millis(100)).await;
            let _ = rpc::client::elect_now(&self.http_client, &target_addr).await;
            let deadline = std::time::Instant::now() + lease * 2 + Duration::from_millis(500);
            while std::time::Instant::now() < deadline {
                if let Some((id, _)) = self.leader().filter(|(id, _)| *id != self.raft_id) {
                    new_leader = Some(id);
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            if new_leader.is_some() {
                break;
            }
        }
        raft.runtime_config().heartbeat(true);
        raft.runtime_config().elect(true);
        drop(gate);
        for a in &others {
            let _ = rpc::client::elect_timer(&self.http_client, a, true).await;
        }
        match new_leader {
            Some(id) => Ok(id),
            None => Err(AgentError::Raft(
                "leadership transfer did not complete; this server stays leader".into(),
            )),
        }
    }
}

/// How long KV tombstones are kept (Consul: 15 minutes); `PRAETOR_TOMBSTONE_TTL` (a Go
/// duration) shortens it for tests.
fn tombstone_ttl() -> Duration {
    std::env::var("PRAETOR_TOMBSTONE_TTL")
        .ok()
        .and_then(|s| crate::types::parse_duration(&s).ok())
        .unwrap_or(Duration::from_secs(15 * 60))
}

/// On the leader: remember the KV index over time and reap the tombstones older than the
/// TTL through the log (Consul's tombstone GC).
async fn tombstone_gc_loop(agent: Arc<Agent>) {
    let ttl = tombstone_ttl();
    let tick = (ttl / 8).clamp(Duration::from_millis(100), Duration::from_secs(30));
    let mut samples: std::collections::VecDeque<(std::time::Instant, u64)> = Default::default();
    let mut shutdown = agent.shutdown.subscribe();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = shutdown.changed() => return,
        }
        if !agent.is_leader() {
            samples.clear();
            continue;
        }
        let now = std::time::Instant::now();
        samples.push_back((now, agent.read(|s| s.max_index(&["kvs"]))));
        let mut upto = None;
        while let Some((t, i)) = samples.front().copied() {
            if now.duration_since(t) < ttl {
                break;
            }
            upto = Some(i);
            samples.pop_front();
        }
        let Some(upto) = upto else { continue };
        let oldest = agent.read(|s| s.kv_oldest_tombstone());
        if oldest.map(|o| o <= upto).unwrap_or(false) {
            if let Err(e) = agent.apply_checked(Command::ReapTombstones { upto }).await {
                tracing::warn!(error = %e, "tombstone GC failed");
            }
        }
    }
}

/// Push this node's LAN coordinate into the catalog when it has moved (Consul's
/// `Coordinate.Update`, rate limited).
async fn coordinate_loop(agent: Arc<Agent>) {
    let Some(g) = agent.gossip.clone() else {
        return;
    };
    let mut shutdown = agent.shutdown.subscribe();
    let mut last: Option<crate::types::Coordinate> = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = shutdown.changed() => return,
        }
        let c = g.coordinate();
        let moved = match &last {
            None => !g.peer_coordinates().is_empty(),
            Some(l) => {
                l.distance_to(&c) > Duration::from_micros(50) || (l.error - c.error).abs() > 0.05
            }
        };
        if !moved {
            continue;
        }
        let cmd = Command::CoordinateUpdate {
            node: agent.node_name.clone(),
            coord: c.clone(),
        };
        match agent.apply_checked(cmd).await {
            Ok(_) => last = Some(c),
            Err(e) => tracing::debug!(error = %e, "coordinate update failed"),
        }
    }
}
