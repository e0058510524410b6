#!/usr/bin/env bash
# Write agent/link-order.txt: the functions of the release `praetor` binary that an idle
# `agent -dev` runs (start-up, a few HTTP requests, SECONDS of timers, shutdown), in the
# sorted by name. agent/build.rs hands the file to the linker, which places
# those functions together (docs/build.md, "Link order").
#
#   bash bench/link-order.sh [SECONDS]     # default 60; needs valgrind (apt-get install valgrind)
#
# Run it again after changing dependencies, features or the toolchain (symbol names change
# with them); `bash bench/run_all.sh 10 50000 footprint` reports how many of the listed
# names the current binary still has.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECS=${1:-60}
command -v valgrind >/dev/null || { echo "link-order: valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }
echo "link-order: building the release binary"
cargo build --release -q -p agent --bin praetor
BIN=$ROOT/target/release/praetor
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
PORT=28599
echo "link-order: running agent -dev under callgrind for ${SECS}s"
(cd "$WORK" && exec valgrind --tool=callgrind --demangle=no --callgrind-out-file="$WORK/cg.out" \
  "$BIN" agent -dev -http-port=$PORT -dns-port=28699 -serf-lan-port=0 -serf-wan-port=0 \
  -server-port=0 >"$WORK/agent.log" 2>&1) &
VG=$!
for _ in $(seq 1 600); do
  curl -sf "127.0.0.1:$PORT/v1/status/leader" 2>/dev/null | grep -q : && break
  sleep 0.1
done
curl -sf "127.0.0.1:$PORT/v1/status/leader" | grep -q : \
  || { echo "link-order: agent did not start" >&2; cat "$WORK/agent.log" >&2; kill $VG; exit 1; }
curl -sf "127.0.0.1:$PORT/v1/agent/self" >/dev/null
sleep "$SECS"
kill -INT $VG
wait $VG || true
python3 - "$WORK/cg.out" "$BIN" >agent/link-order.txt <<'EOF'
import re, sys
# callgrind names objects and functions once as "ob=(id) name" / "fn=(id) name" and by id
# after that; keep the functions of our binary, without recursion suffixes ("'2"), sorted
# so that runs diff well.
obs, fns, cur, seen = {}, {}, None, {}
for line in open(sys.argv[1]):
    m = re.match(r"^(c?ob)=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
    if m:
        kind, i, name = m.groups()
        if name:
            obs[i] = name
        if kind == "ob":
            cur = obs[i]
        continue
    m = re.match(r"^(c?fn)=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
    if m:
        kind, i, name = m.groups()
        if name:
            fns[i] = name
        if kind == "fn" and cur == sys.argv[2]:
            f = re.sub(r"'\d+$", "", fns[i])
            if f.startswith("_") and f not in seen:
                seen[f] = True
print("\n".join(sorted(seen)))
EOF
echo "link-order: $(wc -l <agent/link-order.txt) functions in agent/link-order.txt; relinking"
cargo build --release -q -p agent --bin praetor
