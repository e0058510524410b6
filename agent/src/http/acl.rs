//! ACLs over HTTP: the middleware that resolves each request's token (`X-Consul-Token`,
//! `Authorization: Bearer`, `?token=`) into an [`Authorizer`] handlers ask, and the
//! `/v1/acl/...` endpoints (bootstrap, tokens, policies, roles) with Consul's texts.

use super::catalog::parse_body;
use super::params::Params;
use super::{blocking, indexed, json, ApiError, ApiResult, AppState};
use crate::acl::authz::Denied;
use crate::acl::{
    parse_rules, Access, AclPolicy, AclRole, AclToken, Authorizer, Link, Resource,
    GLOBAL_MANAGEMENT_ID,
};
use crate::agent::acl::AclError;
use crate::raft::Command;
use crate::store::acl::{POLICIES, ROLES, TOKENS};
use crate::store::{Store, Topic};
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::sync::Arc;

/// The request's authorizer (an extractor).
#[derive(Clone)]
pub struct Authz(pub Arc<Authorizer>);

impl std::ops::Deref for Authz {
    type Target = Authorizer;
    fn deref(&self) -> &Authorizer {
        &self.0
    }
}

impl Authz {
    /// The authorizer the front layer left in a request's parts.
    pub fn of(parts: &Parts) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Authz>()
            .cloned()
            .ok_or_else(|| ApiError::internal("request was not authorized"))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Authz {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Authz::of(parts)
    }
}

impl From<Denied> for ApiError {
    fn from(d: Denied) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, d.to_string())
    }
}

impl From<AclError> for ApiError {
    fn from(e: AclError) -> Self {
        match e {
            AclError::NotFound => ApiError::new(StatusCode::FORBIDDEN, "ACL not found"),
            AclError::Unavailable(m) => ApiError::internal(m),
        }
    }
}

/// With ACLs disabled, authorize the request at once (allow all) and say so; `false` when
/// ACLs are on and [`authorize`] must resolve the token.
pub fn allow_all(agent: &AppState, req: &mut Request) -> bool {
    if agent.acl_enabled() {
        return false;
    }
    req.extensions_mut().insert(Authz(ALLOW_ALL.clone()));
    true
}

/// Resolve the request's token once and keep the authorizer in its extensions (requests a
/// client agent forwards are authorized by the server); the refusal when it is unknown.
pub async fn authorize(agent: &AppState, req: &mut Request) -> Result<(), Response> {
    if allow_all(agent, req) {
        return Ok(());
    }
    let token = super::params::token_from(req.headers(), req.uri().query());
    // Boxed: resolution may call a server, and this future is part of every request's.
    match Box::pin(agent.authorize(token.as_deref())).await {
        Ok(a) => {
            req.extensions_mut().insert(Authz(a));
            Ok(())
        }
        Err(e) => Err(ApiError::from(e).into_response()),
    }
}

/// The authorizer of every request while ACLs are disabled.
static ALLOW_ALL: std::sync::LazyLock<Arc<Authorizer>> =
    std::sync::LazyLock::new(|| Arc::new(Authorizer::allow_all()));

/// Mark a list response as filtered by ACLs (Consul's header), when it was.
pub fn mark_filtered(mut resp: Response, filtered: bool) -> Response {
    if filtered {
        resp.headers_mut().insert(
            "X-Consul-Results-Filtered-By-ACLs",
            axum::http::HeaderValue::from_static("true"),
        );
    }
    resp
}

/// Keep the items the authorizer lets the token see; whether any were dropped.
pub fn retain<T>(items: &mut Vec<T>, keep: impl Fn(&T) -> bool) -> bool {
    let before = items.len();
    items.retain(|x| keep(x));
    items.len() != before
}

/// A service instance is visible with read on its service and on its node.
pub fn instance_visible(a: &Authorizer, node: &str, service: &str) -> bool {
    a.allowed(Resource::Node, node, Access::Read)
        && a.allowed(Resource::Service, service, Access::Read)
}

fn disabled(agent: &AppState) -> Result<(), ApiError> {
    if agent.acl_enabled() {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "ACL support disabled",
        ))
    }
}

fn acl_read(a: &Authz) -> Result<(), ApiError> {
    Ok(a.check(Resource::Acl, "", Access::Read)?)
}

fn acl_write(a: &Authz) -> Result<(), ApiError> {
    Ok(a.check(Resource::Acl, "", Access::Write)?)
}

fn uuid_ok(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok() && s.len() == 36
}

