#!/usr/bin/env bash
# The project's test command: install dependencies, build the binary the cross-process
# tests start, then run every test in the workspace and the Kubernetes manifest checks.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cargo build --workspace --bins
cargo test --workspace -- --test-threads="${TEST_THREADS:-4}"
# Kubernetes: CRD drift, helm lint/template for every values file, rendered manifests and
# examples validated against the Kubernetes and CRD schemas.
bash scripts/k8s-check.sh
