#!/usr/bin/env bash
# The two targets of issue #7, measured on this machine:
#   1. what metrics cost: uniform balance payments (the harness, closed loop), each run on a
#      fresh payd, alternating metrics on (the default) and off (RONGPAY_METRICS_ENABLED=false:
#      no recorder, every recording a no-op); PAIRS pairs, the on/off ratio of each pair and
#      their median;
#   2. a scrape of /metrics with 100 channels and 10,000 merchants: channel-sim plays 100
#      channels, the card scenario registers them and 10,000 merchants and spreads card
#      payments over every channel (weighted split), then /metrics is scraped SCRAPES times:
#      time (curl's total) and size.
# payd is pinned to core 0, the load generator (and channel-sim) to core 1.
# Usage: loadtest/metrics-cost.sh [seconds per run, default 10] [pairs, default 5] [scrapes, default 20]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"
pairs="${2:-5}"
scrapes="${3:-20}"
scripts/setup.sh
. scripts/env.sh
cargo build --profile dist --workspace -q
bin="${CARGO_TARGET_DIR:-target}/dist"
out="${OUT:-loadtest-out/metrics-cost-$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$out"
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
token="adm_bench_$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
port=18580
export RONGPAY_ADMIN_TOKEN="$token"
export RONGPAY_RATE_MERCHANT_PER_S=1000000 RONGPAY_RATE_MERCHANT_BURST=1000000
export RONGPAY_LOG=warn
payd_pid=
fresh_payd() {
  if [ -n "$payd_pid" ]; then kill "$payd_pid"; wait "$payd_pid" 2>/dev/null || true; fi
  rm -rf "$work/payd"
  env "$@" taskset -c 0 "$bin/payd" serve --data-dir "$work/payd" --listen "127.0.0.1:$port" \
    >>"$work/payd.log" 2>&1 &
  payd_pid=$!
  pids+=("$payd_pid")
  for _ in $(seq 1 400); do curl -sf "127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.05; done
}
# Payments per second of one run (the harness's JSON report).
rate() {
  taskset -c 1 "$bin/loadtest" run --addr "127.0.0.1:$port" --duration "${secs}s" \
    --connections 64 --out "$out" -q --scenario uniform --accounts 10000 --label "$1" >/dev/null
  jq -r '.throughput' "$out/$1.json"
}
machine="$(nproc --all) cores, $(lscpu | sed -n 's/^Model name: *//p'), Linux $(uname -r)"
echo "machine: $machine; payd on core 0, load on core 1, 64 connections, ${secs}s per run"
ratios=()
for i in $(seq 1 "$pairs"); do
  fresh_payd RONGPAY_METRICS_ENABLED=true
  on=$(rate "metrics-on-$i")
  fresh_payd RONGPAY_METRICS_ENABLED=false
  off=$(rate "metrics-off-$i")
  ratio=$(python3 -c "print(f'{$on / $off:.4f}')")
  ratios+=("$ratio")
  printf 'pair %d: metrics on %.0f payments/s, off %.0f payments/s, on/off %s\n' "$i" "$on" "$off" "$ratio"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n | python3 -c "import sys; v=[float(x) for x in sys.stdin]; print(f'{v[len(v)//2]:.4f}')")
echo "metrics on/off, median of $pairs pairs: $median (cost $(python3 -c "print(f'{(1 - $median) * 100:.1f}')")%)"

# ---- the scrape: 100 channels, 10,000 merchants.
channels=()
for i in $(seq -w 1 100); do channels+=(--channel "ch$i"); done
taskset -c 1 "$bin/channel-sim" --listen 127.0.0.1:18590 "${channels[@]}" >"$work/sim.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 200); do curl -sf 127.0.0.1:18590/_sim/channels >/dev/null && break; sleep 0.05; done
fresh_payd RONGPAY_METRICS_ENABLED=true RONGPAY_ROUTING_POLICY=weighted_split
taskset -c 1 "$bin/loadtest" run --addr "127.0.0.1:$port" --scenario card --sim 127.0.0.1:18590 \
  --merchants 10000 --accounts 1 --duration "${secs}s" --connections 64 --out "$out" -q \
  --label card-100-channels | grep -E '^\| [a-z]|^checks' || true
curl -s "127.0.0.1:$port/metrics" >"$out/metrics.txt"
used=$(grep -c '^rongpay_channel_calls_total{' "$out/metrics.txt" || true)
channels_seen=$(grep -o 'rongpay_channel_call_duration_seconds_count{channel="[^"]*"' "$out/metrics.txt" | sort -u | wc -l)
: >"$work/scrapes"
for _ in $(seq 1 "$scrapes"); do
  taskset -c 1 curl -s -o /dev/null -w '%{time_total} %{size_download}\n' "127.0.0.1:$port/metrics" >>"$work/scrapes"
done
python3 - "$work/scrapes" "$channels_seen" "$used" <<'PY'
import sys
rows = [tuple(map(float, l.split())) for l in open(sys.argv[1])]
t = sorted(r[0] * 1000 for r in rows)
size = max(r[1] for r in rows)
print(f"/metrics with 100 channels ({sys.argv[2]} with calls, {sys.argv[3]} call series) and 10,000 merchants: "
      f"{len(t)} scrapes, p50 {t[len(t)//2]:.1f} ms, max {t[-1]:.1f} ms, {size/1024:.0f} KiB "
      f"(targets: < 50 ms, < 1024 KiB)")
PY
echo "reports in $out"
