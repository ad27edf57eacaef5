#!/usr/bin/env bash
# Fleet benchmark: the 2024-12-11 control-plane outage replayed on a
# simulated cluster. NODES node caches (each its own process on its own
# loopback address, with its own configuration: cluster.local to the
# cluster DNS stand-in, "." to an external stand-in), the pods of every node
# in one load generator, and a cluster DNS of finite capacity that goes down,
# answers SERVFAIL, recovers at a third of its capacity and then fully. The
# same run for each of SYSTEMS: nodedns (default configuration), Unbound
# (serve-expired), dnsmasq (--use-stale-cache) and none (pods ask the cluster
# DNS directly). Prints one table, writes OUT/table.txt and OUT/fleet.png.
#
# Environment (defaults): NODES (100), SYSTEMS ("nodedns unbound dnsmasq
# none"), TIMELINE (steady:20,down:25,servfail:15,recovery:25,full:15),
# TTL (15), PODS_PER_NODE (10), LOOKUPS_PER_POD (2), NEW_POD_INTERVAL (20),
# CAPACITY (0: HEADROOM x the pods' load on a cluster DNS asked directly),
# HEADROOM (2), RECOVERY_FACTOR (0.333), QUEUE_MS (250), SEED (1),
# OUT (bench/results/fleet), PORT (10053), NICE (10). Binaries from
# build-release (built here) unless NODEDNS_BIN, DNSCTL_BIN and DRIVER_BIN
# are all given (the smoke test). TRACE=1 writes OUT/<system>.trace: every
# failed lookup and every one slower than TRACE_SLOW_MS (1000), step by
# step. FLEET_NETNS=0 runs on the host's loopback instead of a private
# network namespace (the default when root). NODEDNS_UPSTREAM: lines added
# to every node's [upstream] table, for runs about a knob.
#
# Loopback only; bounded: per system the timeline plus at most DRAIN_SECONDS
# (45) and READY_SECONDS (60); every process started is stopped by PID.
set -euo pipefail
self=$(readlink -f "$0")
cd "$(dirname "$self")/../.."
source bench/common.sh  # unbound_server_config (bench_setup is not used: the fleet has its own scratch and cleanup)

NODES=${NODES:-100}
SYSTEMS=${SYSTEMS:-"nodedns unbound dnsmasq none"}
TIMELINE=${TIMELINE:-steady:20,down:25,servfail:15,recovery:25,full:15}
TTL=${TTL:-15}
PORT=${PORT:-10053}
OUT=${OUT:-bench/results/fleet}
CLUSTER=127.53.0.1
EXTERNAL=127.53.0.2
PREFIX=127.100

node_ip() { echo "$PREFIX.$(($1 / 250)).$(($1 % 250 + 1))"; }  # as the driver's NodeIp

if [ -z "${FLEET_INSIDE:-}" ]; then
  if [ -n "${NODEDNS_BIN:-}" ] && [ -n "${DNSCTL_BIN:-}" ] && [ -n "${DRIVER_BIN:-}" ]; then
    :
  else
    bash scripts/deps.sh bench
    cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release -DNODEDNS_BUILD_TESTS=ON >/dev/null
    cmake --build build-release --target nodedns dnsctl nodedns_fleet_driver >/dev/null
    export NODEDNS_BIN=$PWD/build-release/daemon/nodedns DNSCTL_BIN=$PWD/build-release/daemon/dnsctl
    export DRIVER_BIN=$PWD/build-release/bench/fleet/nodedns_fleet_driver
  fi
  mkdir -p "$OUT"
  export FLEET_INSIDE=1 OUT
  # A private network namespace: its own loopback, no port shared with
  # anything else on the machine, nothing reachable beyond it.
  if [ "$(id -u)" = 0 ] && [ "${FLEET_NETNS:-1}" = 1 ] && command -v unshare >/dev/null; then
    exec nice -n "${NICE:-10}" unshare --net -- bash "$self" "$@"
  fi
  exec nice -n "${NICE:-10}" bash "$self" "$@"
fi

if [ "${FLEET_NETNS:-1}" = 1 ] && [ "$(id -u)" = 0 ]; then ip link set lo up; fi
ulimit -n 65536 2>/dev/null || true
work=$(mktemp -d /tmp/nodedns-fleet-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

start_nodedns() {  # node index: the DEFAULT configuration, only addresses, zones and log level given
  cat >"$work/n$1.toml" <<EOC
[server]
listen = ["$(node_ip "$1"):$PORT"]
[[zone]]
name = "cluster.local"
servers = ["$CLUSTER:$PORT"]
[[zone]]
name = "."
servers = ["$EXTERNAL:$PORT"]
[log]
level = "warn"
EOC
  # NODEDNS_UPSTREAM: lines for [upstream], for runs about a knob (they say so).
  if [ -n "${NODEDNS_UPSTREAM:-}" ]; then printf '[upstream]\n%s\n' "$NODEDNS_UPSTREAM" >>"$work/n$1.toml"; fi
  "$NODEDNS_BIN" --config "$work/n$1.toml" --control-socket "$work/n$1.sock" --metrics-listen "" \
    2>>"$work/n$1.log" &
}

start_unbound() {  # node index: a one-thread forwarding cache serving expired data, as bench/outage.sh
  {
  unbound_server_config "$(node_ip "$1")" "$PORT"
  cat <<EOC
  serve-expired: yes
  serve-expired-client-timeout: 0
  serve-expired-reply-ttl: 30
  ede: yes
  ede-serve-expired: yes
forward-zone:
  name: "cluster.local"
  forward-addr: $CLUSTER@$PORT
forward-zone:
  name: "."
  forward-addr: $EXTERNAL@$PORT
EOC
  } >"$work/n$1.conf"
  unbound -d -c "$work/n$1.conf" 2>>"$work/n$1.log" &
}

start_dnsmasq() {  # node index: serve stale, a cache large enough for the node's names (default 150)
  dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --bind-interfaces \
    --listen-address="$(node_ip "$1")" --port="$PORT" --server="/cluster.local/$CLUSTER#$PORT" \
    --server="$EXTERNAL#$PORT" --use-stale-cache --cache-size=10000 --pid-file= --user=root \
    --log-facility=- 2>>"$work/n$1.log" &
}

have() {
  case "$1" in
    nodedns | none) return 0 ;;
    *) command -v "$1" >/dev/null || [ -x "/usr/sbin/$1" ] ;;
  esac
}
export PATH=$PATH:/usr/sbin

