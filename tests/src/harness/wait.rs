//! Bounded polling.

use std::time::{Duration, Instant};

/// Default bound for anything a test waits for.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// Poll `f` every 50 ms until it returns `Some`, or panic with `what` after `timeout`.
pub fn wait_until<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
