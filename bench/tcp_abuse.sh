#!/usr/bin/env bash
# TCP abuse (issue 11): NEVER_READERS connections that pipeline queries for a
# large cached answer and never read, and SLOWLORIS connections that send a
# frame one octet a second, both reconnecting (on the next 1 s tick) when
# closed, against nodedns
# (default configuration) and Unbound (Debian's, a one-thread forwarding cache
# with its defaults), one after the other in the same run, ROUNDS times.
# bench/tcp_abuse.cc (UDP measured on its own thread, the abuse loop niced)
# measures, before, during and after the abuse: the
# server's RSS, UDP p99 and p50 for cached names at UDP_QPS (and the p99 of the
# typical second: the median of the per-second p99s, which a host stall of
# the virtual machine does not move), and (during) the share of
# new TCP clients (one every 100 ms) answered within 2 s.
# Loopback only; bounded: BASE_S + ABUSE_S + AFTER_S + SETTLE_S seconds per
# server and round (SETTLE_S: the kernel closes the abusers' connections).
# LAYOUT=shared (default): every process on both cores, as the scheduler
# likes. LAYOUT=split: CPU 0 runs the UDP path alone (the generator's UDP
# thread and the servers' UDP loops), CPU 1 everything else (the abuse loop,
# nodedns's TCP loop and main thread, the abused server of the control); as on
# a machine with a core for each busy thread, what UDP loses then is the
# server's (shared cache, allocator, locks), not a wait for a core. Unbound
# has one thread for both protocols: it goes on CPU 0.
set -euo pipefail
cd "$(dirname "$0")/.."

NEVER_READERS=${NEVER_READERS:-300}
SLOWLORIS=${SLOWLORIS:-1000}
BASE_S=${BASE_S:-10}
ABUSE_S=${ABUSE_S:-20}
AFTER_S=${AFTER_S:-5}
UDP_QPS=${UDP_QPS:-2000}
# The generator's abuse loop runs at this nice level, its UDP measurement
# thread at 0: the abusers' own CPU use must not be counted as server latency
# on a 2-core machine (0 to compare).
ABUSE_NICE=${ABUSE_NICE:-19}
ROUNDS=${ROUNDS:-1}
SETTLE_S=${SETTLE_S:-5}
CONTROL=${CONTROL:-1}  # 0: skip the control (abuse aimed at another nodedns)
LAYOUT=${LAYOUT:-shared}
case "$LAYOUT" in
  shared) generator_env=() ;;
  split) generator_env=(UDP_CPU=0 ABUSE_CPU=1) ;;
  *) echo "LAYOUT is shared or split, not '$LAYOUT'" >&2; exit 2 ;;
esac

# Both servers and the generator hold well over 1,024 descriptors.
ulimit -n "$(ulimit -Hn)"

source bench/common.sh
bench_setup nodedns dnsctl nodedns_bench_upstream nodedns_tcp_abuse

./build-release/bench/nodedns_bench_upstream 86400 >"$work/up.port" 2>"$work/up.log" &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/up.port" ] && break; sleep 0.05; done
up_port=$(cat "$work/up.port")

# LAYOUT=split: a server's UDP loops (threads named *udp*; all of a
# one-thread server) to CPU 0, its other threads to CPU 1.
pin_server() {  # pid
  [ "$LAYOUT" = split ] || return 0
  local task comm threads
  threads=$(ls "/proc/$1/task" | wc -l)
  for task in /proc/"$1"/task/*; do
    comm=$(cat "$task/comm")
    if [ "$threads" = 1 ] || [[ "$comm" == *udp* ]]; then
      taskset -pc 0 "${task##*/}" >/dev/null
    else
      taskset -pc 1 "${task##*/}" >/dev/null
    fi
  done
}

