//! Raft membership while scaling and upgrading. The plans are pure functions of what the
//! operator saw; [`shrink_one`] carries out one scale-down step against the Praetor API.
//!
//! Scaling down removes the highest-ordinal server from the Raft configuration (through the
//! leader) before the StatefulSet shrinks, one server per reconcile, so the remaining servers
//! never count a vanished voter towards their quorum. Upgrades use the StatefulSet's
//! `OnDelete` strategy: the operator deletes one outdated pod at a time, and only while all
//! servers are ready and a leader is known.

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

use super::build::{pod_name, pod_ordinal};
use crate::consul::{http_base_of_raft_addr, ConsulApi, ConsulApiError};

/// Label the StatefulSet controller puts on its pods with their template revision.
pub const REVISION_LABEL: &str = "controller-revision-hash";

/// What to do with the StatefulSet's replica count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScaleStep {
    /// Apply this replica count (create, scale up, or unchanged).
    Apply(i32),
    /// Remove the server with this ordinal from Raft, then shrink to it (`ordinal` is the new
    /// replica count).
    ShrinkOne {
        /// Ordinal of the pod that goes away.
        ordinal: i32,
    },
}

/// Plans the replica count from the wanted one and what the StatefulSet has now.
pub fn plan_scale(desired: i32, current: Option<i32>) -> ScaleStep {
    match current {
        Some(cur) if desired < cur => ScaleStep::ShrinkOne { ordinal: cur - 1 },
        _ => ScaleStep::Apply(desired),
    }
}

/// Result of one scale-down step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShrinkOutcome {
    /// The server is out of the Raft configuration (or never was in it): shrink.
    Removed,
    /// Not yet; the reason goes into the status.
    Blocked(String),
}

/// Errors of a scale-down step.
#[derive(Debug, thiserror::Error)]
pub enum MembershipError {
    /// Reading the Raft configuration failed.
    #[error("reading the Raft configuration from {base}: {source}")]
    ReadRaftConfiguration {
        /// API base called.
        base: String,
        /// The cause.
        #[source]
        source: ConsulApiError,
    },
    /// Removing the peer failed.
    #[error("removing server {node} from the Raft configuration: {source}")]
    RemovePeer {
        /// The server's node name.
        node: String,
        /// The cause.
        #[source]
        source: ConsulApiError,
    },
    /// Moving leadership away from the server that is to go failed.
    #[error("transferring leadership away from {node}: {source}")]
    TransferLeader {
        /// The server's node name.
        node: String,
        /// The cause.
        #[source]
        source: ConsulApiError,
    },
}

/// Removes server `ordinal` of `cluster` from the Raft configuration through the leader
/// (whose Raft address is `leader`). When that server is the leader itself, leadership is
/// transferred first and the step reports `Blocked` until another server leads.
///
/// Praetor's leader adds every alive server it sees in gossip back to Raft within a second,
/// so the departing server (at `departing_ip`) is first asked to leave gracefully; its
/// gossip status becomes "left" and the removal sticks. If it cannot be reached it is
/// already gone, which is as good.
pub async fn shrink_one(
    api: &dyn ConsulApi,
    cluster: &str,
    ordinal: i32,
    leader: Option<&str>,
    departing_ip: Option<&str>,
    http_port: u16,
) -> Result<ShrinkOutcome, MembershipError> {
    let Some(leader) = leader else {
        return Ok(ShrinkOutcome::Blocked(
            "scale-down waits for a leader to remove the server from Raft".into(),
        ));
    };
    let base = http_base_of_raft_addr(leader, http_port);
    let node = pod_name(cluster, ordinal);
    let servers =
        api.raft_servers(&base)
            .await
            .map_err(|source| MembershipError::ReadRaftConfiguration {
                base: base.clone(),
                source,
            })?;
    let Some(target) = servers.iter().find(|s| s.node == node) else {
        return Ok(ShrinkOutcome::Removed);
    };
    if target.leader || target.address == leader {
        api.transfer_leader(&base)
            .await
            .map_err(|source| MembershipError::TransferLeader {
                node: node.clone(),
                source,
            })?;
        return Ok(ShrinkOutcome::Blocked(format!(
            "{node} is the leader; leadership is being transferred before it is removed"
        )));
    }
    if let Some(ip) = departing_ip {
        let departing = http_base_of_raft_addr(&format!("{ip}:0"), http_port);
        if let Err(e) = api.leave(&departing).await {
            tracing::info!(%node, error = %e, "the departing server did not take the leave request; removing it anyway");
        }
    }
    if let Err(source) = api.remove_peer(&base, &target.id).await {
        // The leader may have removed it by itself once it left: check before failing.
        let still_there = api
            .raft_servers(&base)
            .await
            .map(|servers| servers.iter().any(|s| s.node == node))
            .unwrap_or(true);
        if still_there {
            return Err(MembershipError::RemovePeer { node, source });
        }
    }
    Ok(ShrinkOutcome::Removed)
}

