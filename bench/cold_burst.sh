#!/usr/bin/env bash
# Cold burst: a fresh cache in front of a healthy local upstream gets NAMES
# distinct names at RATE queries per second (pods starting on a node, a cache
# being warmed), then the same names again. nodedns with its default
# configuration and Unbound (Debian's, a one-thread forwarding cache with its
# defaults), one after the other, each freshly started. Prints the share
# answered NOERROR in the burst, SERVFAILs, what came back NOERROR when asked
# again, for both.
# Loopback only; bounded: dnsperf sends each file once (-n 1), 5 s timeout.
set -euo pipefail
cd "$(dirname "$0")/.."

NAMES=${NAMES:-10000}
RATE=${RATE:-20000}
ROUNDS=${ROUNDS:-3}

source bench/common.sh
bench_setup nodedns nodedns_bench_upstream

./build-release/bench/nodedns_bench_upstream 86400 >"$work/up.port" 2>"$work/up.log" &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/up.port" ] && break; sleep 0.05; done
up_port=$(cat "$work/up.port")

burst() {  # label, port, file: "noerror servfail sent" of one dnsperf pass
  dnsperf -s 127.0.0.1 -p "$2" -d "$3" -n 1 -Q "$RATE" -q 20000 -c 4 -t 5 2>&1 | awk '
    /Queries sent:/ {sent = $3}
    /Response codes:/ {for (i = 1; i <= NF; i++) { if ($i == "NOERROR") ne = $(i + 1); if ($i == "SERVFAIL") sf = $(i + 1) }}
    END {gsub(/,/, "", ne); gsub(/,/, "", sf); print (ne ? ne : 0), (sf ? sf : 0), sent}'
}

declare -A first second servfail
run() {  # name, start command...: one fresh server per round
  local name=$1 port=$2
  shift 2
  for r in $(seq "$ROUNDS"); do
    seq 1 "$NAMES" | awk -v r="$r" -v n="$name" '{print "c" $1 "." n r ".burst.example A"}' >"$work/names.txt"
    "$@" 2>>"$work/$name.log" &
    local pid=$!
    pids+=($pid)
    for _ in $(seq 200); do [ -n "$(ss -Hlnu "sport = :$port")" ] && break; sleep 0.05; done
    local a b
    read -r a sf sent < <(burst "$name" "$port" "$work/names.txt")
    read -r b _ _ < <(burst "$name" "$port" "$work/names.txt")
    first[$name]=$(awk -v x="${first[$name]:-0}" -v y="$a" -v s="$sent" 'BEGIN {print x + 100 * y / s}')
    second[$name]=$(awk -v x="${second[$name]:-0}" -v y="$b" -v s="$sent" 'BEGIN {print x + 100 * y / s}')
    servfail[$name]=$(( ${servfail[$name]:-0} + sf ))
    kill "$pid"
    wait "$pid" 2>/dev/null || true
  done
}

nd_port=$(free_port)
nodedns_cache_config "$nd_port" "$up_port" >"$work/nodedns.toml"
run nodedns "$nd_port" ./build-release/daemon/nodedns --config "$work/nodedns.toml" \
  --control-socket "$work/nodedns.sock" --metrics-listen ""

ub_port=$(free_port)
unbound_base_config "$ub_port" "$up_port" >"$work/unbound.conf"
unbound-checkconf "$work/unbound.conf" >/dev/null
run unbound "$ub_port" unbound -d -c "$work/unbound.conf"

echo
echo "cold burst: $NAMES distinct names at $RATE qps into a fresh cache, then the same names again; $ROUNDS rounds"
echo "nodedns $(./build-release/daemon/nodedns --version | awk '{print $2}') (default configuration) vs $(unbound -V | head -1)"
printf "%-44s %12s %12s\n" "" nodedns unbound
printf "%-44s %12.2f %12.2f\n" "burst answered NOERROR (%)" "$(awk -v x="${first[nodedns]}" -v r="$ROUNDS" 'BEGIN {print x / r}')" \
  "$(awk -v x="${first[unbound]}" -v r="$ROUNDS" 'BEGIN {print x / r}')"
printf "%-44s %12d %12d\n" "burst SERVFAIL answers (all rounds)" "${servfail[nodedns]}" "${servfail[unbound]}"
printf "%-44s %12.2f %12.2f\n" "asked again: NOERROR (%)" "$(awk -v x="${second[nodedns]}" -v r="$ROUNDS" 'BEGIN {print x / r}')" \
  "$(awk -v x="${second[unbound]}" -v r="$ROUNDS" 'BEGIN {print x / r}')"
