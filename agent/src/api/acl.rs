//! ACL endpoints (`/v1/acl/...`): bootstrap, tokens, policies and roles, with the wire
//! types of [`crate::acl`].

use super::{encode_path, ApiError, Client};
use crate::acl::{AclPolicy, AclRole, AclToken};
use serde_json::Value;

/// Which object a CRUD call is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Token,
    Policy,
    Role,
}

impl Kind {
    fn singular(self) -> &'static str {
        match self {
            Kind::Token => "token",
            Kind::Policy => "policy",
            Kind::Role => "role",
        }
    }

    fn plural(self) -> &'static str {
        match self {
            Kind::Token => "tokens",
            Kind::Policy => "policies",
            Kind::Role => "roles",
        }
    }
}

impl Client {
    /// `PUT /v1/acl/bootstrap`
    pub fn acl_bootstrap(&self) -> Result<AclToken, ApiError> {
        self.call("PUT", "/v1/acl/bootstrap", &[], None, &[])?
            .json()
    }

    /// `GET /v1/acl/token/self`
    pub fn acl_token_self(&self) -> Result<AclToken, ApiError> {
        self.get_json("/v1/acl/token/self", &[])
    }

    /// `GET /v1/acl/<kind>/<id>`
    pub fn acl_read<T: for<'de> serde::Deserialize<'de>>(
        &self,
        kind: Kind,
        id: &str,
    ) -> Result<T, ApiError> {
        self.get_json(
            &format!("/v1/acl/{}/{}", kind.singular(), encode_path(id)),
            &[],
        )
    }

    /// `GET /v1/acl/<kind>/name/<name>` (policies and roles)
    pub fn acl_read_by_name<T: for<'de> serde::Deserialize<'de>>(
        &self,
        kind: Kind,
        name: &str,
    ) -> Result<T, ApiError> {
        self.get_json(
            &format!("/v1/acl/{}/name/{}", kind.singular(), encode_path(name)),
            &[],
        )
    }

    /// `GET /v1/acl/<kinds>`
    pub fn acl_list<T: for<'de> serde::Deserialize<'de>>(
        &self,
        kind: Kind,
    ) -> Result<Vec<T>, ApiError> {
        self.get_json(&format!("/v1/acl/{}", kind.plural()), &[])
    }

    /// `PUT /v1/acl/<kind>` (create) or `PUT /v1/acl/<kind>/<id>` (update).
    pub fn acl_write<T: for<'de> serde::Deserialize<'de>>(
        &self,
        kind: Kind,
        id: Option<&str>,
        body: &Value,
    ) -> Result<T, ApiError> {
        let path = match id {
            Some(id) => format!("/v1/acl/{}/{}", kind.singular(), encode_path(id)),
            None => format!("/v1/acl/{}", kind.singular()),
        };
        self.put_json(&path, &[], body)?.json()
    }

    /// `PUT /v1/acl/token/<id>/clone`
    pub fn acl_token_clone(&self, id: &str, description: &str) -> Result<AclToken, ApiError> {
        self.put_json(
            &format!("/v1/acl/token/{}/clone", encode_path(id)),
            &[],
            &serde_json::json!({ "Description": description }),
        )?
        .json()
    }

    /// `DELETE /v1/acl/<kind>/<id>`
    pub fn acl_delete(&self, kind: Kind, id: &str) -> Result<(), ApiError> {
        self.call(
            "DELETE",
            &format!("/v1/acl/{}/{}", kind.singular(), encode_path(id)),
            &[],
            None,
            &[],
        )?;
        Ok(())
    }

    /// A token, policy or role by full ID or a unique ID prefix (as Consul's CLI allows).
    pub fn acl_resolve_id(&self, kind: Kind, id: &str) -> Result<String, ApiError> {
        if id.len() == 36 || id == "anonymous" {
            return Ok(id.to_string());
        }
        let ids: Vec<String> = match kind {
            Kind::Token => self
                .acl_list::<AclToken>(kind)?
                .into_iter()
                .map(|t| t.accessor_id)
                .collect(),
            Kind::Policy => self
                .acl_list::<AclPolicy>(kind)?
                .into_iter()
                .map(|p| p.id)
                .collect(),
            Kind::Role => self
                .acl_list::<AclRole>(kind)?
                .into_iter()
                .map(|r| r.id)
                .collect(),
        };
        let found: Vec<&String> = ids.iter().filter(|i| i.starts_with(id)).collect();
        match found.as_slice() {
            [one] => Ok(one.to_string()),
            [] => Err(ApiError::Decode(format!(
                "No such {} ID with prefix: {id}",
                kind.singular()
            ))),
            _ => Err(ApiError::Decode(format!(
                "Multiple {} IDs with prefix: {id}",
                kind.singular()
            ))),
        }
    }
}
