//! The HTTP API (Consul's `/v1/...`), served with axum. One route table; each handler
//! parses its request, calls the agent facade, and answers with Consul's field names,
//! status codes and headers (`X-Consul-Index`, `X-Consul-KnownLeader`,
//! `X-Consul-LastContact`, `X-Consul-Effective-Consistency`).

pub mod acl;
mod agent_ep;
pub(crate) mod catalog;
mod coordinate;
pub mod error;
mod event;
pub mod filter;
mod health;
mod keyring;
mod kv;
pub mod limits;
mod operator;
pub mod params;
mod plain_serve;
mod proxy;
mod query;
mod session;
mod snapshot;
mod status;
mod telemetry;
mod tls_serve;
pub(crate) mod txn;
mod ui;

use crate::agent::Agent;
use crate::store::{Store, Topic};
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, put};
use axum::Router;
pub use error::ApiError;
use params::QueryOptions;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
pub use tls_serve::serve_tls;
use tokio::time::Instant;

/// Shared handler state.
pub type AppState = Arc<Agent>;

/// Handler result.
pub type ApiResult = Result<Response, ApiError>;

/// Largest request body accepted (KV values are limited separately to 512 KiB).
const MAX_BODY: usize = 8 * 1024 * 1024;

/// The route table.
pub fn router(agent: Arc<Agent>) -> Router {
    Router::new()
        // KV
        .route_service("/v1/kv", kv::KvService(agent.clone()))
        .route_service("/v1/kv/", kv::KvService(agent.clone()))
        .route_service("/v1/kv/{*key}", kv::KvService(agent.clone()))
        // catalog
        .route("/v1/catalog/register", put(catalog::register))
        .route("/v1/catalog/deregister", put(catalog::deregister))
        .route("/v1/catalog/datacenters", get(catalog::datacenters))
        .route("/v1/catalog/nodes", get(catalog::nodes))
        .route("/v1/catalog/services", get(catalog::services))
        .route("/v1/catalog/service/{*name}", get(catalog::service))
        .route("/v1/catalog/node/{*node}", get(catalog::node))
        .route(
            "/v1/catalog/node-services/{*node}",
            get(catalog::node_services),
        )
        // health
        .route("/v1/health/node/{*node}", get(health::node))
        .route("/v1/health/checks/{*service}", get(health::checks))
        .route("/v1/health/service/{*service}", get(health::service))
        .route("/v1/health/state/{state}", get(health::state))
        // agent
        .route("/v1/agent/self", get(agent_ep::self_))
        .route("/v1/agent/metrics", get(telemetry::metrics))
        .route("/v1/agent/monitor", get(telemetry::monitor))
        .route("/v1/agent/members", get(agent_ep::members))
        .route("/v1/agent/services", get(agent_ep::services))
        .route(
            "/v1/agent/service/register",
            put(agent_ep::service_register),
        )
        .route(
            "/v1/agent/service/deregister/{*id}",
            put(agent_ep::service_deregister),
        )
        .route(
            "/v1/agent/service/maintenance/{*id}",
            put(agent_ep::service_maintenance),
        )
        .route("/v1/agent/service/{*id}", get(agent_ep::service))
        .route("/v1/agent/checks", get(agent_ep::checks))
        .route("/v1/agent/check/register", put(agent_ep::check_register))
        .route(
            "/v1/agent/check/deregister/{*id}",
            put(agent_ep::check_deregister),
        )
        .route("/v1/agent/check/pass/{*id}", put(agent_ep::check_pass))
        .route("/v1/agent/check/warn/{*id}", put(agent_ep::check_warn))
        .route("/v1/agent/check/fail/{*id}", put(agent_ep::check_fail))
        .route("/v1/agent/check/update/{*id}", put(agent_ep::check_update))
        .route("/v1/agent/maintenance", put(agent_ep::node_maintenance))
        .route("/v1/agent/reload", put(agent_ep::reload))
        .route("/v1/agent/leave", put(agent_ep::leave))
        .route("/v1/agent/join/{*addr}", put(agent_ep::join))
        .route("/v1/agent/force-leave/{*node}", put(agent_ep::force_leave))
        .route(
            "/v1/agent/health/service/name/{*name}",
            get(agent_ep::health_by_name),
        )
        .route(
            "/v1/agent/health/service/id/{*id}",
            get(agent_ep::health_by_id),
        )
        // sessions
        .route("/v1/session/create", put(session::create))
        .route("/v1/session/destroy/{id}", put(session::destroy))
        .route("/v1/session/renew/{id}", put(session::renew))
        .route("/v1/session/info/{id}", get(session::info))
        .route("/v1/session/node/{*node}", get(session::node))
        .route("/v1/session/list", get(session::list))
        // snapshots
        .route(
            "/v1/snapshot",
            get(snapshot::save)
                .put(snapshot::restore)
                .layer(DefaultBodyLimit::max(snapshot::MAX_SNAPSHOT)),
        )
        // events
        .route("/v1/event/fire/{*name}", put(event::fire))
        .route("/v1/event/list", get(event::list))
        // network coordinates
        .route("/v1/coordinate/nodes", get(coordinate::nodes))
        .route("/v1/coordinate/node/{*node}", get(coordinate::node))
        .route("/v1/coordinate/datacenters", get(coordinate::datacenters))
        // prepared queries
        .route("/v1/query", get(query::list).post(query::create))
        .route(
            "/v1/query/{id}",
            get(query::get).put(query::update).delete(query::delete),
        )
        .route("/v1/query/{id}/execute", get(query::execute))
        .route("/v1/query/{id}/explain", get(query::explain))
        // ACLs
        .route("/v1/acl/bootstrap", put(acl::bootstrap))
        .route("/v1/acl/token/self", get(acl::token_self))
        .route("/v1/acl/token", put(acl::token))
        .route("/v1/acl/token/{*id}", any(acl::token))
        .route("/v1/acl/tokens", get(acl::token_list))
        .route("/v1/acl/policy", put(acl::policy))
        .route("/v1/acl/policy/name/{*name}", get(acl::policy_by_name))
        .route("/v1/acl/policy/{*id}", any(acl::policy))
        .route("/v1/acl/policies", get(acl::policy_list))
        .route("/v1/acl/role", put(acl::role))
        .route("/v1/acl/role/name/{*name}", get(acl::role_by_name))
        .route("/v1/acl/role/{*id}", any(acl::role))
        .route("/v1/acl/roles", get(acl::role_list))
        // gossip keyring
        .route("/v1/operator/keyring", any(keyring::keyring))
        // transactions
        .route("/v1/txn", put(txn::txn))
        // operator
        .route(
            "/v1/operator/raft/configuration",
            get(operator::configuration),
        )
        .route(
            "/v1/operator/raft/peer",
            axum::routing::delete(operator::remove_peer),
        )
        .route(
            "/v1/operator/raft/transfer-leader",
            axum::routing::post(operator::transfer_leader).put(operator::transfer_leader),
        )
        // status
        .route("/v1/status/leader", get(status::leader))
        .route("/v1/status/peers", get(status::peers))
        // web UI
        .route("/ui", get(ui::redirect))
        .route("/ui/", get(ui::index))
        .route("/ui/{*rest}", get(ui::index))
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        // One layer (each `Router::layer` boxes every request's future once more).
        .layer(tower_layer::Stack::new(
            FrontLayer(agent.clone()),
            DefaultBodyLimit::max(MAX_BODY),
        ))
        .with_state(agent)
}

