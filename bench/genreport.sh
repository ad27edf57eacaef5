#!/usr/bin/env bash
# ISC's genreport (DNS-Compliance-Testing) in resolver mode (-R) against
# nodedns and against Unbound, in the same setup, side by side.
#
# Setup, all on loopback:
#   Knot DNS (Debian's knotd): authoritative for genreport.test, signed by
#     Knot (ECDSA P-256), so the DNSSEC tests see RRSIGs;
#   a backend Unbound: a real recursive (Knot also serves a small root zone;
#     stub zones for the root and genreport.test point Unbound at Knot's
#     port; no trust anchor, so it does not validate);
#   under test, each with its defaults, each forwarding everything to the
#     backend: nodedns (bench/common.sh's default configuration) and Unbound
#     (a one-thread forwarding cache, bench/common.sh).
# genreport runs its EDNS, FULL and COMMON groups (-f -c) and, with TYPES=1,
# the type tests (-t), in recursive mode (-R) against each, on its port (-P).
#
# genreport is not packaged by Debian. GENREPORT_SRC names a directory with
# genreport.c from ISC's DNS-Compliance-Testing repository
# (github.com/isc-projects/DNS-Compliance-Testing; bench results in the README
# used the copy at commit 2c47450c61bb919169b9d8949f3bffa88eebecca of a fork of
# it); it is compiled into the scratch directory with an empty config.h (no
# autotools needed: glibc has the resolver functions, OpenSSL its HMAC) and
# never copied into this repository.
set -euo pipefail
cd "$(dirname "$0")/.."

GENREPORT_SRC=${GENREPORT_SRC:-/tmp/genreport}
TYPES=${TYPES:-0}
NODEDNS_BIN=${NODEDNS_BIN:-./build-release/daemon/nodedns}
ZONE=genreport.test

if [ ! -f "$GENREPORT_SRC/genreport.c" ]; then
  echo "no $GENREPORT_SRC/genreport.c: check out ISC's DNS-Compliance-Testing there (GENREPORT_SRC=DIR)" >&2
  exit 1
fi

source bench/common.sh
bench_setup nodedns
for tool in knotd knotc unbound gcc; do
  command -v "$tool" >/dev/null || { echo "needs $tool (scripts/deps.sh bench)"; exit 1; }
done

# --- genreport, built here ------------------------------------------------
: >"$work/config.h"
gcc -O1 -w -I"$work" -o "$work/genreport" "$GENREPORT_SRC/genreport.c" -lresolv -lcrypto

# --- the authoritative server ---------------------------------------------
knot_port=$(free_port)
mkdir -p "$work/knot"
cat >"$work/knot/$ZONE.zone" <<EOZ
\$ORIGIN $ZONE.
\$TTL 3600
@     SOA   ns1 hostmaster 2024010101 7200 3600 1209600 300
@     NS    ns1
@     NS    ns2
ns1   A     127.0.0.1
ns2   A     127.0.0.1
@     A     192.0.2.1
@     AAAA  2001:db8::1
@     MX    10 mail
@     TXT   "v=spf1 -all"
mail  A     192.0.2.25
www   CNAME @
EOZ
# A root zone too, so that the backend answers what a recursive answers about
# the root (nodedns probes its upstream with a SOA query for the zone it
# forwards, here ".").
cat >"$work/knot/root.zone" <<EOZ
\$ORIGIN .
\$TTL 86400
.                SOA  ns.root.test. hostmaster.root.test. 2024010101 1800 900 604800 86400
.                NS   ns.root.test.
ns.root.test.    A    127.0.0.1
$ZONE.           NS   ns1.$ZONE.
ns1.$ZONE.       A    127.0.0.1
EOZ
cat >"$work/knot/knot.conf" <<EOC
server:
  listen: 127.0.0.1@$knot_port
  rundir: "$work/knot"
database:
  storage: "$work/knot"
control:
  listen: "$work/knot/knot.sock"
log:
  - target: stderr
    any: warning
