//! Local agent endpoints (`/v1/agent/...`) and `/v1/status/leader`.

use super::catalog::AgentService;
use super::{encode_path, null_default, ApiError, Client};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A gossip pool member (Consul's `AgentMember`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentMember {
    /// Node name.
    #[serde(rename = "Name", default)]
    pub name: String,
    /// Gossip IP address.
    #[serde(rename = "Addr", default)]
    pub addr: String,
    /// Gossip port.
    #[serde(rename = "Port", default)]
    pub port: u16,
    /// Serf tags (`role`, `dc`, `build`, `vsn`, `segment`, `ap`, ...).
    #[serde(rename = "Tags", default, deserialize_with = "null_default")]
    pub tags: BTreeMap<String, String>,
    /// Serf status: 0 none, 1 alive, 2 leaving, 3 left, 4 failed.
    #[serde(rename = "Status", default)]
    pub status: i64,
    /// Lowest gossip protocol spoken.
    #[serde(rename = "ProtocolMin", default)]
    pub protocol_min: u8,
    /// Highest gossip protocol spoken.
    #[serde(rename = "ProtocolMax", default)]
    pub protocol_max: u8,
    /// Current gossip protocol.
    #[serde(rename = "ProtocolCur", default)]
    pub protocol_cur: u8,
    /// Lowest delegate protocol.
    #[serde(rename = "DelegateMin", default)]
    pub delegate_min: u8,
    /// Highest delegate protocol.
    #[serde(rename = "DelegateMax", default)]
    pub delegate_max: u8,
    /// Current delegate protocol.
    #[serde(rename = "DelegateCur", default)]
    pub delegate_cur: u8,
}

impl AgentMember {
    /// Serf's name for the status (`alive`, `leaving`, `left`, `failed`, `none`).
    pub fn status_string(&self) -> String {
        match self.status {
            0 => "none".to_string(),
            1 => "alive".to_string(),
            2 => "leaving".to_string(),
            3 => "left".to_string(),
            4 => "failed".to_string(),
            n => format!("unknown({n})"),
        }
    }
}

/// Options for `/v1/agent/members`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MembersOpts {
    /// List the WAN pool instead of the LAN pool.
    pub wan: bool,
    /// Network segment (`_all` for all).
    pub segment: Option<String>,
    /// Admin partition.
    pub partition: Option<String>,
    /// A `?filter=` expression.
    pub filter: Option<String>,
}

/// A tagged address of a service (Consul's `ServiceAddress`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceAddress {
    /// Address.
    #[serde(rename = "Address", default)]
    pub address: String,
    /// Port.
    #[serde(rename = "Port", default)]
    pub port: u16,
}

impl ServiceAddress {
    /// Parses `host`, `host:port` or `[v6]:port` like Consul's `api.ParseServiceAddr`.
    pub fn parse(s: &str) -> Result<ServiceAddress, String> {
        let split = if let Some(rest) = s.strip_prefix('[') {
            rest.split_once("]:")
        } else {
            match s.rsplit_once(':') {
                Some((h, _)) if h.contains(':') => None,
                other => other,
            }
        };
        let Some((host, port)) = split else {
            return Ok(ServiceAddress {
                address: s.to_string(),
                port: 0,
            });
        };
        let n: i64 = port.parse().map_err(|_| {
            format!("invalid port {port:?}: strconv.Atoi: parsing {port:?}: invalid syntax")
        })?;
        if !(1..=65535).contains(&n) {
            return Err(format!("invalid port {port:?}"));
        }
        Ok(ServiceAddress {
            address: host.to_string(),
            port: n as u16,
        })
    }
}

/// A service registration for `PUT /v1/agent/service/register` (Consul's
/// `AgentServiceRegistration`). Fields the CLI does not model (checks, proxy, connect,
/// weights, ...) travel in `extra` unchanged; the agent matches keys case-insensitively.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentServiceRegistration {
    /// Service kind (`connect-proxy`, ...); empty for a typical service.
    #[serde(rename = "Kind", default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Instance ID (defaults to the name on the agent).
    #[serde(rename = "ID", default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// Service name.
    #[serde(rename = "Name", default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Tags.
    #[serde(rename = "Tags", default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Port (0: none).
    #[serde(rename = "Port", default, skip_serializing_if = "is_zero")]
    pub port: i64,
    /// Address (empty: the node's).
    #[serde(rename = "Address", default, skip_serializing_if = "String::is_empty")]
    pub address: String,
    /// Unix socket path (instead of address and port).
    #[serde(
        rename = "SocketPath",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub socket_path: String,
    /// Tagged addresses.
    #[serde(
        rename = "TaggedAddresses",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub tagged_addresses: BTreeMap<String, ServiceAddress>,
    /// Metadata.
    #[serde(rename = "Meta", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub meta: BTreeMap<String, String>,
    /// Any other fields of the definition, sent as given.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