/// Everything before the handlers, in one layer: an oversized declared body is refused,
/// the call is timed, forwarded when another agent answers it, else authorized (ACLs) and
/// handled here. Written as a service rather than `middleware::from_fn`, whose boxed
/// future (about 1.4 KiB) every parked blocking query would hold: a local request with
/// ACLs off is passed on with its timer only ([`FrontFuture::Timed`]).
#[derive(Clone)]
struct FrontLayer(AppState);

impl<S> tower_layer::Layer<S> for FrontLayer {
    type Service = Front<S>;

    fn layer(&self, inner: S) -> Front<S> {
        Front {
            agent: self.0.clone(),
            inner,
        }
    }
}

#[derive(Clone)]
struct Front<S> {
    agent: AppState,
    inner: S,
}

pin_project_lite::pin_project! {
    /// The future of [`Front`].
    #[project = FrontProj]
    enum FrontFuture<F> {
        /// Answered before the handlers.
        Done { resp: Option<Response> },
        /// A local request already authorized: the handler's future and the call's timer.
        Timed { #[pin] fut: F, metric: String, started: std::time::Instant },
        /// Forwarding, or authorizing first.
        Boxed { fut: futures_util::future::BoxFuture<'static, Response> },
    }
}

impl<F> std::future::Future for FrontFuture<F>
where
    F: std::future::Future<Output = Result<Response, std::convert::Infallible>>,
{
    type Output = Result<Response, std::convert::Infallible>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        use std::task::Poll;
        match self.project() {
            FrontProj::Done { resp } => Poll::Ready(Ok(resp
                .take()
                .unwrap_or_else(|| ApiError::internal("response polled twice").into_response()))),
            FrontProj::Timed {
                fut,
                metric,
                started,
            } => match fut.poll(cx) {
                Poll::Ready(r) => {
                    telemetry::record(metric, *started);
                    Poll::Ready(r)
                }
                Poll::Pending => Poll::Pending,
            },
            FrontProj::Boxed { fut } => fut.as_mut().poll(cx).map(Ok),
        }
    }
}

impl<S> tower_service::Service<axum::extract::Request> for Front<S>
where
    S: tower_service::Service<
            axum::extract::Request,
            Response = Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = FrontFuture<S::Future>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: axum::extract::Request) -> Self::Future {
        if let Some(refused) = limits::oversized_declared_body(&req) {
            return FrontFuture::Done {
                resp: Some(refused),
            };
        }
        let started = std::time::Instant::now();
        let metric = telemetry::metric_name(&req);
        let agent = self.agent.clone();
        match proxy::route(&agent, &mut req) {
            proxy::Route::Reply(r) => {
                telemetry::record(&metric, started);
                FrontFuture::Done { resp: Some(r) }
            }
            proxy::Route::Forward(targets) => FrontFuture::Boxed {
                fut: Box::pin(async move {
                    let r = match proxy::forward(targets, req).await {
                        Ok(r) => r,
                        Err(e) => e.into_response(),
                    };
                    telemetry::record(&metric, started);
                    r
                }),
            },
            proxy::Route::Local if acl::allow_all(&agent, &mut req) => FrontFuture::Timed {
                fut: self.inner.call(req),
                metric,
                started,
            },
            proxy::Route::Local => {
                // The clone is ready (the routes always are); this one stays for the next.
                let ready = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, ready);
                FrontFuture::Boxed {
                    fut: Box::pin(async move {
                        let r = match acl::authorize(&agent, &mut req).await {
                            Ok(()) => match inner.call(req).await {
                                Ok(r) => r,
                                Err(never) => match never {},
                            },
                            Err(r) => r,
                        };
                        telemetry::record(&metric, started);
                        r
                    }),
                }
            }
        }
    }
}

