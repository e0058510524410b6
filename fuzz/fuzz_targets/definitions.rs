#![no_main]
//! Fuzz target: `agent::fuzz::definitions`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    agent::fuzz::definitions(data);
});
