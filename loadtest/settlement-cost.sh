#!/usr/bin/env bash
# The settlement steps' cost for MERCHANTS merchants (issue #16): a fresh payd pinned to core
# 0 with a payout channel on channel-sim, the client (loadtest/settlement-cost.py) on core 1:
# MERCHANTS merchants (T+0, a payout account) paid once each, one day-end; prints every
# step's duration (settlement_maturity, settlement_batches among them) and how long the
# payouts took to resolve.
# Usage: loadtest/settlement-cost.sh [merchants, default 100000]
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-100000}"
scripts/setup.sh build
. scripts/env.sh
cargo build --profile dist --workspace -q
bin="${CARGO_TARGET_DIR:-target}/dist"
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
machine="$(nproc --all) cores, $(lscpu | sed -n 's/^Model name: *//p'), Linux $(uname -r)"
token="adm_bench_$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
port=18491
sim=18492
taskset -c 1 "$bin/channel-sim" --listen "127.0.0.1:$sim" --channel 'payout_bank={"latency_ms":1}' \
  >"$work/sim.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 200); do curl -sf "127.0.0.1:$sim/_sim/channels" >/dev/null && break; sleep 0.05; done
url=$(curl -sf "127.0.0.1:$sim/_sim/channels" | python3 -c 'import json,sys; print([c["url"] for c in json.load(sys.stdin)["data"] if c["name"]=="payout_bank"][0])')
export RONGPAY_ADMIN_TOKEN="$token" RONGPAY_PAYOUT_CHANNEL=payout_bank
export RONGPAY_RATE_MERCHANT_PER_S=1000000 RONGPAY_RATE_MERCHANT_BURST=1000000
export RONGPAY_RATE_PAYER_PER_S=0 RONGPAY_RATE_IP_PER_S=0
taskset -c 0 "$bin/payd" serve --data-dir "$work/payd" --listen "127.0.0.1:$port" \
  >>"$work/payd.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 400); do curl -sf "127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.05; done
curl -sf -X POST "127.0.0.1:$port/v1/channels" -H "Authorization: Bearer $token" \
  -H 'Content-Type: application/json' \
  -d "{\"name\":\"payout_bank\",\"endpoint\":\"$url\",\"methods\":[\"bank_card\"],\"currency\":\"CNY\",\"fee_rate\":\"0.002\",\"max_amount\":\"50000.00\",\"daily_limit\":\"1000000.00\"}" >/dev/null
echo "machine: $machine; payd on core 0, client and channel-sim on core 1; $n merchants; commit $(git rev-parse --short HEAD)"
taskset -c 1 python3 loadtest/settlement-cost.py "127.0.0.1:$port" "$token" "$n"
du -sh "$work/payd" | sed 's/^/data dir: /'
