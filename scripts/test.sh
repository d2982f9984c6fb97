#!/usr/bin/env bash
# Sets up and runs every check and test: format, clippy, then the whole workspace's tests in
# the release profile (one profile, so RocksDB's C++ compiles once), then the fuzz targets
# for a bounded time. Needs root: the
# disk-full test mounts a small tmpfs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
. scripts/env.sh
cargo fmt --all -- --check
cargo clippy --release --workspace --all-targets -- -D warnings
cargo test --release --workspace
# Fuzz targets (amount parsing, WAL record decoding), 20 s each from their committed corpora.
scripts/fuzz.sh 20
