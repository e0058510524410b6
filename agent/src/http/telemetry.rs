//! `/v1/agent/metrics` (Consul's JSON, or `?format=prometheus`), `/v1/agent/monitor`
//! (streamed log lines), and the middleware timing every API call (`consul.api.http`).

use super::acl::Authz;
use super::params::Params;
use crate::acl::{Access, Resource};

use super::{ApiError, ApiResult, AppState};
use crate::monitor::{parse_level, Monitor};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::IntoResponse;
use std::time::Instant;

/// `GET /v1/agent/metrics`
pub async fn metrics(State(agent): State<AppState>, a: Authz, p: Params) -> ApiResult {
    a.check(Resource::Agent, &agent.node_name, Access::Read)?;
    crate::metrics::gauge(
        "consul.server.isLeader",
        if agent.is_leader() { 1.0 } else { 0.0 },
    );
    crate::metrics::gauge(
        "consul.rpc.queries_blocking",
        agent.hub().waiter_count() as f64,
    );
    crate::metrics::gauge(
        "consul.raft.last_contact_ms",
        agent.last_contact_ms() as f64,
    );
    if let Some(g) = agent.gossip() {
        let alive = g
            .members()
            .iter()
            .filter(|m| m.status == crate::gossip::MemberStatus::Alive)
            .count();
        crate::metrics::gauge("consul.serf.members.alive", alive as f64);
    }
    let (kv, nodes, services) = agent.read(|s| {
        let d = s.data();
        (
            d.kv.len(),
            d.nodes.len(),
            d.services.values().map(|m| m.len()).sum::<usize>(),
        )
    });
    crate::metrics::gauge("consul.state.kv_entries", kv as f64);
    crate::metrics::gauge("consul.state.nodes", nodes as f64);
    crate::metrics::gauge("consul.state.service_instances", services as f64);
    let wants_prom = p.get("format") == Some("prometheus")
        || p.accept
            .as_deref()
            .is_some_and(|a| a.contains("text/plain") && a.contains("version=0.0.4"));
    if wants_prom {
        return Ok((
            [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")],
            crate::metrics::to_prometheus(),
        )
            .into_response());
    }
    let q = p.query_options()?;
    let body = super::json_body(
        &crate::metrics::to_json(&crate::monitor::timestamp(), 10.0),
        q.pretty,
    )?;
    Ok(([("Content-Type", "application/json")], body).into_response())
}

/// `GET /v1/agent/monitor?loglevel=debug[&logjson]`: log lines until the client leaves.
pub async fn monitor(State(agent): State<AppState>, a: Authz, p: Params) -> ApiResult {
    a.check(Resource::Agent, &agent.node_name, Access::Read)?;
    let level = parse_level(p.get("loglevel").unwrap_or("info")).ok_or_else(|| {
        ApiError::bad_request(format!(
            "Unknown log level: {}",
            p.get("loglevel").unwrap_or("")
        ))
    })?;
    let json = p.has("logjson") && p.flag("logjson");
    let mon = Monitor::subscribe(level);
    tracing::info!("monitor attached at level {level}");
    let stream = futures_util::stream::unfold(mon, move |mut mon| async move {
        loop {
            match mon.rx.recv().await {
                Ok((l, line)) if mon.wants(&l) => {
                    let text = if json {
                        format!(
                            "{}\n",
                            serde_json::json!({"@level": l.to_string().to_lowercase(), "@message": line})
                        )
                    } else {
                        format!("{line}\n")
                    };
                    return Some((Ok::<_, std::io::Error>(text), mon));
                }
                Ok(_) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return None,
            }
        }
    });
    Ok((
        [("Content-Type", "text/plain; charset=utf-8")],
        Body::from_stream(stream),
    )
        .into_response())
}

/// Consul's per-endpoint timer name: `consul.http.<METHOD>.<first three path segments>`.
pub fn metric_name(req: &Request) -> String {
    let group: String = req
        .uri()
        .path()
        .trim_start_matches('/')
        .split('/')
        .take(3)
        .collect::<Vec<_>>()
        .join(".");
    format!("consul.http.{}.{group}", req.method())
}

/// Record an API call's time (Consul's `consul.api.http` and the per-endpoint timer).
pub fn record(name: &str, started: Instant) {
    let elapsed = started.elapsed();
    crate::metrics::sample("consul.api.http", elapsed);
    crate::metrics::sample(name, elapsed);
}
