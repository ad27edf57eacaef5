#!/usr/bin/env bash
# One node's uninstall, in a network namespace of its own (chart_test.sh runs
# it under `unshare --net --mount`, as root), with the config and cleanup
# script the chart renders:
#  1. nodedns (the rendered nodedns.toml) creates its interface and NOTRACK
#     table; cleanup.sh under it waits and touches nothing;
#  2. SIGTERM with no successor (what `helm uninstall` sends): nodedns removes
#     both itself;
#  3. SIGKILL (an unclean stop): both stay; cleanup.sh removes them, and run
#     again on a clean node it does nothing and succeeds;
#  4. an interface of that name without nodedns's alias is left alone.
# Usage: cleanup_netns.sh DIR BUILD_DIR
#   DIR holds nodedns.toml, cleanup.sh, cleanup.toml (cleanup.mjs) and resolv.conf.
set -euo pipefail
dir=$1
build=$2
mount -t sysfs sysfs /sys  # /sys/class/net of this namespace, for cleanup.sh
ip link set lo up
name=$(sed -n '/^\[interface\]/,/^\[/s/^name = "\(.*\)"$/\1/p' "$dir/nodedns.toml")
[ -n "$name" ] || { echo "no interface name in nodedns.toml"; exit 1; }
export NODEDNS_INTERFACE=$name NODEDNS_CONTROL_SOCKET=$dir/control.sock NODEDNS_CLEANUP_CONFIG=$dir/cleanup.toml \
  NODEDNS_CLEANUP_WORK=$dir NODEDNS_BIN=$build/daemon/nodedns DNSCTL_BIN=$build/daemon/dnsctl

has_link() { [ -e "/sys/class/net/$name" ]; }
has_table() { nft list table inet nodedns >/dev/null 2>&1; }
start_nodedns() {
  rm -f "$dir/ready"
  # The rendered config, with the host paths (control socket, snapshot) and
  # the metrics address (the node IP, a flag in the DaemonSet) moved here.
  "$build/daemon/nodedns" --config "$dir/nodedns.toml" --control-socket "$dir/control.sock" --snapshot "" \
    --metrics-listen "" --resolv-conf "$dir/resolv.conf" --ready-file "$dir/ready" --log-level error &
  pid=$!
  for _ in $(seq 100); do [ -s "$dir/ready" ] && break; sleep 0.1; done
  [ -s "$dir/ready" ] || { echo "nodedns did not start"; exit 1; }
  has_link && has_table || { echo "nodedns made no interface $name or no table inet nodedns"; exit 1; }
}

echo "-- 1. cleanup.sh waits while nodedns serves"
start_nodedns
rc=0
timeout 4 sh "$dir/cleanup.sh" >"$dir/cleanup.out" 2>&1 || rc=$?
cat "$dir/cleanup.out"
[ "$rc" -eq 124 ] || { echo "cleanup.sh did not wait for the serving nodedns (exit $rc)"; exit 1; }
grep -q 'waiting for it to stop' "$dir/cleanup.out" || { echo "cleanup.sh did not say it waits"; exit 1; }
has_link && has_table || { echo "cleanup.sh touched the interface or rules of a serving nodedns"; exit 1; }

echo "-- 2. SIGTERM (helm uninstall): nodedns removes its interface and rules itself"
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
[ "$rc" -eq 0 ] || { echo "nodedns exited $rc after SIGTERM"; exit 1; }
! has_link || { echo "interface $name left after SIGTERM"; exit 1; }
! has_table || { echo "table inet nodedns left after SIGTERM"; exit 1; }

echo "-- 3. SIGKILL leaves them; cleanup.sh removes them"
start_nodedns
kill -KILL "$pid"
wait "$pid" 2>/dev/null || true
has_link && has_table || { echo "SIGKILL left nothing behind: nothing to test"; exit 1; }
sh "$dir/cleanup.sh"
! has_link || { echo "cleanup.sh left interface $name"; exit 1; }
! has_table || { echo "cleanup.sh left table inet nodedns"; exit 1; }
sh "$dir/cleanup.sh" >"$dir/cleanup.out" 2>&1 || { cat "$dir/cleanup.out"; echo "cleanup.sh failed on a clean node"; exit 1; }
grep -q "no interface $name" "$dir/cleanup.out" || { cat "$dir/cleanup.out"; exit 1; }

echo "-- 4. someone else's $name is left alone"
ip link add "$name" type dummy 2>/dev/null || ip link add "$name" type bridge
sh "$dir/cleanup.sh"
has_link || { echo "cleanup.sh removed an interface without nodedns's alias"; exit 1; }
ip link del "$name"
echo "cleanup on a node: OK"
