#![no_main]
//! Fuzz target: `agent::fuzz::catalog_register`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    agent::fuzz::catalog_register(data);
});
