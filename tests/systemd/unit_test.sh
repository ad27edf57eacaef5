#!/usr/bin/env bash
# Checks the systemd unit and the installed layout:
#  1. `systemd-analyze verify` accepts the unit (any warning fails the test),
#  2. `systemd-analyze security` rates its exposure at most 2.0,
#  3. the default config installed with it passes `nodedns --check-config`,
#  4. `cmake --install` puts the binaries, unit and config where documented.
# Usage: unit_test.sh SOURCE_DIR BUILD_DIR INSTALL_PREFIX INSTALL_SYSCONFDIR
set -euo pipefail
src=$1
build=$2
prefix=$3
sysconf=$4
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if ! command -v systemd-analyze >/dev/null; then
  echo "SKIP: systemd-analyze not installed (Debian package systemd)"
  exit 77
fi

# The unit as installed, but pointing at the binary under test.
sed -e "s|@NODEDNS_UNIT_BINDIR@|$build/daemon|" -e "s|@NODEDNS_UNIT_CONFIG@|$src/systemd/nodedns.toml|" \
  -e "s|@NODEDNS_UNIT_DOCDIR@|$src|" \
  "$src/systemd/nodedns.service.in" > "$work/nodedns.service"
out=$(systemd-analyze verify --man=no "$work/nodedns.service" 2>&1) || { echo "$out"; exit 1; }
if [ -n "$out" ]; then
  echo "systemd-analyze verify warned:"; echo "$out"; exit 1
fi
echo "verify: OK"
# With the interface drop-in (a drop-in's lines extend the unit's).
mkdir -p "$work/with-interface"
cat "$work/nodedns.service" "$src/systemd/interface.conf" > "$work/with-interface/nodedns.service"
out=$(systemd-analyze verify --man=no "$work/with-interface/nodedns.service" 2>&1) || { echo "$out"; exit 1; }
[ -z "$out" ] || { echo "systemd-analyze verify warned with interface.conf:"; echo "$out"; exit 1; }
echo "verify with interface.conf: OK"
systemd-analyze security --offline=true --threshold=20 "$work/nodedns.service" | tail -1

# --check-config reads the "resolv.conf" servers as start-up does: give it a
# resolver file with a nameserver, whatever this machine has.
echo "nameserver 192.0.2.53" >"$work/resolv.conf"
"$build/daemon/nodedns" --check-config "$src/systemd/nodedns.toml" --resolv-conf "$work/resolv.conf"

DESTDIR="$work/root" cmake --install "$build" >/dev/null
for f in "$prefix/bin/nodedns" "$prefix/bin/dnsctl" "$prefix/lib/systemd/system/nodedns.service" \
         "$sysconf/nodedns/nodedns.toml"; do
  [ -e "$work/root/$f" ] || { echo "cmake --install did not install $f"; exit 1; }
done
grep -qx "ExecStart=$prefix/bin/nodedns --config $sysconf/nodedns/nodedns.toml" \
  "$work/root/$prefix/lib/systemd/system/nodedns.service" || { echo "installed unit has the wrong ExecStart"; exit 1; }
grep -qx "ExecStopPost=+$prefix/bin/nodedns --withdraw --config $sysconf/nodedns/nodedns.toml" \
  "$work/root/$prefix/lib/systemd/system/nodedns.service" || { echo "installed unit has no fail-open ExecStopPost"; exit 1; }
# What ExecStopPost runs, with the installed config: nothing to withdraw
# there (no [interface] setup), exit status 0 (a failing ExecStopPost would
# mark every stop failed).
out=$("$build/daemon/nodedns" --withdraw --config "$src/systemd/nodedns.toml" --resolv-conf "$work/resolv.conf" 2>&1) ||
  { echo "--withdraw failed: $out"; exit 1; }
echo "$out" | grep -q "nothing to withdraw" || { echo "--withdraw said: $out"; exit 1; }
echo "install layout: OK"