fn name_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// A token as shown to a caller: the secret only with `acl:write`.
fn show_token(a: &Authz, mut t: AclToken) -> AclToken {
    if !a.allowed(Resource::Acl, "", Access::Write) {
        t.secret_id = "<hidden>".into();
    }
    t
}

fn resolve_policy_links(s: &Store, links: &[Link]) -> Result<Vec<Link>, String> {
    links
        .iter()
        .map(|l| {
            let (_, p) = if !l.id.is_empty() {
                s.acl_policy(Some(&l.id), None)
            } else {
                s.acl_policy(None, Some(&l.name))
            };
            p.map(|p| Link {
                id: p.id,
                name: p.name,
            })
            .ok_or_else(|| {
                format!(
                    "cannot find policy {}",
                    if l.id.is_empty() { &l.name } else { &l.id }
                )
            })
        })
        .collect()
}

fn resolve_role_links(s: &Store, links: &[Link]) -> Result<Vec<Link>, String> {
    links
        .iter()
        .map(|l| {
            let (_, r) = if !l.id.is_empty() {
                s.acl_role(Some(&l.id), None)
            } else {
                s.acl_role(None, Some(&l.name))
            };
            r.map(|r| Link {
                id: r.id,
                name: r.name,
            })
            .ok_or_else(|| {
                format!(
                    "cannot find role {}",
                    if l.id.is_empty() { &l.name } else { &l.id }
                )
            })
        })
        .collect()
}

fn decode<T: serde::de::DeserializeOwned + Default>(
    body: &Bytes,
    what: &str,
) -> Result<T, ApiError> {
    match parse_body(body)? {
        Value::Null => Ok(T::default()),
        v => serde_json::from_value(v)
            .map_err(|e| ApiError::bad_request(format!("{what} decoding failed: {e}"))),
    }
}

// ---- bootstrap ----

/// `PUT /v1/acl/bootstrap`
pub async fn bootstrap(State(agent): State<AppState>, body: Bytes) -> ApiResult {
    disabled(&agent)?;
    let req: Value = match parse_body(&body)? {
        Value::Null => json!({}),
        v => v,
    };
    let secret = match req.get("BootstrapSecret").and_then(Value::as_str) {
        Some(s) if !uuid_ok(s) => {
            return Err(ApiError::bad_request(
                "Invalid bootstrap secret: must be a UUID",
            ))
        }
        Some(s) => s.to_string(),
        None => uuid::Uuid::new_v4().to_string(),
    };
    let token = AclToken {
        accessor_id: uuid::Uuid::new_v4().to_string(),
        secret_id: secret,
        description: "Bootstrap Token (Global Management)".into(),
        policies: vec![Link {
            id: GLOBAL_MANAGEMENT_ID.into(),
            name: crate::acl::GLOBAL_MANAGEMENT_NAME.into(),
        }],
        create_time: crate::acl::now_rfc3339(),
        ..Default::default()
    };
    match agent
        .apply_checked(Command::AclBootstrap(Box::new(token.clone())))
        .await
    {
        Err(crate::agent::AgentError::Store(e @ crate::store::StoreError::AclBootstrapDone(_))) => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!("Permission denied: {e}"),
            ))
        }
        Err(e) => return Err(e.into()),
        Ok(_) => {}
    }
    let (_, stored) = agent.read(|s| s.acl_token(&token.accessor_id));
    let stored = stored.ok_or_else(|| ApiError::internal("bootstrap token vanished"))?;
    let mut v = serde_json::to_value(&stored).map_err(|e| ApiError::internal(e.to_string()))?;
    v["ID"] = json!(stored.secret_id);
    json(&v)
}

// ---- tokens ----

/// `GET /v1/acl/token/self`
pub async fn token_self(State(agent): State<AppState>, p: Params) -> ApiResult {
    disabled(&agent)?;
    let q = p.query_options()?;
    let secret = agent.effective_secret(p.token().as_deref());
    let (idx, t) = agent.read(|s| s.acl_token_by_secret(&secret));
    match t {
        Some(t) => indexed(&agent, idx, &q, &t),
        None => Err(ApiError::new(StatusCode::FORBIDDEN, "ACL not found")),
    }
}

