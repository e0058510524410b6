//! Cross-process test harness for Praetor: starts real `praetor` agent processes on
//! loopback with ephemeral ports, waits for them, talks to them over HTTP, and kills or
//! restarts them while keeping their data directories.

pub mod harness;
pub mod linearizability;