async fn fallback(method: Method, uri: axum::http::Uri) -> Response {
    if uri.path() == "/" {
        return (StatusCode::MOVED_PERMANENTLY, [("Location", "/ui/")]).into_response();
    }
    ApiError::not_found(format!("Not found: {method} {}", uri.path())).into_response()
}

async fn method_not_allowed(method: Method) -> Response {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("method {method} not allowed"),
    )
    .into_response()
}

/// Serve the API on a bound listener until the agent shuts down, then let open connections
/// finish. Connections go through [`limits::LimitedListener`]: Consul's per-client
/// connection limit and a request-header deadline.
pub async fn serve(agent: Arc<Agent>, listener: tokio::net::TcpListener) {
    let mut rx = agent.shutdown.subscribe();
    let listener = limits::LimitedListener::new(
        listener,
        limits::http_conn_limit(&agent),
        limits::header_timeout_from_env(),
    );
    // Each connection gets a clone of the router (given the `Router` itself as a
    // make-service, axum re-applied its state to every route for each new connection:
    // about 43 KiB and the CPU to rebuild the route table).
    plain_serve::serve(listener, router(agent), async move {
        let _ = rx.wait_for(|v| *v).await;
    })
    .await
}

/// Serialize a body as JSON (indented with `?pretty`).
pub fn json_body<T: Serialize>(v: &T, pretty: bool) -> Result<Vec<u8>, ApiError> {
    let r = if pretty {
        serde_json::to_vec_pretty(v)
    } else {
        serde_json::to_vec(v)
    };
    r.map_err(|e| ApiError::internal(format!("encoding response: {e}")))
}

/// A plain JSON response with no index metadata (writes).
pub fn json<T: Serialize>(v: &T) -> ApiResult {
    let body = json_body(v, false)?;
    Ok(([("Content-Type", "application/json")], body).into_response())
}

/// Add the read-metadata headers to a response.
pub fn with_meta(agent: &Agent, mut resp: Response, index: u64, q: &QueryOptions) -> Response {
    let h = resp.headers_mut();
    h.insert("X-Consul-Index", HeaderValue::from(index.max(1)));
    h.insert(
        "X-Consul-KnownLeader",
        HeaderValue::from_static(if agent.leader().is_some() {
            "true"
        } else {
            "false"
        }),
    );
    h.insert(
        "X-Consul-LastContact",
        HeaderValue::from(agent.last_contact_ms()),
    );
    h.insert(
        "X-Consul-Effective-Consistency",
        HeaderValue::from_static(q.consistency.as_str()),
    );
    resp
}

/// The JSON body of a read: `?filter=` applied to list results, indented with `?pretty`.
pub fn read_body<T: Serialize>(v: &T, q: &QueryOptions) -> Result<Vec<u8>, ApiError> {
    match &q.filter {
        None => json_body(v, q.pretty),
        Some(e) => {
            let val = serde_json::to_value(v)
                .map_err(|e| ApiError::internal(format!("encoding response: {e}")))?;
            json_body(&filter::apply(e, val), q.pretty)
        }
    }
}