/// `GET /v1/acl/tokens`
pub async fn token_list(State(agent): State<AppState>, a: Authz, p: Params) -> ApiResult {
    disabled(&agent)?;
    acl_read(&a)?;
    let q = p.query_options()?;
    let policy = p.get("policy").map(str::to_string);
    let role = p.get("role").map(str::to_string);
    let (idx, v) = blocking(&agent, &q, vec![Topic::Table(TOKENS)], |s| {
        s.acl_tokens(policy.as_deref(), role.as_deref())
    })
    .await?;
    let v: Vec<AclToken> = v.into_iter().map(|t| show_token(&a, t)).collect();
    indexed(&agent, idx, &q, &v)
}

fn accessor_of(p: &Params) -> String {
    p.rest("/v1/acl/token/")
        .trim_end_matches("/clone")
        .to_string()
}

/// `GET|PUT|DELETE /v1/acl/token/<accessor>`, `PUT /v1/acl/token` and `.../clone`.
pub async fn token(
    State(agent): State<AppState>,
    a: Authz,
    method: axum::http::Method,
    p: Params,
    body: Bytes,
) -> ApiResult {
    disabled(&agent)?;
    let id = accessor_of(&p);
    let clone = p.path.ends_with("/clone");
    match method.as_str() {
        "GET" => {
            if id.is_empty() {
                return Err(ApiError::bad_request("Missing token AccessorID"));
            }
            let shown = |s: &Store| {
                let (i, t) = s.acl_token(&id);
                (i, t.map(|t| show_token(&a, t)))
            };
            read_one(&agent, &a, &p, TOKENS, "token", shown).await
        }
        "PUT" if clone => {
            acl_write(&a)?;
            let req: AclToken = decode(&body, "Token")?;
            let (_, src) = agent.read(|s| s.acl_token(&id));
            let Some(mut t) = src else {
                return Err(ApiError::not_found("Cannot find token to clone"));
            };
            t.accessor_id = uuid::Uuid::new_v4().to_string();
            t.secret_id = uuid::Uuid::new_v4().to_string();
            if !req.description.is_empty() {
                t.description = req.description;
            }
            t.create_time = crate::acl::now_rfc3339();
            write_token(&agent, &a, t).await
        }
        "PUT" => {
            acl_write(&a)?;
            let mut req: AclToken = decode(&body, "Token")?;
            let create = id.is_empty();
            if create {
                if !req.accessor_id.is_empty() {
                    if !uuid_ok(&req.accessor_id) {
                        return Err(ApiError::bad_request(
                            "Invalid Token: AccessorID must be a UUID",
                        ));
                    }
                    if agent.read(|s| s.acl_token(&req.accessor_id).1).is_some() {
                        return Err(ApiError::bad_request(
                            "Invalid Token: AccessorID is already in use",
                        ));
                    }
                } else {
                    req.accessor_id = uuid::Uuid::new_v4().to_string();
                }
                if req.secret_id.is_empty() {
                    req.secret_id = uuid::Uuid::new_v4().to_string();
                } else if !uuid_ok(&req.secret_id) {
                    return Err(ApiError::bad_request(
                        "Invalid Token: SecretID must be a UUID",
                    ));
                }
                req.create_time = crate::acl::now_rfc3339();
            } else {
                if !req.accessor_id.is_empty() && req.accessor_id != id {
                    return Err(ApiError::bad_request(
                        "Token Accessor ID in URL and payload do not match",
                    ));
                }
                req.accessor_id = id.clone();
                let (_, old) = agent.read(|s| s.acl_token(&id));
                let Some(old) = old else {
                    return Err(ApiError::bad_request(format!("Cannot find token {id:?}")));
                };
                if !req.secret_id.is_empty() && req.secret_id != old.secret_id {
                    return Err(ApiError::bad_request(
                        "Changing a token's SecretID is not permitted",
                    ));
                }
                req.secret_id = old.secret_id;
                req.create_time = old.create_time;
            }
            write_token(&agent, &a, req).await
        }
        "DELETE" if id.is_empty() => Err(ApiError::bad_request("Missing token AccessorID")),
        "DELETE" => {
            if id == crate::acl::ANONYMOUS_ID {
                return Err(ApiError::bad_request(
                    "Delete operation not permitted on the anonymous token",
                ));
            }
            let cmd = Command::AclTokenDelete {
                accessor: id.clone(),
            };
            delete_one(&agent, &a, &id, "token", cmd).await
        }
        m => bad_method(m),
    }
}

