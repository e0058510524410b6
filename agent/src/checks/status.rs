//! Consul's check status handler: `success_before_passing`, `failures_before_warning` and
//! `failures_before_critical` decide when a run's result changes the check's status.

use crate::types::{HEALTH_CRITICAL, HEALTH_PASSING, HEALTH_WARNING};

/// Counts consecutive results and says which status to report, if any.
#[derive(Debug, Clone, Default)]
pub struct StatusHandler {
    success_before_passing: u64,
    failures_before_warning: u64,
    failures_before_critical: u64,
    successes: u64,
    failures: u64,
}

impl StatusHandler {
    /// A handler with the thresholds of a check definition (warning defaults to critical's).
    pub fn new(
        success_before_passing: u64,
        failures_before_warning: u64,
        failures_before_critical: u64,
    ) -> Self {
        let fbw = if failures_before_warning == 0 {
            failures_before_critical
        } else {
            failures_before_warning
        };
        StatusHandler {
            success_before_passing,
            failures_before_warning: fbw,
            failures_before_critical,
            ..Default::default()
        }
    }

    /// Feed one run's status; returns the status to set, or None to keep the current one.
    pub fn update(&mut self, status: &str) -> Option<&'static str> {
        if status == HEALTH_PASSING || status == HEALTH_WARNING {
            self.successes += 1;
            self.failures = 0;
            if self.successes >= self.success_before_passing {
                return Some(if status == HEALTH_PASSING {
                    HEALTH_PASSING
                } else {
                    HEALTH_WARNING
                });
            }
            return None;
        }
        self.successes = 0;
        self.failures += 1;
        if self.failures >= self.failures_before_critical {
            Some(HEALTH_CRITICAL)
        } else if self.failures >= self.failures_before_warning {
            Some(HEALTH_WARNING)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_change_at_once() {
        let mut h = StatusHandler::new(0, 0, 0);
        assert_eq!(h.update("critical"), Some("critical"));
        assert_eq!(h.update("passing"), Some("passing"));
        assert_eq!(h.update("warning"), Some("warning"));
    }

    #[test]
    fn thresholds() {
        let mut h = StatusHandler::new(2, 1, 3);
        assert_eq!(h.update("passing"), None);
        assert_eq!(h.update("passing"), Some("passing"));
        assert_eq!(h.update("critical"), Some("warning"));
        assert_eq!(h.update("critical"), Some("warning"));
        assert_eq!(h.update("critical"), Some("critical"));
        assert_eq!(h.update("passing"), None, "one success is not enough");
        assert_eq!(h.update("passing"), Some("passing"));
    }
}
