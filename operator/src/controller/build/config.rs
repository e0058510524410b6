//! The server agent config (Consul JSON keys) and the ConfigMap carrying it.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::{json, Map, Value};

use super::{config_map_name, object_meta, ports, server_dns_names};
use crate::controller::validate::ValidatedCluster;

/// Key of the config file in the ConfigMap (mounted into `-config-dir`).
pub const CONFIG_FILE: &str = "server.json";
/// Where the servers keep their data (the PVC mount).
pub const DATA_DIR: &str = "/praetor/data";
/// Where the ConfigMap is mounted.
pub const CONFIG_DIR: &str = "/praetor/config";
/// Where the TLS Secret is mounted.
pub const TLS_DIR: &str = "/praetor/tls";

/// Building the config failed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// serde_json could not serialize the config (does not happen for JSON values).
    #[error("serializing the agent config: {0}")]
    Serialize(#[from] serde_json::Error),
}

/// The server agent config as JSON. Secrets (gossip key, ACL token) are not in it: they
/// reach the agent through environment variables expanded into its arguments.
pub fn build_server_config(c: &ValidatedCluster) -> Value {
    let mut conf = Map::new();
    // Extra config first, so the managed keys below always win.
    for (k, v) in &c.extra_config {
        conf.insert(k.clone(), v.clone());
    }
    conf.insert("datacenter".into(), json!(c.datacenter));
    conf.insert("data_dir".into(), json!(DATA_DIR));
    conf.insert("server".into(), json!(true));
    conf.insert("bootstrap_expect".into(), json!(c.replicas));
    conf.insert(
        "retry_join".into(),
        json!(server_dns_names(
            &c.name,
            &c.namespace,
            &c.cluster_domain,
            c.replicas
        )),
    );
    conf.insert("bind_addr".into(), json!("0.0.0.0"));
    conf.insert("client_addr".into(), json!("0.0.0.0"));
    conf.insert("leave_on_terminate".into(), json!(false));
    conf.insert("ui_config".into(), json!({"enabled": c.ui}));
    conf.insert(
        "ports".into(),
        json!({
            "http": ports::HTTP,
            "dns": ports::DNS,
            "server": ports::SERVER,
            "serf_lan": ports::SERF_LAN,
        }),
    );
    if let Some(acl) = &c.acl {
        conf.insert(
            "acl".into(),
            json!({
                "enabled": acl.enabled,
                "default_policy": acl.default_policy,
                "enable_token_persistence": true,
            }),
        );
    }
    if let Some(tls) = &c.tls {
        conf.insert(
            "tls".into(),
            json!({"defaults": {
                "ca_file": format!("{TLS_DIR}/ca.crt"),
                "cert_file": format!("{TLS_DIR}/tls.crt"),
                "key_file": format!("{TLS_DIR}/tls.key"),
                "verify_incoming": tls.verify_incoming,
                "verify_outgoing": true,
            }}),
        );
    }
    Value::Object(conf)
}

/// The ConfigMap with [`build_server_config`] as `server.json`.
pub fn build_config_map(c: &ValidatedCluster) -> Result<ConfigMap, ConfigError> {
    let text = serde_json::to_string_pretty(&build_server_config(c))?;
    Ok(ConfigMap {
        metadata: object_meta(c, config_map_name(&c.name), Some("server")),
        data: Some(BTreeMap::from([(CONFIG_FILE.to_string(), text)])),
        ..Default::default()
    })
}

/// A stable hash (FNV-1a, hex) of the ConfigMap data, put on the pod template so a config
/// change rolls the servers.
pub fn config_hash(cm: &ConfigMap) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (k, v) in cm.data.iter().flatten() {
        for b in k.bytes().chain([0]).chain(v.bytes()).chain([0]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::v1alpha1::{AclSpec, TlsSpec};
    use crate::fixtures::validated;

    #[test]
    fn server_config_has_consul_keys() {
        let conf = build_server_config(&validated("web", 3));
        assert_eq!(conf["server"], json!(true));
        assert_eq!(conf["bootstrap_expect"], json!(3));
        assert_eq!(conf["datacenter"], json!("dc1"));
        assert_eq!(conf["data_dir"], json!("/praetor/data"));
        assert_eq!(
            conf["retry_join"],
            json!([
                "web-server-0.web-server.default.svc.cluster.local",
                "web-server-1.web-server.default.svc.cluster.local",
                "web-server-2.web-server.default.svc.cluster.local"
            ])
        );
        assert_eq!(conf["ui_config"]["enabled"], json!(true));
        assert!(conf.get("acl").is_none());
        assert!(
            conf.get("encrypt").is_none(),
            "the key comes from the environment"
        );
    }

    #[test]
    fn extra_config_cannot_override_managed_keys_and_acl_tls_render() {
        let mut c = validated("web", 1);
        c.extra_config
            .insert("performance".into(), json!({"raft_multiplier": 1}));
        c.extra_config
            .insert("ui_config".into(), json!({"enabled": false}));
        c.acl = Some(AclSpec {
            enabled: true,
            default_policy: "deny".into(),
            bootstrap_token: None,
        });
        c.tls = Some(TlsSpec {
            secret_name: "t".into(),
            verify_incoming: true,
        });
        let conf = build_server_config(&c);
        assert_eq!(conf["performance"]["raft_multiplier"], json!(1));
        assert_eq!(
            conf["ui_config"]["enabled"],
            json!(true),
            "managed key wins"
        );
        assert_eq!(conf["acl"]["default_policy"], json!("deny"));
        assert_eq!(
            conf["tls"]["defaults"]["cert_file"],
            json!("/praetor/tls/tls.crt")
        );
        assert_eq!(conf["tls"]["defaults"]["verify_incoming"], json!(true));
    }

    #[test]
    fn server_config_keys_are_known_to_the_agent() {
        let mut c = validated("web", 3);
        c.acl = Some(AclSpec {
            enabled: true,
            default_policy: "deny".into(),
            bootstrap_token: None,
        });
        c.tls = Some(TlsSpec {
            secret_name: "t".into(),
            verify_incoming: false,
        });
        // `tls` is a free-form object in the agent's tables.
        crate::fixtures::assert_known_keys(&build_server_config(&c), &["tls"], "");
    }

    #[test]
    fn config_hash_changes_with_content() {
        let a = build_config_map(&validated("web", 3)).unwrap();
        let b = build_config_map(&validated("web", 5)).unwrap();
        assert_eq!(config_hash(&a), config_hash(&a.clone()));
        assert_ne!(config_hash(&a), config_hash(&b));
        assert_eq!(config_hash(&a).len(), 16);
    }
}
