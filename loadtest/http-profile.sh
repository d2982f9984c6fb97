#!/usr/bin/env bash
# Where a balance payment's time goes over HTTP (issue #14, item 3): payd on core 0, the
# harness's uniform balance payments on core 1 (64 connections), `perf record` of payd for
# the measured window, and every sample attributed to one stage of the request by its stack
# (loadtest/perf-stages.py). Prints payd's CPU µs per payment and each stage's share of it.
#   loadtest/http-profile.sh [seconds, default 8] [scenario, default uniform]
# Scenario `healthz` profiles the ratio's baseline, GET /healthz, counting requests.
# Scenario `card` charges through channel-sim (two channels, 1 ms median latency, on the load
# generator's core), as loadtest/bench.sh's card runs do. Scenario `batch` sends the batch
# endpoint 8,190 transfers a request on 2 connections (as loadtest/ab.sh does) and counts
# transfers (the group-commit writer's units) instead of payments. Besides the stages, the
# report splits payd's CPU by thread. PAYD=path profiles another payd binary (an earlier
# build, for a before/after). RATE=n: an open loop at n payments/s instead of the closed loop
# (what a payment costs when nothing batches it).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-8}"
scenario="${2:-uniform}"
scripts/setup.sh build
if ! command -v perf >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf >/dev/null
fi
. scripts/env.sh
# The release build, not the `dist` one the other scripts measure: the stages are told apart
# by the functions on each stack, and a whole-program build inlines the dependencies' code
# (which carries no debug info to name inlined frames) into whatever calls it.
cargo build --release --workspace -q
bin="${CARGO_TARGET_DIR:-target}/release"
work=$(mktemp -d)
out="${OUT:-loadtest-out/http-profile-$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$out"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
token="adm_prof_$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
port=18780
export RONGPAY_ADMIN_TOKEN="$token"
export RONGPAY_RATE_MERCHANT_PER_S=1000000 RONGPAY_RATE_MERCHANT_BURST=1000000
taskset -c 0 "${PAYD:-$bin/payd}" serve --data-dir "$work/payd" --listen "127.0.0.1:$port" \
  >"$work/payd.log" 2>&1 &
payd=$!
pids+=("$payd")
for _ in $(seq 1 400); do curl -sf "127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.05; done
payments() {
  curl -sf "127.0.0.1:$port/metrics" | awk '/^rongpay_payments_total/ {s += $2} END {printf "%d\n", s}'
}
# Both the harness's setup (10,000 account creations) and its load count before the window.
started=1000
what="$scenario payments"
unit=payment
load=(--connections 64 --scenario "$scenario")
if [ "$scenario" = batch ]; then
  payments() {
    curl -sf "127.0.0.1:$port/metrics" | awk '$1 == "rongpay_wal_batch_units_sum" {printf "%d\n", $2}'
  }
  started=50000
  what="batch transfers"
  unit=transfer
  load=(--connections 2 --scenario batch --batch-size 8190)
fi
if [ "$scenario" = healthz ]; then
  # The ratio's baseline: the same server answering GET /healthz, the same stages.
  payments() {
    curl -sf "127.0.0.1:$port/metrics" \
      | awk '/^rongpay_http_requests_total\{.*route="\/healthz"/ {s += $2} END {printf "%d\n", s}'
  }
  started=1000
  what="/healthz requests"
  unit=request
fi
cpu_ticks() { awk '{print $14 + $15}' "/proc/$payd/stat"; }
# The main thread, where the ledger runs, is named after the binary's file (PAYD=/tmp/payd-x).
main_comm=$(cat "/proc/$payd/comm")
sim=()
if [ "$scenario" = card ]; then
  taskset -c 1 "$bin/channel-sim" --listen 127.0.0.1:18491 --channel 'a={"latency_ms":1}' \
    --channel 'b={"latency_ms":1}' >"$work/sim.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do curl -sf 127.0.0.1:18491/_sim/channels >/dev/null && break; sleep 0.05; done
  sim=(--sim 127.0.0.1:18491)
fi
taskset -c 1 "$bin/loadtest" run --addr "127.0.0.1:$port" --duration "$((secs + 30))s" \
  "${load[@]}" --accounts 10000 "${sim[@]}" ${RATE:+--rate "constant:$RATE"} -q \
  >"$work/loadtest.out" 2>&1 &
pids+=($!)
# The harness creates its merchants and accounts first: measure once payments flow.
for _ in $(seq 1 600); do [ "$(payments)" -gt "$started" ] && break; sleep 0.1; done
sleep 2
p0=$(payments)
c0=$(cpu_ticks)
perf record -F 499 --call-graph dwarf,32768 -p "$payd" -o "$out/perf.data" -- sleep "$secs" \
  >/dev/null 2>&1
p1=$(payments)
c1=$(cpu_ticks)
hz=$(getconf CLK_TCK)
echo "machine: $(nproc --all) cores, $(lscpu | sed -n 's/^Model name: *//p'); payd on core 0, load on core 1"
echo "window: ${secs}s, $((p1 - p0)) $what ($(( (p1 - p0) / secs ))/s), payd CPU $(( (c1 - c0) * 1000 / hz )) ms (perf's own unwinding slows payd: compare rates with loadtest/bench.sh, not with this)"
perf script -F comm,tid,ip,sym --no-inline -i "$out/perf.data" 2>/dev/null \
  | python3 loadtest/perf-stages.py --payments "$((p1 - p0))" --unit "$unit" \
      --main-thread "$main_comm" \
      --cpu-seconds "$(python3 -c "print(($c1 - $c0) / $hz)")"
