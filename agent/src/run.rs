//! `praetor agent`: parse flags, load the configuration, start the agent and its
//! listeners, print the banner, and run until a signal or `leave`.

use crate::agent::Agent;
use crate::config::{self, AgentFlags, RuntimeConfig};
use std::sync::Arc;
use tracing_subscriber::EnvFilter;

fn init_logging(cfg: &RuntimeConfig) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let level = match cfg.log_level.to_lowercase().as_str() {
        "trace" => "trace",
        "debug" => "debug",
        "warn" | "warning" => "warn",
        "err" | "error" => "error",
        _ => "info",
    };
    let filter = EnvFilter::try_from_env("PRAETOR_LOG").unwrap_or_else(|_| {
        EnvFilter::new(format!("{level},openraft=warn,hyper=warn,reqwest=warn"))
    });
    // The monitor layer sees events only while a monitor is attached (and at its level); the
    // console layer filters with the agent's own level.
    let registry = tracing_subscriber::registry()
        .with(crate::monitor::MonitorLayer.with_filter(crate::monitor::MonitorFilter));
    let _ = if cfg.log_json {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_target(false)
                    .with_filter(filter),
            )
            .try_init()
    } else {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_target(false)
                    .with_filter(filter),
            )
            .try_init()
    };
}

/// Entry point of `praetor agent`; returns the exit code.
pub fn agent_main(args: &[String]) -> i32 {
    let flags = match AgentFlags::parse(args) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    let cfg = match config::load(&flags) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("==> {e}");
            return 1;
        }
    };
    init_logging(&cfg);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("==> Error starting runtime: {e}");
            return 1;
        }
    };
    rt.block_on(run(cfg))
}

fn http_bind(cfg: &RuntimeConfig) -> Option<String> {
    if cfg.ports.http < 0 {
        return None;
    }
    let ip = cfg
        .addresses
        .http
        .clone()
        .unwrap_or_else(|| cfg.client_addr.clone());
    Some(format!("{ip}:{}", cfg.ports.http))
}

async fn run(cfg: RuntimeConfig) -> i32 {
    if let Some(p) = &cfg.pid_file {
        if let Err(e) = std::fs::write(p, std::process::id().to_string()) {
            eprintln!("==> Error writing pid file {}: {e}", p.display());
            return 1;
        }
    }
    let http_listener = match http_bind(&cfg) {
        None => None,
        Some(addr) => match tokio::net::TcpListener::bind(&addr).await {
            Ok(l) => Some(l),
            Err(e) => {
                eprintln!("==> Error starting agent: binding HTTP listener on {addr}: {e}");
                return 1;
            }
        },
    };
    let tls = crate::tls::AgentTls::from_config(&cfg);
    let https = if cfg.ports.https >= 0 {
        let ip = cfg
            .addresses
            .https
            .clone()
            .unwrap_or_else(|| cfg.client_addr.clone());
        let addr = crate::config::join_host_port(&ip, cfg.ports.https);
        let conf = match tls.https.server_config("ports.https") {
            Ok(c) => c,
            Err(e) => {
                eprintln!("==> Error starting agent: HTTPS: {e}");
                return 1;
            }
        };
        match tokio::net::TcpListener::bind(&addr).await {
            Ok(l) => Some((l, conf)),
            Err(e) => {
                eprintln!("==> Error starting agent: binding HTTPS listener on {addr}: {e}");
                return 1;
            }
        }
    } else {
        None
    };
    let rpc_tls = if cfg.server && tls.rpc_listener_tls() {
        match tls
            .rpc
            .server_config("verify_incoming/verify_outgoing on internal RPC")
        {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("==> Error starting agent: internal RPC TLS: {e}");
                return 1;
            }
        }
    } else {
        None
    };
    println!("==> Starting Praetor agent...");
    let agent: Arc<Agent> = match Agent::start(cfg.clone()).await {
        Ok(a) => a,
        Err(e) => {
            eprintln!("==> Error starting agent: {e}");
            return 1;
        }
    };
    let http_addr = http_listener.as_ref().and_then(|l| l.local_addr().ok());
    let dns_addr = if cfg.ports.dns >= 0 {
        let ip = cfg
            .addresses
            .dns
            .clone()
            .unwrap_or_else(|| cfg.client_addr.clone());
        let addr = crate::config::join_host_port(&ip, cfg.ports.dns);
        let settings = crate::dns::DnsSettings::from_config(&cfg);
        match crate::dns::serve(agent.clone(), settings, &addr, agent.shutdown.subscribe()).await {
            Ok(a) => Some(a),
            Err(e) => {
                eprintln!("==> Error starting agent: binding DNS on {addr}: {e}");
                agent.shutdown().await;
                return 1;
            }
        }
    } else {
        None
    };
    let https_addr = https.as_ref().and_then(|(l, _)| l.local_addr().ok());
    print_banner(&agent, &cfg, [http_addr, https_addr], dns_addr);
    if let Some((l, conf)) = https {
        let router = crate::http::router(agent.clone());
        let stop = agent.shutdown.subscribe();
        let limit = crate::http::limits::http_conn_limit(&agent);
        tokio::spawn(async move {
            if let Err(e) = crate::http::serve_tls(l, conf, router, Some(limit), stop).await {
                tracing::error!(error = %e, "HTTPS server failed");
            }
        });
    }
    if let Some(l) = agent.take_rpc_listener() {
        let router = crate::rpc::router(agent.clone()).merge(crate::http::router(agent.clone()));
        let stop = agent.shutdown.subscribe();
        tokio::spawn(async move {
            let r = match rpc_tls {
                // Not counted per client: servers and client agents reach this port
                // through pools of HTTP/1.1 connections (one per request in flight), not
                // through one multiplexed connection as Consul's RPC, so Consul's
                // `rpc_max_conns_per_client` of 100 would refuse forwarded load.
                Some(conf) => crate::http::serve_tls(l, conf, router, None, stop).await,
                // As for the HTTP listener: no per-connection rebuild of the routes.
                None => axum::serve(l, router.into_make_service()).await,
            };
            if let Err(e) = r {
                tracing::error!(error = %e, "server RPC listener failed");
            }
        });
    }
    if let Some(l) = http_listener {
        let a = agent.clone();
        tokio::spawn(crate::http::serve(a, l));
    }
    let code = wait_for_exit(&agent).await;
    agent.shutdown().await;
    if let Some(p) = &cfg.pid_file {
        let _ = std::fs::remove_file(p);
    }
    code
}

