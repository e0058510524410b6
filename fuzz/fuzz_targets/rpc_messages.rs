#![no_main]
//! Fuzz target: `agent::fuzz::rpc_messages`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    agent::fuzz::rpc_messages(data);
});
