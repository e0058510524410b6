//! Kubernetes operator for Praetor: the `ConsulCluster` and `ServiceDefinition` custom
//! resources, the controllers reconciling them, and the admission webhook injecting
//! client-agent sidecars.

pub mod consul;
pub mod controller;
pub mod crd;
pub mod webhook;

#[cfg(test)]
pub(crate) mod fixtures;
