#![no_main]
//! Fuzz target: `agent::fuzz::raft_command`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    agent::fuzz::raft_command(data);
});
