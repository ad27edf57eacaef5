#!/usr/bin/env bash
# Cache-hit benchmark: nodedns and Unbound (as an equivalent forwarding cache)
# against the same local upstream, with the same queries, in the same run.
# Servers are pinned to SERVER_CPU, dnsperf and the upstream to CLIENT_CPU.
#
# Prints, for both and as a ratio nodedns/Unbound:
#   - QPS from dnsperf, the server's CPU share, and QPS per server core
#     (dnsperf itself may be the limit on 2 cores: QPS per core normalizes that);
#   - latency p50/p99/max at a fixed moderate rate (dnsperf -v per query);
#   - RSS bytes per cached entry after loading MEM_NAMES names.
# nodedns runs its default configuration (bench/common.sh).
# All traffic stays on 127.0.0.1; every dnsperf run is bounded in time or count.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}      # seconds per throughput run
ROUNDS=${ROUNDS:-2}           # throughput runs per server, alternating
RATE=${RATE:-10000}           # queries/s for the latency run
LAT_SECONDS=${LAT_SECONDS:-3}
WARM_NAMES=${WARM_NAMES:-10000}
MEM_NAMES=${MEM_NAMES:-80000}  # with the warm names, within the default max_entries (100000)
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
# Another nodedns binary to measure instead of this tree's (an A/B against an
# earlier commit, built the same way); Unbound runs beside it as always.
NODEDNS_BIN=${NODEDNS_BIN:-./build-release/daemon/nodedns}

source bench/common.sh
bench_setup nodedns nodedns_bench_upstream
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

# --- upstream -----------------------------------------------------------
taskset -c "$CLIENT_CPU" ./build-release/bench/nodedns_bench_upstream 86400 >"$work/up.port" 2>"$work/up.log" &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/up.port" ] && break; sleep 0.05; done
up_port=$(cat "$work/up.port")

# --- nodedns ------------------------------------------------------------
nd_port=$(free_port)
nodedns_cache_config "$nd_port" "$up_port" >"$work/nodedns.toml"
taskset -c "$SERVER_CPU" "$NODEDNS_BIN" --config "$work/nodedns.toml" \
  --control-socket "$work/nodedns.sock" --metrics-listen "" \
  --ready-file "$work/nd.ready" 2>"$work/nodedns.log" &
nd_pid=$!
pids+=($nd_pid)

# --- unbound: the same job, a forwarding cache with one thread ----------
ub_port=$(free_port)
{
  unbound_base_config "$ub_port" "$up_port"
  cat <<EOC
server:
  so-reuseport: no
  msg-cache-size: 512m
  rrset-cache-size: 512m
  msg-cache-slabs: 1
  rrset-cache-slabs: 1
  prefetch: no
  minimal-responses: yes
EOC
} >"$work/unbound.conf"
unbound-checkconf "$work/unbound.conf" >/dev/null
taskset -c "$SERVER_CPU" unbound -d -c "$work/unbound.conf" 2>"$work/unbound.log" &
ub_pid=$!
pids+=($ub_pid)

for _ in $(seq 200); do [ -s "$work/nd.ready" ] && break; sleep 0.05; done
[ -s "$work/nd.ready" ] || { echo "nodedns did not start:"; cat "$work/nodedns.log"; exit 1; }
for _ in $(seq 200); do [ -n "$(ss -Hlnu "sport = :$ub_port")" ] && break; sleep 0.05; done

seq 1 "$WARM_NAMES" | awk '{print "name" $1 ".bench.example A"}' >"$work/warm.txt"
seq 1 "$MEM_NAMES" | awk '{print "mem" $1 ".bench.example A"}' >"$work/mem.txt"

perf() {  # port, extra dnsperf args...
  local port=$1
  shift
  taskset -c "$CLIENT_CPU" dnsperf -s 127.0.0.1 -p "$port" "$@" 2>&1
}
check_complete() {  # dnsperf output on stdin, label: every query answered NOERROR
  local out lost noerror sent
  out=$(cat)
  lost=$(echo "$out" | awk '/Queries lost:/ {print $3}')
  sent=$(echo "$out" | awk '/Queries sent:/ {print $3}')
  noerror=$(echo "$out" | awk '/Response codes:/ {for (i = 1; i <= NF; i++) if ($i == "NOERROR") print $(i + 1)}')
  if [ "${lost:-1}" != "0" ]; then echo "warning: $1 lost $lost queries" >&2; fi
  if [ "${noerror:-0}" != "${sent:-x}" ]; then echo "warning: $1: only ${noerror:-0} of ${sent:-?} answers were NOERROR" >&2; fi
}

echo "warming both caches with $WARM_NAMES names..."
perf "$nd_port" -d "$work/warm.txt" -n 1 -Q 20000 | check_complete "nodedns warm-up"
perf "$ub_port" -d "$work/warm.txt" -n 1 -Q 20000 | check_complete "unbound warm-up"

