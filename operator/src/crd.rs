//! The custom resources: `ConsulCluster` (a set of Praetor servers) and `ServiceDefinition`
//! (a Consul service registered by a client-agent sidecar in the pods it selects).
//!
//! The doc comments on the fields become the CRD's OpenAPI schema, so they are written for
//! `kubectl explain` readers.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// API group of the Praetor resources.
pub const GROUP: &str = "praetor.dev";

/// The `v1alpha1` version of the resources.
pub mod v1alpha1 {
    use super::*;

    /// A Praetor (Consul-compatible) server cluster: a StatefulSet of servers with one
    /// volume each, a headless Service they join through, and a client Service for HTTP and DNS.
    #[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
    #[kube(
        group = "praetor.dev",
        version = "v1alpha1",
        kind = "ConsulCluster",
        doc = "A Praetor server cluster (Consul-compatible service discovery).",
        namespaced,
        status = "ConsulClusterStatus",
        shortname = "pcc",
        category = "praetor",
        printcolumn = r#"{"name":"Replicas","type":"integer","jsonPath":".spec.replicas"}"#,
        printcolumn = r#"{"name":"Ready","type":"integer","jsonPath":".status.readyServers"}"#,
        printcolumn = r#"{"name":"Leader","type":"string","jsonPath":".status.leader"}"#,
        printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
    )]
    #[serde(rename_all = "camelCase")]
    pub struct ConsulClusterSpec {
        /// Number of servers. Use an odd number (1, 3 or 5): a cluster of N servers keeps
        /// working while a majority is up. Scaling down removes each server from the Raft
        /// configuration before its pod goes away.
        #[serde(default = "default_replicas")]
        #[schemars(range(min = 1, max = 9))]
        pub replicas: i32,

        /// Container image of the servers (and of injected client sidecars). Defaults to the
        /// operator's `PRAETOR_DEFAULT_IMAGE`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub image: Option<String>,

        /// Image pull policy of the server and sidecar containers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub image_pull_policy: Option<String>,

        /// Consul datacenter name (`datacenter` in the agent config).
        #[serde(default = "default_datacenter")]
        pub datacenter: String,

        /// The persistent volume each server keeps its Raft log and state in.
        #[serde(default)]
        pub storage: StorageSpec,

        /// CPU and memory requests and limits of the server containers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub resources: Option<ResourceRequirements>,

        /// Gossip encryption: the key (as made by `praetor keygen`) is read from this Secret
        /// and passed to the servers and sidecars through an environment variable, never
        /// written into a ConfigMap.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub gossip_encryption: Option<SecretKeyRef>,

        /// TLS for the HTTP API and RPC: a Secret holding `ca.crt`, `tls.crt` and `tls.key`
        /// (a cert-manager Certificate produces one), mounted into the servers and written
        /// to `tls.defaults` in the agent config: mutual TLS on internal RPC and, with
        /// `ports.https` in `extraConfig`, the HTTPS API (docs/tls.md).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub tls: Option<TlsSpec>,

        /// ACL system settings and the bootstrap (initial management) token, written to the
        /// agent config as Consul's `acl` keys and enforced by the agents (docs/acl.md).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub acl: Option<AclSpec>,

        /// Serve the web UI on the HTTP port.
        #[serde(default = "default_true")]
        pub ui: bool,

        /// Extra Consul agent configuration merged over the generated JSON config (for keys
        /// this resource has no field for, e.g. `{"performance": {"raft_multiplier": 1}}`).
        /// Keys the operator manages (`server`, `bootstrap_expect`, `retry_join`, `data_dir`,
        /// `datacenter`) cannot be overridden here.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(schema_with = "crate::crd::free_form_object")]
        pub extra_config: Option<serde_json::Map<String, serde_json::Value>>,
    }

    /// Where a server keeps its data.
    #[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct StorageSpec {
        /// Size of each server's PersistentVolumeClaim, as a Kubernetes quantity.
        #[serde(default = "default_storage_size")]
        pub size: String,
        /// StorageClass of the claims; the cluster's default class when unset.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub storage_class_name: Option<String>,
    }

    impl Default for StorageSpec {
        fn default() -> Self {
            Self {
                size: default_storage_size(),
                storage_class_name: None,
            }
        }
    }

    /// A key in a Secret in the resource's namespace.
    #[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct SecretKeyRef {
        /// Name of the Secret.
        pub secret_name: String,
        /// Key inside the Secret.
        pub key: String,
    }

    /// TLS settings of the servers.
    #[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct TlsSpec {
        /// Secret with `ca.crt`, `tls.crt` and `tls.key`.
        pub secret_name: String,
        /// Require clients of the HTTPS API and RPC to present certificates signed by the CA.
        #[serde(default)]
        pub verify_incoming: bool,
    }

    /// ACL settings of the servers.
    #[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct AclSpec {
        /// Turn the ACL system on (`acl.enabled`).
        #[serde(default = "default_true")]
        pub enabled: bool,
        /// `allow` or `deny` (`acl.default_policy`).
        #[serde(default = "default_acl_policy")]
        #[schemars(regex(pattern = r"^(allow|deny)$"))]
        pub default_policy: String,
        /// The initial management token (`acl.tokens.initial_management`), read from a
        /// Secret and handed to the servers through an environment variable.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub bootstrap_token: Option<SecretKeyRef>,
    }

    /// What the operator last saw of the cluster.
    #[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct ConsulClusterStatus {
        /// The `metadata.generation` this status was computed for.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub observed_generation: Option<i64>,
        /// Servers the StatefulSet currently runs (shrinks one at a time while scaling down).
        #[serde(default)]
        pub servers: i32,
        /// Server pods that pass their readiness probe (they know a leader).
        #[serde(default)]
        pub ready_servers: i32,
        /// Raft address of the leader as reported by `/v1/status/leader`; empty when none.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub leader: Option<String>,
        /// Servers still running an older pod template during a rolling upgrade.
        #[serde(default)]
        pub outdated_servers: i32,
        /// `Available`, `Progressing` and `Degraded` conditions.
        #[serde(default)]
        pub conditions: Vec<Condition>,
    }

    /// A Consul service provided by the pods that `selector` matches: each such pod gets a
    /// `praetor` client-agent sidecar that joins `cluster` and registers this service.
    #[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
    #[kube(
        group = "praetor.dev",
        version = "v1alpha1",
        kind = "ServiceDefinition",
        doc = "A Consul service registered by sidecars in the pods it selects.",
        namespaced,
        status = "ServiceDefinitionStatus",
        shortname = "psd",
        category = "praetor",
        printcolumn = r#"{"name":"Service","type":"string","jsonPath":".spec.name"}"#,
        printcolumn = r#"{"name":"Port","type":"integer","jsonPath":".spec.port"}"#,
        printcolumn = r#"{"name":"Cluster","type":"string","jsonPath":".spec.cluster"}"#,
        printcolumn = r#"{"name":"Pods","type":"integer","jsonPath":".status.matchingPods"}"#
    )]
    #[serde(rename_all = "camelCase")]
    pub struct ServiceDefinitionSpec {
        /// Name of the ConsulCluster (in this namespace) the sidecars join.
        pub cluster: String,
        /// Consul service name; defaults to the resource's name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub name: Option<String>,
        /// Port the service listens on inside the pod.
        #[schemars(range(min = 1, max = 65535))]
        pub port: i32,
        /// Service tags (`Tags`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub tags: Vec<String>,
        /// Service metadata (`Meta`).
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        pub meta: BTreeMap<String, String>,
        /// Health checks run by the sidecar agent; `localhost` reaches the pod's containers.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub checks: Vec<CheckSpec>,
        /// The pods providing the service (labels in this namespace).
        pub selector: LabelSelector,
    }

    /// One Consul health check. Exactly one of `http`, `tcp`, `grpc` and `ttl` is set.
    #[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct CheckSpec {
        /// Check name (`Name`); defaults to "<service> <kind> check".
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub name: Option<String>,
        /// URL to GET, e.g. `http://localhost:8080/healthz` (`HTTP`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub http: Option<String>,
        /// HTTP method of an HTTP check (`Method`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub method: Option<String>,
        /// `host:port` to connect to (`TCP`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub tcp: Option<String>,
        /// `host:port[/service]` of a gRPC health endpoint (`GRPC`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub grpc: Option<String>,
        /// TTL of a TTL check, e.g. `30s` (`TTL`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub ttl: Option<String>,
        /// How often to run the check, e.g. `10s` (`Interval`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub interval: Option<String>,
        /// Timeout of one run, e.g. `2s` (`Timeout`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub timeout: Option<String>,
        /// Deregister the service after the check has been critical this long
        /// (`DeregisterCriticalServiceAfter`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub deregister_critical_service_after: Option<String>,
    }

    /// What the operator last saw of a ServiceDefinition.
    #[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct ServiceDefinitionStatus {
        /// The `metadata.generation` this status was computed for.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub observed_generation: Option<i64>,
        /// Pods in the namespace that the selector matches.
        #[serde(default)]
        pub matching_pods: i32,
        /// Matching pods that carry the injected sidecar.
        #[serde(default)]
        pub injected_pods: i32,
        /// The `Ready` condition: the cluster exists and the definition is valid.
        #[serde(default)]
        pub conditions: Vec<Condition>,
    }

    impl ServiceDefinition {
        /// The Consul service name: `spec.name`, else the resource name.
        pub fn service_name(&self) -> String {
            self.spec
                .name
                .clone()
                .or_else(|| self.metadata.name.clone())
                .unwrap_or_default()
        }
    }

    fn default_replicas() -> i32 {
        3
    }
    fn default_datacenter() -> String {
        "dc1".into()
    }
    fn default_storage_size() -> String {
        "1Gi".into()
    }
    fn default_acl_policy() -> String {
        "allow".into()
    }
    fn default_true() -> bool {
        true
    }
}

/// Schema of a free-form JSON object: Kubernetes keeps unknown fields only where the
/// structural schema says so.
pub(crate) fn free_form_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "nullable": true,
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// The CRDs as YAML documents, in a stable order (what `crdgen` prints and `crds/` holds).
pub fn crd_yaml() -> Result<Vec<(&'static str, String)>, serde_yaml::Error> {
    use kube::CustomResourceExt;
    Ok(vec![
        (
            "consulclusters.praetor.dev.yaml",
            serde_yaml::to_string(&v1alpha1::ConsulCluster::crd())?,
        ),
        (
            "servicedefinitions.praetor.dev.yaml",
            serde_yaml::to_string(&v1alpha1::ServiceDefinition::crd())?,
        ),
    ])
}
