#![no_main]
//! Fuzz target: `agent::fuzz::acl_rules`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    agent::fuzz::acl_rules(data);
});