zone:
  - domain: $ZONE
    storage: "$work/knot"
    file: "$ZONE.zone"
    dnssec-signing: on
    zonefile-sync: -1
    zonefile-load: difference-no-serial
    journal-content: all
  - domain: .
    storage: "$work/knot"
    file: "root.zone"
EOC
knotd -c "$work/knot/knot.conf" 2>"$work/knot.log" &
pids+=($!)
for _ in $(seq 200); do
  dig +dnssec +norec @127.0.0.1 -p "$knot_port" "$ZONE" SOA 2>/dev/null | grep -q "RRSIG.*SOA" && break
  sleep 0.1
done
dig +dnssec +norec @127.0.0.1 -p "$knot_port" "$ZONE" SOA | grep -q "RRSIG.*SOA" || { echo "knotd did not sign $ZONE"; cat "$work/knot.log"; exit 1; }

# --- the backend recursive ------------------------------------------------
start_unbound() {  # name, config file, port
  unbound-checkconf "$2" >/dev/null
  unbound -d -c "$2" 2>>"$work/$1.log" &
  pids+=($!)
  for _ in $(seq 200); do [ -n "$(ss -Hlnu "sport = :$3")" ] && break; sleep 0.05; done
}
backend_port=$(free_port)
{
  unbound_server_config 127.0.0.1 "$backend_port"
  cat <<EOC
  domain-insecure: "$ZONE"
  local-zone: "test." nodefault
stub-zone:
  name: "."
  stub-addr: 127.0.0.1@$knot_port
stub-zone:
  name: "$ZONE"
  stub-addr: 127.0.0.1@$knot_port
EOC
} >"$work/backend.conf"
start_unbound backend "$work/backend.conf" "$backend_port"

# --- the two under test -----------------------------------------------------
nd_port=$(free_port)
nodedns_cache_config "$nd_port" "$backend_port" >"$work/nodedns.toml"
"$NODEDNS_BIN" --config "$work/nodedns.toml" --control-socket "$work/nodedns.sock" --metrics-listen "" \
  2>>"$work/nodedns.log" &
pids+=($!)
for _ in $(seq 200); do [ -n "$(ss -Hlnu "sport = :$nd_port")" ] && break; sleep 0.05; done

ub_port=$(free_port)
# Unbound serves test. itself (RFC 6761) unless told not to; its forward-zone
# clause comes last in the file, so the server options go in front of it.
{
  unbound_server_config 127.0.0.1 "$ub_port"
  printf '  local-zone: "test." nodefault\n'
  unbound_base_config "$ub_port" "$backend_port" | sed -n '/^forward-zone:/,$p'
} >"$work/unbound.conf"
start_unbound unbound "$work/unbound.conf" "$ub_port"

for port in "$nd_port" "$ub_port"; do
  dig +short @127.0.0.1 -p "$port" "$ZONE" SOA | grep -q hostmaster || { echo "no answer on port $port"; exit 1; }
done

# --- genreport --------------------------------------------------------------
flags=(-R -f -c)
[ "$TYPES" = 1 ] && flags=(-R -t -f -c)
report() {  # port -> one line "zone ns addr: test=result ..."
  echo "$ZONE ns1.$ZONE 127.0.0.1" | timeout 120 "$work/genreport" "${flags[@]}" -P "$1" 2>>"$work/genreport.log"
}
report "$nd_port" >"$work/nodedns.report"
report "$ub_port" >"$work/unbound.report"

split() { tr ' ' '\n' <"$1" | grep '=' | sort -t= -k1,1; }
echo "genreport ${flags[*]} against nodedns $("$NODEDNS_BIN" --version | awk '{print $2}') and $(unbound -V | head -1), both forwarding to a recursive Unbound in front of Knot"
join -t= -a1 -a2 -e '-' -o 0,1.2,2.2 <(split "$work/nodedns.report") <(split "$work/unbound.report") |
  awk -F= 'BEGIN {printf "%-12s %-34s %-34s\n", "test", "nodedns", "unbound"}
    {mark = ($2 == $3) ? "" : "   <-- differs"; printf "%-12s %-34s %-34s%s\n", $1, $2, $3, mark}
    $2 != $3 {d++} END {printf "%d tests, %d differ\n", NR, d}'
