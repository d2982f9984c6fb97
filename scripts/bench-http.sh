#!/usr/bin/env bash
# HTTP benchmark of issue #3's target: durable balance payments against the same server's
# trivial GET /healthz, measured in the same run. payd pinned to core 0 (one worker), wrk to
# core 1, 64 keep-alive connections. Usage: scripts/bench-http.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
scripts/setup.sh
command -v wrk >/dev/null || { apt-get install -y -qq wrk >/dev/null; }
. scripts/env.sh
cargo build --release -q -p rongpay-api --bin payd
payd="${CARGO_TARGET_DIR:-target}/release/payd"
dir=$(mktemp -d)
token="adm_bench_$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
port=18480
RONGPAY_ADMIN_TOKEN="$token" taskset -c 0 "$payd" serve --data-dir "$dir/data" --listen "127.0.0.1:$port" >"$dir/payd.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 1 200); do curl -sf "127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.05; done
api() { curl -sf -X POST "127.0.0.1:$port$1" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -d "$2"; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
sk=$(api /v1/merchants '{"name":"bench","fee_rate":"0.006"}' | field secret_key)
payers=""
for _ in $(seq 1 64); do
  a=$(api /v1/accounts '{"currency":"CNY"}' | field id)
  api "/v1/accounts/$a/deposits" '{"amount":"100000000.00"}' >/dev/null
  payers="$payers,$a"
done
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'); payd pinned to core 0, wrk to core 1, 64 connections, ${seconds}s each"
echo "== GET /healthz"
taskset -c 1 wrk -t1 -c64 -d"${seconds}s" --latency "http://127.0.0.1:$port/healthz" | grep -E "Requests/sec|  50%|  99%"
echo "== POST /v1/payments (durable)"
PAYERS="${payers#,}" SK="$sk" RUN_ID="b$RANDOM" taskset -c 1 wrk -t1 -c64 -d"${seconds}s" -s loadtest/wrk/payments.lua "http://127.0.0.1:$port" | grep -E "Requests/sec|p50_ms|Non-2xx"
