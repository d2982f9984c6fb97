#!/usr/bin/env bash
# How often payd's journal syncs stall under a moderate load (issue #14, session 52): for each
# run, a fresh payd on core 0 (data dir under the repo's loadtest-out/, on the file system the
# README's server uses) and the harness on core 1, uniform balance payments in an open loop at
# RATE a second (64 connections) for SECONDS. Prints per run the harness's p99 and max, its
# seconds whose p99 passed 20 ms, payd's group writes over 10, 25 and 100 ms (from
# rongpay_wal_sync_duration_seconds), its write stalls and whether the data dir's file system
# discards online (rongpay_store_online_discard). Every acknowledged payment is checked.
#   loadtest/sync-stalls.sh [SECONDS, default 30] [RATE, default 10000] [RUNS, default 3]
# PAYD=path runs another payd binary; LOG=path sends payd's stderr there (e.g. /dev/shm/x,
# to take its log's writeback off the data dir's disk) instead of the run's directory.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-30}"
rate="${2:-10000}"
runs="${3:-3}"
port=18880
sim_port=18890
token_prefix=adm_stall
. loadtest/runs.sh
out="loadtest-out/sync-stalls-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
for run in $(seq 1 "$runs"); do
  dir="$out/$run"
  mkdir -p "$dir"
  taskset -c 0 "${PAYD:-$bin/payd}" serve --data-dir "$dir/data" --listen "127.0.0.1:$port" \
    >"${LOG:-$dir/payd.log}" 2>&1 &
  payd=$!
  pids+=("$payd")
  for _ in $(seq 1 400); do curl -sf "127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.05; done
  taskset -c 1 "$bin/loadtest" run --addr "127.0.0.1:$port" --duration "${secs}s" \
    --accounts 10000 --connections 64 --scenario uniform --rate "constant:$rate" \
    --label "run$run" --out "$dir/report" -q >"$dir/loadtest.out" 2>&1 || true
  curl -sf "127.0.0.1:$port/metrics" >"$dir/metrics.txt"
  kill "$payd"
  wait "$payd" 2>/dev/null || true
  python3 - "$dir" "$run" <<'PY'
import glob, json, sys
dir, run = sys.argv[1], sys.argv[2]
report = json.load(open(glob.glob(dir + "/report/*.json")[0]))
metrics = open(dir + "/metrics.txt").read().splitlines()
def sample(prefix):
    return sum(float(l.split()[-1]) for l in metrics if l.startswith(prefix))
syncs = lambda le: sample('rongpay_wal_sync_duration_seconds_bucket{le="%s"}' % le)
over = lambda le: int(syncs("+Inf") - syncs(le))
bad = sum(1 for p in report["timeline"] if p["p99_us"] > 20000)
checks = "passed" if "passed" in open(dir + "/loadtest.out").read() else "FAILED"
print(f"run {run}: {report['throughput']:.0f} payments/s, p99 {report['latency']['p99_us'] / 1000:.2f} ms, "
      f"max {report['latency']['max_us'] / 1000:.1f} ms, seconds with p99 > 20 ms: {bad}; "
      f"group writes {int(syncs('+Inf'))}, over 10 ms {over('0.01')}, over 25 ms {over('0.025')}, "
      f"over 100 ms {over('0.1')}; write stalls {int(sample('rongpay_wal_write_stalls_total'))}; "
      f"online discard {int(sample('rongpay_store_online_discard'))}; checks {checks}")
PY
  rm -rf "$dir/data"
done
