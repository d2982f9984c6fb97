#!/usr/bin/env bash
# What one payment writes (issue #14): RocksDB records (puts and merge operands) and bytes per
# balance payment and per card payment, from payd's own `rongpay_wal_batch_keys` and
# `rongpay_wal_batch_bytes` histograms. Payments are sent one at a time, with an
# Idempotency-Key as a careful merchant does, so no group holds anything else.
#
#   loadtest/write-cost.sh [payments per kind, default 200]
# PAYD=path measures another payd binary (an earlier build, for a before/after).
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-200}"
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
token="adm_wc_$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
port=18680
sim=18690
"$bin/channel-sim" --listen "127.0.0.1:$sim" --channel 'a={"latency_ms":1}' >"$work/sim.log" 2>&1 &
pids+=($!)
RONGPAY_ADMIN_TOKEN="$token" "${PAYD:-$bin/payd}" serve --data-dir "$work/payd" \
  --listen "127.0.0.1:$port" >"$work/payd.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 400); do curl -sf "127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.05; done
for _ in $(seq 1 100); do curl -sf "127.0.0.1:$sim/_sim/channels" >/dev/null && break; sleep 0.05; done
api() { # method path token [body]
  curl -sf -X "$1" "127.0.0.1:$port$2" -H "Authorization: Bearer $3" \
    -H 'Content-Type: application/json' ${4:+-d "$4"}
}
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
merchant=$(api POST /v1/merchants "$token" '{"name":"write cost","fee_rate":"0.006"}')
key=$(echo "$merchant" | field secret_key)
payer=$(api POST /v1/accounts "$token" '{"currency":"CNY"}' | field id)
api POST "/v1/accounts/$payer/deposits" "$token" '{"amount":"100000.00"}' >/dev/null
url=$(curl -sf "127.0.0.1:$sim/_sim/channels" | python3 -c "import json,sys; print(json.load(sys.stdin)['data'][0]['url'])")
api POST /v1/channels "$token" "{\"name\":\"wc-a\",\"endpoint\":\"$url\",\"methods\":[\"bank_card\"],\"currency\":\"CNY\",\"fee_rate\":\"0.002\",\"max_amount\":\"50000.00\",\"daily_limit\":\"10000000000.00\",\"inflight_max\":1000}" >/dev/null
card=$(api POST /v1/cards "$key" '{"card_number":"4111111111111111","exp_month":12,"exp_year":2030,"holder":"Write Cost"}' | field card_token)

totals() { # keys_sum bytes_sum groups
  curl -sf "127.0.0.1:$port/metrics" | awk '
    /^rongpay_wal_batch_keys_sum/ {k=$2} /^rongpay_wal_batch_bytes_sum/ {b=$2}
    /^rongpay_wal_batch_keys_count/ {c=$2} END {printf "%d %d %d\n", k, b, c}'
}
measure() { # label, then the payment_method JSON
  local before after
  before=$(totals)
  for i in $(seq 1 "$n"); do
    curl -sf -X POST "127.0.0.1:$port/v1/payments" -H "Authorization: Bearer $key" \
      -H 'Content-Type: application/json' -H "Idempotency-Key: wc-$1-$i" \
      -d "{\"out_trade_no\":\"wc-$1-$i\",\"amount\":\"1.00\",\"currency\":\"CNY\",\"payment_method\":$2}" \
      >/dev/null
  done
  sleep 2 # card payments answered "processing" settle by the channel's notification
  after=$(totals)
  echo "$before $after" | awk -v n="$n" -v label="$1" '{
    printf "| %s | %d | %.2f | %.0f | %.2f |\n", label, n, ($4 - $1) / n, ($5 - $2) / n, ($6 - $3) / n }'
}
echo "| payment | payments | RocksDB records per payment | bytes per payment | group writes per payment |"
echo "|---|---:|---:|---:|---:|"
measure balance "{\"type\":\"balance\",\"account_id\":\"$payer\"}"
measure card "{\"type\":\"bank_card\",\"card_token\":\"$card\"}"
