//! In-process metrics with Consul's names (`consul.kvs.apply`, `consul.raft.apply`,
//! `consul.runtime.alloc_bytes`, ...), served by `/v1/agent/metrics` as Consul's JSON
//! (go-metrics' in-memory sink: Gauges, Counters, Samples) or Prometheus text.
//!
//! A process-wide registry, like go-metrics' global sink: recording is a map lookup and an
//! add under a short lock.

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

#[derive(Default, Clone, Copy)]
struct Agg {
    count: u64,
    sum: f64,
    sum_sq: f64,
    min: f64,
    max: f64,
}

impl Agg {
    fn add(&mut self, v: f64) {
        if self.count == 0 || v < self.min {
            self.min = v;
        }
        if self.count == 0 || v > self.max {
            self.max = v;
        }
        self.count += 1;
        self.sum += v;
        self.sum_sq += v * v;
    }

    fn json(&self, name: &str, interval_secs: f64) -> Value {
        let mean = if self.count > 0 {
            self.sum / self.count as f64
        } else {
            0.0
        };
        let var = if self.count > 1 {
            ((self.sum_sq - self.sum * self.sum / self.count as f64) / (self.count as f64 - 1.0))
                .max(0.0)
        } else {
            0.0
        };
        json!({
            "Name": name, "Count": self.count, "Rate": self.sum / interval_secs.max(1.0),
            "Sum": self.sum, "Min": self.min, "Max": self.max, "Mean": mean, "Stddev": var.sqrt(),
            "Labels": {}
        })
    }
}

#[derive(Default)]
struct Registry {
    counters: BTreeMap<String, Agg>,
    samples: BTreeMap<String, Agg>,
    gauges: BTreeMap<String, f64>,
}

fn registry() -> &'static Mutex<Registry> {
    static R: OnceLock<Mutex<Registry>> = OnceLock::new();
    R.get_or_init(Default::default)
}

fn with<T>(f: impl FnOnce(&mut Registry) -> T) -> T {
    f(&mut registry().lock().unwrap_or_else(|e| e.into_inner()))
}

/// Add `n` to a counter.
pub fn incr(name: &str, n: u64) {
    with(|r| match r.counters.get_mut(name) {
        Some(c) => c.add(n as f64),
        None => r
            .counters
            .entry(name.to_string())
            .or_default()
            .add(n as f64),
    });
}

/// Record a timing sample in milliseconds.
pub fn sample(name: &str, d: Duration) {
    let ms = d.as_secs_f64() * 1000.0;
    // Look up before inserting: no allocation on the hot path once the name is known.
    with(|r| match r.samples.get_mut(name) {
        Some(s) => s.add(ms),
        None => r.samples.entry(name.to_string()).or_default().add(ms),
    });
}

/// Set a gauge.
pub fn gauge(name: &str, v: f64) {
    with(|r| {
        r.gauges.insert(name.to_string(), v);
    });
}

/// Resident memory of this process in bytes (from /proc), 0 where unavailable.
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn threads() -> u64 {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count() as u64)
        .unwrap_or(0)
}

/// Refresh the runtime gauges (called before reporting).
pub fn refresh_runtime() {
    let rss = rss_bytes() as f64;
    gauge("consul.runtime.alloc_bytes", rss);
    gauge("consul.runtime.sys_bytes", rss);
    gauge("consul.runtime.num_goroutines", threads() as f64);
}

/// Consul's JSON form.
pub fn to_json(timestamp: &str, interval_secs: f64) -> Value {
    refresh_runtime();
    with(|r| {
        json!({
            "Timestamp": timestamp,
            "Gauges": r.gauges.iter().map(|(k, v)| json!({"Name": k, "Value": v, "Labels": {}})).collect::<Vec<_>>(),
            "Points": [],
            "Counters": r.counters.iter().map(|(k, a)| a.json(k, interval_secs)).collect::<Vec<_>>(),
            "Samples": r.samples.iter().map(|(k, a)| a.json(k, interval_secs)).collect::<Vec<_>>(),
        })
    })
}

fn prom_name(n: &str) -> String {
    n.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Prometheus text exposition (counters as `_total`-less counters like Consul's sink,
/// samples as summaries with `_sum` and `_count`).
pub fn to_prometheus() -> String {
    refresh_runtime();
    with(|r| {
        let mut out = String::new();
        for (k, v) in &r.gauges {
            let n = prom_name(k);
            out.push_str(&format!("# HELP {n} {k}\n# TYPE {n} gauge\n{n} {v}\n"));
        }
        for (k, a) in &r.counters {
            let n = prom_name(k);
            out.push_str(&format!(
                "# HELP {n} {k}\n# TYPE {n} counter\n{n} {}\n",
                a.sum
            ));
        }
        for (k, a) in &r.samples {
            let n = prom_name(k);
            out.push_str(&format!(
                "# HELP {n} {k}\n# TYPE {n} summary\n{n}_sum {}\n{n}_count {}\n",
                a.sum, a.count
            ));
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregates_and_formats() {
        incr("test.metrics.counter", 2);
        incr("test.metrics.counter", 3);
        sample("test.metrics.timer", Duration::from_millis(10));
        sample("test.metrics.timer", Duration::from_millis(30));
        let j = to_json("now", 10.0);
        let c = j["Counters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["Name"] == "test.metrics.counter")
            .unwrap()
            .clone();
        assert_eq!(
            (c["Count"].as_u64(), c["Sum"].as_f64()),
            (Some(2), Some(5.0))
        );
        let s = j["Samples"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["Name"] == "test.metrics.timer")
            .unwrap()
            .clone();
        assert_eq!(
            (s["Min"].as_f64(), s["Max"].as_f64(), s["Mean"].as_f64()),
            (Some(10.0), Some(30.0), Some(20.0))
        );
        let p = to_prometheus();
        assert!(p.contains("test_metrics_counter 5"), "{p}");
        assert!(p.contains("test_metrics_timer_count 2"), "{p}");
        assert!(p.contains("consul_runtime_alloc_bytes"), "{p}");
        assert!(rss_bytes() > 0);
    }
}
