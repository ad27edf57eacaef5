#!/usr/bin/env bash
# Upstream transport cost (issue 14): what a miss costs when the zone is
# forwarded over UDP (prefer_udp, the default) and over TCP (transport =
# "tcp", the knob under test; NodeLocal DNSCache's force_tcp), for nodedns
# and for Unbound (tcp-upstream: no / yes) in the same run, against the same
# local upstream. Every query is a miss (a name not asked before), sent at a
# fixed moderate rate (dnsperf -Q), so both transports do the same work.
#
# Prints per server and transport: CPU microseconds per miss (the server's
# utime + stime over the run), miss latency p50 and p99, and the ratios
# TCP/UDP and nodedns/Unbound.
# Apart from the transport, nodedns runs its default configuration.
# All traffic stays on 127.0.0.1; every dnsperf run is bounded in count.
set -euo pipefail
cd "$(dirname "$0")/.."

MISSES=${MISSES:-20000}   # unique names per run
RATE=${RATE:-2000}        # queries/s
ROUNDS=${ROUNDS:-2}       # runs per server and transport, pooled
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
NODEDNS_BIN=${NODEDNS_BIN:-./build-release/daemon/nodedns}

source bench/common.sh
bench_setup nodedns nodedns_bench_upstream

taskset -c "$CLIENT_CPU" ./build-release/bench/nodedns_bench_upstream 86400 0 quiet >"$work/up.port" 2>"$work/up.log" &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/up.port" ] && break; sleep 0.05; done
up_port=$(cat "$work/up.port")

declare -A port pid
start_nodedns() {  # name, transport
  local p
  p=$(free_port)
  nodedns_cache_config "$p" "$up_port" >"$work/$1.toml"
  # The transport, in the root zone (the one knob this benchmark is about).
  sed -i "s/^servers = \[\"127.0.0.1:$up_port\"\]$/&\ntransport = \"$2\"/" "$work/$1.toml"
  grep -q "transport = \"$2\"" "$work/$1.toml" || { echo "transport not set in $1.toml"; exit 1; }
  taskset -c "$SERVER_CPU" "$NODEDNS_BIN" --config "$work/$1.toml" --control-socket "$work/$1.sock" \
    --metrics-listen "" --ready-file "$work/$1.ready" 2>"$work/$1.log" &
  pid[$1]=$!
  pids+=($!)
  port[$1]=$p
  for _ in $(seq 200); do [ -s "$work/$1.ready" ] && break; sleep 0.05; done
  [ -s "$work/$1.ready" ] || { echo "$1 did not start:"; cat "$work/$1.log"; exit 1; }
}
start_unbound() {  # name, tcp-upstream yes|no
  local p
  p=$(free_port)
  { unbound_base_config "$p" "$up_port"; printf 'server:\n  so-reuseport: no\n  tcp-upstream: %s\n  prefetch: no\n' "$2"; } \
    >"$work/$1.conf"
  unbound-checkconf "$work/$1.conf" >/dev/null
  taskset -c "$SERVER_CPU" unbound -d -c "$work/$1.conf" 2>"$work/$1.log" &
  pid[$1]=$!
  pids+=($!)
  port[$1]=$p
  for _ in $(seq 200); do [ -n "$(ss -Hlnu "sport = :$p")" ] && break; sleep 0.05; done
}
start_nodedns nodedns_udp prefer_udp
start_nodedns nodedns_tcp tcp
start_unbound unbound_udp no
start_unbound unbound_tcp yes

declare -A ticks sent
run() {  # name, round: MISSES new names at RATE; latencies (us) appended to $work/lat.name
  local t0 t1 out
  seq 1 "$MISSES" | awk -v r="$2" -v n="$1" '{print "m" $1 "-" r "-" n ".transport.example A"}' >"$work/q.txt"
  t0=$(cpu_ticks "${pid[$1]}")
  out=$(taskset -c "$CLIENT_CPU" dnsperf -s 127.0.0.1 -p "${port[$1]}" -d "$work/q.txt" -n 1 -Q "$RATE" -t 5 -v 2>&1)
  t1=$(cpu_ticks "${pid[$1]}")
  echo "$out" | awk '/^> NOERROR/ {print $5 * 1e6}' >>"$work/lat.$1"
  local lost
  lost=$(echo "$out" | awk '/Queries lost:/ {print $3}')
  [ "${lost:-1}" = "0" ] || echo "warning: $1 lost $lost queries" >&2
  ticks[$1]=$(( ${ticks[$1]:-0} + t1 - t0 ))
  sent[$1]=$(( ${sent[$1]:-0} + MISSES ))
}
names=(nodedns_udp nodedns_tcp unbound_udp unbound_tcp)
echo "$ROUNDS x $MISSES misses at $RATE qps per server and transport, alternating..."
for r in $(seq "$ROUNDS"); do
  for n in "${names[@]}"; do run "$n" "$r"; done
done

declare -A us p50 p99
for n in "${names[@]}"; do
  us[$n]=$(awk -v t="${ticks[$n]}" -v h="$clk_tck" -v q="${sent[$n]}" 'BEGIN {print t / h / q * 1e6}')
  sort -g -o "$work/lat.$n" "$work/lat.$n"
  c=$(wc -l <"$work/lat.$n")
  p50[$n]=$(awk -v c="$c" 'NR == int(c * 0.50) + 1 {print; exit}' "$work/lat.$n")
  p99[$n]=$(awk -v c="$c" 'NR == int(c * 0.99) + 1 {print; exit}' "$work/lat.$n")
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}'; }
echo
echo "nodedns $("$NODEDNS_BIN" --version | awk '{print $2}') vs $(unbound -V | head -1), $(nproc) cores, servers on CPU $SERVER_CPU"
printf "%-28s %10s %10s %8s   %10s %10s %8s   %14s\n" "" "nodedns" "" "" "unbound" "" "" "nodedns/unbound"
printf "%-28s %10s %10s %8s   %10s %10s %8s   %6s %7s\n" "" udp tcp tcp/udp udp tcp tcp/udp udp tcp
for m in us p50 p99; do
  case $m in us) label="CPU us per miss";; p50) label="miss latency p50 (us)";; p99) label="miss latency p99 (us)";; esac
  declare -n v=$m
  printf "%-28s %10.0f %10.0f %8s   %10.0f %10.0f %8s   %6s %7s\n" "$label" \
    "${v[nodedns_udp]}" "${v[nodedns_tcp]}" "$(ratio "${v[nodedns_tcp]}" "${v[nodedns_udp]}")" \
    "${v[unbound_udp]}" "${v[unbound_tcp]}" "$(ratio "${v[unbound_tcp]}" "${v[unbound_udp]}")" \
    "$(ratio "${v[nodedns_udp]}" "${v[unbound_udp]}")" "$(ratio "${v[nodedns_tcp]}" "${v[unbound_tcp]}")"
done
