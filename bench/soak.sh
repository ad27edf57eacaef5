#!/usr/bin/env bash
# Soak (issue 11): nodedns with its DEFAULT configuration (only the listen
# address and the upstream given) under DURATION seconds (default 600; 1800
# for the 30-minute target) of mixed load, reported once a minute.
#
# Load (bench/soak_client.cc, one thread): UDP at UDP_QPS, 65 % hot names
# (2,000 names, A and AAAA: cache hits, refreshed every UP_TTL seconds), 25 %
# names never asked before (misses: the cache fills within about two minutes
# and then evicts all the time), 10 % names from a pool of 5,000 answered
# NXDOMAIN; TCP_CONNS TCP connections pipelining 16 queries of the same mix 5
# times a second each, every connection replaced after 10 s (churn).
# Around it: the upstream (bench_upstream) blackholes FLAP_DOWN seconds every
# FLAP_PERIOD seconds (first at FLAP_FIRST), a reload every RELOAD_EVERY
# seconds (alternately `dnsctl reload` and SIGHUP, at second 30 of the
# minute), `dnsctl stats` every STATS_EVERY seconds.
#
# Each minute: RSS (VmRSS), heap in use (glibc mallinfo2 from an LD_PRELOAD
# probe, bench/malloc_probe.cc; MALLOC_PROBE=0 turns it off), open file
# descriptors, threads, cache entries and bytes (dnsctl stats), queries sent
# that minute, p99 latency (all queries, and hot names alone), errors
# (timeouts after TIMEOUT_MS, SERVFAIL, unexpected rcodes, TCP queries lost to
# a closed connection) and those of hot names, seconds the upstream was down.
# At the end: growth from the warm-up minute (the first whose cache is full,
# else minute 2) to the last, of RSS, heap in use, cache bytes and fds.
#
# NODEDNS_BIN runs another build (e.g. the sanitizer build's daemon, with
# MALLOC_PROBE=0 and a lower UDP_QPS; ASAN_OPTIONS passes through): LSan's
# report at the SIGTERM exit is printed. Loopback only; bounded: DURATION + about
# 20 seconds; every process started is stopped by PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-600}
UDP_QPS=${UDP_QPS:-3000}
TCP_CONNS=${TCP_CONNS:-4}
UP_TTL=${UP_TTL:-120}
FLAP_PERIOD=${FLAP_PERIOD:-120}
FLAP_DOWN=${FLAP_DOWN:-20}
FLAP_FIRST=${FLAP_FIRST:-90}
RELOAD_EVERY=${RELOAD_EVERY:-60}
STATS_EVERY=${STATS_EVERY:-10}
TIMEOUT_MS=${TIMEOUT_MS:-3000}
MALLOC_PROBE=${MALLOC_PROBE:-1}
NODEDNS_BIN=${NODEDNS_BIN:-./build-release/daemon/nodedns}

if [ "$DURATION" -lt 120 ] || [ "$DURATION" -gt 86400 ]; then
  echo "DURATION: 120 to 86400 seconds" >&2
  exit 2
fi

source bench/common.sh
bench_setup nodedns dnsctl nodedns_bench_upstream nodedns_soak nodedns_malloc_probe
dnsctl=./build-release/daemon/dnsctl

./build-release/bench/nodedns_bench_upstream "$UP_TTL" 0 quiet >"$work/up.out" 2>"$work/up.log" &
up_pid=$!
pids+=($up_pid)
for _ in $(seq 100); do [ -s "$work/up.out" ] && break; sleep 0.05; done
up_port=$(head -1 "$work/up.out")

port=$(free_port)
nodedns_cache_config "$port" "$up_port" >"$work/nodedns.toml"
sock=$work/nodedns.sock
env_args=()
if [ "$MALLOC_PROBE" = 1 ]; then
  env_args=(LD_PRELOAD="$PWD/build-release/bench/libnodedns_malloc_probe.so" NODEDNS_MALLOC_PROBE="$work/heap.log"
    NODEDNS_MALLOC_PROBE_SECONDS=5)
fi
env "${env_args[@]}" "$NODEDNS_BIN" --config "$work/nodedns.toml" --control-socket "$sock" --metrics-listen "" \
  2>"$work/nodedns.log" &
