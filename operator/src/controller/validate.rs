//! Validation: turns a `ConsulCluster` (plus what dereferencing found) into a
//! [`ValidatedCluster`] the build functions can use without further checks. Pure.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::{Resource, ResourceExt};

use crate::crd::v1alpha1::{AclSpec, ConsulCluster, SecretKeyRef, TlsSpec};

/// Keys of the agent config the operator owns; `extraConfig` may not set them.
pub const MANAGED_CONFIG_KEYS: &[&str] = &[
    "server",
    "bootstrap_expect",
    "retry_join",
    "data_dir",
    "datacenter",
    "node_name",
    "advertise_addr",
];

/// Why a ConsulCluster cannot be reconciled as written. The user has to change it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ValidationError {
    /// The object has no name or namespace (never true for objects from the API server).
    #[error("the ConsulCluster has no {0}")]
    MissingMetadata(&'static str),
    /// `spec.replicas` is out of range.
    #[error("spec.replicas must be between 1 and 9, got {0}")]
    Replicas(i32),
    /// The name is too long for the generated object and pod names.
    #[error(
        "the name {0:?} is longer than 40 characters (pod and Service names are derived from it)"
    )]
    NameTooLong(String),
    /// `spec.datacenter` is not a DNS label.
    #[error("spec.datacenter {0:?} must be a lowercase DNS label")]
    Datacenter(String),
    /// `spec.storage.size` is not a quantity.
    #[error("spec.storage.size {0:?} is not a Kubernetes quantity such as 1Gi")]
    StorageSize(String),
    /// `spec.extraConfig` sets a key the operator manages.
    #[error("spec.extraConfig may not set {0:?}: the operator manages it")]
    ManagedKey(String),
    /// A Secret reference is incomplete.
    #[error("{0}: secretName and key must not be empty")]
    SecretRef(&'static str),
    /// `spec.acl.defaultPolicy` is not allow or deny.
    #[error("spec.acl.defaultPolicy must be allow or deny, got {0:?}")]
    AclPolicy(String),
}

/// A ConsulCluster whose settings are known to be usable.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedCluster {
    /// Name of the ConsulCluster.
    pub name: String,
    /// Its namespace (all generated objects live there).
    pub namespace: String,
    /// Owner reference put on every generated object.
    pub owner: OwnerReference,
    /// Wanted number of servers.
    pub replicas: i32,
    /// Server image.
    pub image: String,
    /// Image pull policy.
    pub image_pull_policy: Option<String>,
    /// Consul datacenter.
    pub datacenter: String,
    /// Size of each server's volume.
    pub storage_size: Quantity,
    /// StorageClass of the volumes.
    pub storage_class: Option<String>,
    /// Server container resources.
    pub resources: Option<ResourceRequirements>,
    /// Gossip key Secret.
    pub gossip_key: Option<SecretKeyRef>,
    /// TLS settings.
    pub tls: Option<TlsSpec>,
    /// ACL settings.
    pub acl: Option<AclSpec>,
    /// Serve the UI.
    pub ui: bool,
    /// Extra agent config, without managed keys.
    pub extra_config: serde_json::Map<String, serde_json::Value>,
    /// Kubernetes cluster DNS domain (for the servers' DNS names).
    pub cluster_domain: String,
}

