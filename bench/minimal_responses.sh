#!/usr/bin/env bash
# Minimal responses, measured: nodedns (default configuration but for
# [cache] minimal_responses) in front of a fake upstream that answers as a
# recursive server without minimal responses does (bench/realistic_upstream.py:
# the zone's NS records in the authority section, their glue in the additional
# section, RRSIGs and NSEC for DO queries). ZONES zones, 8 names each (A,
# AAAA, an 8-address A RRset, MX, TXT, an NXDOMAIN), asked once by clients
# without EDNS (512 octets) and once by DO clients (EDNS 1232), with
# minimal_responses on and off, each on a fresh daemon. Prints, per setting:
# cache entries, cache bytes and bytes per entry for each kind of client, and
# the share of answers sent with TC=1.
# Loopback only; bounded: dnsperf sends each query once (-n 1), 5 s timeout.
set -euo pipefail
cd "$(dirname "$0")/.."

ZONES=${ZONES:-250}
NODEDNS_BIN=${NODEDNS_BIN:-./build-release/daemon/nodedns}
DNSCTL_BIN=${DNSCTL_BIN:-./build-release/daemon/dnsctl}
PY=/usr/bin/python3  # Debian's, with python3-dnslib

source bench/common.sh
bench_setup nodedns dnsctl
"$PY" -c 'import dnslib' 2>/dev/null || { echo "needs python3-dnslib (scripts/deps.sh bench)"; exit 1; }

"$PY" bench/realistic_upstream.py names "$ZONES" >"$work/names.txt"
"$PY" bench/realistic_upstream.py serve "$work/up.port" 2>"$work/up.log" &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/up.port" ] && break; sleep 0.05; done
up_port=$(cat "$work/up.port")
queries=$(wc -l <"$work/names.txt")

stat() {  # key: a counter or gauge from dnsctl's JSON
  "$DNSCTL_BIN" --socket "$work/nodedns.sock" --json stats | tr ',{}' '\n\n\n' |
    awk -F: -v k="\"$1\"" '!found && $1 ~ "^ *"k"$" {gsub(/[ "]/, "", $2); v = $2; found = 1} END {print v}'
}

pass() {  # port, dnsperf flags...: sends every query once; prints "answered"
  local port=$1
  shift
  dnsperf -s 127.0.0.1 -p "$port" -d "$work/names.txt" -n 1 -Q 2000 -c 1 -t 5 "$@" 2>&1 |
    awk '/Queries completed:/ {print $3}'
}

declare -A result
for setting in true false; do
  port=$(free_port)
  { nodedns_cache_config "$port" "$up_port"; printf '[cache]\nminimal_responses = %s\n' "$setting"; } >"$work/nodedns.toml"
  "$NODEDNS_BIN" --config "$work/nodedns.toml" --control-socket "$work/nodedns.sock" --metrics-listen "" \
    2>>"$work/nodedns.log" &
  pid=$!
  pids+=($pid)
  for _ in $(seq 200); do [ -n "$(ss -Hlnu "sport = :$port")" ] && break; sleep 0.05; done
  # 512-octet clients (no EDNS): cache misses answered from the upstream, then
  # the same queries again, answered from the cache.
  pass "$port" >/dev/null
  pass "$port" >/dev/null
  plain_entries=$(stat entries)
  plain_bytes=$(stat bytes)
  plain_tc=$(stat answers_truncated)
  # DO clients with EDNS 1232: their own cache entries (DO is in the key).
  pass "$port" -D >/dev/null
  pass "$port" -D >/dev/null
  all_entries=$(stat entries)
  all_bytes=$(stat bytes)
  do_tc=$(( $(stat answers_truncated) - plain_tc ))
  result[$setting]="$plain_entries $plain_bytes $plain_tc $((all_entries - plain_entries)) $((all_bytes - plain_bytes)) $do_tc"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
done

echo "nodedns $("$NODEDNS_BIN" --version | awk '{print $2}'), $ZONES zones, $queries queries per pass, each asked twice"
echo "(upstream: authority NS + glue, RRSIG/NSEC for DO; TC = share of the 2 x $queries answers sent with TC=1)"
printf '%-18s | %-40s | %-40s\n' "minimal_responses" "512-octet clients (no EDNS)" "DO clients (EDNS 1232)"
printf '%-18s | %8s %10s %9s %9s | %8s %10s %9s %9s\n' "" entries bytes "B/entry" "TC" entries bytes "B/entry" "TC"
for setting in true false; do
  read -r pe pb ptc de db dtc <<<"${result[$setting]}"
  awk -v s="$setting" -v pe="$pe" -v pb="$pb" -v ptc="$ptc" -v de="$de" -v db="$db" -v dtc="$dtc" -v q="$queries" 'BEGIN {
    printf "%-18s | %8d %10d %9.0f %8.1f%% | %8d %10d %9.0f %8.1f%%\n", s, pe, pb, pb / pe, 100 * ptc / (2 * q),
           de, db, db / de, 100 * dtc / (2 * q) }'
done
read -r pe_on pb_on _ de_on db_on _ <<<"${result[true]}"
read -r pe_off pb_off _ de_off db_off _ <<<"${result[false]}"
awk -v a="$pb_on" -v b="$pb_off" -v ae="$pe_on" -v be="$pe_off" -v c="$db_on" -v d="$db_off" -v ce="$de_on" -v de="$de_off" 'BEGIN {
  printf "saved per entry: %.0f bytes (%.0f %%) for 512-octet clients, %.0f bytes (%.0f %%) for DO clients\n",
         b / be - a / ae, 100 * (1 - (a / ae) / (b / be)), d / de - c / ce, 100 * (1 - (c / ce) / (d / de)) }'