async fn write_token(agent: &AppState, a: &Authz, mut t: AclToken) -> ApiResult {
    let links = agent.read(|s| {
        Ok::<_, String>((
            resolve_policy_links(s, &t.policies)?,
            resolve_role_links(s, &t.roles)?,
        ))
    });
    let (policies, roles) = links.map_err(ApiError::bad_request)?;
    t.policies = policies;
    t.roles = roles;
    for si in &t.service_identities {
        if si.service_name.is_empty() {
            return Err(ApiError::bad_request(
                "Service identity is missing the service name field on this token",
            ));
        }
    }
    for ni in &t.node_identities {
        if ni.node_name.is_empty() {
            return Err(ApiError::bad_request(
                "Node identity is missing the node name field on this token",
            ));
        }
    }
    let id = t.accessor_id.clone();
    agent
        .apply_checked(Command::AclTokenSet(Box::new(t)))
        .await?;
    let (_, stored) = agent.read(|s| s.acl_token(&id));
    match stored {
        Some(t) => json(&show_token(a, t)),
        None => Err(ApiError::internal("token vanished after write")),
    }
}

// ---- policies ----

fn policy_stub(p: &AclPolicy) -> Value {
    json!({
        "ID": p.id, "Name": p.name, "Description": p.description,
        "Datacenters": p.datacenters, "CreateIndex": p.create_index,
        "ModifyIndex": p.modify_index,
    })
}

/// `GET /v1/acl/policies`
pub async fn policy_list(State(agent): State<AppState>, a: Authz, p: Params) -> ApiResult {
    disabled(&agent)?;
    acl_read(&a)?;
    let q = p.query_options()?;
    let (idx, v) = blocking(&agent, &q, vec![Topic::Table(POLICIES)], |s| {
        s.acl_policies()
    })
    .await?;
    let v: Vec<Value> = v.iter().map(policy_stub).collect();
    indexed(&agent, idx, &q, &v)
}

/// `GET /v1/acl/policy/name/<name>`
pub async fn policy_by_name(State(agent): State<AppState>, a: Authz, p: Params) -> ApiResult {
    disabled(&agent)?;
    let name = p.rest("/v1/acl/policy/name/");
    if name.is_empty() {
        return Err(ApiError::bad_request("Missing policy Name"));
    }
    read_one(&agent, &a, &p, POLICIES, "policy", |s| {
        s.acl_policy(None, Some(&name))
    })
    .await
}

fn validate_policy(p: &AclPolicy) -> Result<(), ApiError> {
    if !name_ok(&p.name) {
        return Err(ApiError::bad_request(
            "Invalid Policy: invalid Name. Only alphanumeric characters, '-' and '_' are allowed",
        ));
    }
    if p.id != GLOBAL_MANAGEMENT_ID {
        parse_rules(&p.rules).map_err(|e| ApiError::bad_request(e.to_string()))?;
    }
    Ok(())
}

/// `GET|PUT|DELETE /v1/acl/policy/<id>` and `PUT /v1/acl/policy`.
pub async fn policy(
    State(agent): State<AppState>,
    a: Authz,
    method: axum::http::Method,
    p: Params,
    body: Bytes,
) -> ApiResult {
    disabled(&agent)?;
    let id = p.rest("/v1/acl/policy/");
    match method.as_str() {
        "GET" if id.is_empty() => Err(ApiError::bad_request("Missing policy ID")),
        "GET" => {
            read_one(&agent, &a, &p, POLICIES, "policy", |s| {
                s.acl_policy(Some(&id), None)
            })
            .await
        }
        "PUT" => {
            acl_write(&a)?;
            let mut req: AclPolicy = decode(&body, "Policy")?;
            assign_id(&mut req.id, &id, "policy", || {
                agent.read(|s| s.acl_policy(Some(&id), None).1.is_some())
            })?;
            validate_policy(&req)?;
            let pid = req.id.clone();
            agent
                .apply_checked(Command::AclPolicySet(Box::new(req)))
                .await?;
            json(&agent.read(|s| s.acl_policy(Some(&pid), None)).1)
        }
        "DELETE" => {
            let cmd = Command::AclPolicyDelete { id: id.clone() };
            delete_one(&agent, &a, &id, "policy", cmd).await
        }
        m => bad_method(m),
    }
}

// ---- roles ----

/// `GET /v1/acl/roles`
pub async fn role_list(State(agent): State<AppState>, a: Authz, p: Params) -> ApiResult {
    disabled(&agent)?;
    acl_read(&a)?;
    let q = p.query_options()?;
    let policy = p.get("policy").map(str::to_string);
    let (idx, v) = blocking(&agent, &q, vec![Topic::Table(ROLES)], |s| {
        s.acl_roles(policy.as_deref())
    })
    .await?;
    indexed(&agent, idx, &q, &v)
}

