//! `PUT /v1/txn`: up to 64 KV, node, service and check operations applied atomically.
//! Read-only transactions are answered from the local state without a log entry; on
//! failure the answer is 409 with `Errors: [{OpIndex, What}]`.

use super::acl::Authz;
use super::catalog::{parse_body, NodeJson};
use super::health::CheckJson;
use super::params::Params;
use super::{ApiError, ApiResult, AppState};
use crate::acl::{Access, Authorizer, Resource};
use crate::definition::decode_service;
use crate::raft::{Command, CommandResponse};
use crate::store::txn::{TxnError, TxnOp, TxnResult};
use crate::store::Store;
use crate::types::{HealthCheck, Node};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use base64::Engine;
use serde_json::{json, Map, Value};

/// Consul's `txn_max_ops`.
pub const TXN_MAX_OPS: usize = 64;
/// Consul's `txn_max_req_len`.
pub const TXN_MAX_REQ_LEN: usize = 512 * 1024;

fn field<'a>(o: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    o.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
        .filter(|v| !v.is_null())
}

fn s(o: &Map<String, Value>, name: &str) -> String {
    field(o, name)
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string()
}

fn u(o: &Map<String, Value>, name: &str) -> u64 {
    field(o, name).and_then(|v| v.as_u64()).unwrap_or(0)
}

fn obj<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>, ApiError> {
    v.as_object().ok_or_else(|| {
        ApiError::bad_request(format!("Failed to parse body: {what} must be an object"))
    })
}

fn decode_op(v: &Value) -> Result<TxnOp, ApiError> {
    let o = obj(v, "operation")?;
    if let Some(kv) = field(o, "KV") {
        let k = obj(kv, "KV")?;
        let value = match field(k, "Value").and_then(|v| v.as_str()) {
            None => Vec::new(),
            Some(b) => base64::engine::general_purpose::STANDARD
                .decode(b)
                .map_err(|e| {
                    ApiError::bad_request(format!("Failed to parse body: illegal base64 data: {e}"))
                })?,
        };
        return Ok(TxnOp::Kv {
            verb: s(k, "Verb"),
            key: s(k, "Key"),
            value,
            flags: u(k, "Flags"),
            index: u(k, "Index"),
            session: s(k, "Session"),
        });
    }
    if let Some(n) = field(o, "Node") {
        let n = obj(n, "Node")?;
        let node = field(n, "Node")
            .map(|v| obj(v, "Node.Node"))
            .transpose()?
            .cloned()
            .unwrap_or_default();
        let meta = |name: &str| -> std::collections::BTreeMap<String, String> {
            field(&node, name)
                .and_then(|v| v.as_object())
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default()
        };
        return Ok(TxnOp::Node {
            verb: s(n, "Verb"),
            node: Node {
                id: s(&node, "ID"),
                node: s(&node, "Node"),
                address: s(&node, "Address"),
                datacenter: s(&node, "Datacenter"),
                tagged_addresses: meta("TaggedAddresses"),
                meta: meta("Meta"),
                create_index: 0,
                modify_index: u(&node, "ModifyIndex"),
            },
        });
    }
    if let Some(sv) = field(o, "Service") {
        let so = obj(sv, "Service")?;
        let body = field(so, "Service")
            .cloned()
            .unwrap_or(Value::Object(Map::new()));
        let mut service = decode_service(&body)
            .map_err(|e| ApiError::bad_request(e.0))?
            .service;
        service.modify_index = body.as_object().map(|m| u(m, "ModifyIndex")).unwrap_or(0);
        return Ok(TxnOp::Service {
            verb: s(so, "Verb"),
            node: s(so, "Node"),
            service,
        });
    }
    if let Some(c) = field(o, "Check") {
        let co = obj(c, "Check")?;
        let chk = field(co, "Check")
            .map(|v| obj(v, "Check.Check"))
            .transpose()?
            .cloned()
            .unwrap_or_default();
        let check = HealthCheck {
            node: s(&chk, "Node"),
            check_id: s(&chk, "CheckID"),
            name: s(&chk, "Name"),
            status: {
                let st = s(&chk, "Status");
                if st.is_empty() {
                    crate::types::HEALTH_CRITICAL.to_string()
                } else {
                    st
                }
            },
            notes: s(&chk, "Notes"),
            output: s(&chk, "Output"),
            service_id: s(&chk, "ServiceID"),
            modify_index: u(&chk, "ModifyIndex"),
            ..Default::default()
        };
        return Ok(TxnOp::Check {
            verb: s(co, "Verb"),
            check,
        });
    }
    Err(ApiError::bad_request(
        "Failed to parse body: operation must have one of KV, Node, Service, Check",
    ))
}

fn result_json(agent: &AppState, r: &TxnResult) -> Value {
    match r {
        TxnResult::Kv(e) => json!({"KV": {
            "LockIndex": e.lock_index, "Key": e.key, "Flags": e.flags,
            "Value": (!e.value.is_empty()).then(|| base64::engine::general_purpose::STANDARD.encode(&e.value)),
            "Session": e.session.clone().unwrap_or_default(),
            "CreateIndex": e.create_index, "ModifyIndex": e.modify_index,
        }}),
        TxnResult::Node(n) => json!({"Node": NodeJson::from(n)}),
        TxnResult::Service(sv) => {
            json!({"Service": super::catalog::ServiceJson::new(sv, &agent.datacenter)})
        }
        TxnResult::Check(c) => json!({"Check": CheckJson::from(c)}),
    }
}

