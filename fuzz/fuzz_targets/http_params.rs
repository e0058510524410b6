#![no_main]
//! Fuzz target: `agent::fuzz::http_params`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    agent::fuzz::http_params(data);
});
