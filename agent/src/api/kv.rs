//! The KV store endpoints (`/v1/kv/...`) with Consul's `api.KV` semantics: a missing key
//! or prefix reads as `None`/empty rather than an error, writes answer Consul's
//! `true`/`false`, and keys starting with `/` are refused before any request is sent.

use super::{encode_path, ApiError, Client};
use base64::Engine;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A KV entry as the API returns it (Consul's `KVPair`). `Value` travels as base64 in
/// JSON and is held decoded here.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KvPair {
    /// The full key.
    pub key: String,
    /// Raft index of the entry's creation.
    #[serde(default)]
    pub create_index: u64,
    /// Raft index of the last write.
    #[serde(default)]
    pub modify_index: u64,
    /// How many times a lock on the key was acquired.
    #[serde(default)]
    pub lock_index: u64,
    /// Opaque user flags.
    #[serde(default)]
    pub flags: u64,
    /// The value bytes (base64 in JSON; `null` reads as empty).
    #[serde(
        default,
        serialize_with = "value_to_base64",
        deserialize_with = "value_from_base64"
    )]
    pub value: Vec<u8>,
    /// The session holding the lock, if any (an empty string reads as `None`).
    #[serde(
        default,
        deserialize_with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub session: Option<String>,
    /// Enterprise namespace, when the server reports one.
    #[serde(
        default,
        deserialize_with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub namespace: Option<String>,
    /// Enterprise partition, when the server reports one.
    #[serde(
        default,
        deserialize_with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub partition: Option<String>,
}

impl KvPair {
    /// A pair with just a key and value (flags and indexes zero).
    pub fn new(key: &str, value: impl Into<Vec<u8>>) -> Self {
        KvPair {
            key: key.to_string(),
            value: value.into(),
            ..Default::default()
        }
    }

    /// The value bytes (a copy).
    pub fn bytes(&self) -> Vec<u8> {
        self.value.clone()
    }
}

fn value_to_base64<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
}

fn value_from_base64<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(Vec::new()),
        Some(s) => base64::engine::general_purpose::STANDARD
            .decode(s.as_bytes())
            .map_err(serde::de::Error::custom),
    }
}

fn empty_as_none<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.filter(|s| !s.is_empty()))
}

fn kv_path(key: &str) -> String {
    format!("/v1/kv/{}", encode_path(key))
}

fn check_key(key: &str) -> Result<(), ApiError> {
    if key.starts_with('/') {
        Err(ApiError::InvalidKey(key.to_string()))
    } else {
        Ok(())
    }
}

