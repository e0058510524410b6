#!/usr/bin/env bash
# The project's test command: install dependencies, build the binary the cross-process
# tests start, then run every test in the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cargo build --workspace --bins
cargo test --workspace -- --test-threads="${TEST_THREADS:-4}"
