//! Wire and state types shared by every layer: catalog nodes, services and checks, KV
//! entries, sessions, plus Go-compatible duration parsing and formatting.
//!
//! Field names follow Consul's JSON (`CamelCase`, `ID` acronyms) so the same structs are
//! the replicated state, the Raft command payloads and the HTTP response bodies.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// A Raft log index; every read returns one.
pub type Index = u64;

/// Health status of a check, as Consul spells it.
pub const HEALTH_PASSING: &str = "passing";
/// Warning status.
pub const HEALTH_WARNING: &str = "warning";
/// Critical status.
pub const HEALTH_CRITICAL: &str = "critical";
/// Maintenance status (Consul reports maintenance checks as critical).
pub const HEALTH_MAINT: &str = "maintenance";
/// The node check every agent keeps for itself.
pub const SERF_CHECK_ID: &str = "serfHealth";
/// The node-maintenance check ID.
pub const NODE_MAINT_CHECK_ID: &str = "_node_maintenance";
/// Prefix of per-service maintenance check IDs.
pub const SERVICE_MAINT_PREFIX: &str = "_service_maintenance:";

/// Validate a status string; returns the canonical form.
pub fn valid_status(s: &str) -> Option<&'static str> {
    match s {
        HEALTH_PASSING => Some(HEALTH_PASSING),
        HEALTH_WARNING => Some(HEALTH_WARNING),
        HEALTH_CRITICAL => Some(HEALTH_CRITICAL),
        _ => None,
    }
}

/// A catalog node.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Node {
    #[serde(rename = "ID", default)]
    pub id: String,
    pub node: String,
    pub address: String,
    #[serde(default)]
    pub datacenter: String,
    #[serde(default)]
    pub tagged_addresses: BTreeMap<String, String>,
    #[serde(default)]
    pub meta: BTreeMap<String, String>,
    #[serde(default)]
    pub create_index: Index,
    #[serde(default)]
    pub modify_index: Index,
}

/// Service weights used for DNS SRV answers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Weights {
    pub passing: i64,
    pub warning: i64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            passing: 1,
            warning: 1,
        }
    }
}

/// A service address with port (`TaggedAddresses` values on services).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceAddress {
    pub address: String,
    pub port: i64,
}

/// A service instance registered on a node.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct NodeService {
    #[serde(default)]
    pub kind: String,
    #[serde(rename = "ID")]
    pub id: String,
    pub service: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub tagged_addresses: BTreeMap<String, ServiceAddress>,
    #[serde(default)]
    pub meta: BTreeMap<String, String>,
    #[serde(default)]
    pub port: i64,
    #[serde(default)]
    pub weights: Weights,
    #[serde(default)]
    pub enable_tag_override: bool,
    #[serde(default)]
    pub create_index: Index,
    #[serde(default)]
    pub modify_index: Index,
}

/// The definition of a check, kept with the check for `/v1/agent/checks` and the runners.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct CheckDefinition {
    #[serde(default, rename = "HTTP", skip_serializing_if = "String::is_empty")]
    pub http: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub header: BTreeMap<String, Vec<String>>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub method: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub body: String,
    #[serde(default, rename = "TLSSkipVerify", skip_serializing_if = "is_false")]
    pub tls_skip_verify: bool,
    #[serde(default, rename = "TCP", skip_serializing_if = "String::is_empty")]
    pub tcp: String,
    #[serde(default, rename = "UDP", skip_serializing_if = "String::is_empty")]
    pub udp: String,
    #[serde(default, rename = "GRPC", skip_serializing_if = "String::is_empty")]
    pub grpc: String,
    #[serde(default, rename = "GRPCUseTLS", skip_serializing_if = "is_false")]
    pub grpc_use_tls: bool,
    #[serde(default, rename = "ScriptArgs", skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub script: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub interval: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub timeout: String,
    #[serde(default, rename = "TTL", skip_serializing_if = "String::is_empty")]
    pub ttl: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub alias_node: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub alias_service: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub deregister_critical_service_after: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub output_max_size: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub success_before_passing: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failures_before_warning: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failures_before_critical: u64,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl CheckDefinition {
    /// The check type as Consul reports it in `Type`.
    pub fn kind(&self) -> &'static str {
        if !self.ttl.is_empty() {
            "ttl"
        } else if !self.http.is_empty() {
            "http"
        } else if !self.tcp.is_empty() {
            "tcp"
        } else if !self.udp.is_empty() {
            "udp"
        } else if !self.grpc.is_empty() {
            "grpc"
        } else if !self.args.is_empty() || !self.script.is_empty() {
            "script"
        } else if !self.alias_service.is_empty() || !self.alias_node.is_empty() {
            "alias"
        } else {
            ""
        }
    }
}

