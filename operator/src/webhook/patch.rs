//! The sidecar injection, as pure functions: which pods get a client agent, the agent's
//! config (Consul JSON with the services to register), the container, and the JSON patch
//! that adds it. The admission handler only fetches the inputs and calls these.

use std::collections::BTreeMap;

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, Patch, PatchOperation};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, EmptyDirVolumeSource, EnvVar, ExecAction, Lifecycle, LifecycleHandler,
    Pod, ResourceRequirements, SeccompProfile, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::ResourceExt;
use serde_json::{json, Value};

use crate::controller::build::statefulset::{env_from_secret, GOSSIP_KEY_ENV};
use crate::controller::build::{server_dns_names, MANAGER};
use crate::controller::service_definition::selects;
use crate::controller::validate::{self, Defaults};
use crate::crd::v1alpha1::{CheckSpec, ConsulCluster, SecretKeyRef, ServiceDefinition};

/// Name of the injected container.
pub const SIDECAR_CONTAINER: &str = "praetor-agent";
/// `"true"` asks for a sidecar even without a ServiceDefinition; `"false"` refuses one.
pub const INJECT_ANNOTATION: &str = "praetor.dev/inject";
/// The ConsulCluster to join when no ServiceDefinition names one.
pub const CLUSTER_ANNOTATION: &str = "praetor.dev/cluster";
/// Set on injected pods.
pub const INJECTED_ANNOTATION: &str = "praetor.dev/injected";
/// Set on injected pods: the services the sidecar registers (comma-separated).
pub const SERVICES_ANNOTATION: &str = "praetor.dev/services";
/// The sidecar's emptyDir volume and where it is mounted.
pub const SIDECAR_VOLUME: &str = "praetor-agent";
/// Mount path of [`SIDECAR_VOLUME`] (see [`SIDECAR_SCRIPT`]).
pub const SIDECAR_DIR: &str = "/tmp/praetor";
/// Environment variable carrying the sidecar's agent config (JSON).
pub const AGENT_CONFIG_ENV: &str = "PRAETOR_AGENT_CONFIG";
/// Address of the sidecar's HTTP API, given to the application containers.
pub const LOCAL_HTTP_ADDR: &str = "127.0.0.1:8500";

/// Environment variable naming the sidecar's directory ([`SIDECAR_DIR`]).
pub const AGENT_DIR_ENV: &str = "PRAETOR_AGENT_DIR";

/// Writes the config from the environment into the config dir and starts the client agent;
/// the retry-join flags follow as arguments (`"$@"`).
pub const SIDECAR_SCRIPT: &str = r#"mkdir -p "$PRAETOR_AGENT_DIR/config" "$PRAETOR_AGENT_DIR/data"
printf '%s' "$PRAETOR_AGENT_CONFIG" > "$PRAETOR_AGENT_DIR/config/agent.json"
set -- -data-dir="$PRAETOR_AGENT_DIR/data" -config-dir="$PRAETOR_AGENT_DIR/config" -node="$POD_NAME" -advertise="$POD_IP" -client=127.0.0.1 "$@"
if [ -n "${PRAETOR_GOSSIP_KEY:-}" ]; then set -- "$@" -encrypt="$PRAETOR_GOSSIP_KEY"; fi
exec praetor agent "$@""#;

/// Why a selected pod cannot get a sidecar.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InjectError {
    /// No ConsulCluster could be chosen.
    #[error("no ConsulCluster to join: set the {CLUSTER_ANNOTATION} annotation (the namespace has {0} clusters)")]
    NoCluster(usize),
    /// The named ConsulCluster does not exist.
    #[error("ConsulCluster {0} does not exist in this namespace")]
    ClusterNotFound(String),
    /// ServiceDefinitions selecting the pod name different clusters.
    #[error("the ServiceDefinitions selecting this pod name different clusters: {0} and {1}")]
    ConflictingClusters(String, String),
    /// The pod uses the node's network: the sidecar's ports would clash on the node.
    #[error(
        "pods with hostNetwork get no sidecar (its ports 8500, 8600 and 8301 would be the node's)"
    )]
    HostNetwork,
    /// The sidecar could not be serialized into the patch.
    #[error("serializing the sidecar: {0}")]
    Serialize(String),
    /// The cluster's spec is invalid.
    #[error("ConsulCluster {0} is invalid: {1}")]
    InvalidCluster(String, validate::ValidationError),
}

