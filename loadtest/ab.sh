#!/usr/bin/env bash
# Two or more payd builds, alternated, on fresh data dirs (issue #14): payd on core 0, the
# harness (and channel-sim) on core 1. Give the binaries twice or more, alternated (A B A B),
# so that the machine's drift shows as noise, not as a difference between builds.
#   loadtest/ab.sh card SECONDS PAYD [PAYD ...]
#     uniform balance payments, then card payments through channel-sim (two channels, 1 ms
#     median latency), 64 connections each: both rates and their ratio.
#   loadtest/ab.sh uniform SECONDS PAYD [PAYD ...]
#     uniform balance payments only, 64 connections: the rate and payd's CPU µs per payment
#     over the load (from the first payment to the run's end; payd saturates its core, so the
#     CPU figure moves less with the machine's speed than the rate does).
#   loadtest/ab.sh ratio SECONDS PAYD [PAYD ...]
#     GET /healthz, then uniform balance payments, 64 connections each, on each payd: both
#     rates and the ratio issue #14 sets a target for (payments / /healthz, same server). A
#     wrapper script that exports settings first (RONGPAY_LOG=off ...) measures a
#     configuration of one binary.
#   loadtest/ab.sh floor SECONDS PAYD [PAYD ...]
#     GET /healthz, then POST /bench/floor (a payment's body made durable through the same
#     group-commit writer and nothing else; payd runs with RONGPAY_BENCH_FLOOR=true), then
#     uniform balance payments, 64 connections each, on each payd: the rates, each one's
#     payd CPU µs a request, and the floor's and the payments' ratios to /healthz. The floor
#     bounds what any durable request reaches on the machine. FLOOR_RECORDS=n (1-8) has
#     each floor request write n records, the first keyed by a time-ordered id and the others
#     by the request's Idempotency-Key, as a balance payment writes its own record and two
#     keyed by the client's texts (its out_trade_no index and its idempotency record).
#   loadtest/ab.sh batch SECONDS PAYD [PAYD ...]
#     the batch endpoint, 2 connections x 8,190 transfers: transfers per second, and the
#     RocksDB records and bytes each commit unit (a transfer; the harness's 10,000 account
#     creations are among them) cost in the synced group writes (payd's WAL histograms), and
#     the records its balance checkpoints cost per unit (`?` from a payd without the counter).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-}
[ $# -ge 3 ] && { [ "$mode" = card ] || [ "$mode" = uniform ] || [ "$mode" = ratio ] || [ "$mode" = floor ] || [ "$mode" = batch ]; } || { sed -n 2,30p "$0"; exit 2; }
secs=$2
shift 2
port=18580
sim_port=18590
token_prefix=adm_ab
. loadtest/runs.sh
if [ "$mode" = card ]; then
  start_sim
fi
if [ "$mode" = floor ]; then
  # The floor passes 50,000 requests/s, the default limit per client IP (all the harness's
  # connections come from one): raised, not switched off, so each request still pays the check.
  export RONGPAY_BENCH_FLOOR=true RONGPAY_RATE_IP_PER_S=1000000 RONGPAY_RATE_IP_BURST=1000000
fi
# One run of `loadtest` on a fresh payd ($1), with the harness's other arguments after it;
# prints the run's JSON report's path.
run() {
  local payd=$1 label=$2
  shift 2
  rm -rf "$work/payd"
  taskset -c 0 "$payd" serve --data-dir "$work/payd" --listen "127.0.0.1:$port" >"$work/payd.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 400); do curl -sf "127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.05; done
  taskset -c 1 "$bin/loadtest" run --addr "127.0.0.1:$port" --duration "${secs}s" --accounts 10000 \
    --label "$label" --out "$work/out" -q "$@" >"$work/loadtest.out" 2>&1 &
  local lt=$!
  # Uniform and floor modes: payd's CPU and requests over the load, from the first request
  # for SECONDS - 1 seconds (neither the harness's setup nor its end checks, which read
  # every account, count). The other modes are not polled.
  local c0='' p0=0 c1 p1
  while { [ "$mode" = uniform ] || [ "$mode" = floor ]; } && kill -0 "$lt" 2>/dev/null; do
    p0=$(requests "$label")
    if [ "${p0:-0}" -gt 0 ]; then
      c0=$(cpu_ticks "$pid")
      sleep "$((secs - 1))"
      c1=$(cpu_ticks "$pid")
      p1=$(requests "$label")
      break
    fi
    sleep 0.05
  done
  wait "$lt" || true
  if [ -n "$c0" ] && [ "$p1" -gt "$p0" ]; then
    python3 -c "import os, sys; c, p = int(sys.argv[1]), int(sys.argv[2]); print(f'{c * 1e6 / os.sysconf(\"SC_CLK_TCK\") / p:.1f}')" \
      "$((c1 - c0))" "$((p1 - p0))" >"$work/cpu"
  else
    echo '?' >"$work/cpu"
  fi
  curl -sf "127.0.0.1:$port/metrics" >"$work/metrics.txt" || true
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  echo "$work/out/$label.json"
}
payments() {
  curl -sf "127.0.0.1:$port/metrics" | awk '/^rongpay_payments_total/ {s += $2} END {printf "%d\n", s}'
}
# Requests of scenario $1 answered so far: payments, or the requests of its route.
requests() {
  local route
  case $1 in
    healthz) route=/healthz ;;
    floor) route=/bench/floor ;;
    *) payments; return ;;
  esac
  curl -sf "127.0.0.1:$port/metrics" | awk -v r="route=\"$route\"" \
    '/^rongpay_http_requests_total/ && index($0, r) {s += $2} END {printf "%d\n", s}'
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rate() { python3 -c "import json, sys; print(round(json.load(open(sys.argv[1]))['throughput']))" "$1"; }
# Each payd: a run of scenario $first, then one of $second (each a scenario and its extra
# harness arguments), 64 connections each; both rates and the second's over the first's.
two_rates() {
  echo "| payd | $1 | $2 | $3 |"
  echo "|---|---:|---:|---:|"
  shift 3
  for payd in "$@"; do
    a=$(rate "$(run "$payd" "${first[0]}" --connections 64 --scenario "${first[@]}")")
    b=$(rate "$(run "$payd" "${second[0]}" --connections 64 --scenario "${second[@]}")")
    echo "| $payd | $a | $b | $(python3 -c "print(f'{$b / $a:.3f}')") |"
  done
}
if [ "$mode" = card ]; then
  first=(uniform) second=(card --sim "127.0.0.1:$sim_port")
  two_rates "uniform ok/s" "card ok/s" "card / uniform" "$@"