/// A health check in the catalog (node-level when `ServiceID` is empty).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct HealthCheck {
    #[serde(default)]
    pub node: String,
    #[serde(rename = "CheckID")]
    pub check_id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub notes: String,
    #[serde(default)]
    pub output: String,
    #[serde(rename = "ServiceID", default)]
    pub service_id: String,
    #[serde(default)]
    pub service_name: String,
    #[serde(default)]
    pub service_tags: Vec<String>,
    #[serde(rename = "Type", default)]
    pub check_type: String,
    #[serde(default)]
    pub interval: String,
    #[serde(default)]
    pub timeout: String,
    #[serde(default)]
    pub definition: CheckDefinition,
    #[serde(default)]
    pub create_index: Index,
    #[serde(default)]
    pub modify_index: Index,
}

/// A KV entry. `value` is raw bytes; the HTTP layer base64-encodes it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct KvEntry {
    pub key: String,
    pub flags: u64,
    pub value: Vec<u8>,
    pub lock_index: Index,
    pub session: Option<String>,
    pub create_index: Index,
    pub modify_index: Index,
}

/// What happens to the locks of a session when it is invalidated.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum SessionBehavior {
    /// Locks are released (the keys stay).
    #[default]
    Release,
    /// Keys held by the session are deleted.
    Delete,
}

impl SessionBehavior {
    /// Consul's spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            SessionBehavior::Release => "release",
            SessionBehavior::Delete => "delete",
        }
    }
}

/// A service check a session depends on.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceCheckRef {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(default)]
    pub namespace: String,
}

/// A session (used for locks and leader election).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Session {
    pub id: String,
    pub name: String,
    pub node: String,
    /// Node checks the session depends on (includes `serfHealth` by default).
    pub node_checks: Vec<String>,
    pub service_checks: Vec<ServiceCheckRef>,
    /// Lock delay in nanoseconds.
    pub lock_delay_ns: u64,
    pub behavior: SessionBehavior,
    /// TTL as given (Go duration text), empty for none.
    pub ttl: String,
    pub create_index: Index,
    pub modify_index: Index,
}

/// Errors from duration parsing.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DurationError {
    /// The text is not a Go duration.
    #[error("time: invalid duration \"{0}\"")]
    Invalid(String),
    /// A unit is missing (`"10"`).
    #[error("time: missing unit in duration \"{0}\"")]
    MissingUnit(String),
    /// An unknown unit.
    #[error("time: unknown unit \"{unit}\" in duration \"{text}\"")]
    UnknownUnit { unit: String, text: String },
}

/// Parse a Go duration string (`"10s"`, `"1m30s"`, `"0.001s"`, `"250ms"`, `"1h"`, `"0"`).
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let s = text.trim();
    if s.is_empty() {
        return Err(DurationError::Invalid(text.to_string()));
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    if s.starts_with('-') {
        return Err(DurationError::Invalid(text.to_string()));
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total_ns: f64 = 0.0;
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
            i += 1;
        }
        if start == i {
            return Err(DurationError::Invalid(text.to_string()));
        }
        let num: f64 = s[start..i]
            .parse()
            .map_err(|_| DurationError::Invalid(text.to_string()))?;
        let ustart = i;
        while i < bytes.len() && !(bytes[i].is_ascii_digit() || bytes[i] == b'.') {
            i += 1;
        }
        let unit = &s[ustart..i];
        let mult = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(DurationError::MissingUnit(text.to_string())),
            other => {
                return Err(DurationError::UnknownUnit {
                    unit: other.to_string(),
                    text: text.to_string(),
                })
            }
        };
        total_ns += num * mult;
    }
    if !total_ns.is_finite() || total_ns > u64::MAX as f64 {
        return Err(DurationError::Invalid(text.to_string()));
    }
    Ok(Duration::from_nanos(total_ns.round() as u64))
}

/// Format a duration as Go's `time.Duration.String()` does (`"15s"`, `"1m0s"`, `"1.5s"`,
/// `"10ms"`, `"0s"`).
pub fn format_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".to_string();
    }
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    if ns < 1_000_000 {
        return format!("{}µs", trim_frac(ns as f64 / 1e3));
    }
    if ns < 1_000_000_000 {
        return format!("{}ms", trim_frac(ns as f64 / 1e6));
    }
    let hours = ns / 3_600_000_000_000;
    let rem = ns % 3_600_000_000_000;
    let mins = rem / 60_000_000_000;
    let secs_ns = rem % 60_000_000_000;
    let secs = trim_frac(secs_ns as f64 / 1e9);
    if hours > 0 {
        format!("{hours}h{mins}m{secs}s")
    } else if mins > 0 {
        format!("{mins}m{secs}s")
    } else {
        format!("{secs}s")
    }
}