fn print_banner(
    agent: &Agent,
    cfg: &RuntimeConfig,
    [http, https]: [Option<std::net::SocketAddr>; 2],
    dns: Option<std::net::SocketAddr>,
) {
    let p = &cfg.ports;
    println!(
        "              Version: '{}' (Praetor {})",
        crate::CONSUL_COMPAT_VERSION,
        env!("CARGO_PKG_VERSION")
    );
    println!("              Node ID: '{}'", agent.node_id);
    println!("            Node name: '{}'", agent.node_name);
    println!(
        "           Datacenter: '{}' (Segment: '<all>')",
        agent.datacenter
    );
    println!(
        "               Server: {} (Bootstrap: {})",
        cfg.server,
        cfg.bootstrap || cfg.bootstrap_expect == 1
    );
    println!(
        "          Client Addr: [{}] (HTTP: {}, HTTPS: {}, gRPC: {}, DNS: {})",
        cfg.client_addr,
        http.map(|a| a.port() as i32).unwrap_or(p.http),
        https.map(|a| a.port() as i32).unwrap_or(p.https),
        p.grpc,
        dns.map(|a| a.port() as i32).unwrap_or(p.dns)
    );
    println!(
        "         Cluster Addr: {} (LAN: {}, WAN: {})",
        agent.rpc_addr.ip(),
        p.serf_lan,
        p.serf_wan
    );
    let tls = crate::tls::AgentTls::from_config(cfg);
    println!(
        "              Encrypt: Gossip: {}, TLS-Outgoing: {}, TLS-Incoming: {}",
        cfg.encrypt.is_some(),
        tls.rpc.verify_outgoing,
        tls.rpc.verify_incoming
    );
    println!();
    if let Some(a) = dns {
        println!("==> DNS listening on {a} (udp and tcp)");
    }
    if let Some(a) = http {
        println!("==> HTTP API listening on http://{a}");
    }
    if let Some(a) = https {
        println!("==> HTTPS API listening on https://{a}");
    }
    if agent.is_server() {
        println!("==> Server RPC listening on {}", agent.rpc_addr);
    }
    // WAN first: the test harness reads up to the LAN line.
    if let Some(g) = agent.wan() {
        println!("==> Serf WAN listening on {}", g.local_addr);
    }
    if let Some(g) = agent.gossip() {
        println!("==> Serf LAN listening on {}", g.local_addr);
    }
    println!("==> Log data will now stream in as it occurs:");
    println!();
    use std::io::Write;
    let _ = std::io::stdout().flush();
}

async fn wait_for_exit(agent: &Arc<Agent>) -> i32 {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        eprintln!("==> Error installing signal handlers");
        return 1;
    };
    let mut left = agent.shutdown.subscribe();
    loop {
        tokio::select! {
            _ = int.recv() => { println!("==> Caught signal: interrupt"); return 0; }
            _ = term.recv() => { println!("==> Caught signal: terminated"); return 0; }
            _ = hup.recv() => {
                println!("==> Caught signal: hangup");
                if let Err(e) = agent.reload().await {
                    eprintln!("==> Failed to reload configs: {e}");
                } else {
                    println!("==> Reloaded configuration");
                }
            }
            _ = left.changed() => {
                if *left.borrow() {
                    println!("==> Graceful leave complete");
                    return 0;
                }
            }
        }
    }
}
