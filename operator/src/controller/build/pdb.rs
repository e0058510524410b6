//! The PodDisruptionBudget of the servers: at most one voluntary disruption at a time.

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{object_meta, server_name, server_selector};
use crate::controller::validate::ValidatedCluster;

/// One server may be evicted at a time. With fewer than three servers any eviction loses
/// the quorum, and a budget of zero would block node drains forever, so there is none.
pub fn build_pdb(c: &ValidatedCluster) -> Option<PodDisruptionBudget> {
    (c.replicas >= 3).then(|| PodDisruptionBudget {
        metadata: object_meta(c, server_name(&c.name), Some("server")),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(server_selector(&c.name)),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::validated;

    #[test]
    fn pdb_only_for_three_or_more() {
        assert!(build_pdb(&validated("c", 1)).is_none());
        let pdb = build_pdb(&validated("c", 3)).unwrap();
        assert_eq!(pdb.spec.unwrap().max_unavailable, Some(IntOrString::Int(1)));
    }
}
