#!/usr/bin/env bash
# Installs the Debian 12 packages nodedns needs. Usage: scripts/deps.sh [build|run|test|bench]...
# Idempotent: apt-get runs only when something is missing. Needs root (or sudo).
set -euo pipefail

build=(cmake ninja-build g++ pkg-config libc-ares-dev libuv1-dev libabsl-dev libspdlog-dev libtomlplusplus-dev
       nlohmann-json3-dev zlib1g-dev)
# prometheus: promtool checks /metrics; systemd: systemd-analyze checks the
# unit; util-linux: setpriv and unshare (control socket permissions, full disk);
# iproute2, nftables: --setup-interface in network namespaces; faketime:
# libfaketime steps the wall clock under a running daemon. The chart tests
# also need npm (helm and kubernetes-models come from the npm registry): Debian's
# nodejs and npm are installed only when no npm is on PATH (a NodeSource
# nodejs, which bundles npm, conflicts with Debian's npm package).
test=(libgtest-dev libgmock-dev clang libclang-rt-14-dev bind9-dnsutils knot-dnsutils prometheus systemd util-linux
      iproute2 nftables faketime nsd)
# The fleet benchmark (bench/fleet/) also runs dnsmasq (--use-stale-cache, 2.89+),
# sums counters with jq and draws its PNG with gnuplot (no X). bench/minimal_responses.sh runs a
# Python fake upstream (python3-dnslib); bench/genreport.sh an authoritative Knot and builds ISC's
# genreport (OpenSSL).
# The zone mirror's tests transfer zones from an nsd they start (nsd; its
# Debian service is not used).
# scripts/run.sh: the README's first steps query the daemon with dig and curl.
run=(bind9-dnsutils curl)
bench=(dnsperf unbound procps util-linux iproute2 gawk dnsmasq-base jq gnuplot-nox python3-dnslib knot libssl-dev)

want=()
for set in "${@:-build}"; do
  case "$set" in
    build) want+=("${build[@]}") ;;
    run) want+=("${build[@]}" "${run[@]}") ;;
    test) want+=("${build[@]}" "${test[@]}") ;;
    bench) want+=("${build[@]}" "${bench[@]}") ;;
    *) echo "deps.sh: unknown set '$set' (build, run, test, bench)" >&2; exit 2 ;;
  esac
done

case " $* " in
  *" test "*) command -v npm >/dev/null || want+=(nodejs npm) ;;
esac

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "deps.sh: installing ${missing[*]}"
$SUDO apt-get update -qq
# unbound's, nsd's and prometheus's packages start services where an init system
# runs; we only need their binaries. A policy-rc.d that refuses every start
# stops that during this install (removed afterwards if we created it).
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod 755 "$policy"
  created_policy=1
fi
status=0
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || status=$?
if [ "$created_policy" = 1 ]; then $SUDO rm -f "$policy"; fi
exit "$status"