/// What the sidecar needs to know about the cluster it joins.
#[derive(Debug, Clone, PartialEq)]
pub struct SidecarSettings {
    /// Image of the agent.
    pub image: String,
    /// Pull policy.
    pub image_pull_policy: Option<String>,
    /// Datacenter.
    pub datacenter: String,
    /// Server DNS names to join.
    pub retry_join: Vec<String>,
    /// Gossip key Secret.
    pub gossip_key: Option<SecretKeyRef>,
}

/// Renders one check as a Consul config-file check.
fn render_check(service: &str, c: &CheckSpec) -> Value {
    let mut m = serde_json::Map::new();
    let kind = [
        ("http", &c.http),
        ("tcp", &c.tcp),
        ("grpc", &c.grpc),
        ("ttl", &c.ttl),
    ]
    .into_iter()
    .find_map(|(k, v)| v.as_ref().map(|v| (k, v.clone())));
    let default_name = match &kind {
        Some((k, _)) => format!("{service} {k} check"),
        None => format!("{service} check"),
    };
    m.insert("name".into(), json!(c.name.clone().unwrap_or(default_name)));
    if let Some((k, v)) = kind {
        m.insert(k.into(), json!(v));
    }
    for (k, v) in [
        ("method", &c.method),
        ("interval", &c.interval),
        ("timeout", &c.timeout),
        (
            "deregister_critical_service_after",
            &c.deregister_critical_service_after,
        ),
    ] {
        if let Some(v) = v {
            m.insert(k.into(), json!(v));
        }
    }
    Value::Object(m)
}

/// Renders a ServiceDefinition as a Consul config-file service.
pub fn render_service(sd: &ServiceDefinition) -> Value {
    let name = sd.service_name();
    json!({
        "name": name,
        "port": sd.spec.port,
        "tags": sd.spec.tags,
        "meta": sd.spec.meta,
        "checks": sd.spec.checks.iter().map(|c| render_check(&name, c)).collect::<Vec<_>>(),
    })
}

/// The client agent's config: datacenter, leave on terminate (the pod's services are
/// deregistered when it goes), and the services.
pub fn render_agent_config(settings: &SidecarSettings, defs: &[&ServiceDefinition]) -> Value {
    json!({
        "datacenter": settings.datacenter,
        "server": false,
        "leave_on_terminate": true,
        "services": defs.iter().map(|d| render_service(d)).collect::<Vec<_>>(),
    })
}

fn env_value(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..Default::default()
    }
}

