#![no_main]
//! Fuzz target: `agent::fuzz::config_hcl`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    agent::fuzz::config_hcl(data);
});
