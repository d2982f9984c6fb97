#!/usr/bin/env bash
# Sets up and runs payd on ./data (or the directory given in RONGPAY_DATA_DIR).
# Extra arguments go to `payd serve`, e.g. scripts/run.sh --listen 127.0.0.1:9090
# Installs only what building and serving need (scripts/setup.sh build); the test tools come
# with scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
. scripts/env.sh
target="${CARGO_TARGET_DIR:-target}"
if [ ! -x "$target/dist/payd" ]; then
  echo "run: first build of payd: RocksDB's C++ is compiled from source, about 12-25 minutes on"
  echo "run: 2 cores (later builds reuse $target: seconds, or minutes to relink after a change)."
  echo "run: Progress every minute."
fi
# A heartbeat while cargo works: its own lines stop for minutes while RocksDB compiles.
started=$SECONDS
( while sleep 60; do echo "run: still building payd ($(( (SECONDS - started) / 60 )) min so far)"; done ) &
beat=$!
trap 'kill $beat 2>/dev/null || true' EXIT
# The `dist` profile: release, optimized across crates at link time (Cargo.toml). Workspace-
# wide, as the load-test scripts build it: one package alone could resolve other features
# for RocksDB's dependencies and compile its C++ a second time (docs/ARCHITECTURE.md).
cargo build --profile dist --workspace --bin payd
kill $beat 2>/dev/null || true
echo "run: payd built in $(( SECONDS - started )) s; serving"
exec "$target/dist/payd" serve "$@"
