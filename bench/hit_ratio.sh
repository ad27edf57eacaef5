#!/usr/bin/env bash
# Hit-ratio benchmark: nodedns and Unbound at the same entry capacity, in the
# same run, replaying the same traces (bench/hit_ratio/traces.h: Zipf, Zipf
# with a 30 % one-off flood, ndots:5 search expansions, a cyclic scan of
# exactly CAPACITY names) against the same local upstream, then the CPU
# cost per cache hit at a fixed rate. Before that, the unit-level replay of
# the same traces against the candidate policies (nodedns_hit_ratio replay).
#
# nodedns runs its DEFAULT configuration but for cache.max_entries =
# CAPACITY (what this benchmark is about). Unbound (a one-thread forwarding
# cache, bench/common.sh, one slab per cache) is sized in bytes: its
# msg-cache-size and rrset-cache-size are calibrated in this run so that
# its message cache holds CAPACITY one-record answers (load 2 x CAPACITY
# distinct names, read msg.cache.count, scale, repeat; printed).
#
# Hit ratio = 1 - (queries the upstream received) / (queries sent), every
# query of the trace counted (cold start included). Queries are replayed in
# order, one outstanding at a time (dnsperf -q 1), so no two are coalesced.
# Top-1,000: after the flood trace, the 1,000 most popular names are asked
# once more; each one the upstream sees was not cached.
# All traffic on 127.0.0.1; every dnsperf run is bounded (-n 1 or -l);
# processes are ended by PID (bench/common.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

CAPACITY=${CAPACITY:-10000}       # cache.max_entries, and Unbound's size in answers
REQUESTS=${REQUESTS:-0}           # per trace; 0 = 10 x CAPACITY (scan: 5 passes)
SIM_CAPACITY=${SIM_CAPACITY:-100000}  # unit-level replay (the default max_entries); 0 = skip
CPU_RATE=${CPU_RATE:-10000}       # queries/s for the CPU-per-hit run
CPU_SECONDS=${CPU_SECONDS:-10}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
BASELINE_NODEDNS=${BASELINE_NODEDNS:-}  # another nodedns binary for the CPU-per-hit run (e.g. main's)

source bench/common.sh
bench_setup nodedns nodedns_bench_upstream nodedns_hit_ratio
tool=./build-release/bench/nodedns_hit_ratio

if [ "$SIM_CAPACITY" != 0 ]; then
  echo "== unit-level replay (reference models and nodedns's cache) =="
  "$tool" replay --capacity="$SIM_CAPACITY"
  echo
fi

"$tool" write --dir="$work" --capacity="$CAPACITY" --requests="$REQUESTS"
seq 1 $((2 * CAPACITY)) | awk '{print "size" $1 ".bench.example A"}' >"$work/sizing.txt"
seq 1 1000 | awk '{print "hot" $1 ".bench.example A"}' >"$work/hot.txt"

# Upstream: NXDOMAIN for names of 6 labels or more (the search expansions).
taskset -c "$CLIENT_CPU" ./build-release/bench/nodedns_bench_upstream 86400 6 >"$work/up.out" 2>"$work/up.log" &
up_pid=$!
pids+=($up_pid)
for _ in $(seq 100); do [ -s "$work/up.out" ] && break; sleep 0.05; done
up_port=$(head -n 1 "$work/up.out")

upstream_queries() {  # the upstream's count so far
  local n
  n=$(grep -c '^queries' "$work/up.out" || true)
  kill -USR1 "$up_pid"
  for _ in $(seq 100); do
    [ "$(grep -c '^queries' "$work/up.out" || true)" -gt "$n" ] && break
    sleep 0.02
  done
  grep '^queries' "$work/up.out" | tail -n 1 | awk '{print $2}'
}

replay() {  # port, file: each line once, in order, one query outstanding
  taskset -c "$CLIENT_CPU" dnsperf -s 127.0.0.1 -p "$1" -d "$2" -n 1 -q 1 -c 1 -t 5 >"$work/dnsperf.out" 2>&1
  if ! grep -q 'Queries lost: *0 ' "$work/dnsperf.out"; then
    echo "warning: queries lost replaying $2 to port $1" >&2
  fi
}

