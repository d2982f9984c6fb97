#!/usr/bin/env bash
# The batch endpoint under one placement and one request shape (issue #14): a fresh payd on
# PAYD_CPUS, the harness on LT_CPUS, CONNS connections of SIZE transfers each, for SECS
# seconds (its 10,000 accounts set up first, then its default warm-up). Prints the harness's
# result and end checks, and the CPU seconds payd and the harness used over the whole run.
# Give the shapes alternated to compare them, e.g.
#   loadtest/batch-shape.sh 10 0,1 0,1 2 8190; loadtest/batch-shape.sh 10 0,1 0,1 6 2730
# PAYD=path runs another payd binary.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 5 ] || { sed -n 2,8p "$0"; exit 2; }
secs=$1 payd_cpus=$2 lt_cpus=$3 conns=$4 size=$5
port=18585
sim_port=18595
token_prefix=adm_bs
. loadtest/runs.sh
taskset -c "$payd_cpus" "${PAYD:-$bin/payd}" serve --data-dir "$work/payd" \
  --listen "127.0.0.1:$port" >"$work/payd.log" 2>&1 &
pid=$!
pids+=("$pid")
for _ in $(seq 1 400); do curl -sf "127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.05; done
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
t0=$(ticks)
/usr/bin/time -f "%U %S" -o "$work/lt.time" taskset -c "$lt_cpus" "$bin/loadtest" run \
  --addr "127.0.0.1:$port" --connections "$conns" --scenario batch --batch-size "$size" \
  --accounts 10000 --duration "${secs}s" -q 2>&1 | grep -E '^batch|^checks'
t1=$(ticks)
echo "payd on cores $payd_cpus, harness on cores $lt_cpus, $conns x $size: payd CPU $(awk -v t=$((t1 - t0)) 'BEGIN {printf "%.2f", t / 100}') s, harness CPU $(awk '{printf "%.2f", $1 + $2}' "$work/lt.time") s"
