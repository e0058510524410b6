//! HTTP client for Consul's API, used by the CLI verbs.
