#!/usr/bin/env bash
# Patroni (Debian's package) with PostgreSQL uses Praetor as its DCS (Consul API): two
# PostgreSQL nodes elect a leader through Praetor's KV and sessions; the leader is killed
# and the replica takes over. Usage: tests/patroni/failover.sh PATH/TO/praetor
# Prints PATRONI-FAILOVER-OK on success; exits non-zero otherwise.
set -euo pipefail
BIN=$(readlink -f "$1")
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
W=$(mktemp -d /tmp/patroni-test.XXXXXX)
chmod 755 "$W"
# Ports below the kernel's ephemeral range (other tests bind port 0 and get ephemeral
# ports), probed free: HTTP at base, PostgreSQL at base+1/2, Patroni's API at base+11/12.
pick_base() {
  python3 - "$$" <<'PY'
import random, socket, sys
rng = random.Random(int(sys.argv[1]))
for _ in range(200):
    base = rng.randrange(20000, 32000, 20)
    try:
        for off in (0, 1, 2, 11, 12):
            s = socket.socket(); s.bind(("127.0.0.1", base + off)); s.close()
    except OSError:
        continue
    print(base); break
PY
}
base=$(pick_base)
[ -n "$base" ] || { echo "no free port block" >&2; exit 1; }
HTTP=127.0.0.1:$base
PIDS=()
RUNAS=()
if [ "$(id -u)" = 0 ]; then RUNAS=(runuser -u postgres --); fi
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  pkill -9 -f "$W/" 2>/dev/null || true
  [ "${KEEP:-0}" = 1 ] || rm -rf "$W"
}
trap cleanup EXIT
log() { echo "[patroni-test $(date +%T)] $*" >&2; }
fail() { log "FAIL: $*"; for f in "$W"/*.log; do echo "--- $f" >&2; tail -n 25 "$f" >&2; done; exit 1; }

"$BIN" agent -dev -node dcs -http-port "$base" -dns-port -1 -server-port 0 -serf-lan-port 0 -serf-wan-port 0 >"$W/praetor.log" 2>&1 &
PIDS+=($!)
up=0
for _ in $(seq 1 300); do
  if curl -sf "http://$HTTP/v1/status/leader" 2>/dev/null | grep -q 127; then up=1; break; fi
  sleep 0.1
done
[ "$up" = 1 ] || fail "praetor did not come up on $HTTP"

for i in 1 2; do
  d="$W/pg$i"; mkdir -p "$d/data" "$d/sock"; chmod 700 "$d/data"
  cat >"$d/patroni.yml" <<YAML
scope: pgcluster
name: pg$i
restapi:
  listen: 127.0.0.1:$((base + 10 + i))
  connect_address: 127.0.0.1:$((base + 10 + i))
consul:
  host: $HTTP
bootstrap:
  dcs:
    ttl: 20
    loop_wait: 2
    retry_timeout: 5
    maximum_lag_on_failover: 10485760
  initdb:
  - encoding: UTF8
  pg_hba:
  - local all all trust
  - host replication replicator 127.0.0.1/32 trust
  - host all all 127.0.0.1/32 trust
postgresql:
  listen: 127.0.0.1:$((base + i))
  connect_address: 127.0.0.1:$((base + i))
  data_dir: $d/data
  bin_dir: $PGBIN
  pgpass: $d/pgpass
  authentication:
    replication: {username: replicator, password: rep}
    superuser: {username: postgres, password: pg}
  parameters:
    unix_socket_directories: $d/sock
    max_connections: 20
    shared_buffers: 16MB
YAML
  if [ "$(id -u)" = 0 ]; then chown -R postgres "$d"; fi
  "${RUNAS[@]}" patroni "$d/patroni.yml" >"$W/pg$i.log" 2>&1 &
  PIDS+=($!)
  [ "$i" = 1 ] && sleep 3
done

leader_of() { curl -s "http://$HTTP/v1/kv/service/pgcluster/leader?raw" || true; }
log "waiting for a leader"
for _ in $(seq 1 120); do L=$(leader_of); [ -n "$L" ] && break; sleep 1; done
[ -n "${L:-}" ] || fail "no leader elected"
log "leader: $L"
other=pg$(( ${L#pg} == 1 ? 2 : 1 ))
other_api=$((base + 10 + ${other#pg}))
log "waiting for both members and $other streaming as a replica"
ok=0
for _ in $(seq 1 120); do
  n=$({ curl -s "http://$HTTP/v1/kv/service/pgcluster/members/?keys" || true; } | { grep -o 'members/pg' || true; } | wc -l)
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$other_api/replica" || true)
  if [ "$n" = 2 ] && [ "$code" = 200 ]; then ok=1; break; fi
  sleep 1
done
[ "$ok" = 1 ] || fail "members did not both register with a healthy replica (members=$n, replica=$code)"
log "killing leader $L (patroni and postgres)"
lp=${PIDS[${L#pg}]}
pkill -9 -P "$lp" 2>/dev/null || true
kill -9 "$lp" 2>/dev/null || true
"${RUNAS[@]}" "$PGBIN/pg_ctl" stop -m immediate -D "$W/$L/data" >/dev/null 2>&1 || true
log "waiting for $other to take over"
for _ in $(seq 1 120); do [ "$(leader_of)" = "$other" ] && break; sleep 1; done
[ "$(leader_of)" = "$other" ] || fail "no failover to $other (leader key: $(leader_of))"
port=$((base + ${other#pg}))
for _ in $(seq 1 60); do
  r=$("${RUNAS[@]}" "$PGBIN/psql" -h 127.0.0.1 -p "$port" -U postgres -Atc 'select pg_is_in_recovery()' 2>/dev/null || true)
  [ "$r" = f ] && break
  sleep 1
done
[ "${r:-}" = f ] || fail "$other did not become a primary"
log "failover to $other complete"
echo PATRONI-FAILOVER-OK
