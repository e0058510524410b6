//! Prepared queries (`/v1/query`): stored definitions, looked up by ID, by name, or by the
//! longest `name_prefix_match` template prefix.

use super::{Store, StoreError, Topic};
use crate::types::Index;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Failover policy of a query.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct QueryFailover {
    #[serde(rename = "NearestN")]
    pub nearest_n: u32,
    pub datacenters: Vec<String>,
}

/// What a query looks for.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct QueryService {
    pub service: String,
    pub failover: QueryFailover,
    pub only_passing: bool,
    #[serde(rename = "IgnoreCheckIDs")]
    pub ignore_check_ids: Vec<String>,
    pub near: String,
    pub tags: Vec<String>,
    pub node_meta: BTreeMap<String, String>,
    pub service_meta: BTreeMap<String, String>,
}

/// A query template.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct QueryTemplate {
    #[serde(rename = "Type")]
    pub kind: String,
    pub regexp: String,
    pub remove_empty_tags: bool,
}

/// DNS settings of a query.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct QueryDns {
    #[serde(rename = "TTL")]
    pub ttl: String,
}

/// A prepared query.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct PreparedQuery {
    #[serde(rename = "ID")]
    pub id: String,
    pub name: String,
    pub session: String,
    pub token: String,
    pub template: QueryTemplate,
    pub service: QueryService,
    #[serde(rename = "DNS")]
    pub dns: QueryDns,
    pub create_index: Index,
    pub modify_index: Index,
}

impl Store {
    /// Create or replace a query; names are unique among queries.
    pub fn query_set(&mut self, idx: Index, q: &PreparedQuery) -> Result<(), StoreError> {
        if q.id.is_empty() {
            return Err(StoreError::Invalid("Missing query ID".into()));
        }
        if !q.name.is_empty() {
            if let Some(other) = self
                .data
                .queries
                .values()
                .find(|o| o.name == q.name && o.id != q.id)
            {
                return Err(StoreError::Invalid(format!(
                    "name {:?} aliases an existing query name (query {})",
                    q.name, other.id
                )));
            }
        }
        if !q.session.is_empty() && !self.data.sessions.contains_key(&q.session) {
            return Err(StoreError::InvalidSession(q.session.clone()));
        }
        let mut q = q.clone();
        q.create_index = self
            .data
            .queries
            .get(&q.id)
            .map(|o| o.create_index)
            .unwrap_or(idx);
        q.modify_index = idx;
        self.bump("prepared-queries", idx);
        self.fire(Topic::Table("prepared-queries"));
        self.data.queries.insert(q.id.clone(), q);
        Ok(())
    }

    /// Delete a query; returns whether it existed.
    pub fn query_delete(&mut self, idx: Index, id: &str) -> bool {
        let gone = self.data.queries.remove(id).is_some();
        if gone {
            self.bump("prepared-queries", idx);
            self.fire(Topic::Table("prepared-queries"));
        }
        gone
    }

    /// All queries.
    pub fn query_list(&self) -> (Index, Vec<PreparedQuery>) {
        (
            self.max_index(&["prepared-queries"]),
            self.data.queries.values().cloned().collect(),
        )
    }

    /// A query by ID, exact name, or (for templates) the longest matching name prefix.
    pub fn query_resolve(&self, id_or_name: &str) -> (Index, Option<PreparedQuery>) {
        let idx = self.max_index(&["prepared-queries"]);
        if let Some(q) = self.data.queries.get(id_or_name) {
            return (idx, Some(q.clone()));
        }
        if let Some(q) = self
            .data
            .queries
            .values()
            .find(|q| q.name == id_or_name && q.template.kind.is_empty())
        {
            return (idx, Some(q.clone()));
        }
        let best = self
            .data
            .queries
            .values()
            .filter(|q| q.template.kind == "name_prefix_match" && id_or_name.starts_with(&q.name))
            .max_by_key(|q| q.name.len())
            .cloned();
        (idx, best)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_store;

    fn q(id: &str, name: &str, template: bool) -> PreparedQuery {
        PreparedQuery {
            id: id.into(),
            name: name.into(),
            template: QueryTemplate {
                kind: if template {
                    "name_prefix_match".into()
                } else {
                    String::new()
                },
                ..Default::default()
            },
            service: QueryService {
                service: "web".into(),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn resolve_by_id_name_and_prefix() {
        let mut s = test_store();
        s.query_set(2, &q("a", "web-q", false)).unwrap();
        s.query_set(3, &q("b", "geo-", true)).unwrap();
        s.query_set(4, &q("c", "geo-db-", true)).unwrap();
        assert_eq!(s.query_resolve("a").1.unwrap().name, "web-q");
        assert_eq!(s.query_resolve("web-q").1.unwrap().id, "a");
        assert_eq!(
            s.query_resolve("geo-db-primary").1.unwrap().id,
            "c",
            "longest prefix"
        );
        assert_eq!(s.query_resolve("geo-x").1.unwrap().id, "b");
        assert!(s.query_resolve("nope").1.is_none());
        assert!(
            s.query_set(5, &q("d", "web-q", false)).is_err(),
            "names are unique"
        );
        assert!(s.query_delete(6, "a"));
        assert!(!s.query_delete(7, "a"));
    }
}