impl Client {
    /// `/v1/agent/self`: the agent's `Config`, `Member`, `Stats`, ... sections.
    pub fn agent_self(&self) -> Result<Map<String, Value>, ApiError> {
        Ok(self
            .get_json::<Option<Map<String, Value>>>("/v1/agent/self", &[])?
            .unwrap_or_default())
    }

    /// Gossip pool members as this agent sees them.
    pub fn agent_members(&self, opts: &MembersOpts) -> Result<Vec<AgentMember>, ApiError> {
        let mut q = Vec::new();
        if opts.wan {
            q.push(("wan", "1".to_string()));
        }
        for (k, v) in [
            ("segment", &opts.segment),
            ("partition", &opts.partition),
            ("filter", &opts.filter),
        ] {
            if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
                q.push((k, v.clone()));
            }
        }
        Ok(self
            .get_json::<Option<Vec<AgentMember>>>("/v1/agent/members", &q)?
            .unwrap_or_default())
    }

    /// Services registered on this agent, keyed by instance ID.
    pub fn agent_services(&self) -> Result<BTreeMap<String, AgentService>, ApiError> {
        Ok(self
            .get_json::<Option<BTreeMap<String, AgentService>>>("/v1/agent/services", &[])?
            .unwrap_or_default())
    }

    /// Registers (or replaces) a service on this agent.
    pub fn agent_service_register(&self, reg: &AgentServiceRegistration) -> Result<(), ApiError> {
        let body = serde_json::to_value(reg).map_err(|e| ApiError::Decode(e.to_string()))?;
        self.put_json("/v1/agent/service/register", &[], &body)
            .map(|_| ())
    }

    /// Deregisters a service instance from this agent.
    pub fn agent_service_deregister(&self, id: &str) -> Result<(), ApiError> {
        self.call(
            "PUT",
            &format!("/v1/agent/service/deregister/{}", encode_path(id)),
            &[],
            None,
            &[],
        )
        .map(|_| ())
    }

    /// Asks the agent to reload its configuration.
    pub fn agent_reload(&self) -> Result<(), ApiError> {
        self.call("PUT", "/v1/agent/reload", &[], None, &[])
            .map(|_| ())
    }

    /// Asks the agent to leave the cluster gracefully and shut down.
    pub fn agent_leave(&self) -> Result<(), ApiError> {
        self.call("PUT", "/v1/agent/leave", &[], None, &[])
            .map(|_| ())
    }

    /// The Raft leader's address (`ip:port`; empty when there is none).
    pub fn status_leader(&self) -> Result<String, ApiError> {
        Ok(self
            .get_json::<Option<String>>("/v1/status/leader", &[])?
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_addresses() {
        let a = ServiceAddress::parse("10.0.0.1:8080").unwrap();
        assert_eq!((a.address.as_str(), a.port), ("10.0.0.1", 8080));
        let a = ServiceAddress::parse("example.com").unwrap();
        assert_eq!((a.address.as_str(), a.port), ("example.com", 0));
        let a = ServiceAddress::parse("[::1]:80").unwrap();
        assert_eq!((a.address.as_str(), a.port), ("::1", 80));
        let a = ServiceAddress::parse("::1").unwrap();
        assert_eq!((a.address.as_str(), a.port), ("::1", 0));
        assert_eq!(
            ServiceAddress::parse("h:x").unwrap_err(),
            "invalid port \"x\": strconv.Atoi: parsing \"x\": invalid syntax"
        );
        assert_eq!(
            ServiceAddress::parse("h:0").unwrap_err(),
            "invalid port \"0\""
        );
    }

    #[test]
    fn registration_omits_empty_fields() {
        let mut r = AgentServiceRegistration {
            name: "web".into(),
            port: 80,
            ..Default::default()
        };
        r.extra
            .insert("Check".into(), serde_json::json!({"TTL": "10s"}));
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"Name": "web", "Port": 80, "Check": {"TTL": "10s"}})
        );
    }

    #[test]
    fn members_decode() {
        let m: Vec<AgentMember> = serde_json::from_str(
            r#"[{"Name":"n1","Addr":"127.0.0.1","Port":8301,"Tags":{"role":"consul"},"Status":1,
                 "ProtocolMin":1,"ProtocolMax":5,"ProtocolCur":2,"DelegateMin":2,"DelegateMax":5,"DelegateCur":4}]"#,
        )
        .unwrap();
        assert_eq!(m[0].status_string(), "alive");
        assert_eq!(m[0].tags["role"], "consul");
        assert_eq!(m[0].port, 8301);
    }
}
