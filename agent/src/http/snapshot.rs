//! `/v1/snapshot`: GET saves the whole replicated state (KV, catalog, sessions) as one
//! document; PUT restores one through the Raft log, so every server replaces its state.
//!
//! Format (Praetor's own; Consul's raft snapshots are not interchangeable): JSON
//! `{"Format":"praetor-snapshot","Version":1,"Index":N,"Datacenter":"dc1","Data":{...}}`.

use super::acl::Authz;
use super::params::Params;
use super::{ApiError, ApiResult, AppState};
use crate::acl::{Access, Resource};
use crate::raft::Command;
use crate::store::StoreData;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};

/// Largest snapshot accepted for restore.
pub const MAX_SNAPSHOT: usize = 1024 * 1024 * 1024;

/// The snapshot document.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SnapshotDoc {
    pub format: String,
    pub version: u32,
    pub index: u64,
    pub datacenter: String,
    pub data: StoreData,
}

/// `GET /v1/snapshot`
pub async fn save(State(agent): State<AppState>, a: Authz, p: Params) -> ApiResult {
    management(&a)?;
    let q = p.query_options()?;
    agent.barrier(q.consistency).await?;
    let (index, data) = agent.read(|s| (s.last_index(), s.data().clone()));
    let doc = SnapshotDoc {
        format: "praetor-snapshot".into(),
        version: 1,
        index,
        datacenter: agent.datacenter.clone(),
        data,
    };
    let body = serde_json::to_vec(&doc).map_err(|e| ApiError::internal(e.to_string()))?;
    let resp = ([("Content-Type", "application/octet-stream")], body).into_response();
    Ok(super::with_meta(&agent, resp, index, &q))
}

/// Decode and validate a snapshot document.
pub fn decode(body: &[u8]) -> Result<SnapshotDoc, ApiError> {
    let doc: SnapshotDoc = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!("Error restoring snapshot: invalid snapshot: {e}"))
    })?;
    if doc.format != "praetor-snapshot" || doc.version != 1 {
        return Err(ApiError::bad_request(format!(
            "Error restoring snapshot: unsupported snapshot format {:?} version {}",
            doc.format, doc.version
        )));
    }
    Ok(doc)
}

/// `PUT /v1/snapshot`
pub async fn restore(State(agent): State<AppState>, a: Authz, body: Bytes) -> ApiResult {
    management(&a)?;
    let doc = decode(&body)?;
    agent
        .apply_checked(Command::Restore(Box::new(doc.data)))
        .await?;
    Ok(StatusCode::OK.into_response())
}

/// Snapshots hold every secret: they need a management token (Consul: `acl:write`).
fn management(a: &Authz) -> Result<(), ApiError> {
    Ok(a.check(Resource::Acl, "", Access::Write)?)
}
