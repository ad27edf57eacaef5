#!/usr/bin/env bash
# The architecture's arrows, checked on what was built and on the sources:
#  - dnsctl, a small client, links no c-ares, libuv or toml++ (nor the data
#    plane: no resolver, cache or upstream symbols);
#  - lib/control includes nothing from lib/server, lib/resolver or lib/app;
#    lib/snapshot, lib/cache, lib/dns, lib/common nothing from above them.
# Usage: deps_test.sh SOURCE_DIR DNSCTL_BINARY
set -euo pipefail
src=$1
dnsctl=$2
fail=0

libs=$(ldd "$dnsctl")
for lib in libuv libcares; do
  if grep -q "$lib" <<<"$libs"; then
    echo "FAIL: dnsctl links $lib:"; grep "$lib" <<<"$libs"; fail=1
  fi
done
# toml++ is header-only: its code would show up as symbols.
syms=$(nm -C "$dnsctl" 2>/dev/null || true)
[ -n "$syms" ] || { echo "FAIL: no symbols read from $dnsctl"; exit 1; }
for ns in 'toml::' 'nodedns::resolver::' 'nodedns::cache::' 'nodedns::upstream::' 'nodedns::server::'; do
  if grep -qF "$ns" <<<"$syms"; then
    echo "FAIL: dnsctl contains $ns code:"; grep -F "$ns" <<<"$syms" | head -3; fail=1
  fi
done
# libuv and c-ares functions, linked statically or not.
if grep -qE '[[:space:]](ares|uv)_[a-z0-9_]+$' <<<"$syms"; then
  echo "FAIL: dnsctl refers to libuv or c-ares:"; grep -E '[[:space:]](ares|uv)_[a-z0-9_]+$' <<<"$syms" | head -3; fail=1
fi
# A sanity check that the test can see what it looks for: dnsctl has the
# control client.
grep -q 'nodedns::control::Call' <<<"$syms" || { echo "FAIL: nodedns::control::Call not found in dnsctl"; fail=1; }

# Include arrows, from the sources.
forbid() {  # module, forbidden modules...
  local m=$1; shift
  for f in "$@"; do
    if grep -rn "#include \"lib/$f/" "$src/lib/$m" >/dev/null; then
      echo "FAIL: lib/$m includes lib/$f:"; grep -rn "#include \"lib/$f/" "$src/lib/$m"; fail=1
    fi
  done
}
forbid control server resolver app netif
forbid snapshot server resolver app control upstream netif
forbid cache server resolver app control upstream snapshot config netif
forbid dns server resolver app control upstream snapshot cache config netif
forbid common server resolver app control upstream snapshot cache config dns netif
forbid upstream server resolver app control snapshot cache config netif
forbid resolver server app control snapshot config netif
forbid config app control snapshot netif
# config composes the components' options: from server, resolver and upstream
# it may include their options.h, nothing else.
if grep -rnE '#include "lib/(server|resolver|upstream)/' "$src/lib/config" |
    grep -vE 'lib/(server|resolver|upstream)/options\.h"' ; then
  echo "FAIL: lib/config includes more of server/resolver/upstream than their options.h"; fail=1
fi
# The data plane takes its own options, not the daemon's configuration.
forbid server app control snapshot netif config
forbid mirror server resolver app control upstream snapshot config netif
if grep -rn '#include "lib/mirror/' "$src/lib/control" | grep -v 'lib/mirror/status\.h"'; then
  echo "FAIL: lib/control includes more of lib/mirror than status.h"; fail=1
fi

[ "$fail" = 0 ] && echo "architecture: dnsctl links only what it uses; include arrows point one way"
exit "$fail"
