//! Log streaming for `/v1/agent/monitor` and `praetor monitor`: a tracing layer that
//! formats events as Consul-style log lines and hands them to the connected monitors. Its
//! level follows the most verbose monitor connected, independent of the agent's own
//! `log_level`. Its filter ([`MonitorFilter`]) answers per callsite and is re-asked when a
//! monitor connects or leaves, so while nobody listens its events cost nothing and it never
//! asks for spans (it does not use them): without it, every trace-level span of openraft,
//! hyper and h2 would be built on every request.

use std::fmt::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use tokio::sync::broadcast;
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Filter};
use tracing_subscriber::Layer;

/// 0 = off, 1 = error ... 5 = trace.
static MAX_LEVEL: AtomicUsize = AtomicUsize::new(0);

fn channel() -> &'static broadcast::Sender<(Level, String)> {
    static C: OnceLock<broadcast::Sender<(Level, String)>> = OnceLock::new();
    C.get_or_init(|| broadcast::channel(4096).0)
}

fn rank(l: &Level) -> usize {
    match *l {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

/// Parse Consul's log level names.
pub fn parse_level(s: &str) -> Option<Level> {
    match s.to_ascii_lowercase().as_str() {
        "trace" => Some(Level::TRACE),
        "debug" => Some(Level::DEBUG),
        "" | "info" => Some(Level::INFO),
        "warn" | "warning" => Some(Level::WARN),
        "err" | "error" => Some(Level::ERROR),
        _ => None,
    }
}

/// A connected monitor; dropping it lowers the level again when it was the most verbose.
pub struct Monitor {
    pub rx: broadcast::Receiver<(Level, String)>,
    pub level: Level,
}

impl Monitor {
    /// Start receiving lines at `level` and above.
    pub fn subscribe(level: Level) -> Monitor {
        let r = rank(&level);
        MAX_LEVEL.fetch_max(r, Ordering::SeqCst);
        tracing::callsite::rebuild_interest_cache();
        Monitor {
            rx: channel().subscribe(),
            level,
        }
    }

    /// Whether a line of level `l` is wanted by this monitor.
    pub fn wants(&self, l: &Level) -> bool {
        rank(l) <= rank(&self.level)
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        // The last monitor gone: stop formatting events.
        if channel().receiver_count() <= 1 {
            MAX_LEVEL.store(0, Ordering::SeqCst);
            tracing::callsite::rebuild_interest_cache();
        }
    }
}

/// The tracing layer.
pub struct MonitorLayer;

struct Line(String);

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }
}

/// RFC 3339 UTC timestamp with milliseconds, without a date crate.
pub fn timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let (y, m, d, h, mi, s) = crate::types::utc_parts(now.as_secs() as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:03}Z",
        now.subsec_millis()
    )
}

/// Whether the monitors want this callsite: events at or above the most verbose monitor's
/// level, never spans.
pub fn monitor_filter(m: &Metadata<'_>) -> bool {
    m.is_event() && rank(m.level()) <= MAX_LEVEL.load(Ordering::Relaxed)
}

/// The monitor layer's per-layer filter (a plain `Layer::enabled` would filter events for
/// every layer). Its answers are cached per callsite and rebuilt when the level changes.
pub struct MonitorFilter;

impl<S> Filter<S> for MonitorFilter {
    fn enabled(&self, m: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        monitor_filter(m)
    }

    fn callsite_enabled(&self, m: &'static Metadata<'static>) -> Interest {
        if monitor_filter(m) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(match MAX_LEVEL.load(Ordering::Relaxed) {
            0 => LevelFilter::OFF,
            1 => LevelFilter::ERROR,
            2 => LevelFilter::WARN,
            3 => LevelFilter::INFO,
            4 => LevelFilter::DEBUG,
            _ => LevelFilter::TRACE,
        })
    }
}

impl<S: Subscriber> Layer<S> for MonitorLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let level = *event.metadata().level();
        if rank(&level) > MAX_LEVEL.load(Ordering::Relaxed) {
            return;
        }
        let mut line = Line(String::new());
        event.record(&mut line);
        let lvl = match level {
            Level::ERROR => "ERROR",
            Level::WARN => "WARN",
            Level::INFO => "INFO",
            Level::DEBUG => "DEBUG",
            Level::TRACE => "TRACE",
        };
        let text = format!(
            "{} [{lvl}] {}: {}",
            timestamp(),
            event.metadata().target(),
            line.0
        );
        let _ = channel().send((level, text));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_timestamp() {
        assert_eq!(parse_level("err"), Some(Level::ERROR));
        assert_eq!(parse_level("DEBUG"), Some(Level::DEBUG));
        assert_eq!(parse_level("loud"), None);
        let t = timestamp();
        assert_eq!(t.len(), 24, "{t}");
        assert!(t.starts_with("20") && t.ends_with('Z'));
    }
}

#[cfg(test)]
mod layer_tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn events_reach_a_subscribed_monitor() {
        let sub = tracing_subscriber::registry().with(MonitorLayer.with_filter(MonitorFilter));
        tracing::subscriber::with_default(sub, || {
            let mut m = Monitor::subscribe(Level::DEBUG);
            tracing::debug!(key = 7, "hello monitor");
            tracing::trace!("too verbose");
            let (l, line) = m.rx.try_recv().expect("a line");
            assert_eq!(l, Level::DEBUG);
            assert!(
                line.contains("[DEBUG]")
                    && line.contains("hello monitor")
                    && line.contains("key=7"),
                "{line}"
            );
            // Another test's monitor may raise the shared level; this monitor's own level
            // still filters what it shows.
            while let Ok((l, _)) = m.rx.try_recv() {
                assert!(m.wants(&l), "trace filtered out");
            }
            // The monitor never asks for spans, whatever its level.
            let _t = Monitor::subscribe(Level::TRACE);
            assert!(
                tracing::event_enabled!(Level::TRACE),
                "events reach a trace monitor"
            );
            let span = tracing::error_span!("request", id = 1);
            assert!(span.is_disabled(), "the monitor asks for no spans");
        });
    }
}
