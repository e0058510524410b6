#![no_main]
//! Fuzz target: `agent::fuzz::txn_ops`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    agent::fuzz::txn_ops(data);
});