fn trim_frac(v: f64) -> String {
    let s = format!("{v:.9}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// Vivaldi coordinates have this many Euclidean dimensions (Serf's default).
pub const COORD_DIMENSIONALITY: usize = 8;
/// The largest (initial) coordinate error.
pub const COORD_ERROR_MAX: f64 = 1.5;
/// The smallest coordinate height.
pub const COORD_HEIGHT_MIN: f64 = 10.0e-6;
const COORD_ZERO_THRESHOLD: f64 = 1.0e-6;

/// A coordinate (Consul's JSON: `Vec`, `Error`, `Adjustment`, `Height`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Coordinate {
    pub vec: Vec<f64>,
    pub error: f64,
    pub adjustment: f64,
    pub height: f64,
}

impl Default for Coordinate {
    fn default() -> Self {
        Coordinate {
            vec: vec![0.0; COORD_DIMENSIONALITY],
            error: COORD_ERROR_MAX,
            adjustment: 0.0,
            height: COORD_HEIGHT_MIN,
        }
    }
}

fn magnitude(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

fn unit_vector_at(a: &[f64], b: &[f64]) -> (Vec<f64>, f64) {
    let diff: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let mag = magnitude(&diff);
    if mag > COORD_ZERO_THRESHOLD {
        return (diff.iter().map(|x| x / mag).collect(), mag);
    }
    // Same position: push in a random direction.
    let r: Vec<f64> = (0..a.len()).map(|_| rand::random::<f64>() - 0.5).collect();
    let m = magnitude(&r);
    if m > COORD_ZERO_THRESHOLD {
        return (r.iter().map(|x| x / m).collect(), 0.0);
    }
    (vec![0.0; a.len()], 0.0)
}

impl Coordinate {
    /// Distance without the adjustment term.
    pub(crate) fn raw_distance(&self, other: &Coordinate) -> f64 {
        magnitude(
            &self
                .vec
                .iter()
                .zip(&other.vec)
                .map(|(a, b)| a - b)
                .collect::<Vec<_>>(),
        ) + self.height
            + other.height
    }

    /// Estimated round-trip time to `other`.
    pub fn distance_to(&self, other: &Coordinate) -> Duration {
        let adjusted = self.raw_distance(other) + self.adjustment + other.adjustment;
        let d = if adjusted > 0.0 {
            adjusted
        } else {
            self.raw_distance(other)
        };
        Duration::from_secs_f64(d.max(0.0))
    }

    /// Move by `force` away from `other` (toward it when negative).
    pub(crate) fn apply_force(&self, force: f64, other: &Coordinate) -> Coordinate {
        let (unit, mag) = unit_vector_at(&self.vec, &other.vec);
        let mut out = self.clone();
        out.vec = self
            .vec
            .iter()
            .zip(&unit)
            .map(|(v, u)| v + u * force)
            .collect();
        if mag > COORD_ZERO_THRESHOLD {
            out.height =
                ((out.height + other.height) * force / mag + out.height).max(COORD_HEIGHT_MIN);
        }
        out
    }
}

/// Serde helper: bytes as a base64 string (compact in JSON log entries and snapshots).
pub mod b64 {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialize bytes as base64 text.
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
    }

    /// Deserialize base64 text into bytes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(serde::de::Error::custom)
    }
}

/// Calendar date and time of day in UTC for seconds since the epoch (Howard Hinnant's
/// civil-from-days): `(year, month, day, hour, minute, second)`.
pub fn utc_parts(secs: i64) -> (i64, i64, i64, i64, i64, i64) {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_go() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("0.001s").unwrap(), Duration::from_millis(1));
        assert_eq!(
            parse_duration("4.99s").unwrap(),
            Duration::from_millis(4990)
        );
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert!(matches!(
            parse_duration("10"),
            Err(DurationError::MissingUnit(_))
        ));
        assert!(matches!(
            parse_duration("10x"),
            Err(DurationError::UnknownUnit { .. })
        ));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("abc").is_err());
    }

    #[test]
    fn durations_format_like_go() {
        assert_eq!(format_duration(Duration::from_secs(15)), "15s");
        assert_eq!(format_duration(Duration::from_secs(60)), "1m0s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_duration(Duration::from_millis(10)), "10ms");
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_duration(Duration::from_secs(3661)), "1h1m1s");
        assert_eq!(format_duration(Duration::from_millis(1)), "1ms");
    }

    #[test]
    fn check_kind_follows_definition() {
        let d = CheckDefinition {
            ttl: "10s".into(),
            ..Default::default()
        };
        assert_eq!(d.kind(), "ttl");
        let d = CheckDefinition {
            http: "http://x".into(),
            ..Default::default()
        };
        assert_eq!(d.kind(), "http");
    }
}
