#!/usr/bin/env bash
# Installs what the tests need, builds nodedns with ASan+UBSan (Debug) and the
# libFuzzer target (clang), and runs the whole suite through ctest: unit tests,
# integration tests against the real binary, and a bounded fuzz run
# of each fuzzer (NODEDNS_FUZZ_SECONDS, default 30). The last lines are ctest's summary.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
bash scripts/deps.sh test

CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNODEDNS_FUZZ=ON >/dev/null
cmake --build build-fuzz -j "$jobs"

cmake -S . -B build-test -G Ninja -DCMAKE_BUILD_TYPE=Debug -DNODEDNS_SANITIZE=ON \
  -DNODEDNS_FUZZ_BUILD="$PWD/build-fuzz" \
  -DNODEDNS_FUZZ_SECONDS="${NODEDNS_FUZZ_SECONDS:-30}" >/dev/null
cmake --build build-test -j "$jobs"
cd build-test
ctest --output-on-failure -j "$jobs" --timeout 300
