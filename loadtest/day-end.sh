#!/usr/bin/env bash
# Payments' latency over HTTP while a day-end runs (issue #15: "p99 of payments during a
# day-end within 2x of without"): a fresh payd pinned to core 0 with ACCOUNTS payer accounts
# (set up over HTTP by the harness), closed-loop balance payments from the harness on core
# 1 for SECS seconds, and at AT seconds `POST /v1/gl/day_end`, followed until every step is
# done. Prints the latency of payments sent before, during and after the day-end, and the
# ratio of the p99s. RUNS runs, each on a fresh data dir.
# Usage: loadtest/day-end.sh [accounts, default 200000] [secs, default 40] [at, default 15]
set -euo pipefail
cd "$(dirname "$0")/.."
accounts="${1:-200000}"
secs="${2:-40}"
at="${3:-15}"
conns="${CONNECTIONS:-64}"
runs="${RUNS:-2}"
scripts/setup.sh build
. scripts/env.sh
cargo build --profile dist --workspace -q
bin="${CARGO_TARGET_DIR:-target}/dist"
out="${OUT:-loadtest-out/day-end-$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$out"
work=$(mktemp -d)
payd_pid=
cleanup() {
  if [ -n "$payd_pid" ]; then kill "$payd_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
machine="$(nproc --all) cores, $(lscpu | sed -n 's/^Model name: *//p'), Linux $(uname -r)"
token="adm_bench_$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
port=18481
export RONGPAY_ADMIN_TOKEN="$token"
export RONGPAY_RATE_MERCHANT_PER_S=1000000 RONGPAY_RATE_MERCHANT_BURST=1000000
echo "machine: $machine; payd on core 0, the harness on core 1; $accounts accounts, $conns connections, ${secs}s, day-end at ${at}s; commit $(git rev-parse --short HEAD)"
for run in $(seq 1 "$runs"); do
  rm -rf "$work/payd"
  taskset -c 0 "$bin/payd" serve --data-dir "$work/payd" --listen "127.0.0.1:$port" \
    >>"$work/payd.log" 2>&1 &
  payd_pid=$!
  for _ in $(seq 1 400); do curl -sf "127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.05; done
  echo "run $run:"
  taskset -c 1 "$bin/loadtest" run --addr "127.0.0.1:$port" --scenario uniform \
    --accounts "$accounts" --duration "${secs}s" --connections "$conns" --out "$out" -q \
    --label "day-end-run-$run" --day-end-at "${at}s" | grep -E '^day-end|^\| [a-z]|^checks'
  kill "$payd_pid"; wait "$payd_pid" 2>/dev/null || true
  payd_pid=
done
