//! The headless Service (server DNS names, retry-join) and the client Service (HTTP, DNS).

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{client_service_name, headless_service_name, object_meta, ports, server_selector};
use crate::controller::validate::ValidatedCluster;

fn port(name: &str, port: i32, protocol: &str) -> ServicePort {
    ServicePort {
        name: Some(name.into()),
        port,
        target_port: Some(IntOrString::Int(port)),
        protocol: Some(protocol.into()),
        ..Default::default()
    }
}

/// The headless governing Service of the StatefulSet. It publishes not-ready addresses:
/// servers must find each other before any of them knows a leader (and is ready).
pub fn build_headless_service(c: &ValidatedCluster) -> Service {
    Service {
        metadata: object_meta(c, headless_service_name(&c.name), Some("server")),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            publish_not_ready_addresses: Some(true),
            selector: Some(server_selector(&c.name)),
            ports: Some(vec![
                port("http", ports::HTTP, "TCP"),
                port("server", ports::SERVER, "TCP"),
                port("serflan-tcp", ports::SERF_LAN, "TCP"),
                port("serflan-udp", ports::SERF_LAN, "UDP"),
            ]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The client Service: HTTP API on 8500 and DNS on 8600 (TCP and UDP), ready servers only.
pub fn build_client_service(c: &ValidatedCluster) -> Service {
    Service {
        metadata: object_meta(c, client_service_name(&c.name), Some("client")),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(server_selector(&c.name)),
            ports: Some(vec![
                port("http", ports::HTTP, "TCP"),
                port("dns-tcp", ports::DNS, "TCP"),
                port("dns-udp", ports::DNS, "UDP"),
            ]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::validated;

    #[test]
    fn headless_publishes_not_ready() {
        let s = build_headless_service(&validated("c", 3));
        let spec = s.spec.unwrap();
        assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
        assert_eq!(spec.publish_not_ready_addresses, Some(true));
        assert_eq!(s.metadata.name.as_deref(), Some("c-server"));
    }

    #[test]
    fn client_service_ports() {
        let s = build_client_service(&validated("c", 3));
        let ports: Vec<(i32, String)> = s
            .spec
            .unwrap()
            .ports
            .unwrap()
            .into_iter()
            .map(|p| (p.port, p.protocol.unwrap()))
            .collect();
        assert_eq!(
            ports,
            vec![
                (8500, "TCP".into()),
                (8600, "TCP".into()),
                (8600, "UDP".into())
            ]
        );
    }
}
