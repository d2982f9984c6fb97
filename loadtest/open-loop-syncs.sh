#!/usr/bin/env bash
# The open loop's worst second against payd's slowest group writes (issue #14, session 27):
# RUNS open-loop runs of uniform balance payments at RATE/s for 11 s, each on a fresh payd
# (core 0; the harness on core 1, 64 connections), as loadtest/bench.sh's open loop. Per run:
# the run's p99, its worst second, and how many of payd's synced group writes took over
# 10 ms and over 50 ms (`rongpay_wal_sync_duration_seconds`, read at the end), of all.
#   loadtest/open-loop-syncs.sh [RUNS, default 6]
# Environment: PRE=1 runs a 10 s closed loop on another fresh payd before each run (as
# bench.sh's earlier runs do), PRE_LOGNULL=1 with its log to /dev/null; LOGNULL=1 sends the
# measured payd's log to /dev/null instead of a file on the data dir's filesystem;
# PAYD=path runs another payd binary; RATE (10000).
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-6}"
rate="${RATE:-10000}"
port=18780
sim_port=18790
token_prefix=adm_ols
. loadtest/runs.sh
payd="${PAYD:-$bin/payd}"
# A fresh payd on $1 with its log to $2; returns once it is ready, its pid in $pid.
start_payd() {
  rm -rf "$1"
  taskset -c 0 "$payd" serve --data-dir "$1" --listen "127.0.0.1:$port" >"$2" 2>&1 &
  pid=$!
  for _ in $(seq 1 400); do curl -sf "127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.05; done
}
echo "machine: $(nproc --all) cores, $(lscpu | sed -n 's/^Model name: *//p'), Linux $(uname -r); payd on core 0, load on core 1; ${rate}/s open loop, 11 s per run${PRE:+, each after a 10 s closed loop}${PRE_LOGNULL:+ (its log to /dev/null)}${LOGNULL:+, the log to /dev/null}"
for i in $(seq 1 "$runs"); do
  if [ -n "${PRE:-}" ]; then
    pre_log="$work/pre.log"
    [ -n "${PRE_LOGNULL:-}" ] && pre_log=/dev/null
    start_payd "$work/pre" "$pre_log"
    taskset -c 1 "$bin/loadtest" run --addr "127.0.0.1:$port" --duration 10s --accounts 10000 \
      --connections 64 --scenario uniform --label "pre$i" --out "$work/out" -q >"$work/loadtest.out" 2>&1
    kill "$pid"
    wait "$pid" 2>/dev/null || true
  fi
  log="$work/payd.log"
  [ -n "${LOGNULL:-}" ] && log=/dev/null
  start_payd "$work/payd" "$log"
  taskset -c 1 "$bin/loadtest" run --addr "127.0.0.1:$port" --duration 11s --accounts 10000 \
    --connections 64 --scenario uniform --rate "constant:$rate" --label "run$i" --out "$work/out" -q \
    >"$work/loadtest.out" 2>&1
  curl -sf "127.0.0.1:$port/metrics" >"$work/metrics.txt"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  python3 - "$i" "$work/out/run$i.json" "$work/metrics.txt" <<'PY'
import json, re, sys
run, report, metrics = sys.argv[1], json.load(open(sys.argv[2])), open(sys.argv[3]).read()
worst = max(report["timeline"], key=lambda s: s["p99_us"])
buckets = [
    (m.group(1), float(line.split()[-1]))
    for line in metrics.splitlines()
    if line.startswith("rongpay_wal_sync_duration_seconds_bucket")
    for m in [re.search(r'le="([^"]+)"', line)]
]
total = buckets[-1][1] if buckets else 0
def over(seconds):
    below = [c for le, c in buckets if le != "+Inf" and float(le) <= seconds]
    return int(total - (max(below) if below else 0))
print(
    f"run {run}: p99 {report['latency']['p99_us'] / 1000:.1f} ms, worst second t = {worst['t']}: "
    f"{worst['p99_us'] / 1000:.1f} ms; group writes over 10 ms: {over(0.01)}, over 50 ms: "
    f"{over(0.05)}, of {int(total)}"
)
PY
done
