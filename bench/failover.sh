#!/usr/bin/env bash
# Failover time: 3 servers on loopback; kill -9 the leader; time until a KV write through a
# surviving server is accepted. Usage: bench/failover.sh [ROUNDS] [RAFT_MULTIPLIER]
# Prints one line per round and the median, in milliseconds.
set -euo pipefail
ROUNDS=${1:-5}
MULT=${2:-1}
BIN=${PRAETOR_BIN:-$(cd "$(dirname "$0")/.." && pwd)/target/release/praetor}
[ -x "$BIN" ] || BIN=$(cd "$(dirname "$0")/.." && pwd)/target/debug/praetor
WORK=$(mktemp -d)
trap 'kill -9 $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
now_ms() { date +%s%3N; }
results=()
for r in $(seq 1 "$ROUNDS"); do
  base=$((20000 + r * 100))
  pids=()
  for i in 1 2 3; do
    d="$WORK/r$r-s$i"; mkdir -p "$d"
    echo "{\"performance\": {\"raft_multiplier\": $MULT}}" > "$d/perf.json"
    join=(); [ "$i" != 1 ] && join=(-retry-join "127.0.0.1:$((base + 11))" -retry-interval 1s)
    "$BIN" agent -server -bootstrap-expect 3 -node "s$i" -data-dir "$d/data" -bind 127.0.0.1 -client 127.0.0.1 \
      -config-file "$d/perf.json" -http-port $((base + i)) -server-port $((base + 20 + i)) -serf-lan-port $((base + 10 + i)) \
      -serf-wan-port $((base + 30 + i)) -dns-port -1 "${join[@]}" >"$d/log" 2>&1 &
    pids+=($!)
  done
  leader=""
  for _ in $(seq 1 200); do
    leader=$(curl -s "127.0.0.1:$((base + 1))/v1/status/leader" | tr -d '"')
    [ -n "$leader" ] && [ "$(curl -s "127.0.0.1:$((base + 1))/v1/status/peers" | grep -o 127 | wc -l)" = 3 ] && break
    sleep 0.1
  done
  lport=${leader##*:}; li=$((lport - base - 20))
  survivor=$(( li == 1 ? 2 : 1 ))
  curl -s -X PUT -d warm "127.0.0.1:$((base + survivor))/v1/kv/warm" >/dev/null
  t0=$(now_ms)
  kill -9 "${pids[$((li - 1))]}"; wait "${pids[$((li - 1))]}" 2>/dev/null || true
  until [ "$(curl -s --max-time 2 -X PUT -d x "127.0.0.1:$((base + survivor))/v1/kv/after")" = true ]; do sleep 0.02; done
  ms=$(( $(now_ms) - t0 ))
  echo "round $r (raft_multiplier $MULT): writes accepted again after ${ms} ms"
  results+=("$ms")
  kill -9 "${pids[@]}" 2>/dev/null || true
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
done
median=$(printf '%s\n' "${results[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo "median failover (raft_multiplier $MULT, $ROUNDS rounds): ${median} ms"
