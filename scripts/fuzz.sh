#!/usr/bin/env bash
# Runs every cargo-fuzz target (amounts, WAL records, request bodies, signature header) for a bounded time on stable Rust (`-s none`: no sanitizer)
# from its committed corpus (fuzz/corpus/<target>, read only: new inputs go to a temporary
# directory). Any crash fails the script, and libFuzzer leaves the input under
# fuzz/artifacts/<target>/.
# Usage: scripts/fuzz.sh [seconds per target, default 20]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-20}"
. scripts/env.sh
# Its own target dir: coverage flags would otherwise rebuild the main build's crates.
target_dir="${CARGO_TARGET_DIR:-$PWD/target}-fuzz"
# RocksDB's C++ (linked by the api targets) is not instrumented anyway: link the library
# the main build compiled (the whole workspace, all targets, as the test command builds it)
# instead of compiling it again.
ROCKSDB_LIB_DIR="$(scripts/rocksdb-lib.sh --release --workspace --all-targets)"
export ROCKSDB_LIB_DIR ROCKSDB_STATIC=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd fuzz
for t in $(cargo fuzz list); do
  mkdir -p "$work/$t"
  out=$(cargo fuzz run -s none --release --target-dir "$target_dir" "$t" "$work/$t" "corpus/$t" \
    -- -max_total_time="$secs" 2>&1) || { echo "$out" | tail -40; echo "fuzz: $t crashed"; exit 1; }
  echo "fuzz: $t $(echo "$out" | grep -E '^Done [0-9]+ runs' | tail -1), $(echo "$out" | grep -oE 'cov: [0-9]+' | tail -1), 0 crashes"
done
