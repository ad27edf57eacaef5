#!/usr/bin/env bash
# Regenerates the seed corpus of the stale-path fuzzer (corpus/stale): a
# deterministic run from nothing (-seed=1, RUNS executions), merged to the
# inputs that add coverage, of which COUNT are kept (seed-SHA1), spread
# evenly over them by size (the smallest stop before the cache, the largest
# carry the most records).
# The bug-* files beside them are reproducers of findings and stay as they are.
# Usage: tests/fuzz/make_stale_seeds.sh [fuzz build dir, default build-fuzz]
# (needs the inputs' format to change before it is worth running again).
set -euo pipefail
cd "$(dirname "$0")/../.."
fuzzer=${1:-build-fuzz}/tests/fuzz/nodedns_fuzz_stale
RUNS=${RUNS:-200000}
COUNT=${COUNT:-40}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/run" "$tmp/merged"
nice "$fuzzer" -seed=1 -runs="$RUNS" -max_len=2048 "$tmp/run" >"$tmp/log" 2>&1
nice "$fuzzer" -merge=1 "$tmp/merged" "$tmp/run" >>"$tmp/log" 2>&1
rm -f tests/fuzz/corpus/stale/seed-*
mkdir -p tests/fuzz/corpus/stale
ls -S -r "$tmp/merged" >"$tmp/by_size"
awk -v n="$(wc -l <"$tmp/by_size")" -v c="$COUNT" 'NR == 1 || int((NR - 1) * c / n) != int((NR - 2) * c / n)' \
  "$tmp/by_size" | while read -r f; do cp "$tmp/merged/$f" "tests/fuzz/corpus/stale/seed-$f"; done
echo "$(ls tests/fuzz/corpus/stale/seed-* | wc -l) seeds in tests/fuzz/corpus/stale"
