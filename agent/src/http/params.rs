//! Request parameters: the query string as a multimap (percent-decoded, `+` as space),
//! Consul's boolean flags (`recurse`, `recurse=1`, `recurse=true`), and the blocking-query
//! and consistency options every read accepts.

use super::error::ApiError;
use crate::agent::Consistency;
use crate::types::parse_duration;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use std::time::Duration;

/// Longest a blocking query may wait (Consul's `max_query_time` default).
pub const MAX_WAIT: Duration = Duration::from_secs(600);
/// Default blocking wait (Consul's `default_query_time`).
pub const DEFAULT_WAIT: Duration = Duration::from_secs(300);

/// Percent-decode a URL component; `plus_space` turns `+` into a space (query strings).
pub fn percent_decode(s: &str, plus_space: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' if plus_space => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The token of `X-Consul-Token` or `Authorization: Bearer`.
fn header_token(headers: &HeaderMap) -> Option<String> {
    if let Some(t) = headers.get("X-Consul-Token").and_then(|v| v.to_str().ok()) {
        return Some(t.to_string());
    }
    headers
        .get("Authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string())
}

/// A request's ACL token (`X-Consul-Token`, `Authorization: Bearer`, then `?token=`)
/// without parsing the rest of the request.
pub fn token_from(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    header_token(headers).or_else(|| {
        query?.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (percent_decode(k, true) == "token").then(|| percent_decode(v, true))
        })
    })
}

/// Parsed request: decoded path and query parameters, plus the two headers handlers read
/// (kept instead of the whole header map: a parked blocking query holds its `Params`).
#[derive(Debug, Clone, Default)]
pub struct Params {
    /// The decoded request path.
    pub path: String,
    /// The decoded query parameters, one after another (one allocation for all: a parked
    /// blocking query holds its `Params`).
    text: String,
    /// Per parameter, in order: where its name starts, where its value starts (the name's
    /// end), where its value ends, in `text`.
    pairs: Vec<[u32; 3]>,
    /// The token of `X-Consul-Token` or `Authorization: Bearer`.
    header_token: Option<String>,
    /// The `Accept` header.
    pub accept: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Params::from_parts(
            parts.uri.path(),
            parts.uri.query(),
            &parts.headers,
        ))
    }
}

impl Params {
    /// Build from a raw path and query string.
    pub fn from_parts(path: &str, query: Option<&str>, headers: &HeaderMap) -> Self {
        let mut text = String::new();
        let mut pairs = Vec::new();
        for p in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let start = text.len() as u32;
            text.push_str(&percent_decode(k, true));
            let mid = text.len() as u32;
            text.push_str(&percent_decode(v, true));
            pairs.push([start, mid, text.len() as u32]);
        }
        Params {
            path: percent_decode(path, false),
            text,
            pairs,
            header_token: header_token(headers),
            accept: headers
                .get(axum::http::header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        }
    }

    /// The path after a route prefix, decoded (`/v1/kv/a%2Fb` under `/v1/kv/` is `a/b`).
    pub fn rest(&self, prefix: &str) -> String {
        self.path.strip_prefix(prefix).unwrap_or("").to_string()
    }

    /// Every parameter as (name, value), in order.
    fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|&[a, b, c]| {
            (
                &self.text[a as usize..b as usize],
                &self.text[b as usize..c as usize],
            )
        })
    }

    /// First value of a parameter.
    pub fn get(&self, k: &str) -> Option<&str> {
        self.pairs().find(|(n, _)| *n == k).map(|(_, v)| v)
    }

    /// Every value of a repeated parameter (`tag=a&tag=b`).
    pub fn all(&self, k: &str) -> Vec<String> {
        self.pairs()
            .filter(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
            .collect()
    }

    /// Whether a parameter is present.
    pub fn has(&self, k: &str) -> bool {
        self.pairs().any(|(n, _)| n == k)
    }

    /// A boolean flag: present with no value, `1`, `true`, `True` are true; `0`/`false` false.
    pub fn flag(&self, k: &str) -> bool {
        match self.get(k) {
            None => false,
            Some(v) => !matches!(v.to_ascii_lowercase().as_str(), "0" | "false" | "f" | "no"),
        }
    }

    /// An unsigned integer parameter; `what` names it in the error.
    pub fn u64(&self, k: &str, what: &str) -> Result<Option<u64>, ApiError> {
        match self.get(k) {
            None => Ok(None),
            Some("") => Ok(None),
            Some(v) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| ApiError::bad_request(format!("Invalid {what}"))),
        }
    }

    /// The ACL token from `X-Consul-Token`, `Authorization: Bearer`, or `?token=`.
    pub fn token(&self) -> Option<String> {
        self.header_token
            .clone()
            .or_else(|| self.get("token").map(str::to_string))
    }

    /// The decoded path and every query parameter, in order (a cache key for a read).
    pub fn canonical(&self) -> String {
        let mut s = self.path.clone();
        for (k, v) in self.pairs() {
            s.push('\u{1f}');
            s.push_str(k);
            s.push('=');
            s.push_str(v);
        }
        s
    }

    /// Blocking and consistency options.
    pub fn query_options(&self) -> Result<QueryOptions, ApiError> {
        let stale = self.has("stale") && self.flag("stale");
        let consistent = self.has("consistent") && self.flag("consistent");
        if stale && consistent {
            return Err(ApiError::bad_request(
                "Cannot specify ?stale with ?consistent, conflicting semantics.",
            ));
        }
        let index = self.u64("index", "index")?.unwrap_or(0);
        let wait = match self.get("wait") {
            None | Some("") => None,
            Some(w) => {
                let d = parse_duration(w)
                    .or_else(|_| w.parse::<u64>().map(Duration::from_millis).map_err(|_| ()))
                    .map_err(|_| ApiError::bad_request("Invalid wait time"))?;
                Some(d)
            }
        };
        Ok(QueryOptions {
            index,
            wait,
            consistency: if stale {
                Consistency::Stale
            } else if consistent {
                Consistency::Consistent
            } else {
                Consistency::Default
            },
            pretty: self.has("pretty") && self.flag("pretty"),
            dc: self.get("dc").filter(|d| !d.is_empty()).map(str::to_string),
            filter: match self.get("filter").filter(|f| !f.trim().is_empty()) {
                None => None,
                Some(f) => Some(super::filter::parse(f).map_err(|e| {
                    ApiError::bad_request(format!(
                        "Failed to create boolean expression evaluator: {e}"
                    ))
                })?),
            },
        })
    }
}

