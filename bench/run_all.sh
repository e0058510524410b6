#!/usr/bin/env bash
# The benchmark suite: Praetor side by side with a peer measured in the same run on the same
# machine (ratios, since these machines are noisy). One command:
#
#   bash bench/run_all.sh [SECONDS_PER_RUN] [WATCHERS]        (defaults: 10, 50000)
#
# Installs its peers from Debian (etcd-server, nsd, dnsperf, wrk, nginx-light), builds the
# release binaries (praetor, loadgen), runs every benchmark, writes one JSON line per
# measurement to bench/results/latest.jsonl and prints a summary (bench/summary.py) that
# docs/benchmarks.md records. Parts can be run alone: bash bench/run_all.sh 10 50000 kv dns
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECS=${1:-10}
WATCHERS=${2:-50000}
shift $(( $# > 2 ? 2 : $# )) || true
PARTS=("$@")
[ ${#PARTS[@]} -gt 0 ] || PARTS=(kv dns http watch scale footprint failover)

need=()
for p in etcd-server nsd dnsperf wrk nginx-light curl jq python3; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
cargo build --release -q -p agent --bin praetor -p integration-tests --bin loadgen
P=$ROOT/target/release/praetor
L=$ROOT/target/release/loadgen
mkdir -p bench/results
OUT=$ROOT/bench/results/latest.jsonl
: > "$OUT"
W=$(mktemp -d /tmp/praetor-bench-XXXXXX)
chmod 755 "$W"  # nginx workers run as nobody
cleanup() {
  for p in $(jobs -p); do kill "$p" 2>/dev/null || true; done
  sleep 0.5
  for p in $(jobs -p); do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$W"
}
trap cleanup EXIT
log() { echo "bench: $*" >&2; }
record() { tee -a "$OUT"; }
wait_http() { # URL [expect-substring]
  for _ in $(seq 1 300); do
    if out=$(curl -sf "$1" 2>/dev/null) && [[ "$out" == *"${2:-}"* ]]; then return 0; fi
    sleep 0.1
  done
  log "timed out waiting for $1"; return 1
}
stop_all() {
  for p in $(jobs -p); do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}

# Three Praetor servers on loopback (raft_multiplier 1), HTTP on 18501-18503.
praetor_cluster() {
  for i in 1 2 3; do
    d=$W/p$i; mkdir -p "$d"
    echo '{"performance": {"raft_multiplier": 1}}' > "$d/perf.json"
    join=(); [ "$i" != 1 ] && join=(-retry-join 127.0.0.1:18611 -retry-interval 1s)
    "$P" agent -server -bootstrap-expect 3 -node "p$i" -data-dir "$d/data" -bind 127.0.0.1 -client 127.0.0.1 \
      -config-file "$d/perf.json" -http-port $((18500 + i)) -server-port $((18600 + i)) -serf-lan-port $((18610 + i)) \
      -serf-wan-port $((18620 + i)) -dns-port -1 -log-level warn "${join[@]}" >"$d/log" 2>&1 &
  done
  for i in 1 2 3; do wait_http "http://127.0.0.1:$((18500 + i))/v1/status/peers" '","'; done
  wait_http "http://127.0.0.1:18501/v1/status/leader" ':'
  sleep 1
}

# Three etcd members (Debian's etcd 3.4; fsync on every commit, as Praetor), clients on 2381-2383.
etcd_cluster() {
  local cluster="e1=http://127.0.0.1:2391,e2=http://127.0.0.1:2392,e3=http://127.0.0.1:2393"
  for i in 1 2 3; do
    ETCD_UNSUPPORTED_ARCH=${ETCD_UNSUPPORTED_ARCH:-} etcd --name "e$i" --data-dir "$W/e$i" \
      --listen-client-urls "http://127.0.0.1:238$i" --advertise-client-urls "http://127.0.0.1:238$i" \
      --listen-peer-urls "http://127.0.0.1:239$i" --initial-advertise-peer-urls "http://127.0.0.1:239$i" \
      --initial-cluster "$cluster" --initial-cluster-token bench --initial-cluster-state new \
      --log-level error >"$W/e$i.log" 2>&1 &
  done
  for i in 1 2 3; do wait_http "http://127.0.0.1:238$i/health" '"true"'; done
}

# The HTTP address of the Praetor server that is the leader, or of one that is not.
praetor_node() {
  local rpc i
  rpc=$(curl -sf http://127.0.0.1:18501/v1/status/leader | tr -d '"')
  for i in 1 2 3; do
    if [ "$rpc" = "127.0.0.1:$((18600 + i))" ]; then
      [ "$1" = leader ] && { echo "127.0.0.1:$((18500 + i))"; return; }
    else
      [ "$1" = follower ] && { echo "127.0.0.1:$((18500 + i))"; return; }
    fi
  done
}

# The client address of the etcd member that is the leader, or of one that is not.
etcd_node() {
  local i st
  for i in 1 2 3; do
    st=$(curl -sf -X POST "http://127.0.0.1:238$i/v3/maintenance/status" -d '{}')
    if python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if d["header"]["member_id"] == d["leader"] else 1)' <<<"$st"; then
      [ "$1" = leader ] && { echo "127.0.0.1:238$i"; return; }
    else
      [ "$1" = follower ] && { echo "127.0.0.1:238$i"; return; }
    fi
  done
}

bench_kv() {
  log "KV: 3 Praetor servers vs 3 etcd members, 256-byte values, ${SECS}s per run"
  praetor_cluster
  etcd_cluster
  local pa=127.0.0.1:18501,127.0.0.1:18502,127.0.0.1:18503
  local ea=127.0.0.1:2381,127.0.0.1:2382,127.0.0.1:2383
  # One client is latency-bound, and a follower adds a hop to the leader on both systems:
  # it is measured through the leader and through a follower of each. More clients are
  # spread over all three servers.
  local pl pf el ef
  pl=$(praetor_node leader) pf=$(praetor_node follower)
  el=$(etcd_node leader) ef=$(etcd_node follower)
  log "Praetor leader $pl, follower $pf; etcd leader $el, follower $ef"
  for c in ${KV_CLIENTS:-1 64 256}; do
    for op in write read; do
      if [ "$c" = 1 ]; then
        "$L" kv praetor "$op" "$pl" 1 "$SECS" 256 leader | record
        "$L" kv etcd "$op" "$el" 1 "$SECS" 256 leader | record
        "$L" kv praetor "$op" "$pf" 1 "$SECS" 256 follower | record
        "$L" kv etcd "$op" "$ef" 1 "$SECS" 256 follower | record
      else
        "$L" kv praetor "$op" "$pa" "$c" "$SECS" | record
        "$L" kv etcd "$op" "$ea" "$c" "$SECS" | record
      fi
    done
  done
  stop_all
}

# One dev agent with services web1 (1 instance) and web100 (100 instances) on external nodes.
dns_agent() {
  cat > "$W/dns.json" <<EOF
{"dns_config": {"udp_answer_limit": 100, "a_record_limit": 100}}
EOF
  "$P" agent -dev -http-port 18700 -dns-port 18753 -serf-lan-port 0 -serf-wan-port 0 -server-port 0 \
    -config-file "$W/dns.json" -log-level warn >"$W/dns-agent.log" 2>&1 &
  wait_http "http://127.0.0.1:18700/v1/status/leader" ':'
  for n in $(seq 1 100); do
    curl -sf -X PUT 127.0.0.1:18700/v1/catalog/register -d "{\"Node\":\"n$n\",\"Address\":\"10.0.0.$n\",\"Service\":{\"Service\":\"web100\",\"Port\":$((8000 + n))}}" >/dev/null
  done
  curl -sf -X PUT 127.0.0.1:18700/v1/catalog/register -d '{"Node":"n1","Address":"10.0.0.1","Service":{"Service":"web1","Port":8001}}' >/dev/null
}

bench_dns() {
  log "DNS: Praetor vs NSD serving the same records from a static zone (dnsperf, ${SECS}s)"
  dns_agent
  {
    echo '$ORIGIN consul.'
    echo '$TTL 0'
    echo '@ IN SOA ns.consul. hostmaster.consul. 1 3600 600 86400 0'
    echo '@ IN NS ns.consul.'
    echo 'ns IN A 127.0.0.1'
    echo 'web1.service IN A 10.0.0.1'
    echo 'web1.service IN SRV 1 1 8001 n1.node.dc1'
    for n in $(seq 1 100); do
      echo "web100.service IN A 10.0.0.$n"
      echo "web100.service IN SRV 1 1 $((8000 + n)) n$n.node.dc1"
      echo "n$n.node.dc1 IN A 10.0.0.$n"
    done
  } > "$W/consul.zone"
  cat > "$W/nsd.conf" <<EOF
server:
  ip-address: 127.0.0.1
  port: 18853
  server-count: 2
  rrl-ratelimit: 0
  username: ""
  chroot: ""
  zonesdir: "$W"
  database: ""
  pidfile: "$W/nsd.pid"
  xfrdfile: "$W/xfrd.state"
  zonelistfile: "$W/zone.list"
  logfile: "$W/nsd.log"
  verbosity: 0
remote-control:
  control-enable: no
zone:
  name: consul
  zonefile: consul.zone
EOF
  nsd -d -c "$W/nsd.conf" >"$W/nsd.out" 2>&1 &
  sleep 1
  for q in "web1 A" "web1 SRV" "web100 A" "web100 SRV"; do
    set -- $q
    echo "$1.service.consul $2" > "$W/q.txt"
    for target in praetor:18753 nsd:18853; do
      out=$(dnsperf -s 127.0.0.1 -p "${target#*:}" -d "$W/q.txt" -l "$SECS" -c 4 -q 64 -e 2>&1 || true)
      qps=$(echo "$out" | awk '/Queries per second:/ {print $4}')
      lost=$(echo "$out" | awk '/Queries lost:/ {print $3}')
      lat=$(echo "$out" | awk '/Average Latency/ {print $4}')
      echo "{\"bench\":\"dns\",\"server\":\"${target%%:*}\",\"query\":\"$1 $2\",\"qps\":${qps:-0},\"lost\":${lost:-0},\"avg_latency_s\":${lat:-0}}" | record
    done
  done
  stop_all
}

bench_http() {
  log "HTTP: /v1/health/service/web100?passing vs nginx serving the same JSON (wrk -t2 -c64, ${SECS}s)"
  dns_agent
  mkdir -p "$W/www"
  curl -sf "127.0.0.1:18700/v1/health/service/web100?passing" > "$W/www/health.json"
  cat > "$W/nginx.conf" <<EOF
worker_processes 2;
pid $W/nginx.pid;
error_log $W/nginx.err;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $W/ngx-body;
  proxy_temp_path $W/ngx-proxy;
  fastcgi_temp_path $W/ngx-fcgi;
  uwsgi_temp_path $W/ngx-uwsgi;
  scgi_temp_path $W/ngx-scgi;
  server {
    listen 127.0.0.1:18780;
    location / { root $W/www; default_type application/json; }
  }
}
EOF
  nginx -c "$W/nginx.conf" -p "$W" -g 'daemon off;' &
  sleep 1
  for target in "praetor http://127.0.0.1:18700/v1/health/service/web100?passing" "nginx http://127.0.0.1:18780/health.json"; do
    set -- $target
    out=$(wrk -t2 -c64 -d"${SECS}s" --latency "$2")
    rps=$(echo "$out" | awk '/Requests\/sec:/ {print $2}')
    p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
    errs=$(echo "$out" | awk '/Non-2xx/ {print $5}')
    echo "{\"bench\":\"http\",\"server\":\"$1\",\"rps\":${rps:-0},\"p99\":\"${p99:-}\",\"non_2xx\":${errs:-0}}" | record
  done
  stop_all
}

bench_watch() {
  log "Blocking queries: $WATCHERS watchers on one key"
  ulimit -n 1048576 2>/dev/null || ulimit -n 262144 || true
  "$P" agent -dev -http-port 18900 -dns-port -1 -serf-lan-port 0 -serf-wan-port 0 -server-port 0 -log-level warn \
    >"$W/watch.log" 2>&1 &
  local pid=$!
  wait_http "http://127.0.0.1:18900/v1/status/leader" ':'
  # HTTP/2 (h2c): watchers multiplexed 100 per connection.
  "$L" watch 127.0.0.1:18900 "$WATCHERS" "$pid" h2 | record
  stop_all
  # HTTP/1.1: one connection per watcher (what most Consul clients do); a fifth as many.
  "$P" agent -dev -http-port 18900 -dns-port -1 -serf-lan-port 0 -serf-wan-port 0 -server-port 0 -log-level warn \
    >"$W/watch1.log" 2>&1 &
  pid=$!
  wait_http "http://127.0.0.1:18900/v1/status/leader" ':'
  "$L" watch 127.0.0.1:18900 "$((WATCHERS / 5))" "$pid" h1 | record
  stop_all
}

bench_scale() {
  log "Scale: 10,000 nodes and 100,000 service instances on one server"
  mkdir -p "$W/scale"
  "$P" agent -server -bootstrap-expect 1 -node scale -data-dir "$W/scale/data" -bind 127.0.0.1 -client 127.0.0.1 \
    -http-port 18950 -server-port 18951 -serf-lan-port 18952 -serf-wan-port 18953 -dns-port -1 -log-level warn \
    >"$W/scale/log" 2>&1 &
  wait_http "http://127.0.0.1:18950/v1/status/leader" ':'
  "$L" catalog 127.0.0.1:18950 10000 10 1000 32 | record
  "$L" get "/v1/health/service/svc-7?passing" 127.0.0.1:18950 8 "$SECS" | record
  "$L" get "/v1/catalog/service/svc-7" 127.0.0.1:18950 8 "$SECS" | record
  local t0 t1 t2
  t0=$(date +%s%N)
  CONSUL_HTTP_ADDR=127.0.0.1:18950 "$P" snapshot save "$W/scale/snap" >/dev/null
  t1=$(date +%s%N)
  local size disk
  size=$(stat -c %s "$W/scale/snap")
  disk=$(du -sk "$W/scale/data" | cut -f1)
  stop_all
  mkdir -p "$W/scale2"
  "$P" agent -server -bootstrap-expect 1 -node scale2 -data-dir "$W/scale2/data" -bind 127.0.0.1 -client 127.0.0.1 \
    -http-port 18960 -server-port 18961 -serf-lan-port 18962 -serf-wan-port 18963 -dns-port -1 -log-level warn \
    >"$W/scale2/log" 2>&1 &
  wait_http "http://127.0.0.1:18960/v1/status/leader" ':'
  t2=$(date +%s%N)
  CONSUL_HTTP_ADDR=127.0.0.1:18960 "$P" snapshot restore "$W/scale/snap" >/dev/null
  local t3; t3=$(date +%s%N)
  local n; n=$(curl -sf "127.0.0.1:18960/v1/catalog/service/svc-7" | jq length)
  echo "{\"bench\":\"snapshot\",\"save_ms\":$(( (t1 - t0) / 1000000 )),\"restore_ms\":$(( (t3 - t2) / 1000000 )),\"snapshot_bytes\":$size,\"data_dir_kib\":$disk,\"svc7_instances_after_restore\":$n}" | record
  stop_all
}

bench_footprint() {
  log "Footprint: agent -dev start-to-leader time and idle RSS"
  # How many of the functions in agent/link-order.txt the binary still has (renamed or
  # removed ones lose their place; bench/link-order.sh rewrites the file).
  local total found
  total=$(grep -c . agent/link-order.txt || true)
  found=$(LC_ALL=C comm -12 <(nm "$P" | awk '{print $NF}' | LC_ALL=C sort -u) \
    <(LC_ALL=C sort -u agent/link-order.txt) | wc -l)
  "$L" ready "$P" 5 | jq -c --argjson f "$found" --argjson t "$total" \
    '. + {link_order_found: $f, link_order_total: $t}' | record
}

bench_failover() {
  log "Failover: leader killed, writes accepted again (raft_multiplier 1)"
  local out; out=$(PRAETOR_BIN=$P bash bench/failover.sh 5 1 | tail -1)
  local med; med=$(echo "$out" | grep -o '[0-9]\+' | tail -1)
  echo "{\"bench\":\"failover\",\"raft_multiplier\":1,\"median_ms\":${med:-0},\"raw\":\"$out\"}" | record
}

for part in "${PARTS[@]}"; do
  "bench_$part"
done
python3 bench/summary.py "$OUT"