fn env_field(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(k8s_openapi::api::core::v1::EnvVarSource {
            field_ref: Some(k8s_openapi::api::core::v1::ObjectFieldSelector {
                field_path: path.into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The client-agent container.
pub fn build_sidecar(settings: &SidecarSettings, agent_config: &Value) -> Container {
    let mut env = vec![
        env_field("POD_NAME", "metadata.name"),
        env_field("POD_IP", "status.podIP"),
        env_value(AGENT_DIR_ENV, SIDECAR_DIR),
        env_value(AGENT_CONFIG_ENV, &agent_config.to_string()),
    ];
    if let Some(g) = &settings.gossip_key {
        env.push(env_from_secret(GOSSIP_KEY_ENV, &g.secret_name, &g.key));
    }
    Container {
        name: SIDECAR_CONTAINER.into(),
        image: Some(settings.image.clone()),
        image_pull_policy: settings.image_pull_policy.clone(),
        command: Some(vec![
            "/bin/sh".into(),
            "-ec".into(),
            SIDECAR_SCRIPT.into(),
            SIDECAR_CONTAINER.into(),
        ]),
        args: Some(
            settings
                .retry_join
                .iter()
                .map(|s| format!("-retry-join={s}"))
                .collect(),
        ),
        env: Some(env),
        lifecycle: Some(Lifecycle {
            pre_stop: Some(LifecycleHandler {
                exec: Some(ExecAction {
                    command: Some(vec!["praetor".into(), "leave".into()]),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".to_string(), Quantity("25m".into())),
                ("memory".to_string(), Quantity("64Mi".into())),
            ])),
            limits: Some(BTreeMap::from([(
                "memory".to_string(),
                Quantity("256Mi".into()),
            )])),
            ..Default::default()
        }),
        volume_mounts: Some(vec![VolumeMount {
            name: SIDECAR_VOLUME.into(),
            mount_path: SIDECAR_DIR.into(),
            ..Default::default()
        }]),
        // Fits the "restricted" Pod Security Standard; it writes only to its emptyDir.
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            run_as_user: Some(1000),
            run_as_group: Some(1000),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Default::default()
            }),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The sidecar's scratch volume (agent data and config file).
pub fn build_sidecar_volume() -> Volume {
    Volume {
        name: SIDECAR_VOLUME.into(),
        empty_dir: Some(EmptyDirVolumeSource {
            size_limit: Some(Quantity("64Mi".into())),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<Value, InjectError> {
    serde_json::to_value(v).map_err(|e| InjectError::Serialize(e.to_string()))
}

fn add(path: PointerBuf, value: Value) -> PatchOperation {
    PatchOperation::Add(AddOperation { path, value })
}

fn ptr(tokens: &[&str]) -> PointerBuf {
    PointerBuf::from_tokens(tokens.iter().copied())
}

/// The JSON patch adding `sidecar` to `pod`, pointing the application containers at the
/// local agent (`CONSUL_HTTP_ADDR`, unless they set it) and annotating the pod. Empty when
/// the pod already has the sidecar, so re-invocations change nothing.
pub fn build_patch(
    pod: &Pod,
    sidecar: &Container,
    services: &[String],
) -> Result<Patch, InjectError> {
    let Some(spec) = pod.spec.as_ref() else {
        return Ok(Patch(Vec::new()));
    };
    if spec.containers.iter().any(|c| c.name == SIDECAR_CONTAINER) {
        return Ok(Patch(Vec::new()));
    }
    let mut ops = Vec::new();
    for (i, c) in spec.containers.iter().enumerate() {
        let idx = i.to_string();
        let env = json!(env_value("CONSUL_HTTP_ADDR", LOCAL_HTTP_ADDR));
        match &c.env {
            None => ops.push(add(ptr(&["spec", "containers", &idx, "env"]), json!([env]))),
            Some(list) if list.iter().any(|e| e.name == "CONSUL_HTTP_ADDR") => {}
            Some(_) => ops.push(add(ptr(&["spec", "containers", &idx, "env", "-"]), env)),
        }
    }
    ops.push(add(ptr(&["spec", "containers", "-"]), to_json(sidecar)?));
    let volume = to_json(&build_sidecar_volume())?;
    match &spec.volumes {
        None => ops.push(add(ptr(&["spec", "volumes"]), json!([volume]))),
        Some(_) => ops.push(add(ptr(&["spec", "volumes", "-"]), volume)),
    }
    let notes = [
        (INJECTED_ANNOTATION, "true".to_string()),
        (SERVICES_ANNOTATION, services.join(",")),
    ];
    if pod.metadata.annotations.is_none() {
        let map: BTreeMap<&str, &String> = notes.iter().map(|(k, v)| (*k, v)).collect();
        ops.push(add(ptr(&["metadata", "annotations"]), json!(map)));
    } else {
        for (k, v) in notes {
            ops.push(add(ptr(&["metadata", "annotations", k]), json!(v)));
        }
    }
    Ok(Patch(ops))
}

/// The sidecar settings of a (validated) cluster.
pub fn sidecar_settings(
    cluster: &ConsulCluster,
    defaults: &Defaults,
) -> Result<SidecarSettings, InjectError> {
    let v = validate::validate(cluster, defaults)
        .map_err(|e| InjectError::InvalidCluster(cluster.name_any(), e))?;
    Ok(SidecarSettings {
        retry_join: server_dns_names(&v.name, &v.namespace, &v.cluster_domain, v.replicas),
        image: v.image,
        image_pull_policy: v.image_pull_policy,
        datacenter: v.datacenter,
        gossip_key: v.gossip_key,
    })
}

/// Decides whether and how to inject into `pod`, given the ServiceDefinitions and
/// ConsulClusters of its namespace. `Ok(None)`: leave the pod alone.
pub fn plan_injection(
    pod: &Pod,
    definitions: &[ServiceDefinition],
    clusters: &[ConsulCluster],
    defaults: &Defaults,
) -> Result<Option<Patch>, InjectError> {
    let annotation = pod.annotations().get(INJECT_ANNOTATION).map(String::as_str);
    // Never into the Praetor servers themselves (they are full agents already).
    let managed = pod
        .labels()
        .get("app.kubernetes.io/managed-by")
        .map(String::as_str);
    if annotation == Some("false") || managed == Some(MANAGER) {
        return Ok(None);
    }
    let selected: Vec<&ServiceDefinition> = definitions
        .iter()
        .filter(|d| selects(d, pod.labels()))
        .collect();
    if selected.is_empty() && annotation != Some("true") {
        return Ok(None);
    }
    if pod.spec.as_ref().and_then(|s| s.host_network) == Some(true) {
        return Err(InjectError::HostNetwork);
    }
    let cluster_name = match (selected.first(), pod.annotations().get(CLUSTER_ANNOTATION)) {
        (Some(first), _) => {
            if let Some(other) = selected
                .iter()
                .find(|d| d.spec.cluster != first.spec.cluster)
            {
                return Err(InjectError::ConflictingClusters(
                    first.spec.cluster.clone(),
                    other.spec.cluster.clone(),
                ));
            }
            first.spec.cluster.clone()
        }
        (None, Some(name)) => name.clone(),
        (None, None) if clusters.len() == 1 => clusters[0].name_any(),
        (None, None) => return Err(InjectError::NoCluster(clusters.len())),
    };
    let cluster = clusters
        .iter()
        .find(|c| c.name_any() == cluster_name)
        .ok_or_else(|| InjectError::ClusterNotFound(cluster_name.clone()))?;
    let settings = sidecar_settings(cluster, defaults)?;
    let config = render_agent_config(&settings, &selected);
    let sidecar = build_sidecar(&settings, &config);
    let services: Vec<String> = selected.iter().map(|d| d.service_name()).collect();
    build_patch(pod, &sidecar, &services).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{cluster, pod_with_labels, service_definition};

    fn defaults() -> Defaults {
        Defaults {
            image: "ghcr.io/praetor-dev/praetor:0.1.0".into(),
            cluster_domain: "cluster.local".into(),
        }
    }

    fn apply(pod: &Pod, patch: &Patch) -> Value {
        let mut doc = serde_json::to_value(pod).unwrap();
        json_patch::patch(&mut doc, patch).unwrap();
        doc
    }

    #[test]
    fn selected_pod_gets_sidecar_with_service_config() {
        let pod = pod_with_labels("web-1", &[("app", "web")], None);
        let defs = vec![service_definition("web", "praetor", &[("app", "web")])];
        let patch = plan_injection(&pod, &defs, &[cluster("praetor", 3)], &defaults())
            .unwrap()
            .unwrap();
        let doc = apply(&pod, &patch);
        let containers = doc["spec"]["containers"].as_array().unwrap();
        assert_eq!(containers.len(), 2);
        assert_eq!(containers[0]["env"][0]["name"], "CONSUL_HTTP_ADDR");
        let side = &containers[1];
        assert_eq!(side["name"], SIDECAR_CONTAINER);
        assert_eq!(side["image"], "ghcr.io/praetor-dev/praetor:0.1.0");
        assert_eq!(
            side["args"][0],
            "-retry-join=praetor-server-0.praetor-server.default.svc.cluster.local"
        );
        assert_eq!(
            side["lifecycle"]["preStop"]["exec"]["command"],
            json!(["praetor", "leave"])
        );
        let cfg_env = side["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == AGENT_CONFIG_ENV)
            .unwrap();
        let cfg: Value = serde_json::from_str(cfg_env["value"].as_str().unwrap()).unwrap();
        assert_eq!(cfg["leave_on_terminate"], json!(true));
        assert_eq!(cfg["services"][0]["name"], "web");
        assert_eq!(cfg["services"][0]["port"], 8080);
        assert_eq!(
            cfg["services"][0]["checks"][0]["http"],
            "http://localhost:8080/healthz"
        );
        assert_eq!(cfg["services"][0]["checks"][0]["name"], "web http check");
        crate::fixtures::assert_known_keys(&cfg, &["meta"], "");
        assert_eq!(doc["metadata"]["annotations"][INJECTED_ANNOTATION], "true");
        assert_eq!(doc["metadata"]["annotations"][SERVICES_ANNOTATION], "web");
        assert_eq!(doc["spec"]["volumes"][0]["name"], SIDECAR_VOLUME);
        assert_eq!(side["volumeMounts"][0]["mountPath"], SIDECAR_DIR);
        assert_eq!(side["securityContext"]["readOnlyRootFilesystem"], true);

        // Admission may run twice: the second time the patch is empty.
        let again: Pod = serde_json::from_value(doc).unwrap();
        let second = plan_injection(&again, &defs, &[cluster("praetor", 3)], &defaults())
            .unwrap()
            .unwrap();
        assert!(second.0.is_empty());
    }

    #[test]
    fn every_check_field_renders_to_a_known_key() {
        let full = CheckSpec {
            name: Some("n".into()),
            http: Some("http://localhost/".into()),
            method: Some("HEAD".into()),
            tcp: None,
            grpc: None,
            ttl: None,
            interval: Some("5s".into()),
            timeout: Some("1s".into()),
            deregister_critical_service_after: Some("1m".into()),
        };
        let rendered = render_check("web", &full);
        assert_eq!(rendered.as_object().unwrap().len(), 6);
        crate::fixtures::assert_known_keys(&rendered, &[], "");
        for kind in ["tcp", "grpc", "ttl"] {
            let mut c = CheckSpec::default();
            match kind {
                "tcp" => c.tcp = Some("localhost:1".into()),
                "grpc" => c.grpc = Some("localhost:1".into()),
                _ => c.ttl = Some("30s".into()),
            }
            let r = render_check("web", &c);
            assert_eq!(r["name"], format!("web {kind} check"));
            crate::fixtures::assert_known_keys(&r, &[], "");
        }
    }

    #[test]
    fn annotation_opt_in_and_opt_out() {
        let clusters = [cluster("praetor", 1)];
        let plain = pod_with_labels("p", &[("app", "x")], None);
        assert_eq!(
            plan_injection(&plain, &[], &clusters, &defaults()),
            Ok(None)
        );

        let opted = pod_with_labels("p", &[("app", "x")], Some(&[(INJECT_ANNOTATION, "true")]));
        let patch = plan_injection(&opted, &[], &clusters, &defaults())
            .unwrap()
            .unwrap();
        let doc = apply(&opted, &patch);
        assert_eq!(doc["spec"]["containers"][1]["name"], SIDECAR_CONTAINER);
        // The existing annotations map is extended, not replaced.
        assert_eq!(doc["metadata"]["annotations"][INJECT_ANNOTATION], "true");
        assert_eq!(doc["metadata"]["annotations"][INJECTED_ANNOTATION], "true");

        let defs = vec![service_definition("web", "praetor", &[("app", "x")])];
        let mut host = opted.clone();
        host.spec.as_mut().unwrap().host_network = Some(true);
        assert_eq!(
            plan_injection(&host, &[], &clusters, &defaults()),
            Err(InjectError::HostNetwork)
        );

        let out = pod_with_labels("p", &[("app", "x")], Some(&[(INJECT_ANNOTATION, "false")]));
        assert_eq!(
            plan_injection(&out, &defs, &clusters, &defaults()),
            Ok(None)
        );
    }

    #[test]
    fn servers_are_never_injected_and_existing_volumes_are_kept() {
        let clusters = [cluster("praetor", 3)];
        let defs = vec![service_definition(
            "all",
            "praetor",
            &[("app.kubernetes.io/name", "praetor")],
        )];
        let server = pod_with_labels(
            "praetor-server-0",
            &[
                ("app.kubernetes.io/name", "praetor"),
                ("app.kubernetes.io/managed-by", "praetor-operator"),
            ],
            None,
        );
        assert_eq!(
            plan_injection(&server, &defs, &clusters, &defaults()),
            Ok(None)
        );

        let mut pod = pod_with_labels("p", &[("app.kubernetes.io/name", "praetor")], None);
        pod.spec.as_mut().unwrap().volumes = Some(vec![Volume {
            name: "cache".into(),
            ..Default::default()
        }]);
        let patch = plan_injection(&pod, &defs, &clusters, &defaults())
            .unwrap()
            .unwrap();
        let doc = apply(&pod, &patch);
        assert_eq!(doc["spec"]["volumes"][0]["name"], "cache");
        assert_eq!(doc["spec"]["volumes"][1]["name"], SIDECAR_VOLUME);
    }

    #[test]
    fn cluster_choice_errors() {
        let opted = pod_with_labels("p", &[], Some(&[(INJECT_ANNOTATION, "true")]));
        assert_eq!(
            plan_injection(&opted, &[], &[], &defaults()),
            Err(InjectError::NoCluster(0))
        );
        let pod = pod_with_labels("p", &[("app", "web")], None);
        let defs = vec![
            service_definition("web", "a", &[("app", "web")]),
            service_definition("web2", "b", &[("app", "web")]),
        ];
        assert!(matches!(
            plan_injection(&pod, &defs, &[cluster("a", 1)], &defaults()),
            Err(InjectError::ConflictingClusters(..))
        ));
        assert_eq!(
            plan_injection(&pod, &defs[..1], &[cluster("b", 1)], &defaults()),
            Err(InjectError::ClusterNotFound("a".into()))
        );
    }

    /// Runs the sidecar's start script with a fake `praetor` that records its arguments.
    #[test]
    fn sidecar_script_writes_config_and_passes_flags() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let fake = bin.join("praetor");
        std::fs::write(&fake, "#!/bin/sh\nprintf '%s\\n' \"$@\" > \"$ARGS_OUT\"\n").unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let agent_dir = dir.path().join("agent");
        let args_out = dir.path().join("args");
        let run = |gossip: Option<&str>| {
            let mut cmd = std::process::Command::new("/bin/sh");
            cmd.args([
                "-ec",
                SIDECAR_SCRIPT,
                SIDECAR_CONTAINER,
                "-retry-join=s-0",
                "-retry-join=s 1",
            ])
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .env(AGENT_DIR_ENV, &agent_dir)
            .env(AGENT_CONFIG_ENV, r#"{"services":[{"name":"web"}]}"#)
            .env("POD_NAME", "web-7f")
            .env("POD_IP", "10.1.2.3")
            .env("ARGS_OUT", &args_out)
            .env_remove(GOSSIP_KEY_ENV);
            if let Some(k) = gossip {
                cmd.env(GOSSIP_KEY_ENV, k);
            }
            let status = cmd.status().unwrap();
            assert!(status.success());
            std::fs::read_to_string(&args_out).unwrap()
        };
        let a = agent_dir.display();
        assert_eq!(
            run(None),
            format!(
                "agent\n-data-dir={a}/data\n-config-dir={a}/config\n-node=web-7f\n\
                 -advertise=10.1.2.3\n-client=127.0.0.1\n-retry-join=s-0\n-retry-join=s 1\n"
            )
        );
        assert_eq!(
            std::fs::read_to_string(agent_dir.join("config/agent.json")).unwrap(),
            r#"{"services":[{"name":"web"}]}"#
        );
        assert!(run(Some("a2V5")).ends_with("-retry-join=s 1\n-encrypt=a2V5\n"));
    }

    #[test]
    fn existing_env_is_extended_and_kept() {
        let mut pod = pod_with_labels("p", &[("app", "web")], None);
        let spec = pod.spec.as_mut().unwrap();
        spec.containers[0].env = Some(vec![env_value("A", "1")]);
        spec.containers.push(Container {
            name: "other".into(),
            env: Some(vec![env_value("CONSUL_HTTP_ADDR", "elsewhere:8500")]),
            ..Default::default()
        });
        let patch = build_patch(
            &pod,
            &Container {
                name: SIDECAR_CONTAINER.into(),
                ..Default::default()
            },
            &[],
        )
        .unwrap();
        let doc = apply(&pod, &patch);
        assert_eq!(
            doc["spec"]["containers"][0]["env"][1]["name"],
            "CONSUL_HTTP_ADDR"
        );
        assert_eq!(
            doc["spec"]["containers"][1]["env"][0]["value"],
            "elsewhere:8500"
        );
        assert_eq!(
            doc["spec"]["containers"][1]["env"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert_eq!(doc["spec"]["containers"][2]["name"], SIDECAR_CONTAINER);
    }
}
