#!/usr/bin/env bash
# Outage benchmark: nodedns and Unbound (serve-expired, client timeout 0,
# reply TTL 30, EDE on stale answers) behind the same fake upstream, through
# the same blackhole and SERVFAIL outages, one after the other. The driver
# (bench_outage.cc) prints answered share, latency, upstream load during the
# outage relative to the client load, and seconds until fresh answers resume.
# Loopback only; bounded: about 2 x 2 x (OUTAGE_SECONDS + 10) seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

NAMES=${NAMES:-1000}
QPS=${QPS:-1000}
OUTAGE_SECONDS=${OUTAGE_SECONDS:-15}
RECOVERY_SECONDS=${RECOVERY_SECONDS:-5}

source bench/common.sh
bench_setup nodedns nodedns_bench_outage

nd_port=$(free_port)
ub_port=$(free_port)
targets=(--target "nodedns=$nd_port" --target "unbound=$ub_port")
if [ "${UNBOUND_FIRST:-0}" = 1 ]; then targets=(--target "unbound=$ub_port" --target "nodedns=$nd_port"); fi
./build-release/bench/nodedns_bench_outage --port-file "$work/up.port" "${targets[@]}" --names "$NAMES" --qps "$QPS" --outage-seconds "$OUTAGE_SECONDS" \
  --recovery-seconds "$RECOVERY_SECONDS" &
driver=$!
pids+=($driver)
for _ in $(seq 100); do [ -s "$work/up.port" ] && break; sleep 0.05; done
up_port=$(cat "$work/up.port")

cat >"$work/nodedns.toml" <<EOC
[server]
listen = ["127.0.0.1:$nd_port"]
[upstream]
attempts = ${ND_ATTEMPTS:-2}
[[zone]]
name = "."
servers = ["127.0.0.1:$up_port"]
[log]
level = "${ND_LOG_LEVEL:-error}"
EOC
./build-release/daemon/nodedns --config "$work/nodedns.toml" --control-socket "$work/nodedns.sock" \
  --metrics-listen "" 2>"$work/nodedns.log" &
pids+=($!)

{
  unbound_base_config "$ub_port" "$up_port"
  cat <<EOC
server:
  serve-expired: yes
  serve-expired-client-timeout: 0
  serve-expired-reply-ttl: 30
  ede: yes
  ede-serve-expired: yes
EOC
} >"$work/unbound.conf"
unbound-checkconf "$work/unbound.conf" >/dev/null
unbound -d -c "$work/unbound.conf" 2>"$work/unbound.log" &
pids+=($!)

wait "$driver"
if [ -n "${ND_LOG_LEVEL:-}" ]; then cat "$work/nodedns.log" >&2; fi