/// Operator-wide settings validation needs.
#[derive(Debug, Clone)]
pub struct Defaults {
    /// Image used when `spec.image` is unset.
    pub image: String,
    /// Kubernetes cluster DNS domain, usually `cluster.local`.
    pub cluster_domain: String,
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A rough but strict check of the Kubernetes quantity syntax: a decimal number and an
/// optional binary or decimal suffix.
fn is_quantity(s: &str) -> bool {
    const SUFFIXES: &[&str] = &[
        "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "k", "M", "G", "T", "P", "E", "m", "",
    ];
    let digits_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(digits_end);
    !num.is_empty()
        && num.parse::<f64>().map(|v| v > 0.0).unwrap_or(false)
        && SUFFIXES.contains(&suffix)
}

fn check_secret_ref(r: &SecretKeyRef, what: &'static str) -> Result<(), ValidationError> {
    if r.secret_name.trim().is_empty() || r.key.trim().is_empty() {
        return Err(ValidationError::SecretRef(what));
    }
    Ok(())
}

/// Validates `cluster`. Pure: everything it needs is passed in.
pub fn validate(
    cluster: &ConsulCluster,
    defaults: &Defaults,
) -> Result<ValidatedCluster, ValidationError> {
    let name = cluster
        .metadata
        .name
        .clone()
        .ok_or(ValidationError::MissingMetadata("name"))?;
    let namespace = cluster
        .namespace()
        .ok_or(ValidationError::MissingMetadata("namespace"))?;
    let owner = cluster
        .controller_owner_ref(&())
        .ok_or(ValidationError::MissingMetadata("uid"))?;
    if name.len() > 40 {
        return Err(ValidationError::NameTooLong(name));
    }
    let spec = &cluster.spec;
    if !(1..=9).contains(&spec.replicas) {
        return Err(ValidationError::Replicas(spec.replicas));
    }
    if !is_dns_label(&spec.datacenter) {
        return Err(ValidationError::Datacenter(spec.datacenter.clone()));
    }
    if !is_quantity(&spec.storage.size) {
        return Err(ValidationError::StorageSize(spec.storage.size.clone()));
    }
    let extra_config = spec.extra_config.clone().unwrap_or_default();
    if let Some(k) = extra_config
        .keys()
        .find(|k| MANAGED_CONFIG_KEYS.contains(&k.as_str()))
    {
        return Err(ValidationError::ManagedKey(k.clone()));
    }
    if let Some(g) = &spec.gossip_encryption {
        check_secret_ref(g, "spec.gossipEncryption")?;
    }
    if let Some(acl) = &spec.acl {
        if acl.default_policy != "allow" && acl.default_policy != "deny" {
            return Err(ValidationError::AclPolicy(acl.default_policy.clone()));
        }
        if let Some(t) = &acl.bootstrap_token {
            check_secret_ref(t, "spec.acl.bootstrapToken")?;
        }
    }
    if let Some(tls) = &spec.tls {
        if tls.secret_name.trim().is_empty() {
            return Err(ValidationError::SecretRef("spec.tls"));
        }
    }
    Ok(ValidatedCluster {
        name,
        namespace,
        owner,
        replicas: spec.replicas,
        image: spec.image.clone().unwrap_or_else(|| defaults.image.clone()),
        image_pull_policy: spec.image_pull_policy.clone(),
        datacenter: spec.datacenter.clone(),
        storage_size: Quantity(spec.storage.size.clone()),
        storage_class: spec.storage.storage_class_name.clone(),
        resources: spec.resources.clone(),
        gossip_key: spec.gossip_encryption.clone(),
        tls: spec.tls.clone(),
        acl: spec.acl.clone(),
        ui: spec.ui,
        extra_config,
        cluster_domain: defaults.cluster_domain.clone(),
    })
}

impl ValidatedCluster {
    /// Labels shared by every object made for this cluster.
    pub fn labels(&self) -> BTreeMap<String, String> {
        super::build::labels(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::cluster;

    fn defaults() -> Defaults {
        Defaults {
            image: "ghcr.io/praetor-dev/praetor:0.1.0".into(),
            cluster_domain: "cluster.local".into(),
        }
    }

    #[test]
    fn valid_cluster_gets_defaults() {
        let v = validate(&cluster("c", 3), &defaults()).unwrap();
        assert_eq!(v.image, "ghcr.io/praetor-dev/praetor:0.1.0");
        assert_eq!(v.replicas, 3);
        assert_eq!(v.datacenter, "dc1");
        assert_eq!(v.storage_size, Quantity("1Gi".into()));
        assert_eq!(v.owner.kind, "ConsulCluster");
        assert_eq!(v.owner.controller, Some(true));
    }

    #[test]
    fn rejects_bad_specs() {
        let mut c = cluster("c", 0);
        assert_eq!(validate(&c, &defaults()), Err(ValidationError::Replicas(0)));
        c.spec.replicas = 3;
        c.spec.datacenter = "DC_1".into();
        assert!(matches!(
            validate(&c, &defaults()),
            Err(ValidationError::Datacenter(_))
        ));
        c.spec.datacenter = "dc1".into();
        c.spec.storage.size = "lots".into();
        assert!(matches!(
            validate(&c, &defaults()),
            Err(ValidationError::StorageSize(_))
        ));
        c.spec.storage.size = "10Gi".into();
        let mut extra = serde_json::Map::new();
        extra.insert("bootstrap_expect".into(), 1.into());
        c.spec.extra_config = Some(extra);
        assert_eq!(
            validate(&c, &defaults()),
            Err(ValidationError::ManagedKey("bootstrap_expect".into()))
        );
        c.spec.extra_config = None;
        c.spec.gossip_encryption = Some(SecretKeyRef {
            secret_name: "".into(),
            key: "k".into(),
        });
        assert!(matches!(
            validate(&c, &defaults()),
            Err(ValidationError::SecretRef(_))
        ));
    }

    #[test]
    fn quantities() {
        for ok in ["1Gi", "500Mi", "10G", "1.5Gi", "100"] {
            assert!(is_quantity(ok), "{ok}");
        }
        for bad in ["", "Gi", "1GB", "-1Gi", "0", "1 Gi"] {
            assert!(!is_quantity(bad), "{bad}");
        }
    }
}