nd_pid=$!
pids+=($nd_pid)
for _ in $(seq 600); do [ -n "$(ss -Hlnu "sport = :$port")" ] && [ -S "$sock" ] && break; sleep 0.05; done
if [ -z "$(ss -Hlnu "sport = :$port")" ]; then
  echo "nodedns did not start:" >&2
  cat "$work/nodedns.log" >&2
  exit 1
fi

./build-release/bench/nodedns_soak --port="$port" --seconds="$DURATION" --udp-qps="$UDP_QPS" \
  --tcp-conns="$TCP_CONNS" --timeout-ms="$TIMEOUT_MS" --tag="s$$" >"$work/gen.out" 2>"$work/gen.log" &
gen_pid=$!
pids+=($gen_pid)

# The process's own figures, now.
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$nd_pid/status"; }
threads() { awk '/^Threads:/ {print $2}' "/proc/$nd_pid/status"; }
fds() { ls "/proc/$nd_pid/fd" | wc -l; }
heap_in_use() {  # bytes, from the probe's last line; - without it
  if [ -s "$work/heap.log" ]; then tail -1 "$work/heap.log" | sed 's/.*in_use=\([0-9]*\).*/\1/'; else echo -; fi
}
cache_figures() {  # "entries bytes max_entries max_bytes" from the last stats
  python3 - "$work/stats.json" <<'EOP' 2>/dev/null || echo "- - - -"
import json, sys
j = json.load(open(sys.argv[1]))
c = j.get("cache", {})
print(j["counters"]["cache_entries"], j["counters"]["cache_bytes"], c.get("max_entries", "-"), c.get("max_bytes", "-"))
EOP
}

ctl_calls=0 ctl_failed=0 reloads=0 down=0 down_in_minute=0
start_us=${EPOCHREALTIME/./}
: >"$work/minutes.tsv"
echo "soak: ${DURATION} s; UDP $UDP_QPS qps (65 % hot names, 25 % new names, 10 % NXDOMAIN), $TCP_CONNS TCP connections x 16 pipelined x 5/s;"
echo "upstream down ${FLAP_DOWN} s every ${FLAP_PERIOD} s from ${FLAP_FIRST} s; reload every ${RELOAD_EVERY} s; dnsctl stats every ${STATS_EVERY} s"
echo "nodedns $("$NODEDNS_BIN" --version | awk '{print $2}') ($NODEDNS_BIN, default configuration), pid $nd_pid"
printf "%4s %8s %8s %5s %5s %8s %8s %8s %8s %8s %7s %7s %6s %5s\n" min "RSS MiB" "heap MiB" fds thr entries "cache MiB" \
  queries "p99 ms" "hit p99" errors "hit err" "down s" ctlf
print_minute() {  # minute: its row, once the generator's line for it is out
  local m=$1 line
  for _ in $(seq 100); do
    line=$(grep "^interval=$m " "$work/gen.out" || true)
    [ -n "$line" ] && break
    sleep 0.1
  done
  local row
  row=$(awk -v m="$m" '$1 == m' "$work/minutes.tsv")
  echo "$row" "$line" | awk '{
    for (i = 1; i <= NF; i++) if (split($i, kv, "=") == 2) v[kv[1]] = kv[2]
    heap = ($3 == "-") ? "-" : sprintf("%.1f", $3 / 1048576)
    cmib = ($7 == "-") ? "-" : sprintf("%.1f", $7 / 1048576)
    printf "%4d %8.1f %8s %5d %5d %8s %8s %8d %8.2f %8.2f %7d %7d %6d %5d\n", $1, $2 / 1024, heap, $4, $5, $6, cmib,
      v["sent"], v["p99_ms"], v["hit_p99_ms"], v["errors"], v["hit_errors"], $8, $9
  }'
}