server_pid=""
start_nodedns() {
  local port
  port=$(free_port)
  { nodedns_cache_config "$port" "$up_port"; printf '[cache]\nmax_entries = %s\n' "$CAPACITY"; } >"$work/nodedns.toml"
  rm -f "$work/nd.ready"
  taskset -c "$SERVER_CPU" "${NODEDNS_BIN:-./build-release/daemon/nodedns}" --config "$work/nodedns.toml" \
    --control-socket "$work/nodedns.sock" --metrics-listen "" --ready-file "$work/nd.ready" 2>"$work/nodedns.log" &
  server_pid=$!
  pids+=($server_pid)
  for _ in $(seq 200); do [ -s "$work/nd.ready" ] && break; sleep 0.05; done
  [ -s "$work/nd.ready" ] || { echo "nodedns did not start:"; cat "$work/nodedns.log"; exit 1; }
  server_port=$port
}

msg_size=0
rrset_size=0
start_unbound() {  # msg-cache-size, rrset-cache-size (bytes)
  local port cport
  port=$(free_port)
  cport=$(free_port)
  {
    unbound_base_config "$port" "$up_port"
    cat <<EOC
server:
  so-reuseport: no
  msg-cache-size: $1
  rrset-cache-size: $2
  msg-cache-slabs: 1
  rrset-cache-slabs: 1
  prefetch: no
  extended-statistics: yes
remote-control:
  control-enable: yes
  control-interface: 127.0.0.1
  control-port: $cport
  control-use-cert: no
EOC
  } >"$work/unbound.conf"
  unbound-checkconf "$work/unbound.conf" >/dev/null
  taskset -c "$SERVER_CPU" unbound -d -c "$work/unbound.conf" 2>"$work/unbound.log" &
  server_pid=$!
  pids+=($server_pid)
  for _ in $(seq 200); do [ -n "$(ss -Hlnu "sport = :$port")" ] && break; sleep 0.05; done
  server_port=$port
}

stop_server() {
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
}

unbound_stat() {  # name
  unbound-control -c "$work/unbound.conf" stats_noreset | awk -F= -v k="$1" '$1 == k {print $2}'
}

# --- Unbound sized to CAPACITY answers ---------------------------------
echo "sizing Unbound to $CAPACITY answers..."
start_unbound 256m 256m
replay "$server_port" "$work/sizing.txt"
msg_mem=$(unbound_stat mem.cache.message)
rrset_mem=$(unbound_stat mem.cache.rrset)
count=$(unbound_stat msg.cache.count)
stop_server
if [ -z "$count" ] || [ "$count" -eq 0 ]; then echo "could not read Unbound's msg.cache.count"; exit 1; fi
msg_size=$(awk -v m="$msg_mem" -v n="$count" -v c="$CAPACITY" 'BEGIN {printf "%d", m / n * c}')
rrset_size=$(awk -v m="$rrset_mem" -v n="$count" -v c="$CAPACITY" 'BEGIN {printf "%d", m / n * c}')
for round in 1 2 3; do
  start_unbound "$msg_size" "$rrset_size"
  replay "$server_port" "$work/sizing.txt"
  count=$(unbound_stat msg.cache.count)
  stop_server
  echo "  round $round: msg-cache-size $msg_size, rrset-cache-size $rrset_size: holds $count answers"
  if [ "$count" -ge $((CAPACITY * 995 / 1000)) ] && [ "$count" -le $((CAPACITY * 1005 / 1000)) ]; then break; fi
  msg_size=$(awk -v s="$msg_size" -v n="$count" -v c="$CAPACITY" 'BEGIN {printf "%d", s * c / n}')
  rrset_size=$(awk -v s="$rrset_size" -v n="$count" -v c="$CAPACITY" 'BEGIN {printf "%d", s * c / n}')
done
unbound_count=$count

# --- the traces ---------------------------------------------------------
declare -A ratio kept
for trace in zipf flood ndots scan; do
  sent=$(wc -l <"$work/$trace.txt")
  for server in nodedns unbound; do
    if [ "$server" = nodedns ]; then start_nodedns; else start_unbound "$msg_size" "$rrset_size"; fi
    before=$(upstream_queries)
    replay "$server_port" "$work/$trace.txt"
    after=$(upstream_queries)
    ratio[$server.$trace]=$(awk -v s="$sent" -v m=$((after - before)) 'BEGIN {printf "%.4f", 1 - m / s}')
    if [ "$trace" = flood ]; then
      replay "$server_port" "$work/top1000.txt"
      kept[$server]=$((1000 - ($(upstream_queries) - after)))
    fi
    stop_server
    echo "  $trace on $server: hit ratio ${ratio[$server.$trace]}"
  done
