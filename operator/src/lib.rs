//! Kubernetes operator for Praetor (reconciles ConsulCluster and ServiceDefinition resources); built out under the Kubernetes issue.
