//! Status: what the operator saw, as `ConsulClusterStatus` with conditions. Building it is
//! pure; [`patch_status`] writes it to the status subresource.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::json;

use crate::crd::v1alpha1::{ConsulCluster, ConsulClusterStatus};

/// Condition: a leader is known, so the cluster serves writes.
pub const AVAILABLE: &str = "Available";
/// Condition: the operator is still moving the cluster towards the spec.
pub const PROGRESSING: &str = "Progressing";

/// What the reconcile saw and did, for the status.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    /// `metadata.generation` of the ConsulCluster.
    pub generation: Option<i64>,
    /// Wanted servers.
    pub desired: i32,
    /// Servers in the StatefulSet now.
    pub servers: i32,
    /// Ready server pods.
    pub ready: i32,
    /// The leader's Raft address.
    pub leader: Option<String>,
    /// Why the leader is unknown when asking failed.
    pub leader_error: Option<String>,
    /// Outdated servers (rolling upgrade).
    pub outdated: i32,
    /// Reason and message of work in progress (scaling, upgrading, waiting).
    pub progress: Option<(String, String)>,
}

fn condition(
    type_: &str,
    ok: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
    previous: &[Condition],
    now: &Time,
) -> Condition {
    let status = if ok { "True" } else { "False" };
    // Keep the transition time while the status stays the same.
    let last_transition_time = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| now.clone());
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message,
        observed_generation: generation,
        last_transition_time,
    }
}

/// Builds the status from what was observed. `previous` are the current conditions (their
/// transition times are kept when a condition does not change).
pub fn build_status(o: &Observed, previous: &[Condition], now: &Time) -> ConsulClusterStatus {
    let available = match (&o.leader, &o.leader_error) {
        (Some(l), _) => condition(
            AVAILABLE,
            true,
            "LeaderElected",
            format!("leader {l}; {} of {} servers ready", o.ready, o.servers),
            o.generation,
            previous,
            now,
        ),
        (None, Some(e)) => condition(
            AVAILABLE,
            false,
            "LeaderUnknown",
            format!("asking the servers for the leader failed: {e}"),
            o.generation,
            previous,
            now,
        ),
        (None, None) => condition(
            AVAILABLE,
            false,
            "NoLeader",
            format!("no leader; {} of {} servers ready", o.ready, o.servers),
            o.generation,
            previous,
            now,
        ),
    };
    let progressing = match &o.progress {
        Some((reason, message)) => condition(
            PROGRESSING,
            true,
            reason,
            message.clone(),
            o.generation,
            previous,
            now,
        ),
        None if o.ready < o.desired || o.servers != o.desired => condition(
            PROGRESSING,
            true,
            "ServersStarting",
            format!("{} of {} servers ready", o.ready, o.desired),
            o.generation,
            previous,
            now,
        ),
        None => condition(
            PROGRESSING,
            false,
            "Reconciled",
            format!("{} servers ready and up to date", o.ready),
            o.generation,
            previous,
            now,
        ),
    };
    ConsulClusterStatus {
        observed_generation: o.generation,
        servers: o.servers,
        ready_servers: o.ready,
        leader: o.leader.clone(),
        outdated_servers: o.outdated,
        conditions: vec![available, progressing],
    }
}

/// Whether the status shows work still going on (the reconcile then requeues sooner).
pub fn is_progressing(s: &ConsulClusterStatus) -> bool {
    s.conditions.iter().any(|c| {
        (c.type_ == PROGRESSING && c.status == "True")
            || (c.type_ == AVAILABLE && c.status == "False")
    })
}

/// Writes `status` to the ConsulCluster's status subresource.
pub async fn patch_status(
    client: &Client,
    namespace: &str,
    name: &str,
    status: &ConsulClusterStatus,
) -> Result<(), kube::Error> {
    Api::<ConsulCluster>::namespaced(client.clone(), namespace)
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": status })),
        )
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Time {
        Time(s.parse().unwrap())
    }

    #[test]
    fn healthy_cluster() {
        let o = Observed {
            generation: Some(2),
            desired: 3,
            servers: 3,
            ready: 3,
            leader: Some("10.0.0.10:8300".into()),
            ..Default::default()
        };
        let s = build_status(&o, &[], &t("2026-01-01T00:00:00Z"));
        assert_eq!(s.ready_servers, 3);
        assert_eq!(s.conditions[0].type_, AVAILABLE);
        assert_eq!(s.conditions[0].status, "True");
        assert_eq!(s.conditions[1].status, "False");
        assert_eq!(s.conditions[1].reason, "Reconciled");
        assert!(!is_progressing(&s));

        // Same state later: transition times stay.
        let again = build_status(&o, &s.conditions, &t("2026-01-02T00:00:00Z"));
        assert_eq!(
            again.conditions[0].last_transition_time,
            t("2026-01-01T00:00:00Z")
        );
    }

    #[test]
    fn no_leader_and_progress() {
        let o = Observed {
            desired: 3,
            servers: 3,
            ready: 0,
            progress: Some(("ScalingDown".into(), "removing c-server-2".into())),
            ..Default::default()
        };
        let s = build_status(&o, &[], &t("2026-01-01T00:00:00Z"));
        assert_eq!(s.conditions[0].reason, "NoLeader");
        assert_eq!(s.conditions[1].reason, "ScalingDown");
        assert!(is_progressing(&s));
        let err = Observed {
            leader_error: Some("connection refused".into()),
            ..o
        };
        let s = build_status(&err, &[], &t("2026-01-01T00:00:00Z"));
        assert_eq!(s.conditions[0].reason, "LeaderUnknown");
    }
}
