#!/usr/bin/env bash
# Upgrades under load: queries lost while the DNS cache on a node is replaced.
# A steady dnsperf load (QPS for SECONDS, 1 s query timeout) runs against
#   - nodedns, replaced by a second nodedns with --takeover (the Helm chart's
#     surge mode): start the successor, then SIGTERM the old one;
#   - nodedns, stopped and started again (systemctl restart, or the chart's
#     maxUnavailable mode); the new one loads the snapshot;
#   - Unbound 1.17, stopped and started again (its cache is lost);
# each replaced RESTART_AT seconds into the run. It prints the queries lost and
# the answers that were not NOERROR. Loopback only; bounded: about 3 x SECONDS.
#
# Usage: bash bench/upgrade.sh   (env: QPS, SECONDS_PER_RUN, RESTART_AT, NAMES)
set -euo pipefail
cd "$(dirname "$0")/.."

QPS=${QPS:-5000}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-8}
RESTART_AT=${RESTART_AT:-3}
NAMES=${NAMES:-1000}

source bench/common.sh
bench_setup nodedns dnsctl nodedns_bench_upstream

./build-release/bench/nodedns_bench_upstream 86400 >"$work/up.port" 2>"$work/up.log" &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/up.port" ] && break; sleep 0.05; done
up_port=$(cat "$work/up.port")
seq 1 "$NAMES" | awk '{print "up" $1 ".bench.example A"}' >"$work/names.txt"

nd_port=$(free_port)
{
  nodedns_cache_config "$nd_port" "$up_port"
  cat <<EOC
[snapshot]
path = "$work/nodedns.snap"
EOC
} >"$work/nodedns.toml"
start_nodedns() {  # extra flags...; sets nd_pid once it serves
  rm -f "$work/nd.ready"
  ./build-release/daemon/nodedns --config "$work/nodedns.toml" --control-socket "$work/nodedns.sock" \
    --metrics-listen "" --ready-file "$work/nd.ready" "$@" 2>>"$work/nodedns.log" &
  nd_pid=$!
  pids+=($nd_pid)
  for _ in $(seq 500); do [ -s "$work/nd.ready" ] && return; sleep 0.01; done
  echo "nodedns did not start:"; cat "$work/nodedns.log"; exit 1
}

ub_port=$(free_port)
{
  unbound_base_config "$ub_port" "$up_port"
  printf 'server:\n  so-reuseport: no\n'
} >"$work/unbound.conf"
start_unbound() {
  unbound -d -c "$work/unbound.conf" 2>>"$work/unbound.log" &
  ub_pid=$!
  pids+=($ub_pid)
  for _ in $(seq 500); do [ -n "$(ss -Hlnu "sport = :$ub_port")" ] && return; sleep 0.01; done
}

load() {  # port, output file: the steady load, in the background
  dnsperf -s 127.0.0.1 -p "$1" -d "$work/names.txt" -l "$SECONDS_PER_RUN" -Q "$QPS" -t 1 -c 4 >"$2" 2>&1 &
  load_pid=$!
  pids+=($load_pid)
}
summary() {  # dnsperf output: sent lost not-noerror
  awk '/Queries sent:/ {s = $3} /Queries lost:/ {l = $3}
       /Response codes:/ {for (i = 3; i <= NF; i += 2) {c = $(i + 1); sub(",", "", c); if ($i != "NOERROR") bad += c}}
       END {print s + 0, l + 0, bad + 0}' "$1"
}

echo "nodedns, replaced by a successor with --takeover..."
start_nodedns
dnsperf -s 127.0.0.1 -p "$nd_port" -d "$work/names.txt" -n 1 -Q 20000 >/dev/null 2>&1  # warm
old=$nd_pid
load "$nd_port" "$work/takeover.txt"
sleep "$RESTART_AT"
start_nodedns --takeover
kill "$old"
wait "$old" 2>/dev/null || true
wait "$load_pid" || true

echo "nodedns, stopped and started again..."
load "$nd_port" "$work/restart.txt"
sleep "$RESTART_AT"
kill "$nd_pid"
wait "$nd_pid" 2>/dev/null || true
start_nodedns
wait "$load_pid" || true
kill "$nd_pid"

echo "unbound, stopped and started again..."
start_unbound
dnsperf -s 127.0.0.1 -p "$ub_port" -d "$work/names.txt" -n 1 -Q 20000 >/dev/null 2>&1
load "$ub_port" "$work/unbound.txt"
sleep "$RESTART_AT"
kill "$ub_pid"
wait "$ub_pid" 2>/dev/null || true
start_unbound
wait "$load_pid" || true

echo
echo "replacing the DNS cache under $QPS qps for ${SECONDS_PER_RUN}s (replaced after ${RESTART_AT}s), 1 s query timeout"
printf "%-40s %10s %10s %12s\n" "" sent lost "not NOERROR"
for run in "nodedns --takeover:takeover" "nodedns stop, start:restart" "unbound stop, start:unbound"; do
  read -r sent lost bad < <(summary "$work/${run##*:}.txt")
  printf "%-40s %10s %10s %12s\n" "${run%%:*}" "$sent" "$lost" "$bad"
done