minute_failed=0
for s in $(seq 0 "$DURATION"); do
  now_us=${EPOCHREALTIME/./}
  wait_us=$((start_us + s * 1000000 - now_us))
  if [ "$wait_us" -gt 0 ]; then sleep "$(printf '%d.%06d' $((wait_us / 1000000)) $((wait_us % 1000000)))"; fi
  if ! kill -0 "$nd_pid" 2>/dev/null; then
    echo "nodedns exited at second $s:" >&2
    tail -20 "$work/nodedns.log" >&2
    exit 1
  fi
  # The upstream flaps.
  if [ "$s" -ge "$FLAP_FIRST" ]; then
    phase=$(((s - FLAP_FIRST) % FLAP_PERIOD))
    if [ "$phase" -eq 0 ] && [ "$down" = 0 ]; then kill -USR2 "$up_pid"; down=1; fi
    if [ "$phase" -eq "$FLAP_DOWN" ] && [ "$down" = 1 ]; then kill -USR2 "$up_pid"; down=0; fi
  fi
  if [ $((s % STATS_EVERY)) -eq 0 ]; then
    ctl_calls=$((ctl_calls + 1))
    if ! timeout 10 "$dnsctl" --socket "$sock" --json stats >"$work/stats.new" 2>>"$work/dnsctl.log"; then
      ctl_failed=$((ctl_failed + 1)) minute_failed=$((minute_failed + 1))
    else
      mv "$work/stats.new" "$work/stats.json"
    fi
  fi
  if [ $((s % RELOAD_EVERY)) -eq 30 ]; then
    reloads=$((reloads + 1))
    if [ $((reloads % 2)) -eq 1 ]; then
      ctl_calls=$((ctl_calls + 1))
      if ! timeout 10 "$dnsctl" --socket "$sock" reload >>"$work/dnsctl.log" 2>&1; then
        ctl_failed=$((ctl_failed + 1)) minute_failed=$((minute_failed + 1))
      fi
    else
      kill -HUP "$nd_pid"
    fi
  fi
  if [ "$s" -gt 0 ] && [ $((s % 60)) -eq 0 ]; then
    m=$((s / 60))
    read -r entries bytes max_entries max_bytes < <(cache_figures)
    printf "%d %d %s %d %d %s %s %d %d %s %s\n" "$m" "$(rss_kib)" "$(heap_in_use)" "$(fds)" "$(threads)" "$entries" \
      "$bytes" "$down_in_minute" "$minute_failed" "$max_entries" "$max_bytes" >>"$work/minutes.tsv"
    down_in_minute=0 minute_failed=0
  fi
  [ "$down" = 1 ] && down_in_minute=$((down_in_minute + 1))
  # Each minute's row once the generator has closed it (TIMEOUT_MS after the minute).
  if [ $((s % 60)) -eq $((TIMEOUT_MS / 1000 + 2)) ] && [ "$s" -gt 60 ]; then print_minute $(((s - 1) / 60)); fi
done
wait "$gen_pid"
last=$((DURATION / 60))
for m in $(seq $(((DURATION - TIMEOUT_MS / 1000 - 2) / 60 + 1)) "$last"); do
  if [ "$m" -ge 1 ]; then print_minute "$m"; fi
done

# Stop nodedns (its exit status; a sanitizer build reports leaks here).
kill -TERM "$nd_pid"
for _ in $(seq 300); do kill -0 "$nd_pid" 2>/dev/null || break; sleep 0.1; done
nd_status=0
wait "$nd_pid" 2>/dev/null || nd_status=$?

echo
python3 - "$work/minutes.tsv" "$work/gen.out" "$work/heap.log" <<'EOP'
import sys, os
rows = {}
for line in open(sys.argv[1]):
    f = line.split()
    rows[int(f[0])] = f
gen = {}
for line in open(sys.argv[2]):
    kv = dict(x.split("=", 1) for x in line.split() if "=" in x)
    gen[int(kv["interval"])] = kv
minutes = sorted(rows)
last = minutes[-1]
def full(f):
    try:
        return int(f[5]) >= 0.99 * int(f[9]) or int(f[6]) >= 0.99 * int(f[10])
    except ValueError:
        return False
base = next((m for m in minutes if full(rows[m])), None)
why = "the first minute with a full cache"
if base is None or base >= last:
    base, why = min(2, last), "the cache never filled"
