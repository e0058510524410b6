#![no_main]
//! Fuzz target: `agent::fuzz::dns_name`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    agent::fuzz::dns_name(data);
});
