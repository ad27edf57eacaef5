#!/usr/bin/env bash
# Installs what the tests need, builds nodedns with ASan+UBSan (Debug), the
# libFuzzer targets and a ThreadSanitizer build of the daemons and the
# multi-threaded tests (both clang, which also enforces the thread-safety
# annotations), and runs the whole suite through ctest: unit tests,
# integration tests against the real binary, the TSan tests (test "tsan"), and
# a bounded fuzz run of each fuzzer (NODEDNS_FUZZ_SECONDS, default 30). The
# last lines are ctest's summary.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
bash scripts/deps.sh test

CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNODEDNS_FUZZ=ON >/dev/null
cmake --build build-fuzz -j "$jobs"

# ThreadSanitizer (clang, like build-fuzz also checking the thread-safety
# annotations): only the daemons and the multi-threaded tests, which the
# suite below runs as its test "tsan".
CC=clang CXX=clang++ cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNODEDNS_TSAN=ON >/dev/null
cmake --build build-tsan -j "$jobs"

cmake -S . -B build-test -G Ninja -DCMAKE_BUILD_TYPE=Debug -DNODEDNS_SANITIZE=ON \
  -DNODEDNS_FUZZ_BUILD="$PWD/build-fuzz" -DNODEDNS_TSAN_BUILD="$PWD/build-tsan" \
  -DNODEDNS_FUZZ_SECONDS="${NODEDNS_FUZZ_SECONDS:-30}" >/dev/null
cmake --build build-test -j "$jobs"
cd build-test
ctest --output-on-failure -j "$jobs" --timeout 300