elif [ "$mode" = uniform ]; then
  echo "| payd | uniform ok/s | payd CPU µs/payment |"
  echo "|---|---:|---:|"
  for payd in "$@"; do
    u=$(rate "$(run "$payd" uniform --connections 64 --scenario uniform)")
    echo "| $payd | $u | $(cat "$work/cpu") |"
  done
elif [ "$mode" = floor ]; then
  echo "| payd | /healthz/s | CPU µs | floor/s | CPU µs | uniform ok/s | CPU µs | floor / /healthz | uniform / /healthz |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
  for payd in "$@"; do
    h=$(rate "$(run "$payd" healthz --connections 64 --scenario healthz)")
    hc=$(cat "$work/cpu")
    f=$(rate "$(run "$payd" floor --connections 64 --scenario floor --floor-records "${FLOOR_RECORDS:-1}")")
    fc=$(cat "$work/cpu")
    u=$(rate "$(run "$payd" uniform --connections 64 --scenario uniform)")
    uc=$(cat "$work/cpu")
    echo "| $payd | $h | $hc | $f | $fc | $u | $uc | $(python3 -c "print(f'{$f / $h:.3f}')") | $(python3 -c "print(f'{$u / $h:.3f}')") |"
  done
elif [ "$mode" = ratio ]; then
  first=(healthz) second=(uniform)
  two_rates "/healthz/s" "uniform ok/s" "uniform / /healthz" "$@"
else
  echo "| payd | transfers/s | records/unit | bytes/unit | checkpoint records/unit |"
  echo "|---|---:|---:|---:|---:|"
  per_unit() { awk -v m="$1" '$1 == m {v = $2; f = 1} $1 == "rongpay_wal_batch_units_sum" {u = $2} END {if (u > 0 && f) printf "%.2f", v / u; else printf "?"}' "$work/metrics.txt"; }
  for payd in "$@"; do
    run "$payd" batch --connections 2 --scenario batch --batch-size 8190 >/dev/null
    echo "| $payd | $(sed -n 's/.*= \([0-9]*\) transfers\/s.*/\1/p' "$work/loadtest.out") | $(per_unit rongpay_wal_batch_keys_sum) | $(per_unit rongpay_wal_batch_bytes_sum) | $(per_unit rongpay_wal_checkpoint_keys_total) |"
  done
fi
