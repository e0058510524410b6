//! The server StatefulSet: one pod and one PersistentVolumeClaim per server.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec,
    StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::{
    Affinity, ConfigMapVolumeSource, Container, ContainerPort, EnvVar, EnvVarSource, ExecAction,
    ObjectFieldSelector, PersistentVolumeClaim, PersistentVolumeClaimSpec, PodAffinityTerm,
    PodAntiAffinity, PodSecurityContext, PodSpec, PodTemplateSpec, Probe, SecretKeySelector,
    SecretVolumeSource, TCPSocketAction, Volume, VolumeMount, VolumeResourceRequirements,
    WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::config::{CONFIG_DIR, DATA_DIR, TLS_DIR};
use super::{
    config_map_name, headless_service_name, object_meta, ports, server_name, server_selector,
};
use crate::controller::validate::ValidatedCluster;

/// Pod template annotation holding the config hash.
pub const CONFIG_HASH_ANNOTATION: &str = "praetor.dev/config-hash";
/// Environment variable with the gossip key.
pub const GOSSIP_KEY_ENV: &str = "PRAETOR_GOSSIP_KEY";
/// Environment variable with the ACL bootstrap token.
pub const ACL_TOKEN_ENV: &str = "PRAETOR_ACL_BOOTSTRAP_TOKEN";
/// Name of the server container.
pub const SERVER_CONTAINER: &str = "praetor";

/// Readiness: a server is ready once it knows a leader. `/v1/status/leader` answers 200
/// with `""` when there is none, so an HTTP probe would pass; the exec probe requires a
/// non-empty JSON string.
pub const READINESS_SCRIPT: &str =
    "curl -sf http://127.0.0.1:8500/v1/status/leader | grep -Eq '^\"[^\"]+\"'";

fn env_from_field(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// An environment variable read from a Secret key.
pub fn env_from_secret(name: &str, secret: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.into(),
                key: key.into(),
                optional: Some(false),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The server agent's arguments. `$(VAR)` is expanded by the kubelet from the container's
/// environment, so secrets never appear in the pod spec.
pub fn server_args(c: &ValidatedCluster) -> Vec<String> {
    let mut args = vec![
        "agent".to_string(),
        format!("-config-dir={CONFIG_DIR}"),
        "-node=$(POD_NAME)".to_string(),
        "-advertise=$(POD_IP)".to_string(),
    ];
    if c.gossip_key.is_some() {
        args.push(format!("-encrypt=$({GOSSIP_KEY_ENV})"));
    }
    if c.acl.as_ref().is_some_and(|a| a.bootstrap_token.is_some()) {
        args.push(format!(
            "-hcl=acl {{ tokens {{ initial_management = \"$({ACL_TOKEN_ENV})\" }} }}"
        ));
    }
    args
}

fn container_port(name: &str, port: i32, protocol: &str) -> ContainerPort {
    ContainerPort {
        name: Some(name.into()),
        container_port: port,
        protocol: Some(protocol.into()),
        ..Default::default()
    }
}

/// The server StatefulSet with `replicas` pods; `config_hash` goes on the pod template.
pub fn build_stateful_set(c: &ValidatedCluster, replicas: i32, config_hash: &str) -> StatefulSet {
    let selector = server_selector(&c.name);
    let mut pod_labels = c.labels();
    pod_labels.extend(selector.clone());

    let mut env = vec![
        env_from_field("POD_NAME", "metadata.name"),
        env_from_field("POD_IP", "status.podIP"),
    ];
    if let Some(g) = &c.gossip_key {
        env.push(env_from_secret(GOSSIP_KEY_ENV, &g.secret_name, &g.key));
    }
    if let Some(t) = c.acl.as_ref().and_then(|a| a.bootstrap_token.as_ref()) {
        env.push(env_from_secret(ACL_TOKEN_ENV, &t.secret_name, &t.key));
    }

    let mut mounts = vec![
        VolumeMount {
            name: "data".into(),
            mount_path: DATA_DIR.into(),
            ..Default::default()
        },
        VolumeMount {
            name: "config".into(),
            mount_path: CONFIG_DIR.into(),
            read_only: Some(true),
            ..Default::default()
        },
    ];
    let mut volumes = vec![Volume {
        name: "config".into(),
        config_map: Some(ConfigMapVolumeSource {
            name: config_map_name(&c.name),
            ..Default::default()
        }),
        ..Default::default()
    }];
    if let Some(tls) = &c.tls {
        mounts.push(VolumeMount {
            name: "tls".into(),
            mount_path: TLS_DIR.into(),
            read_only: Some(true),
            ..Default::default()
        });
        volumes.push(Volume {
            name: "tls".into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(tls.secret_name.clone()),
                ..Default::default()
            }),
            ..Default::default()
        });
    }

    let container = Container {
        name: SERVER_CONTAINER.into(),
        image: Some(c.image.clone()),
        image_pull_policy: c.image_pull_policy.clone(),
        command: Some(vec!["praetor".into()]),
        args: Some(server_args(c)),
        env: Some(env),
        ports: Some(vec![
            container_port("http", ports::HTTP, "TCP"),
            container_port("dns-tcp", ports::DNS, "TCP"),
            container_port("dns-udp", ports::DNS, "UDP"),
            container_port("server", ports::SERVER, "TCP"),
            container_port("serflan-tcp", ports::SERF_LAN, "TCP"),
            container_port("serflan-udp", ports::SERF_LAN, "UDP"),
        ]),
        readiness_probe: Some(Probe {
            exec: Some(ExecAction {
                command: Some(vec![
                    "/bin/sh".into(),
                    "-ec".into(),
                    READINESS_SCRIPT.into(),
                ]),
            }),
            initial_delay_seconds: Some(5),
            period_seconds: Some(5),
            timeout_seconds: Some(3),
            failure_threshold: Some(2),
            ..Default::default()
        }),
        liveness_probe: Some(Probe {
            tcp_socket: Some(TCPSocketAction {
                port: IntOrString::Int(ports::HTTP),
                ..Default::default()
            }),
            initial_delay_seconds: Some(30),
            period_seconds: Some(10),
            failure_threshold: Some(6),
            ..Default::default()
        }),
        resources: c.resources.clone(),
        volume_mounts: Some(mounts),
        ..Default::default()
    };

    let anti_affinity = Affinity {
        pod_anti_affinity: Some(PodAntiAffinity {
            preferred_during_scheduling_ignored_during_execution: Some(vec![
                WeightedPodAffinityTerm {
                    weight: 100,
                    pod_affinity_term: PodAffinityTerm {
                        label_selector: Some(LabelSelector {
                            match_labels: Some(selector.clone()),
                            ..Default::default()
                        }),
                        topology_key: "kubernetes.io/hostname".into(),
                        ..Default::default()
                    },
                },
            ]),
            ..Default::default()
        }),
        ..Default::default()
    };

    StatefulSet {
        metadata: object_meta(c, server_name(&c.name), Some("server")),
        spec: Some(StatefulSetSpec {
            replicas: Some(replicas),
            service_name: Some(headless_service_name(&c.name)),
            // All servers start at once: bootstrap_expect waits for the others anyway.
            pod_management_policy: Some("Parallel".into()),
            // The operator deletes outdated pods itself, one at a time, while a leader exists.
            update_strategy: Some(StatefulSetUpdateStrategy {
                type_: Some("OnDelete".into()),
                ..Default::default()
            }),
            // A server removed from Raft must not come back with its old state.
            persistent_volume_claim_retention_policy: Some(
                StatefulSetPersistentVolumeClaimRetentionPolicy {
                    when_scaled: Some("Delete".into()),
                    when_deleted: Some("Retain".into()),
                },
            ),
            selector: LabelSelector {
                match_labels: Some(selector),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    annotations: Some(BTreeMap::from([(
                        CONFIG_HASH_ANNOTATION.to_string(),
                        config_hash.to_string(),
                    )])),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![container],
                    volumes: Some(volumes),
                    affinity: Some(anti_affinity),
                    termination_grace_period_seconds: Some(30),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        run_as_user: Some(1000),
                        run_as_group: Some(1000),
                        fs_group: Some(1000),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
            },
            volume_claim_templates: Some(vec![PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some("data".into()),
                    labels: Some(c.labels()),
                    ..Default::default()
                },
                spec: Some(PersistentVolumeClaimSpec {
                    access_modes: Some(vec!["ReadWriteOnce".into()]),
                    storage_class_name: c.storage_class.clone(),
                    resources: Some(VolumeResourceRequirements {
                        requests: Some(BTreeMap::from([(
                            "storage".to_string(),
                            c.storage_size.clone(),
                        )])),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::v1alpha1::{AclSpec, SecretKeyRef};
    use crate::fixtures::validated;

    #[test]
    fn stateful_set_shape() {
        let sts = build_stateful_set(&validated("c", 3), 2, "abc");
        let spec = sts.spec.unwrap();
        assert_eq!(spec.replicas, Some(2));
        assert_eq!(spec.service_name.as_deref(), Some("c-server"));
        assert_eq!(
            spec.update_strategy.unwrap().type_.as_deref(),
            Some("OnDelete")
        );
        let tpl = spec.template;
        assert_eq!(
            tpl.metadata.unwrap().annotations.unwrap()[CONFIG_HASH_ANNOTATION],
            "abc"
        );
        let pod = tpl.spec.unwrap();
        let ctr = &pod.containers[0];
        assert_eq!(
            ctr.image.as_deref(),
            Some("ghcr.io/praetor-dev/praetor:0.1.0")
        );
        let probe = ctr.readiness_probe.as_ref().unwrap().exec.as_ref().unwrap();
        assert!(probe.command.as_ref().unwrap()[2].contains("/v1/status/leader"));
        assert!(pod.affinity.unwrap().pod_anti_affinity.is_some());
        let claims = spec.volume_claim_templates.unwrap();
        assert_eq!(
            claims[0]
                .spec
                .as_ref()
                .unwrap()
                .resources
                .as_ref()
                .unwrap()
                .requests
                .as_ref()
                .unwrap()["storage"]
                .0,
            "1Gi"
        );
        assert_eq!(sts.metadata.owner_references.unwrap()[0].name, "c");
    }

    /// Runs the readiness probe's script against a fake `curl` printing each answer.
    #[test]
    fn readiness_needs_a_known_leader() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let curl = dir.path().join("curl");
        std::fs::write(
            &curl,
            "#!/bin/sh\n[ -n \"$FAIL\" ] && exit 7\nprintf '%s' \"$BODY\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&curl, std::fs::Permissions::from_mode(0o755)).unwrap();
        let probe = |body: &str, fail: bool| {
            std::process::Command::new("/bin/sh")
                .args(["-ec", READINESS_SCRIPT])
                .env("PATH", format!("{}:/usr/bin:/bin", dir.path().display()))
                .env("BODY", body)
                .env("FAIL", if fail { "1" } else { "" })
                .status()
                .unwrap()
                .success()
        };
        assert!(probe("\"10.0.0.10:8300\"", false));
        assert!(
            !probe("\"\"", false),
            "praetor answers \"\" without a leader"
        );
        assert!(!probe("", false));
        assert!(
            !probe("\"10.0.0.10:8300\"", true),
            "curl failing fails the probe"
        );
    }

    #[test]
    fn secrets_come_from_env_not_args() {
        let mut c = validated("c", 3);
        c.gossip_key = Some(SecretKeyRef {
            secret_name: "gossip".into(),
            key: "key".into(),
        });
        c.acl = Some(AclSpec {
            enabled: true,
            default_policy: "deny".into(),
            bootstrap_token: Some(SecretKeyRef {
                secret_name: "acl".into(),
                key: "token".into(),
            }),
        });
        let args = server_args(&c);
        assert!(args.contains(&"-encrypt=$(PRAETOR_GOSSIP_KEY)".to_string()));
        assert!(args
            .iter()
            .any(|a| a.contains("$(PRAETOR_ACL_BOOTSTRAP_TOKEN)")));
        let sts = build_stateful_set(&c, 3, "h");
        let env = sts.spec.unwrap().template.spec.unwrap().containers[0]
            .env
            .clone()
            .unwrap();
        let gossip = env.iter().find(|e| e.name == GOSSIP_KEY_ENV).unwrap();
        let sel = gossip
            .value_from
            .as_ref()
            .unwrap()
            .secret_key_ref
            .as_ref()
            .unwrap();
        assert_eq!((sel.name.as_str(), sel.key.as_str()), ("gossip", "key"));
    }
}