/// Check every operation against the token before anything is applied; the denials are
/// reported as a failed transaction (409), as Consul does.
fn vet(agent: &AppState, a: &Authorizer, ops: &[TxnOp]) -> Vec<TxnError> {
    let mut errors = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let r = match op {
            TxnOp::Kv { verb, key, .. } => match verb.as_str() {
                "get" | "get-tree" | "check-index" | "check-session" | "check-not-exists" => {
                    a.check(Resource::Key, key, Access::Read)
                }
                "delete-tree" if !a.key_write_prefix(key) => {
                    Err(a.denied(Resource::Key, key, Access::Write))
                }
                "delete-tree" => Ok(()),
                _ => a.check(Resource::Key, key, Access::Write),
            },
            TxnOp::Node { verb, node } => a.check(
                Resource::Node,
                &node.node,
                if verb == "get" {
                    Access::Read
                } else {
                    Access::Write
                },
            ),
            TxnOp::Service { verb, service, .. } => a.check(
                Resource::Service,
                &service.service,
                if verb == "get" {
                    Access::Read
                } else {
                    Access::Write
                },
            ),
            TxnOp::Check { verb, check } => {
                let need = if verb == "get" {
                    Access::Read
                } else {
                    Access::Write
                };
                if check.service_id.is_empty() {
                    a.check(Resource::Node, &check.node, need)
                } else {
                    let name = if check.service_name.is_empty() {
                        agent
                            .read(|s| s.node_service(&check.node, &check.service_id))
                            .map(|s| s.service)
                            .unwrap_or_else(|| check.service_id.clone())
                    } else {
                        check.service_name.clone()
                    };
                    a.check(Resource::Service, &name, need)
                }
            }
        };
        if let Err(d) = r {
            errors.push(TxnError {
                op_index: i,
                what: d.to_string(),
            });
        }
    }
    errors
}

/// Drop results the token may not read (`get-tree` can reach keys the prefix rule hides).
fn visible(a: &Authorizer, r: &TxnResult) -> bool {
    match r {
        TxnResult::Kv(e) => a.allowed(Resource::Key, &e.key, Access::Read),
        TxnResult::Node(n) => a.allowed(Resource::Node, &n.node, Access::Read),
        TxnResult::Service(s) => a.allowed(Resource::Service, &s.service, Access::Read),
        TxnResult::Check(c) => a.allowed(Resource::Node, &c.node, Access::Read),
    }
}

fn answer(
    agent: &AppState,
    a: &Authorizer,
    r: Result<Vec<TxnResult>, Vec<TxnError>>,
    index: u64,
    p: &Params,
) -> ApiResult {
    let q = p.query_options()?;
    match r {
        Ok(results) => {
            let out = json!({"Results": results.iter().filter(|r| visible(a, r)).map(|r| result_json(agent, r)).collect::<Vec<_>>(), "Errors": Value::Null});
            super::indexed(agent, index, &q, &out)
        }
        Err(errors) => {
            let out = json!({"Results": Value::Null, "Errors": errors.iter().map(|e| json!({"OpIndex": e.op_index, "What": e.what})).collect::<Vec<_>>()});
            let body = super::json_body(&out, q.pretty)?;
            Ok((
                StatusCode::CONFLICT,
                [("Content-Type", "application/json")],
                body,
            )
                .into_response())
        }
    }
}

/// Decode a `/v1/txn` body into its operations, with Consul's limits (request length,
/// operation count) and errors.
pub(crate) fn decode_ops(body: &[u8]) -> Result<Vec<TxnOp>, ApiError> {
    if body.len() > TXN_MAX_REQ_LEN {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Request body({} bytes) too large, max size: {TXN_MAX_REQ_LEN} bytes. See https://developer.hashicorp.com/docs/agent/config/config-files#txn_max_req_len.", body.len()),
        ));
    }
    let v = parse_body(body)?;
    let list = v.as_array().ok_or_else(|| {
        ApiError::bad_request("Failed to parse body: expected a list of operations")
    })?;
    if list.len() > TXN_MAX_OPS {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "Transaction contains too many operations ({} > {TXN_MAX_OPS})",
                list.len()
            ),
        ));
    }
    list.iter().map(decode_op).collect()
}

/// `PUT /v1/txn`
pub async fn txn(State(agent): State<AppState>, a: Authz, p: Params, body: Bytes) -> ApiResult {
    let ops = decode_ops(&body)?;
    let denied = vet(&agent, &a, &ops);
    if !denied.is_empty() {
        let idx = agent.read(|st| st.last_index());
        return answer(&agent, &a, Err(denied), idx, &p);
    }
    if Store::txn_is_read_only(&ops) {
        let q = p.query_options()?;
        agent.barrier(q.consistency).await?;
        let (idx, r) = agent.read(|st| (st.last_index(), st.txn_read(&ops)));
        return answer(&agent, &a, r, idx, &p);
    }
    match agent.apply(Command::Txn(ops)).await? {
        CommandResponse::Txn(r) => {
            let idx = agent.read(|st| st.last_index());
            answer(&agent, &a, r, idx, &p)
        }
        CommandResponse::Error(e) => Err(ApiError::internal(e.to_string())),
        _ => Err(ApiError::internal("unexpected transaction result")),
    }
}