done

# --- exact capacity at the default max_entries (100,000) ------------------
echo "exact capacity: 100,000 names into the default configuration, then asked again shuffled..."
seq 1 100000 | awk '{print "e" $1 ".exact.example A"}' >"$work/exact.txt"
shuf --random-source=<(yes) "$work/exact.txt" >"$work/exact.shuffled.txt"
CAPACITY=100000 start_nodedns  # the default value, written out (for this call only)
replay "$server_port" "$work/exact.txt"
before=$(upstream_queries)
replay "$server_port" "$work/exact.shuffled.txt"
exact_misses=$(($(upstream_queries) - before))
stop_server

# --- CPU per cache hit at a fixed rate ------------------------------------
cpu_ns() {  # pid: CPU time of all its threads, ns
  cat /proc/"$1"/task/*/schedstat | awk '{s += $1} END {printf "%d", s}'
}
declare -A cpu_per_hit
cpu_run() {  # name
  replay "$server_port" "$work/hot.txt"
  local t0 t1 sent
  t0=$(cpu_ns "$server_pid")
  taskset -c "$CLIENT_CPU" dnsperf -s 127.0.0.1 -p "$server_port" -d "$work/hot.txt" -l "$CPU_SECONDS" \
    -Q "$CPU_RATE" -c 4 -q 100 >"$work/cpu.out" 2>&1
  t1=$(cpu_ns "$server_pid")
  sent=$(awk '/Queries completed:/ {print $3}' "$work/cpu.out")
  cpu_per_hit[$1]=$(awk -v d=$((t1 - t0)) -v n="$sent" 'BEGIN {printf "%.2f", d / n / 1000}')
}
echo "CPU per hit: $CPU_SECONDS s at $CPU_RATE qps on 1,000 cached names..."
start_nodedns; cpu_run nodedns; stop_server
start_unbound "$msg_size" "$rrset_size"; cpu_run unbound; stop_server
if [ -n "$BASELINE_NODEDNS" ]; then
  NODEDNS_BIN=$BASELINE_NODEDNS start_nodedns; cpu_run baseline; stop_server
  start_nodedns; cpu_run nodedns2; stop_server
fi

echo
echo "nodedns $(./build-release/daemon/nodedns --version | awk '{print $2}') vs $(unbound -V | head -1), $(nproc) cores"
echo "capacity $CAPACITY entries: nodedns cache.max_entries = $CAPACITY (default configuration otherwise);"
echo "Unbound msg-cache-size $msg_size, rrset-cache-size $rrset_size bytes, one slab each (held $unbound_count answers)"
printf "%-40s %10s %10s   %6s\n" "" nodedns unbound ratio
row() {  # label, nodedns, unbound
  awk -v l="$1" -v a="$2" -v b="$3" 'BEGIN {printf "%-40s %10s %10s   %6.3f\n", l, a, b, (b > 0 ? a / b : 0)}'
}
row "hit ratio, zipf (alpha 0.9)" "${ratio[nodedns.zipf]}" "${ratio[unbound.zipf]}"
row "hit ratio, zipf + 30 % one-off flood" "${ratio[nodedns.flood]}" "${ratio[unbound.flood]}"
row "hit ratio, ndots:5 search expansions" "${ratio[nodedns.ndots]}" "${ratio[unbound.ndots]}"
row "hit ratio, cyclic scan of capacity" "${ratio[nodedns.scan]}" "${ratio[unbound.scan]}"
row "top-1,000 names cached after flood" "${kept[nodedns]}" "${kept[unbound]}"
row "CPU per hit (us) at $CPU_RATE qps" "${cpu_per_hit[nodedns]}" "${cpu_per_hit[unbound]}"
if [ -n "$BASELINE_NODEDNS" ]; then
  row "CPU per hit (us), this vs baseline" "${cpu_per_hit[nodedns2]}" "${cpu_per_hit[baseline]}"
fi
echo "default max_entries, 100,000 names asked again shuffled: $exact_misses upstream queries (nodedns)"
