#!/bin/sh
# nodedns chart, cleanup.enabled: removes from this node what a nodedns that
# did not exit cleanly (SIGKILL, OOM kill, crash loop) left behind: the
# nftables table `inet nodedns` (the NOTRACK rules) and the interface
# (default nodedns0) holding the node-local address. A nodedns that exits
# cleanly removes both itself; this is for the nodes where it could not.
#
# It never runs under a serving nodedns: as long as anything answers on the
# control socket (the one a successor takes over through), it waits. The
# interface is removed only if it carries nodedns's alias, as nodedns itself
# does; one without it is someone else's and is left alone. The image has no
# `ip`, so the interface is removed by nodedns's own teardown: a nodedns that
# adopts it (loopback listener, no control socket, no rules) and is stopped
# with SIGTERM at once.
#
# Environment: NODEDNS_INTERFACE (the interface name), NODEDNS_CONTROL_SOCKET,
# NODEDNS_CLEANUP_CONFIG (the config of that short-lived nodedns); optional
# NODEDNS_CLEANUP_WORK (a writable directory, /tmp), NODEDNS_BIN, DNSCTL_BIN,
# NFT_BIN, NODEDNS_SYSFS (/sys). Exit 0: nothing of nodedns's is left.
set -u
name=${NODEDNS_INTERFACE:?}
socket=${NODEDNS_CONTROL_SOCKET:?}
config=${NODEDNS_CLEANUP_CONFIG:?}
work=${NODEDNS_CLEANUP_WORK:-/tmp}
nodedns=${NODEDNS_BIN:-/usr/bin/nodedns}
dnsctl=${DNSCTL_BIN:-/usr/bin/dnsctl}
nft=${NFT_BIN:-nft}
sysfs=${NODEDNS_SYSFS:-/sys}
mark="managed by nodedns"
say() { echo "nodedns-cleanup: $*"; }

# 1. Wait until no nodedns serves on this node (dnsctl exit 3: no socket, or
#    nobody answering on it). Any other answer, an error or a timeout
#    included, means a nodedns process is there: never pull its interface.
waited=0
while :; do
  "$dnsctl" --socket "$socket" --timeout 2 stats >/dev/null 2>&1
  rc=$?
  [ "$rc" -eq 3 ] && break
  if [ $((waited % 10)) -eq 0 ]; then
    say "a nodedns answers on $socket (dnsctl exit $rc); waiting for it to stop before cleaning up"
  fi
  sleep 1
  waited=$((waited + 1))
done

failed=0
# 2. The NOTRACK rules first: with them gone, DNS to the node-local address
#    and the service IP goes through conntrack (and kube-proxy's NAT) again.
if "$nft" list table inet nodedns >/dev/null 2>&1; then
  if "$nft" delete table inet nodedns; then
    say "nftables table inet nodedns removed"
  else
    say "could not remove nftables table inet nodedns"
    failed=1
  fi
else
  say "no nftables table inet nodedns"
fi

# 3. The interface, if it is nodedns's.
if [ -e "$sysfs/class/net/$name" ]; then
  alias=$(cat "$sysfs/class/net/$name/ifalias" 2>/dev/null || true)
  if [ "$alias" != "$mark" ]; then
    say "interface $name is not nodedns's (alias '$alias', not '$mark'): left alone"
  else
    rm -f "$work/cleanup.ready"
    "$nodedns" --config "$config" --ready-file "$work/cleanup.ready" &
    pid=$!
    i=0
    while [ ! -s "$work/cleanup.ready" ] && kill -0 "$pid" 2>/dev/null && [ "$i" -lt 100 ]; do
      sleep 0.1
      i=$((i + 1))
    done
    kill -TERM "$pid" 2>/dev/null
    wait "$pid"
    rc=$?
    if [ -e "$sysfs/class/net/$name" ]; then
      say "interface $name is still there (the nodedns that adopts and removes it exited $rc)"
      failed=1
    else
      say "interface $name removed"
    fi
  fi
else
  say "no interface $name"
fi

[ "$failed" -eq 0 ] && say "done: nothing of nodedns's is left on this node"
exit "$failed"