fn flags_query(q: &mut Vec<(&'static str, String)>, flags: u64) {
    if flags != 0 {
        q.push(("flags", flags.to_string()));
    }
}

impl Client {
    /// One entry; `None` when the key does not exist.
    pub fn kv_get(&self, key: &str) -> Result<Option<KvPair>, ApiError> {
        let a = self.call("GET", &kv_path(key), &[], None, &[404])?;
        if a.status == 404 {
            return Ok(None);
        }
        Ok(a.json::<Option<Vec<KvPair>>>()?
            .unwrap_or_default()
            .into_iter()
            .next())
    }

    /// Every entry under a prefix (empty when there is none).
    pub fn kv_list(&self, prefix: &str) -> Result<Vec<KvPair>, ApiError> {
        let a = self.call(
            "GET",
            &kv_path(prefix),
            &[("recurse", String::new())],
            None,
            &[404],
        )?;
        if a.status == 404 {
            return Ok(Vec::new());
        }
        Ok(a.json::<Option<Vec<KvPair>>>()?.unwrap_or_default())
    }

    /// Key names under a prefix, folded at `separator` (no folding when it is empty).
    pub fn kv_keys(&self, prefix: &str, separator: &str) -> Result<Vec<String>, ApiError> {
        let mut q = vec![("keys", String::new())];
        if !separator.is_empty() {
            q.push(("separator", separator.to_string()));
        }
        let a = self.call("GET", &kv_path(prefix), &q, None, &[404])?;
        if a.status == 404 {
            return Ok(Vec::new());
        }
        Ok(a.json::<Option<Vec<String>>>()?.unwrap_or_default())
    }

    /// Low-level write: PUT `value` at `key` with the given query (`flags`, `cas`,
    /// `acquire`, `release`); returns the agent's `true`/`false`.
    pub fn kv_put(
        &self,
        key: &str,
        value: Vec<u8>,
        query: &[(&str, String)],
    ) -> Result<bool, ApiError> {
        check_key(key)?;
        let a = self.call_with(
            "PUT",
            &kv_path(key),
            query,
            Some(value),
            Some("application/octet-stream"),
            &[],
        )?;
        Ok(String::from_utf8_lossy(&a.body).contains("true"))
    }

    /// Writes `pair.value` with `pair.flags` (Consul's `KV().Put`).
    pub fn kv_write(&self, pair: &KvPair) -> Result<bool, ApiError> {
        let mut q = Vec::new();
        flags_query(&mut q, pair.flags);
        self.kv_put(&pair.key, pair.value.clone(), &q)
    }

    /// Check-and-set write against `pair.modify_index` (0 creates only if absent);
    /// `false` when the index did not match.
    pub fn kv_cas(&self, pair: &KvPair) -> Result<bool, ApiError> {
        let mut q = vec![("cas", pair.modify_index.to_string())];
        flags_query(&mut q, pair.flags);
        self.kv_put(&pair.key, pair.value.clone(), &q)
    }

    /// Writes and acquires the lock for `pair.session`; `false` when another session holds it.
    pub fn kv_acquire(&self, pair: &KvPair) -> Result<bool, ApiError> {
        let mut q = vec![("acquire", pair.session.clone().unwrap_or_default())];
        flags_query(&mut q, pair.flags);
        self.kv_put(&pair.key, pair.value.clone(), &q)
    }

    /// Writes and releases the lock held by `pair.session`; `false` when it does not hold it.
    pub fn kv_release(&self, pair: &KvPair) -> Result<bool, ApiError> {
        let mut q = vec![("release", pair.session.clone().unwrap_or_default())];
        flags_query(&mut q, pair.flags);
        self.kv_put(&pair.key, pair.value.clone(), &q)
    }

    /// Low-level delete with the given query (`recurse`, `cas`); returns the agent's
    /// `true`/`false`.
    pub fn kv_delete(&self, key: &str, query: &[(&str, String)]) -> Result<bool, ApiError> {
        let key = key.strip_prefix('/').unwrap_or(key);
        let a = self.call("DELETE", &kv_path(key), query, None, &[])?;
        Ok(String::from_utf8_lossy(&a.body).contains("true"))
    }

    /// Deletes one key (deleting a missing key succeeds).
    pub fn kv_delete_key(&self, key: &str) -> Result<(), ApiError> {
        self.kv_delete(key, &[]).map(|_| ())
    }

    /// Deletes every key under `prefix`.
    pub fn kv_delete_tree(&self, prefix: &str) -> Result<(), ApiError> {
        self.kv_delete(prefix, &[("recurse", String::new())])
            .map(|_| ())
    }

    /// Deletes `key` only if its ModifyIndex is `index`; `false` when it was not.
    pub fn kv_delete_cas(&self, key: &str, index: u64) -> Result<bool, ApiError> {
        self.kv_delete(key, &[("cas", index.to_string())])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_json_round_trip() {
        let j = r#"[{"LockIndex":1,"Key":"a/b","Flags":42,"Value":"aGk=","Session":"s1",
                     "CreateIndex":5,"ModifyIndex":7}]"#;
        let v: Vec<KvPair> = serde_json::from_str(j).unwrap();
        assert_eq!(v[0].value, b"hi");
        assert_eq!(v[0].bytes(), b"hi");
        assert_eq!(v[0].flags, 42);
        assert_eq!(v[0].session.as_deref(), Some("s1"));
        assert_eq!(
            (v[0].create_index, v[0].modify_index, v[0].lock_index),
            (5, 7, 1)
        );
        let out = serde_json::to_value(&v[0]).unwrap();
        assert_eq!(out["Value"], "aGk=");
        assert_eq!(out["Key"], "a/b");
    }

    #[test]
    fn null_value_and_empty_session() {
        let j = r#"{"Key":"k","Value":null,"Session":""}"#;
        let p: KvPair = serde_json::from_str(j).unwrap();
        assert!(p.value.is_empty());
        assert_eq!(p.session, None);
        let p: KvPair = serde_json::from_str(r#"{"Key":"k"}"#).unwrap();
        assert_eq!(p, KvPair::new("k", Vec::new()));
        assert!(serde_json::from_str::<KvPair>(r#"{"Key":"k","Value":"!!"}"#).is_err());
    }

    #[test]
    fn leading_slash_is_refused_before_sending() {
        let c = Client::new(super::super::ClientConfig {
            address: Some("127.0.0.1:1".into()),
            ..Default::default()
        })
        .unwrap();
        let err = c.kv_write(&KvPair::new("/foo", "x")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Invalid key. Key must not begin with a '/': /foo"
        );
    }
}