/// Options every read accepts.
#[derive(Debug, Clone, Default)]
pub struct QueryOptions {
    /// Block until the result's index exceeds this (0: no blocking).
    pub index: u64,
    /// How long to block at most.
    pub wait: Option<Duration>,
    /// Read consistency.
    pub consistency: Consistency,
    /// Indent the JSON.
    pub pretty: bool,
    /// Target datacenter (`?dc=`).
    pub dc: Option<String>,
    /// `?filter=` expression applied to list results.
    pub filter: Option<super::filter::Expr>,
}

impl QueryOptions {
    /// The effective wait: `?wait` or the agent's `default_query_time` (5 min), capped at
    /// its `max_query_time` (10 min), plus up to wait/16 of jitter as Consul adds to spread
    /// wake-ups. A zero setting counts as unset.
    pub fn effective_wait(&self, default: Duration, max: Duration) -> Duration {
        let nonzero = |d: Duration, fallback: Duration| if d.is_zero() { fallback } else { d };
        let max = nonzero(max, MAX_WAIT);
        let w = self.wait.unwrap_or(nonzero(default, DEFAULT_WAIT)).min(max);
        let jitter_ms = (w.as_millis() as u64) / 16;
        let jitter = if jitter_ms > 0 {
            rand::random::<u64>() % jitter_ms
        } else {
            0
        };
        w + Duration::from_millis(jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(q: &str) -> Params {
        Params::from_parts("/v1/kv/a%2Fb", Some(q), &HeaderMap::new())
    }

    #[test]
    fn flags_and_decoding() {
        for q in [
            "recurse",
            "recurse=1",
            "recurse=true",
            "recurse=True",
            "recurse=",
        ] {
            assert!(p(q).flag("recurse"), "{q}");
        }
        assert!(!p("recurse=false").flag("recurse"));
        assert!(!p("").flag("recurse"));
        assert_eq!(p("").rest("/v1/kv/"), "a/b");
        assert_eq!(p("tag=a%20b&tag=c+d").all("tag"), vec!["a b", "c d"]);
        assert_eq!(percent_decode("100%", false), "100%");
        assert_eq!(percent_decode("%zz", false), "%zz");
    }

    #[test]
    fn parameters_keep_their_order_values_and_headers() {
        let mut h = HeaderMap::new();
        h.insert("Authorization", "Bearer  s3cret ".parse().unwrap());
        h.insert("Accept", "text/plain; version=0.0.4".parse().unwrap());
        let p = Params::from_parts("/v1/kv/x", Some("a=1&&b&c=%3D=&a=2&token=q"), &h);
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.all("a"), vec!["1", "2"]);
        assert_eq!(p.get("b"), Some(""));
        assert!(p.has("b") && !p.has("z") && p.get("z").is_none());
        assert_eq!(p.get("c"), Some("=="), "a value may hold '='");
        assert_eq!(
            p.canonical(),
            "/v1/kv/x\u{1f}a=1\u{1f}b=\u{1f}c===\u{1f}a=2\u{1f}token=q"
        );
        assert_eq!(
            p.token().as_deref(),
            Some("s3cret"),
            "the header wins over ?token="
        );
        assert_eq!(p.accept.as_deref(), Some("text/plain; version=0.0.4"));
        let q = Params::from_parts("/v1/kv/x", Some("token=q"), &HeaderMap::new());
        assert_eq!(q.token().as_deref(), Some("q"));
    }

    #[test]
    fn query_options() {
        let o = p("index=5&wait=4.99s&stale").query_options().unwrap();
        assert_eq!(
            (o.index, o.wait, o.consistency),
            (5, Some(Duration::from_millis(4990)), Consistency::Stale)
        );
        assert!(p("index=abc").query_options().is_err());
        assert!(p("wait=abc").query_options().is_err());
        assert!(p("stale&consistent").query_options().is_err());
        let w = p("wait=20m")
            .query_options()
            .unwrap()
            .effective_wait(DEFAULT_WAIT, MAX_WAIT);
        assert!(w >= MAX_WAIT && w <= MAX_WAIT + MAX_WAIT / 16);
        // The agent's max_query_time caps ?wait; its default_query_time applies without one.
        let (short, long) = (Duration::from_secs(2), Duration::from_secs(4));
        let w = p("wait=1m")
            .query_options()
            .unwrap()
            .effective_wait(short, long);
        assert!(w >= long && w <= long + long / 16, "{w:?}");
        let w = p("index=3")
            .query_options()
            .unwrap()
            .effective_wait(short, long);
        assert!(w >= short && w <= short + short / 16, "{w:?}");
        let w = p("index=3")
            .query_options()
            .unwrap()
            .effective_wait(Duration::ZERO, Duration::ZERO);
        assert!(w >= DEFAULT_WAIT, "zero settings count as unset: {w:?}");
    }
}