measure() {  # name, port, start command...: appends key=value lines to $work/<name>.<round>
  local name=$1 port=$2 round=$3
  shift 3
  "$@" 2>>"$work/$name.log" &
  local pid=$!
  pids+=($pid)
  for _ in $(seq 200); do [ -n "$(ss -Hlnt "sport = :$port")" ] && break; sleep 0.05; done
  pin_server "$pid"
  env "${generator_env[@]}" ./build-release/bench/nodedns_tcp_abuse "$port" "$pid" "$NEVER_READERS" "$SLOWLORIS" "$BASE_S" "$ABUSE_S" \
    "$AFTER_S" "$UDP_QPS" "$ABUSE_NICE" >"$work/$name.$round"
  if [ "$name" = nodedns ]; then
    ./build-release/daemon/dnsctl --socket "$work/nodedns.sock" --json stats |
      python3 -c 'import json,sys; c=json.load(sys.stdin)["counters"]; [print("counter_%s=%s" % (k, v)) for k, v in sorted(c.items()) if k.startswith("tcp_")]' \
      >>"$work/$name.$round"
  fi
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  # The kernel closes the abusers' 1,300 connections and their TIME_WAITs:
  # let it finish before the next server's "before" phase.
  sleep "$SETTLE_S"
}

# The control: the same abuse aimed at a second nodedns while the UDP load
# goes to the first. What UDP loses there is the machine's (the generator's
# and the kernel's work on 2 cores), not the server's.
measure_control() {  # round
  local round=$1
  ./build-release/daemon/nodedns --config "$work/nodedns.toml" --control-socket "$work/nodedns.sock" \
    --metrics-listen "" 2>>"$work/control.log" &
  local measured=$!
  pids+=($measured)
  ./build-release/daemon/nodedns --config "$work/abused.toml" --control-socket "$work/abused.sock" \
    --metrics-listen "" 2>>"$work/control.log" &
  local abused=$!
  pids+=($abused)
  for port in "$nd_port" "$ab_port"; do
    for _ in $(seq 200); do [ -n "$(ss -Hlnt "sport = :$port")" ] && break; sleep 0.05; done
  done
  pin_server "$measured"
  pin_server "$abused"
  env "${generator_env[@]}" ./build-release/bench/nodedns_tcp_abuse "$ab_port" "$abused" "$NEVER_READERS" "$SLOWLORIS" "$BASE_S" "$ABUSE_S" \
    "$AFTER_S" "$UDP_QPS" "$ABUSE_NICE" "$nd_port" >"$work/control.$round"
  kill "$measured" "$abused"
  wait "$measured" "$abused" 2>/dev/null || true
  sleep "$SETTLE_S"
}

nd_port=$(free_port)
nodedns_cache_config "$nd_port" "$up_port" >"$work/nodedns.toml"
ab_port=$(free_port)
nodedns_cache_config "$ab_port" "$up_port" >"$work/abused.toml"
ub_port=$(free_port)
unbound_base_config "$ub_port" "$up_port" >"$work/unbound.conf"
unbound-checkconf "$work/unbound.conf" >/dev/null

for r in $(seq "$ROUNDS"); do
  measure nodedns "$nd_port" "$r" ./build-release/daemon/nodedns --config "$work/nodedns.toml" \
    --control-socket "$work/nodedns.sock" --metrics-listen ""
  measure unbound "$ub_port" "$r" unbound -d -c "$work/unbound.conf"
  [ "$CONTROL" = 1 ] && measure_control "$r"
done

