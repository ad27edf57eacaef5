#!/usr/bin/env bash
# Installs what nodedns needs, builds it (Release) and runs it in the foreground
# with the embedded default configuration: UDP and TCP on 127.0.0.1:5300,
# forwarding to the nameservers of /etc/resolv.conf, metrics on
# http://127.0.0.1:9253/metrics, dnsctl on /run/nodedns/control.sock. Extra arguments go to
# nodedns (see `nodedns --help`), e.g. scripts/run.sh --listen 127.0.0.1:5353.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh run  # the build packages, and dig and curl to try it
cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release -DNODEDNS_BUILD_TESTS=OFF >/dev/null
cmake --build build-release --target nodedns dnsctl
# The default control socket lives in /run/nodedns, which only root may
# create: other users get one in the build directory (dnsctl --socket PATH).
extra=()
if [ "$(id -u)" -ne 0 ] && [[ " $* " != *" --control-socket"* ]]; then
  extra=(--control-socket "$PWD/build-release/control.sock")
fi
exec ./build-release/daemon/nodedns "${extra[@]}" "$@"
