#!/usr/bin/env bash
# payd's threads under load, per payment (issue #14): for each setting given, a fresh payd on
# core 0 with that environment and the harness on core 1 (64 connections), then the run's
# rate and latency, and per thread of payd the context switches (voluntary: it slept and was
# woken; involuntary: it was preempted) and CPU µs per payment, counted from
# /proc/<pid>/task/*/{status,stat} over the run's middle. Give the settings alternated
# (A B A B) so that the machine's drift shows as noise.
#   loadtest/threads.sh SECONDS SCENARIO SETTING [SETTING ...]
# SCENARIO: uniform, hot or card (card: through channel-sim, two 1 ms channels, on core 1).
# SETTING: space-separated NAME=VALUE pairs for payd's environment; "" for the defaults.
# PAYD=path among them runs that payd binary (another build, for a before/after).
# RATE=n: an open loop at n payments/s instead of the closed loop.
# Also prints the WAL's synced groups over the same window: how many a second and how many
# commit units (a balance payment is one, a card payment two) each carried, beside payd's
# whole CPU per payment: what a group costs shows in how the two move together.
#   loadtest/threads.sh 10 uniform RONGPAY_LEDGER_SCHED_BATCH=false "" RONGPAY_LEDGER_SCHED_BATCH=false ""
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 3 ] || { sed -n 2,11p "$0"; exit 2; }
secs=$1
scenario=$2
shift 2
[ "$secs" -ge 4 ] || { echo "threads.sh: at least 4 seconds" >&2; exit 2; }
port=18680
sim_port=18690
token_prefix=adm_thr
. loadtest/runs.sh
sim=()
if [ "$scenario" = card ]; then
  start_sim
  sim=(--sim "127.0.0.1:$sim_port")
fi
payments() {
  curl -sf "127.0.0.1:$port/metrics" | awk '/^rongpay_payments_total/ {s += $2} END {printf "%d\n", s}'
}
# name voluntary involuntary cpu-ticks, summed over the threads of one name (the HTTP
# workers, RocksDB's pools); the main thread as "main". payd pinned to one core runs the
# ledger on its HTTP worker (`ledger_home` auto); RONGPAY_LEDGER_HOME=own_thread puts it back
# on the main thread.
snapshot() {
  local pid=$1 t
  for t in /proc/"$pid"/task/*; do
    local name
    name=$(tr ' ' _ <"$t/comm")
    [ "${t##*/}" = "$pid" ] && name="main"
    echo "$name $(awk '/^voluntary_ctxt/ {v = $2} /^nonvoluntary_ctxt/ {n = $2} END {print v, n}' "$t/status") $(sed 's/.*) //' "$t/stat" | awk '{print $12 + $13}')"
  done | awk '{v[$1] += $2; n[$1] += $3; c[$1] += $4} END {for (k in v) print k, v[k], n[k], c[k]}' | sort
}
# The WAL's synced groups so far: "<units> <groups>".
groups() {
  curl -sf "127.0.0.1:$port/metrics" \
    | awk '$1 == "rongpay_wal_batch_units_sum" {u = $2} $1 == "rongpay_wal_batch_units_count" {g = $2} END {print u + 0, g + 0}'
}
hz=$(getconf CLK_TCK)
echo "machine: $(nproc --all) cores, $(lscpu | sed -n 's/^Model name: *//p'), Linux $(uname -r); payd on core 0, load on core 1; $scenario, 64 connections, ${secs}s per run"
n=0
for setting in "$@"; do
  n=$((n + 1))
  rm -rf "$work/payd"
  payd="$bin/payd"
  for word in $setting; do
    case "$word" in PAYD=*) payd="${word#PAYD=}" ;; esac
  done
  # shellcheck disable=SC2086 # the setting is a list of NAME=VALUE words
  env $setting taskset -c 0 "$payd" serve --data-dir "$work/payd" --listen "127.0.0.1:$port" \
    >"$work/payd.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 400); do curl -sf "127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.05; done
  taskset -c 1 "$bin/loadtest" run --addr "127.0.0.1:$port" --duration "${secs}s" --accounts 10000 \
    --connections 64 --scenario "$scenario" "${sim[@]}" ${RATE:+--rate "constant:$RATE"} \
    --label "run$n" --out "$work/out" -q \
    >"$work/loadtest.out" 2>&1 &
  lt=$!
  # The harness sets up its accounts first; count from one second into its payments to one
  # second before its end.
  for _ in $(seq 1 600); do [ "$(payments)" -gt 1000 ] && break; sleep 0.1; done
  sleep 1
  p0=$(payments)
  g0=$(groups)
  snapshot "$pid" >"$work/s0"
  sleep $((secs - 2))
  p1=$(payments)
  g1=$(groups)
  snapshot "$pid" >"$work/s1"
  wait "$lt"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  count=$((p1 - p0))
  echo
  echo "### run $n: ${setting:-defaults}"
  python3 -c "
import json, sys
r = json.load(open(sys.argv[1]))
l, c = r['latency'], r['checks']
print(f\"{round(r['throughput'])} ok/s, p50 {l['p50_us'] / 1000:.2f} ms, p99 {l['p99_us'] / 1000:.2f} ms, {r['errors']} errors; checks {'passed' if c['passed'] else 'FAILED'} ({c['verified']} verified)\")
" "$work/out/run$n.json"
  echo
  echo "| thread | woken / payment | preempted / payment | CPU µs / payment |"
  echo "|---|---:|---:|---:|"
  join "$work/s0" "$work/s1" | awk -v n="$count" -v hz="$hz" '($7 - $4) > 0 || ($5 - $2) > 0 {
    printf "| `%s` | %.3f | %.3f | %.1f |\n", $1, ($5 - $2) / n, ($6 - $3) / n, ($7 - $4) * 1e6 / hz / n }'
  echo "| (payments counted) | $count | | |"
  echo
  join "$work/s0" "$work/s1" | awk -v n="$count" -v hz="$hz" -v s="$((secs - 2))" \
    -v u="$((${g1% *} - ${g0% *}))" -v g="$((${g1#* } - ${g0#* }))" '{c += $7 - $4} END {
    printf "synced groups: %.0f/s, %.1f units a group; payd %.0f%% of its core, %.1f CPU µs a payment\n",
      g / s, (g > 0 ? u / g : 0), 100 * c / hz / s, c * 1e6 / hz / n }'
done
