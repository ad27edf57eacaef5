#!/usr/bin/env bash
# ctest fleet_smoke: the fleet benchmark in miniature (4 nodes, a 20 s
# timeline, nodedns and no node cache), so the command keeps working. It
# checks what the benchmark is for, not only that it ran: the table is
# printed; nodedns (default configuration) answered every lookup of a name its
# node had asked before, through the blackhole and the SERVFAIL outage; without
# a node cache some of those lookups failed while the cluster DNS was down (so
# the benchmark does tell the two apart); and every nodedns node got fresh
# answers after the recovery.
# Usage: smoke_test.sh SOURCE_DIR NODEDNS DNSCTL DRIVER
set -euo pipefail
src=$1
out=$(mktemp -d /tmp/nodedns-fleet-smoke-XXXXXX)
trap 'rm -rf "$out"' EXIT

# TTL 2 s and 6 s down: every record expires during the outage.
NODEDNS_BIN=$2 DNSCTL_BIN=$3 DRIVER_BIN=$4 OUT=$out NODES=4 SYSTEMS="nodedns none" \
  TIMELINE=steady:5,down:6,servfail:3,recovery:3,full:3 TTL=2 PODS_PER_NODE=5 NEW_POD_INTERVAL=5 \
  DRAIN_SECONDS=15 READY_SECONDS=30 bash "$src/bench/fleet/fleet.sh" | tee "$out/log"

fail() {
  echo "fleet smoke: FAIL: $*" >&2
  exit 1
}
get() {  # system key
  awk -F'\t' -v k="$2" '$1 == k { print $2; found = 1 } END { if (!found) print "missing" }' "$out/$1.tsv"
}

grep -q '^answered correctly (%), names the node asked before' "$out/log" || fail "no table printed"
grep -q '^s to 99% of nodes: a fresh answer' "$out/log" || fail "no freshness row"
for phase in down servfail; do
  known=$(get nodedns "known.$phase")
  ok=$(get nodedns "known_ok.$phase")
  [ "$known" != missing ] && [ "$known" -gt 0 ] || fail "nodedns: no lookups of known names while $phase"
  [ "$ok" = "$known" ] || fail "nodedns answered $ok of $known lookups of known names while $phase (want all)"
  echo "fleet smoke: nodedns answered $ok/$known lookups of known names while $phase"
done
# Without a cache, a lookup that starts in the first seconds of the blackhole
# times out twice (glibc: 5 s, 2 attempts); later ones are saved by their retry.
none_known=$(get none known.down)
none_ok=$(get none known_ok.down)
[ "$none_ok" -lt "$none_known" ] ||
  fail "without a node cache all $none_known lookups were answered while the cluster DNS was down"
echo "fleet smoke: without a node cache $none_ok/$none_known while down"
fresh=$(get nodedns fresh_nodes)
[ "$fresh" = 4 ] || fail "only $fresh of 4 nodedns nodes served a fresh answer after the recovery"
echo "fleet smoke: PASS"