/// Serialized answers of hot list reads (`/v1/health/service/<name>`), by agent, request
/// and token: (store generation, index, body, filtered by ACLs). A hit needs the store's
/// generation to be the one the body was computed at, so any write invalidates it.
type ReadCache = Mutex<HashMap<String, (u64, u64, bytes::Bytes, bool)>>;
static READ_CACHE: LazyLock<ReadCache> = LazyLock::new(Default::default);
const READ_CACHE_ENTRIES: usize = 4096;

/// The cache key of a non-blocking read that may be answered from [`READ_CACHE`].
pub fn read_cache_key(agent: &Agent, p: &params::Params, q: &QueryOptions) -> Option<String> {
    (q.index == 0 && q.consistency != crate::agent::Consistency::Consistent).then(|| {
        format!(
            "{}\u{1e}{}\u{1e}{}",
            agent.node_id,
            p.canonical(),
            p.token().unwrap_or_default()
        )
    })
}

/// A cached answer still valid at the store's current generation.
pub fn read_cache_get(agent: &Agent, key: &str, q: &QueryOptions) -> Option<Response> {
    let generation = agent.read(|s| s.generation());
    let (idx, body, filtered) = {
        let c = READ_CACHE.lock().unwrap_or_else(|e| e.into_inner());
        let (g, idx, body, filtered) = c.get(key)?;
        if *g != generation {
            return None;
        }
        (*idx, body.clone(), *filtered)
    };
    let resp = ([("Content-Type", "application/json")], Body::from(body)).into_response();
    Some(acl::mark_filtered(with_meta(agent, resp, idx, q), filtered))
}

/// Answer a read with index metadata and remember the body, computed at `generation`.
pub fn read_cache_put<T: Serialize>(
    agent: &Agent,
    key: Option<String>,
    generation: u64,
    idx: u64,
    q: &QueryOptions,
    v: &T,
    filtered: bool,
) -> ApiResult {
    let body = bytes::Bytes::from(read_body(v, q)?);
    if let Some(k) = key {
        let mut c = READ_CACHE.lock().unwrap_or_else(|e| e.into_inner());
        if c.len() >= READ_CACHE_ENTRIES {
            c.clear();
        }
        c.insert(k, (generation, idx, body.clone(), filtered));
    }
    let resp = ([("Content-Type", "application/json")], Body::from(body)).into_response();
    Ok(acl::mark_filtered(with_meta(agent, resp, idx, q), filtered))
}

/// A JSON read response with index metadata.
pub fn indexed<T: Serialize>(agent: &Agent, index: u64, q: &QueryOptions, v: &T) -> ApiResult {
    let body = read_body(v, q)?;
    let resp = ([("Content-Type", "application/json")], Body::from(body)).into_response();
    Ok(with_meta(agent, resp, index, q))
}

/// A 404 read response that still carries index metadata (clients read the index on 404).
pub fn not_found_indexed(agent: &Agent, index: u64, q: &QueryOptions) -> ApiResult {
    let resp = (StatusCode::NOT_FOUND, "").into_response();
    Ok(with_meta(agent, resp, index, q))
}

/// Reject a `?dc=` naming another datacenter that reached a local handler (requests for
/// known datacenters are forwarded before they get here), with Consul's error.
pub fn check_dc(agent: &Agent, q: &QueryOptions) -> Result<(), ApiError> {
    match &q.dc {
        Some(dc) if dc != &agent.datacenter => Err(ApiError::internal("No path to datacenter")),
        _ => Ok(()),
    }
}

/// Run a read as a blocking query: when `?index=N` is given, wait (up to `?wait`) until the
/// result's index exceeds N or a watched topic fires with a changed result.
pub async fn blocking<T>(
    agent: &Agent,
    q: &QueryOptions,
    topics: Vec<Topic>,
    f: impl Fn(&Store) -> (u64, T),
) -> Result<(u64, T), ApiError> {
    check_dc(agent, q)?;
    // Boxed: the barrier may ask the leader over RPC, and its (large) future would
    // otherwise size every parked blocking query.
    Box::pin(agent.barrier(q.consistency)).await?;
    if q.index == 0 {
        return Ok(agent.read(&f));
    }
    let deadline = Instant::now() + agent.query_wait(q);
    let topics: Arc<[Topic]> = topics.into();
    let mut shutdown = agent.shutdown.subscribe();
    loop {
        let sub = agent.subscribe(topics.clone());
        {
            // Scoped so that a parked query does not hold the value it just read.
            let (idx, v) = agent.read(&f);
            if idx > q.index {
                return Ok((idx, v));
            }
        }
        tokio::select! {
            _ = sub.changed() => {}
            _ = tokio::time::sleep_until(deadline) => return Ok(agent.read(&f)),
            _ = shutdown.changed() => return Ok(agent.read(&f)),
        }
    }
}
