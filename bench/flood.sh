#!/usr/bin/env bash
# Flood: one client (127.0.0.2) floods unique names at FLOOD_QPS for DURATION
# (a crash-looping pod, a random-subdomain attack) while another client
# (127.0.0.3) asks VICTIM_NEW new names and, interleaved, VICTIM_CACHED names
# it cached before the flood, each kind at VICTIM_QPS, one try each. nodedns
# (DEFAULT configuration) and Unbound (Debian's, a one-thread forwarding
# cache) in the same run, each freshly started, behind the same fake upstream;
# ROUNDS rounds. Prints the victim's success shares (NOERROR within
# TIMEOUT_MS), its new names' latency, the flood's answers and the RSS growth
# during the flood, side by side.
# Loopback only; bounded: ROUNDS x 2 x (DURATION + about 8) seconds, at most
# FLOOD_QPS x DURATION flood queries per server and round (nodedns_flood).
set -euo pipefail
cd "$(dirname "$0")/.."

FLOOD_QPS=${FLOOD_QPS:-30000}
DURATION=${DURATION:-25}  # seconds of flood
VICTIM_QPS=${VICTIM_QPS:-100}
VICTIM_NEW=${VICTIM_NEW:-1500}
VICTIM_CACHED=${VICTIM_CACHED:-1500}
TIMEOUT_MS=${TIMEOUT_MS:-2000}
ROUNDS=${ROUNDS:-1}
SERVER_CPU=${SERVER_CPU:-0}   # the server is pinned here, the clients and the upstream on CLIENT_CPU
CLIENT_CPU=${CLIENT_CPU:-1}

source bench/common.sh
bench_setup nodedns nodedns_bench_upstream nodedns_flood

taskset -c "$CLIENT_CPU" ./build-release/bench/nodedns_bench_upstream 86400 >"$work/up.port" 2>"$work/up.log" &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/up.port" ] && break; sleep 0.05; done
up_port=$(cat "$work/up.port")

declare -A new_ok new_sent cached_ok cached_sent p99 rss flood_ans flood_sent
run() {  # name, port, round, start command...
  local name=$1 port=$2 round=$3
  shift 3
  taskset -c "$SERVER_CPU" "$@" 2>>"$work/$name.log" &
  local pid=$!
  pids+=($pid)
  for _ in $(seq 200); do [ -n "$(ss -Hlnu "sport = :$port")" ] && break; sleep 0.05; done
  taskset -c "$CLIENT_CPU" ./build-release/bench/nodedns_flood --port="$port" --pid="$pid" --tag="$name$round" \
    --flood-qps="$FLOOD_QPS" --seconds="$DURATION" --victim-qps="$VICTIM_QPS" --victim-new="$VICTIM_NEW" \
    --victim-cached="$VICTIM_CACHED" --timeout-ms="$TIMEOUT_MS" >"$work/$name.$round.out"
  if [ "$name" = nodedns ]; then
    ./build-release/daemon/dnsctl --socket "$work/nodedns.sock" stats --json >"$work/nodedns.$round.stats" 2>/dev/null || true
  fi
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  local o="$work/$name.$round.out"
  read -r _ a b < <(grep '^victim_new ' "$o")
  new_ok[$name]+="$a "; new_sent[$name]=$b
  read -r _ a b < <(grep '^victim_cached ' "$o")
  cached_ok[$name]+="$a "; cached_sent[$name]=$b
  p99[$name]+="$(awk '/^victim_new_latency_ms/ {print $5}' "$o") "
  rss[$name]+="$(awk '/^rss_kb/ {printf "%.1f", ($5 - $3) / 1024}' "$o") "
  flood_ans[$name]+="$(awk '/^flood_answered/ {print $2}' "$o") "
  flood_sent[$name]=$(awk '/^flood_sent/ {print $2}' "$o")
}

for r in $(seq "$ROUNDS"); do
  nd_port=$(free_port)
  nodedns_cache_config "$nd_port" "$up_port" >"$work/nodedns.toml"
  run nodedns "$nd_port" "$r" ./build-release/daemon/nodedns --config "$work/nodedns.toml" \
    --control-socket "$work/nodedns.sock" --metrics-listen ""
  ub_port=$(free_port)
  unbound_base_config "$ub_port" "$up_port" >"$work/unbound.conf"
  unbound-checkconf "$work/unbound.conf" >/dev/null
  run unbound "$ub_port" "$r" unbound -d -c "$work/unbound.conf"
done

share() {  # "a b c" successes, total: the shares in percent, "x / y / z"
  echo "$1" | awk -v t="$2" '{s = ""; for (i = 1; i <= NF; i++) s = s (i > 1 ? " / " : "") sprintf("%.2f", 100 * $i / t); print s}'
}
list() { echo "$1" | awk '{s = ""; for (i = 1; i <= NF; i++) s = s (i > 1 ? " / " : "") $i; print s}'; }

echo
echo "flood: 127.0.0.2 asks $FLOOD_QPS unique names/s for ${DURATION} s; 127.0.0.3 asks $VICTIM_NEW new and $VICTIM_CACHED cached names at $VICTIM_QPS/s each, one try, NOERROR within $TIMEOUT_MS ms; $ROUNDS round(s), one value per round"
echo "nodedns $(./build-release/daemon/nodedns --version | awk '{print $2}') (default configuration) vs $(unbound -V | head -1)"
printf "%-40s %28s %28s\n" "" nodedns unbound
printf "%-40s %28s %28s\n" "victim new names answered (%)" "$(share "${new_ok[nodedns]}" "${new_sent[nodedns]}")" \
  "$(share "${new_ok[unbound]}" "${new_sent[unbound]}")"
printf "%-40s %28s %28s\n" "victim cached names answered (%)" "$(share "${cached_ok[nodedns]}" "${cached_sent[nodedns]}")" \
  "$(share "${cached_ok[unbound]}" "${cached_sent[unbound]}")"
printf "%-40s %28s %28s\n" "victim new names p99 latency (ms)" "$(list "${p99[nodedns]}")" "$(list "${p99[unbound]}")"
printf "%-40s %28s %28s\n" "flood queries answered (%)" "$(share "${flood_ans[nodedns]}" "${flood_sent[nodedns]}")" \
  "$(share "${flood_ans[unbound]}" "${flood_sent[unbound]}")"
printf "%-40s %28s %28s\n" "RSS growth during the flood (MiB)" "$(list "${rss[nodedns]}")" "$(list "${rss[unbound]}")"
if [ -s "$work/nodedns.$ROUNDS.stats" ]; then
  echo
  echo "nodedns counters, last round:"
  python3 - "$work/nodedns.$ROUNDS.stats" <<'EOP'
import json, sys
c = json.load(open(sys.argv[1]))["counters"]
keys = ["shed_dropped", "shed_refused", "shed_overloaded", "fair_share_pushed_out", "fair_share_refused",
        "upstream_refused_cap", "upstream_queue_timeouts", "servfail_local", "upstream_queries", "cache_misses"]
print("  " + ", ".join(f"{k} {c.get(k, 0)}" for k in keys))
EOP
fi