/// What the rolling upgrade should do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpgradeStep {
    /// Every server runs the current template.
    UpToDate,
    /// Some servers are outdated but it is not safe to restart one now.
    Wait {
        /// Outdated servers.
        outdated: i32,
        /// Why not now.
        reason: String,
    },
    /// Delete this pod; the StatefulSet recreates it from the current template.
    Delete {
        /// Outdated servers, this one included.
        outdated: i32,
        /// The pod to delete.
        pod: String,
    },
}

/// Whether the pod's `Ready` condition is true.
pub fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn pod_ip(pod: &Pod) -> Option<&str> {
    pod.status.as_ref()?.pod_ip.as_deref()
}

/// Plans the next upgrade step. `pods` are the cluster's server pods, `update_revision` the
/// StatefulSet's `status.updateRevision`, `replicas` its replica count, and `leader` the
/// leader's Raft address. The leader is restarted last, and outdated followers from the
/// highest ordinal down.
pub fn plan_upgrade(
    cluster: &str,
    pods: &[Pod],
    update_revision: Option<&str>,
    replicas: i32,
    leader: Option<&str>,
) -> UpgradeStep {
    let Some(rev) = update_revision else {
        return UpgradeStep::UpToDate;
    };
    let mut outdated: Vec<&Pod> = pods
        .iter()
        .filter(|p| pod_ordinal(cluster, &p.name_any()).is_some_and(|o| o < replicas))
        .filter(|p| p.labels().get(REVISION_LABEL).map(String::as_str) != Some(rev))
        .collect();
    if outdated.is_empty() {
        return UpgradeStep::UpToDate;
    }
    let n = outdated.len() as i32;
    if pods.iter().any(|p| p.metadata.deletion_timestamp.is_some()) {
        return UpgradeStep::Wait {
            outdated: n,
            reason: "a server pod is terminating".into(),
        };
    }
    let ready = pods.iter().filter(|p| pod_ready(p)).count() as i32;
    if ready < replicas {
        return UpgradeStep::Wait {
            outdated: n,
            reason: format!("{ready} of {replicas} servers are ready"),
        };
    }
    let Some(leader) = leader else {
        return UpgradeStep::Wait {
            outdated: n,
            reason: "no leader is known".into(),
        };
    };
    let leader_host = leader.rsplit_once(':').map(|(h, _)| h).unwrap_or(leader);
    let leader_host = leader_host.trim_start_matches('[').trim_end_matches(']');
    let is_leader = |p: &Pod| pod_ip(p) == Some(leader_host);
    // Followers first (highest ordinal first), the leader last.
    outdated.sort_by_key(|p| {
        (
            !is_leader(p),
            pod_ordinal(cluster, &p.name_any()).unwrap_or(0),
        )
    });
    let pick = outdated.last().expect("outdated is not empty");
    UpgradeStep::Delete {
        outdated: n,
        pod: pick.name_any(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{server_pod, FakeConsul};

    #[test]
    fn scale_plans() {
        assert_eq!(plan_scale(3, None), ScaleStep::Apply(3));
        assert_eq!(plan_scale(5, Some(3)), ScaleStep::Apply(5));
        assert_eq!(plan_scale(3, Some(3)), ScaleStep::Apply(3));
        assert_eq!(plan_scale(1, Some(3)), ScaleStep::ShrinkOne { ordinal: 2 });
    }

    #[test]
    fn upgrade_waits_for_ready_and_leader_and_restarts_leader_last() {
        let pods = vec![
            server_pod("c", 0, "r1", true),
            server_pod("c", 1, "r1", true),
            server_pod("c", 2, "r2", true),
        ];
        // c-server-1 (10.0.0.11) leads: c-server-0 goes first, c-server-2 is done.
        assert_eq!(
            plan_upgrade("c", &pods, Some("r2"), 3, Some("10.0.0.11:8300")),
            UpgradeStep::Delete {
                outdated: 2,
                pod: "c-server-0".into()
            }
        );
        assert!(matches!(
            plan_upgrade("c", &pods, Some("r2"), 3, None),
            UpgradeStep::Wait { outdated: 2, .. }
        ));
        let mut not_ready = pods.clone();
        not_ready[2] = server_pod("c", 2, "r2", false);
        assert!(matches!(
            plan_upgrade("c", &not_ready, Some("r2"), 3, Some("10.0.0.11:8300")),
            UpgradeStep::Wait { .. }
        ));
        let only_leader = vec![
            server_pod("c", 0, "r2", true),
            server_pod("c", 1, "r1", true),
            server_pod("c", 2, "r2", true),
        ];
        assert_eq!(
            plan_upgrade("c", &only_leader, Some("r2"), 3, Some("10.0.0.11:8300")),
            UpgradeStep::Delete {
                outdated: 1,
                pod: "c-server-1".into()
            }
        );
        assert_eq!(
            plan_upgrade("c", &only_leader, Some("r1"), 3, Some("10.0.0.11:8300")),
            UpgradeStep::Delete {
                outdated: 2,
                pod: "c-server-2".into()
            }
        );
        let current = vec![server_pod("c", 0, "r2", true)];
        assert_eq!(
            plan_upgrade("c", &current, Some("r2"), 1, None),
            UpgradeStep::UpToDate
        );
    }

    #[tokio::test]
    async fn shrink_removes_peer_through_leader() {
        let fake = FakeConsul::with_servers("c", 3, 0);
        let out = shrink_one(
            &fake,
            "c",
            2,
            Some("10.0.0.10:8300"),
            Some("10.0.0.12"),
            8500,
        )
        .await
        .unwrap();
        assert_eq!(out, ShrinkOutcome::Removed);
        assert_eq!(
            fake.calls(),
            vec![
                "raft_servers http://10.0.0.10:8500".to_string(),
                "leave http://10.0.0.12:8500".to_string(),
                "remove_peer http://10.0.0.10:8500 id-c-server-2".to_string()
            ]
        );
        // Already out of the configuration: nothing to call.
        let again = shrink_one(&fake, "c", 2, Some("10.0.0.10:8300"), None, 8500)
            .await
            .unwrap();
        assert_eq!(again, ShrinkOutcome::Removed);
        assert_eq!(fake.calls().len(), 4);
    }

    #[tokio::test]
    async fn failed_removal_is_an_error_unless_the_server_is_gone() {
        let stays = FakeConsul {
            remove_fails: Some(false),
            ..FakeConsul::with_servers("c", 3, 0)
        };
        let err = shrink_one(&stays, "c", 2, Some("10.0.0.10:8300"), None, 8500)
            .await
            .unwrap_err();
        assert!(matches!(err, MembershipError::RemovePeer { .. }), "{err}");
        let gone = FakeConsul {
            remove_fails: Some(true),
            ..FakeConsul::with_servers("c", 3, 0)
        };
        let out = shrink_one(&gone, "c", 2, Some("10.0.0.10:8300"), None, 8500)
            .await
            .unwrap();
        assert_eq!(out, ShrinkOutcome::Removed);
    }

    #[tokio::test]
    async fn shrink_transfers_leadership_off_the_departing_server() {
        let fake = FakeConsul::with_servers("c", 3, 2);
        let out = shrink_one(
            &fake,
            "c",
            2,
            Some("10.0.0.12:8300"),
            Some("10.0.0.12"),
            8500,
        )
        .await
        .unwrap();
        assert!(matches!(out, ShrinkOutcome::Blocked(_)));
        assert!(fake.calls().iter().all(|c| !c.starts_with("remove_peer")));
        assert!(fake
            .calls()
            .iter()
            .any(|c| c.starts_with("transfer_leader")));
        let none = shrink_one(&fake, "c", 2, None, None, 8500).await.unwrap();
        assert!(matches!(none, ShrinkOutcome::Blocked(_)));
    }
}
