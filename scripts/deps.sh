#!/usr/bin/env bash
# Installs the Debian 12 packages nodedns needs. Usage: scripts/deps.sh [build|test|bench]...
# Idempotent: apt-get runs only when something is missing. Needs root (or sudo).
set -euo pipefail

build=(cmake ninja-build g++ pkg-config libc-ares-dev libuv1-dev libabsl-dev libspdlog-dev libtomlplusplus-dev)
test=(libgtest-dev libgmock-dev clang libclang-rt-14-dev bind9-dnsutils knot-dnsutils)
bench=(dnsperf unbound procps util-linux iproute2 gawk)

want=()
for set in "${@:-build}"; do
  case "$set" in
    build) want+=("${build[@]}") ;;
    test) want+=("${build[@]}" "${test[@]}") ;;
    bench) want+=("${build[@]}" "${bench[@]}") ;;
    *) echo "deps.sh: unknown set '$set' (build, test, bench)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "deps.sh: installing ${missing[*]}"
$SUDO apt-get update -qq
# unbound's package starts a service where systemd runs; we only need the binary.
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