b, e = rows[base], rows[last]
mib = lambda x: x / 1048576
rss0, rss1 = int(b[1]) * 1024, int(e[1]) * 1024
print(f"from minute {base} ({why}) to minute {last}:")
print(f"  RSS          {mib(rss0):8.1f} -> {mib(rss1):8.1f} MiB  growth {mib(rss1 - rss0):+.2f} MiB ({100 * (rss1 - rss0) / rss0:+.2f} %)")
if b[2] != "-" and e[2] != "-":
    h0, h1 = int(b[2]), int(e[2])
    print(f"  heap in use  {mib(h0):8.1f} -> {mib(h1):8.1f} MiB  growth {mib(h1 - h0):+.2f} MiB ({100 * (h1 - h0) / h0:+.2f} %)")
    print(f"  RSS - heap in use (allocator-held and code/stacks) {mib(rss0 - h0):.1f} -> {mib(rss1 - h1):.1f} MiB")
if b[6] != "-" and e[6] != "-":
    c0, c1 = int(b[6]), int(e[6])
    print(f"  cache bytes  {mib(c0):8.1f} -> {mib(c1):8.1f} MiB  growth {mib(c1 - c0):+.2f} MiB; entries {b[5]} -> {e[5]}")
span = [rows[m] for m in minutes if m >= base]
print(f"  open fds     {b[3]} -> {e[3]} (growth {int(e[3]) - int(b[3]):+d}; min {min(int(r[3]) for r in span)}, max {max(int(r[3]) for r in span)} over the span)")
print(f"  threads      {b[4]} -> {e[4]}")
g = [gen[m] for m in minutes if m in gen]
if g:
    p99 = sorted(float(x["p99_ms"]) for x in g)
    hp99 = sorted(float(x["hit_p99_ms"]) for x in g)
    err = [int(x["errors"]) for x in g]
    calm = [int(gen[m]["errors"]) for m in minutes if m in gen and rows[m][7] == "0"]
    print(f"every minute: p99 median {p99[len(p99) // 2]:.2f} ms, max {p99[-1]:.2f} ms; hot names' p99 median {hp99[len(hp99) // 2]:.2f} ms, max {hp99[-1]:.2f} ms")
    print(f"  errors per minute: mean {sum(err) / len(err):.1f}, max {max(err)}; of hot names: {sum(int(x['hit_errors']) for x in g)} in all;"
          f" timeouts {sum(int(x['timeouts']) for x in g)}, SERVFAIL {sum(int(x['servfail']) for x in g)},"
          f" other rcodes {sum(int(x['other']) for x in g)}, TCP lost {sum(int(x['tcp_lost']) for x in g)}")
    if calm:
        print(f"  errors in the {len(calm)} minutes without an upstream outage: {sum(calm)}")
    print(f"  queries {sum(int(x['sent']) for x in g)} (TCP {sum(int(x['tcp_sent']) for x in g)}), answered {sum(int(x['answered']) for x in g)};"
          f" TCP connections replaced {sum(int(x['reconnects']) for x in g)}, closed by the server {sum(int(x['server_closed']) for x in g)}")
EOP
echo "  dnsctl calls $ctl_calls, failed $ctl_failed; reloads $reloads (dnsctl and SIGHUP alternately)"
echo "  nodedns exit status $nd_status (after SIGTERM)"
if grep -q "LeakSanitizer\|AddressSanitizer" "$work/nodedns.log"; then
  echo "  sanitizer report:"
  grep -E "ERROR: (Leak|Address)Sanitizer|^SUMMARY|^Direct leak|^Indirect leak" "$work/nodedns.log" | head -40 | sed 's/^/    /'
elif [[ "$NODEDNS_BIN" != ./build-release/* ]]; then
  echo "  no sanitizer report in nodedns's log"
fi
if [ -n "${KEEP:-}" ]; then
  mkdir -p "$KEEP"
  cp "$work"/*.tsv "$work"/gen.out "$work"/nodedns.log "$work"/stats.json "$KEEP"/ 2>/dev/null || true
  [ -s "$work/heap.log" ] && cp "$work/heap.log" "$KEEP"/
  echo "  raw data kept in $KEEP"
fi