summarize_nodedns() {  # a few counters summed over the fleet (dnsctl stats --json), for the README's arithmetic
  for ((i = 0; i < NODES; i++)); do
    "$DNSCTL_BIN" --socket "$work/n$i.sock" --json stats 2>/dev/null || true
  done | jq -rs '
    map(.counters + {cache_entries: .cache.entries, cache_bytes: .cache.bytes}) as $nodes
    | ["queries", "cache_hits", "upstream_queries", "upstream_timeouts", "refreshes", "prefetches", "probes_sent",
       "zone_probes_sent", "stale_answers", "servfail_unreachable", "servfail_local", "servfail_cached",
       "upstream_queued", "upstream_queue_timeouts", "breaker_opened", "cache_entries", "cache_bytes"][]
    | "\(.)\t\([$nodes[][.] // 0] | add)"' | sed "1i nodes\t$NODES"
}

run_system() {
  local sys=$1 first=${#pids[@]} args=()
  if [ "$sys" = none ]; then args+=(--direct); fi
  rm -f "$work/$sys.pids"
  "$DRIVER_BIN" run --system "$sys" --out "$OUT" --nodes "$NODES" --port "$PORT" --cluster "$CLUSTER" \
    --external "$EXTERNAL" --node-prefix "$PREFIX" --timeline "$TIMELINE" --ttl "$TTL" \
    --pods-per-node "${PODS_PER_NODE:-10}" --lookups-per-pod "${LOOKUPS_PER_POD:-2}" \
    --new-pod-interval "${NEW_POD_INTERVAL:-20}" --capacity "${CAPACITY:-0}" --headroom "${HEADROOM:-2}" \
    --recovery-factor "${RECOVERY_FACTOR:-0.333}" --queue-ms "${QUEUE_MS:-250}" --seed "${SEED:-1}" \
    --drain-seconds "${DRAIN_SECONDS:-45}" --ready-seconds "${READY_SECONDS:-60}" --pids "$work/$sys.pids" \
    ${TRACE:+--trace "$OUT/$sys.trace" --trace-slow-ms "${TRACE_SLOW_MS:-1000}"} "${args[@]}" &
  local driver=$!
  pids+=("$driver")
  if [ "$sys" != none ]; then
    for ((i = 0; i < NODES; i++)); do
      "start_$sys" "$i"
      pids+=($!)
      echo "$!" >>"$work/$sys.pids.tmp"
    done
  fi
  touch "$work/$sys.pids.tmp"
  mv "$work/$sys.pids.tmp" "$work/$sys.pids"
  local status=0
  wait "$driver" || status=$?
  if [ "$sys" = nodedns ] && [ "$status" = 0 ]; then summarize_nodedns >"$OUT/nodedns.counters.tsv"; fi
  for p in "${pids[@]:$first}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]:$first}"; do wait "$p" 2>/dev/null || true; done
  pids=("${pids[@]:0:$first}")
  if [ "$status" != 0 ]; then
    echo "fleet: $sys failed (driver exit $status); node logs:" >&2
    tail -n 3 "$work"/n*.log 2>/dev/null | head -40 >&2
    return 1
  fi
}

ran=()
for sys in $SYSTEMS; do
  if ! have "$sys"; then
    echo "fleet: $sys is not installed: skipped (scripts/deps.sh bench installs it)" >&2
    rm -f "$OUT/$sys.tsv" "$OUT/$sys.series.tsv"
    continue
  fi
  rm -f "$OUT/$sys.tsv" "$OUT/$sys.series.tsv"
  run_system "$sys"
  ran+=("$sys")
done
list=$(IFS=,; echo "${SYSTEMS// /,}")
"$DRIVER_BIN" report --out "$OUT" --systems "$list" | tee "$OUT/table.txt"
if command -v gnuplot >/dev/null && [ ${#ran[@]} -gt 0 ]; then
  files=()
  for sys in "${ran[@]}"; do files+=("$OUT/$sys.series.tsv"); done
  gnuplot -e "out='$OUT/fleet.png'; files='${files[*]}'; names='${ran[*]}'; timeline='$TIMELINE'" \
    bench/fleet/plot.gp && echo "plot: $OUT/fleet.png"
fi
