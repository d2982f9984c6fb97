#!/usr/bin/env bash
# Sets up and runs payd on ./data (or the directory given in RONGPAY_DATA_DIR).
# Extra arguments go to `payd serve`, e.g. scripts/run.sh --listen 127.0.0.1:9090
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
. scripts/env.sh
cargo build --release -p rongpay-api --bin payd
exec "${CARGO_TARGET_DIR:-target}/release/payd" serve "$@"
