#!/usr/bin/env bash
# The batch endpoint, alternated between payd builds (issue #14): for each binary given, in
# order, a fresh payd on core 0 takes 2 connections x 8,190-transfer batches from the
# harness on core 1; prints transfers per second. Give the binaries twice or more,
# alternated (A B A B), so that the machine's drift shows as noise, not as a difference.
#   loadtest/batch-ab.sh SECONDS PAYD [PAYD ...]
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { sed -n 2,6p "$0"; exit 2; }
secs=$1
shift
scripts/setup.sh build
. scripts/env.sh
cargo build --release --workspace -q
bin="${CARGO_TARGET_DIR:-target}/release"
work=$(mktemp -d)
port=18585
export RONGPAY_ADMIN_TOKEN="adm_ab_$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
trap 'rm -rf "$work"' EXIT
echo "| payd | transfers/s |"
echo "|---|---:|"
for payd in "$@"; do
  rm -rf "$work/payd"
  taskset -c 0 "$payd" serve --data-dir "$work/payd" --listen "127.0.0.1:$port" >"$work/payd.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 400); do curl -sf "127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.05; done
  rate=$(taskset -c 1 "$bin/loadtest" run --addr "127.0.0.1:$port" --duration "${secs}s" \
    --connections 2 --scenario batch --batch-size 8190 --accounts 10000 --label batch \
    --out "$work/out" -q 2>&1 | sed -n 's/.*= \([0-9]*\) transfers\/s.*/\1/p')
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  echo "| $payd | ${rate:-failed} |"
done