declare -A qps cpu
throughput() {  # name, port, pid
  local out t0 t1 secs q
  t0=$(cpu_ticks "$3")
  out=$(perf "$2" -d "$work/warm.txt" -l "$DURATION" -c 16 -q 512 -T 1)
  t1=$(cpu_ticks "$3")
  secs=$(echo "$out" | awk '/Run time \(s\):/ {print $4}')
  q=$(echo "$out" | awk '/Queries per second:/ {print $4}')
  qps[$1]=$(awk -v a="${qps[$1]:-0}" -v b="$q" 'BEGIN {print a + b}')
  cpu[$1]=$(awk -v a="${cpu[$1]:-0}" -v d=$((t1 - t0)) -v s="$secs" -v h="$clk_tck" 'BEGIN {print a + d / h / s}')
}
echo "throughput: $ROUNDS x ${DURATION}s per server, alternating..."
for _ in $(seq "$ROUNDS"); do
  throughput nodedns "$nd_port" "$nd_pid"
  throughput unbound "$ub_port" "$ub_pid"
done

declare -A p50 p99 pmax
latency_run() {  # name, port: appends per-query latencies (us) to $work/lat.name
  perf "$2" -d "$work/warm.txt" -l "$LAT_SECONDS" -Q "$RATE" -v | awk '/^> NOERROR/ {print $5 * 1e6}' >>"$work/lat.$1"
}
percentiles() {  # name
  local n
  sort -g -o "$work/lat.$1" "$work/lat.$1"
  n=$(wc -l <"$work/lat.$1")
  p50[$1]=$(awk -v n="$n" 'NR == int(n * 0.50) + 1 {print; exit}' "$work/lat.$1")
  p99[$1]=$(awk -v n="$n" 'NR == int(n * 0.99) + 1 {print; exit}' "$work/lat.$1")
  pmax[$1]=$(tail -n 1 "$work/lat.$1")
}
# Short runs, alternating which server goes first, pooled per server: the
# tail is sensitive to whatever else the machine does at that moment.
echo "latency at $RATE qps: $ROUNDS x 2 runs of ${LAT_SECONDS}s per server, alternating..."
for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) -eq 1 ]; then
    latency_run nodedns "$nd_port"; latency_run unbound "$ub_port"
  else
    latency_run unbound "$ub_port"; latency_run nodedns "$nd_port"
  fi
  latency_run unbound "$ub_port"; latency_run nodedns "$nd_port"
done
percentiles nodedns
percentiles unbound

declare -A perentry
memory() {  # name, port, pid
  local before after
  before=$(rss_kb "$3")
  perf "$2" -d "$work/mem.txt" -n 1 -Q 20000 | check_complete "$1 memory load"
  sleep 0.5
  after=$(rss_kb "$3")
  perentry[$1]=$(awk -v a="$after" -v b="$before" -v n="$MEM_NAMES" 'BEGIN {printf "%.0f", (a - b) * 1024 / n}')
}
echo "memory: loading $MEM_NAMES more names into each..."
memory nodedns "$nd_port" "$nd_pid"
memory unbound "$ub_port" "$ub_pid"

row() {  # label, nodedns value, unbound value, format
  awk -v l="$1" -v a="$2" -v b="$3" -v f="$4" 'BEGIN {
    printf "%-34s " f " " f "   %6.2f\n", l, a, b, (b > 0 ? a / b : 0) }'
}
echo
echo "nodedns $("$NODEDNS_BIN" --version | awk '{print $2}') vs $(unbound -V | head -1), $(nproc) cores, server on CPU $SERVER_CPU, dnsperf on CPU $CLIENT_CPU"
printf "%-34s %12s %12s   %6s\n" "" nodedns unbound ratio
nq=$(awk -v a="${qps[nodedns]}" -v r="$ROUNDS" 'BEGIN {print a / r}')
uq=$(awk -v a="${qps[unbound]}" -v r="$ROUNDS" 'BEGIN {print a / r}')
nc=$(awk -v a="${cpu[nodedns]}" -v r="$ROUNDS" 'BEGIN {print a / r}')
uc=$(awk -v a="${cpu[unbound]}" -v r="$ROUNDS" 'BEGIN {print a / r}')
row "QPS (cache hits, dnsperf)" "$nq" "$uq" "%12.0f"
row "server CPU share (cores)" "$nc" "$uc" "%12.2f"
row "QPS per server core" "$(awk -v q="$nq" -v c="$nc" 'BEGIN {print q / c}')" \
  "$(awk -v q="$uq" -v c="$uc" 'BEGIN {print q / c}')" "%12.0f"
row "latency p50 (us) at $RATE qps" "${p50[nodedns]}" "${p50[unbound]}" "%12.0f"
row "latency p99 (us) at $RATE qps" "${p99[nodedns]}" "${p99[unbound]}" "%12.0f"
row "latency max (us) at $RATE qps" "${pmax[nodedns]}" "${pmax[unbound]}" "%12.0f"
row "RSS bytes per cached entry" "${perentry[nodedns]}" "${perentry[unbound]}" "%12.0f"
