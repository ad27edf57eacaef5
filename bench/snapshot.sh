#!/usr/bin/env bash
# Persistent cache: how long nodedns takes to write and to load a snapshot of
# NAMES (100,000) cached answers, next to Unbound 1.17 doing the same with
# `unbound-control dump_cache` / `load_cache`, in the same run. After each
# restart the upstream is gone and every name is queried once: the restored
# cache must answer all of them.
#
# Usage: bash bench/snapshot.sh   (env: NAMES, REPEAT)
set -euo pipefail
cd "$(dirname "$0")/.."

NAMES=${NAMES:-100000}
REPEAT=${REPEAT:-3}

source bench/common.sh
bench_setup nodedns dnsctl nodedns_bench_upstream
now_ms() { date +%s%3N; }
median() { sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

./build-release/bench/nodedns_bench_upstream 86400 >"$work/up.port" 2>"$work/up.log" &
up_pid=$!
pids+=($up_pid)
for _ in $(seq 100); do [ -s "$work/up.port" ] && break; sleep 0.05; done
up_port=$(cat "$work/up.port")

nd_port=$(free_port)
{
  nodedns_cache_config "$nd_port" "$up_port"
  cat <<EOC
[snapshot]
path = "$work/nodedns.snap"
interval_s = 86400
EOC
} >"$work/nodedns.toml"
ctl() { ./build-release/daemon/dnsctl --socket "$work/nodedns.sock" "$@"; }
nd_pid=""
start_nodedns() {
  rm -f "$work/nd.ready"
  local t0
  t0=$(now_ms)
  ./build-release/daemon/nodedns --config "$work/nodedns.toml" --control-socket "$work/nodedns.sock" \
    --metrics-listen "" --ready-file "$work/nd.ready" 2>>"$work/nodedns.log" &
  nd_pid=$!
  pids+=($nd_pid)
  for _ in $(seq 600); do [ -s "$work/nd.ready" ] && break; sleep 0.01; done
  [ -s "$work/nd.ready" ] || { echo "nodedns did not start:"; cat "$work/nodedns.log"; exit 1; }
  echo $(($(now_ms) - t0)) >>"$work/nd.ready_ms"
}
stop_nodedns() { kill "$nd_pid"; wait "$nd_pid" 2>/dev/null || true; }

ub_port=$(free_port)
{
  unbound_base_config "$ub_port" "$up_port"
  cat <<EOC
server:
  msg-cache-size: 512m
  rrset-cache-size: 512m
  prefetch: no
remote-control:
  control-enable: yes
  control-interface: $work/unbound.ctl
  control-use-cert: no
EOC
} >"$work/unbound.conf"
unbound-checkconf "$work/unbound.conf" >/dev/null
ub_pid=""
start_unbound() {
  unbound -d -c "$work/unbound.conf" 2>>"$work/unbound.log" &
  ub_pid=$!
  pids+=($ub_pid)
  for _ in $(seq 200); do [ -S "$work/unbound.ctl" ] && [ -n "$(ss -Hlnu "sport = :$ub_port")" ] && break; sleep 0.05; done
}
stop_unbound() { kill "$ub_pid"; wait "$ub_pid" 2>/dev/null || true; }
uctl() { unbound-control -c "$work/unbound.conf" "$@"; }

noerror() {  # port: queries every name once, prints how many came back NOERROR
  dnsperf -s 127.0.0.1 -p "$1" -d "$work/names.txt" -n 1 -Q 20000 2>&1 |
    awk '/Response codes:/ {for (i = 1; i <= NF; i++) if ($i == "NOERROR") {sub(",", "", $(i + 1)); print $(i + 1)}}'
}

seq 1 "$NAMES" | awk '{print "snap" $1 ".bench.example A"}' >"$work/names.txt"
start_nodedns
start_unbound
echo "warming both caches with $NAMES names..."
[ "$(noerror "$nd_port")" = "$NAMES" ] || echo "warning: nodedns warm-up incomplete" >&2
[ "$(noerror "$ub_port")" = "$NAMES" ] || echo "warning: unbound warm-up incomplete" >&2

echo "writing: $REPEAT times each..."
for _ in $(seq "$REPEAT"); do
  ctl --json snapshot | awk -F: '/"seconds"/ {gsub(/[ ,]/, "", $2); printf "%.1f\n", $2 * 1000}' >>"$work/nd.write_ms"
  t0=$(now_ms)
  uctl dump_cache >"$work/unbound.dump"
  echo $(($(now_ms) - t0)) >>"$work/ub.write_ms"
done
nd_bytes=$(stat -c %s "$work/nodedns.snap")
ub_bytes=$(stat -c %s "$work/unbound.dump")

echo "restarting with the upstream gone: $REPEAT times each..."
kill "$up_pid"
stop_nodedns
stop_unbound
rm -f "$work/nd.ready_ms"
for _ in $(seq "$REPEAT"); do
  start_nodedns
  ctl --json stats | awk -F: '/"load_seconds"/ {gsub(/[ ,]/, "", $2); printf "%.1f\n", $2 * 1000}' >>"$work/nd.load_ms"
  nd_answered=$(noerror "$nd_port")
  stop_nodedns
  start_unbound
  t0=$(now_ms)
  uctl load_cache <"$work/unbound.dump" >/dev/null
  echo $(($(now_ms) - t0)) >>"$work/ub.load_ms"
  ub_answered=$(noerror "$ub_port")
  stop_unbound
done

row() { printf "%-44s %12s %12s\n" "$@"; }
echo
echo "snapshot of $NAMES cached answers: nodedns $(./build-release/daemon/nodedns --version | awk '{print $2}')" \
  "vs $(unbound -V | head -1) (dump_cache/load_cache), medians of $REPEAT"
row "" nodedns unbound
row "write (ms)" "$(median <"$work/nd.write_ms")" "$(median <"$work/ub.write_ms")"
row "file size (bytes per entry)" "$((nd_bytes / NAMES))" "$((ub_bytes / NAMES))"
row "load at start-up (ms)" "$(median <"$work/nd.load_ms")" "$(median <"$work/ub.load_ms")"
row "process start to serving (ms, nodedns)" "$(median <"$work/nd.ready_ms")" "-"
row "answered NOERROR after restart, upstream gone" "$nd_answered/$NAMES" "$ub_answered/$NAMES"