get() { grep "^$2=" "$1" | cut -d= -f2; }
echo
echo "TCP abuse: $NEVER_READERS never-reading pipelining + $SLOWLORIS slowloris connections (reconnecting) for ${ABUSE_S} s;"
echo "UDP at $UDP_QPS qps on cached names; a new TCP client every 100 ms; $ROUNDS round(s); CPU layout: $LAYOUT"
echo "nodedns $(./build-release/daemon/nodedns --version | awk '{print $2}') (default configuration) vs $(unbound -V | head -1)"
for r in $(seq "$ROUNDS"); do
  n=$work/nodedns.$r u=$work/unbound.$r
  echo "round $r"
  printf "  %-40s %12s %12s %8s\n" "" nodedns unbound ratio
  row() {  # label, key, scale divisor
    local a b
    a=$(get "$n" "$2") b=$(get "$u" "$2")
    printf "  %-40s %12.2f %12.2f %8.2f\n" "$1" "$(awk -v x="$a" -v d="$3" 'BEGIN {print x / d}')" \
      "$(awk -v x="$b" -v d="$3" 'BEGIN {print x / d}')" "$(awk -v x="$a" -v y="$b" 'BEGIN {print (y > 0 ? x / y : 0)}')"
  }
  row "RSS before (MiB)" before_rss_max_kib 1024
  row "RSS during, peak (MiB)" during_rss_max_kib 1024
  row "RSS after abuse ended (MiB)" after_rss_end_kib 1024
  printf "  %-40s %12.2f %12.2f\n" "RSS growth, peak over before (MiB)" \
    "$(awk -v a="$(get "$n" during_rss_max_kib)" -v b="$(get "$n" before_rss_max_kib)" 'BEGIN {print (a - b) / 1024}')" \
    "$(awk -v a="$(get "$u" during_rss_max_kib)" -v b="$(get "$u" before_rss_max_kib)" 'BEGIN {print (a - b) / 1024}')"
  row "UDP p99 before (ms)" before_udp_p99_ms 1
  row "UDP p99 during (ms)" during_udp_p99_ms 1
  row "UDP p99 after (ms)" after_udp_p99_ms 1
  row "UDP p99 of the typical second, before (ms)" before_udp_p99_second_ms 1
  row "UDP p99 of the typical second, during (ms)" during_udp_p99_second_ms 1
  row "UDP p50 before (ms)" before_udp_p50_ms 1
  row "UDP p50 during (ms)" during_udp_p50_ms 1
  printf "  %-40s %12.2f %12.2f\n" "UDP p99 during / before" \
    "$(awk -v a="$(get "$n" during_udp_p99_ms)" -v b="$(get "$n" before_udp_p99_ms)" 'BEGIN {print a / b}')" \
    "$(awk -v a="$(get "$u" during_udp_p99_ms)" -v b="$(get "$u" before_udp_p99_ms)" 'BEGIN {print a / b}')"
  row "UDP lost during (queries)" during_udp_lost 1
  if [ "$CONTROL" = 1 ]; then
    c=$work/control.$r
    printf "  %-40s %12s\n" "control: UDP to an idle nodedns while another is abused:" ""
    printf "  %-40s %12.2f %12.2f\n" "  p99 / typical second p99, before (ms)" "$(get "$c" before_udp_p99_ms)" \
      "$(get "$c" before_udp_p99_second_ms)"
    printf "  %-40s %12.2f %12.2f\n" "  p99 / typical second p99, during (ms)" "$(get "$c" during_udp_p99_ms)" \
      "$(get "$c" during_udp_p99_second_ms)"
  fi
  echo "  nodedns UDP p99 of each second during (ms): $(get "$n" during_udp_p99_seconds_ms)"
  [ "$CONTROL" = 1 ] && echo "  control UDP p99 of each second during (ms): $(get "$c" during_udp_p99_seconds_ms)"
  printf "  %-40s %12s %12s\n" "new TCP clients served during" \
    "$(get "$n" during_probes_served)/$(get "$n" during_probes)" "$(get "$u" during_probes_served)/$(get "$u" during_probes)"
  printf "  %-40s %12s %12s\n" "abuser reconnects (closed by the server)" "$(get "$n" during_reconnects)" \
    "$(get "$u" during_reconnects)"
  grep '^counter_' "$n" | sed 's/^counter_/  nodedns /' | tr '\n' ' ' | fold -w 110 -s
  echo
done