/// `GET /v1/acl/role/name/<name>`
pub async fn role_by_name(State(agent): State<AppState>, a: Authz, p: Params) -> ApiResult {
    disabled(&agent)?;
    let name = p.rest("/v1/acl/role/name/");
    if name.is_empty() {
        return Err(ApiError::bad_request("Missing role Name"));
    }
    read_one(&agent, &a, &p, ROLES, "role", |s| {
        s.acl_role(None, Some(&name))
    })
    .await
}

/// `GET|PUT|DELETE /v1/acl/role/<id>` and `PUT /v1/acl/role`.
pub async fn role(
    State(agent): State<AppState>,
    a: Authz,
    method: axum::http::Method,
    p: Params,
    body: Bytes,
) -> ApiResult {
    disabled(&agent)?;
    let id = p.rest("/v1/acl/role/");
    match method.as_str() {
        "GET" if id.is_empty() => Err(ApiError::bad_request("Missing role ID")),
        "GET" => {
            read_one(&agent, &a, &p, ROLES, "role", |s| {
                s.acl_role(Some(&id), None)
            })
            .await
        }
        "PUT" => {
            acl_write(&a)?;
            let mut req: AclRole = decode(&body, "Role")?;
            assign_id(&mut req.id, &id, "role", || {
                agent.read(|s| s.acl_role(Some(&id), None).1.is_some())
            })?;
            if !name_ok(&req.name) {
                return Err(ApiError::bad_request(
                    "Invalid Role: invalid Name. Only alphanumeric characters, '-' and '_' are allowed",
                ));
            }
            req.policies = agent
                .read(|s| resolve_policy_links(s, &req.policies))
                .map_err(ApiError::bad_request)?;
            let rid = req.id.clone();
            agent
                .apply_checked(Command::AclRoleSet(Box::new(req)))
                .await?;
            json(&agent.read(|s| s.acl_role(Some(&rid), None)).1)
        }
        "DELETE" => {
            let cmd = Command::AclRoleDelete { id: id.clone() };
            delete_one(&agent, &a, &id, "role", cmd).await
        }
        m => bad_method(m),
    }
}

// ---- shared CRUD steps ----

/// A read of one object as a blocking query; 404 with Consul's text when it is missing.
async fn read_one<T: serde::Serialize>(
    agent: &AppState,
    a: &Authz,
    p: &Params,
    table: &'static str,
    what: &str,
    f: impl Fn(&Store) -> (u64, Option<T>),
) -> ApiResult {
    acl_read(a)?;
    let q = p.query_options()?;
    let (idx, v) = blocking(agent, &q, vec![Topic::Table(table)], f).await?;
    match v {
        Some(v) => indexed(agent, idx, &q, &v),
        None => Err(ApiError::not_found(format!(
            "Requested {what} does not exist: ACL not found"
        ))),
    }
}

/// The ID of a create (no ID in the URL: a new one, none in the body) or of an update
/// (the URL's, which the body may repeat, of an object that exists).
fn assign_id(
    body_id: &mut String,
    url_id: &str,
    what: &str,
    exists: impl FnOnce() -> bool,
) -> Result<(), ApiError> {
    if url_id.is_empty() {
        if !body_id.is_empty() {
            return Err(ApiError::bad_request(format!(
                "Cannot specify the ID when creating a new {what}"
            )));
        }
        *body_id = uuid::Uuid::new_v4().to_string();
        return Ok(());
    }
    if !body_id.is_empty() && body_id != url_id {
        let mut w = what.to_string();
        w[..1].make_ascii_uppercase();
        return Err(ApiError::bad_request(format!(
            "{w} ID in URL and payload do not match"
        )));
    }
    *body_id = url_id.to_string();
    if !exists() {
        return Err(ApiError::bad_request(format!(
            "cannot find {what} {url_id}"
        )));
    }
    Ok(())
}

/// A delete by ID: 404 when nothing was deleted.
async fn delete_one(agent: &AppState, a: &Authz, id: &str, what: &str, cmd: Command) -> ApiResult {
    if id.is_empty() {
        return Err(ApiError::bad_request(format!("Missing {what} ID")));
    }
    acl_write(a)?;
    let deleted = agent
        .apply_checked(cmd)
        .await?
        .into_bool()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    if !deleted {
        return Err(ApiError::not_found(format!("Cannot find {what} to delete")));
    }
    json(&true)
}

fn bad_method(m: &str) -> ApiResult {
    Err(ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("method {m} not allowed"),
    ))
}
