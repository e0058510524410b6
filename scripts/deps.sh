#!/usr/bin/env bash
# Install what building and testing Praetor needs on a Debian machine (idempotent):
# - RocksDB, LZ4 and libclang for the `rocksdb` crate linked against the system library
#   (see docs/build.md for why not the bundled build), and make for building jemalloc, the
#   agent's allocator;
# - the third-party clients used by the compatibility tests: Debian's python3-consul, and
#   py-consul from PyPI in .venv-compat/ (with grpcio's health server for the gRPC checks),
#   and Patroni with PostgreSQL for the DCS failover scenario;
# - Debian's chromium and playwright-core (npm) for the web UI test;
# - unzip for scripts/k8s-check.sh (which fetches helm and its validators itself).
set -euo pipefail
cd "$(dirname "$0")/.."
PKGS=(librocksdb-dev liblz4-dev libclang-dev clang make python3-consul python3-venv python3-pip dnsutils curl jq unzip postgresql patroni chromium)
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
# Node.js may come from elsewhere than Debian (its npm then conflicts with Debian's).
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! .venv-compat/bin/python -c 'import consul, grpc_health.v1, importlib.metadata as m; m.version("py-consul")' 2>/dev/null; then
  echo "deps: creating .venv-compat with py-consul and a gRPC health server for the check tests"
  rm -rf .venv-compat
  /usr/bin/python3 -m venv .venv-compat
  .venv-compat/bin/pip install -q 'py-consul>=1.5' 'grpcio>=1.60' 'grpcio-health-checking>=1.60'
fi
if ! (cd tests/ui && node -e 'require("playwright-core")' 2>/dev/null); then
  echo "deps: installing playwright-core for the UI test (uses Debian's chromium)"
  (cd tests/ui && npm install --no-audit --no-fund --silent)
fi
echo "deps: ok"
