#!/usr/bin/env bash
# What a balance payment waits for at 64 connections (issue #14, session 43): payd on core
# 0, the harness's uniform balance payments on core 1, and during the load:
#   - payd's and the harness's share of their cores, and payd's CPU per payment;
#   - each payd thread's CPU, its wait for the CPU (`schedstat`) and its voluntary
#     switches, per payment;
#   - the block layer's view of the WAL's syncs for one second (`perf record` of the
#     block_rq_issue/block_rq_complete tracepoints): each request type's time in the device
#     (`WS` data, `WSM` the inode, `FF` the cache flush) and the time from one request's
#     completion to the next request of each type (loadtest/sync-trace.py).
#   loadtest/sync-trace.sh [connections, default 64]
# PAYD=path traces another payd binary.
set -euo pipefail
cd "$(dirname "$0")/.."
conns="${1:-64}"
port=18780
sim_port=18790
token_prefix=adm_trace
. loadtest/runs.sh
if ! command -v perf >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf >/dev/null
fi
taskset -c 0 "${PAYD:-$bin/payd}" serve --data-dir "$work/payd" --listen "127.0.0.1:$port" \
  >"$work/payd.log" 2>&1 &
payd=$!
pids+=("$payd")
for _ in $(seq 1 400); do curl -sf "127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.05; done
taskset -c 1 "$bin/loadtest" run --addr "127.0.0.1:$port" --duration 40s --accounts 10000 \
  --connections "$conns" --scenario uniform -q >"$work/loadtest.out" 2>&1 &
harness=$!
pids+=("$harness")
payments() {
  curl -sf "127.0.0.1:$port/metrics" | awk '/^rongpay_payments_total/ {s += $2} END {printf "%d\n", s}'
}
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Per thread: name (spaces as _), CPU ns, ns waiting for the CPU, voluntary switches.
threads() {
  for t in /proc/"$payd"/task/*; do
    echo "$(tr ' ' _ <"$t/comm") $(cut -d' ' -f1,2 "$t/schedstat") $(awk '/^voluntary_ctxt_switches/ {print $2}' "$t/status")"
  done
}
for _ in $(seq 1 600); do [ "$(payments)" -gt 1000 ] && break; sleep 0.1; done
sleep 2
p0=$(payments); a0=$(ticks "$payd"); b0=$(ticks "$harness"); t0=$(date +%s.%N)
threads >"$work/threads0"
perf record -e block:block_rq_issue -e block:block_rq_complete -a -o "$work/block.data" \
  -- sleep 1 >/dev/null 2>&1
sleep 3
p1=$(payments); a1=$(ticks "$payd"); b1=$(ticks "$harness"); t1=$(date +%s.%N)
threads >"$work/threads1"
hz=$(getconf CLK_TCK)
echo "machine: $(nproc --all) cores, $(lscpu | sed -n 's/^Model name: *//p'), Linux $(uname -r); payd on core 0, load on core 1, $conns connections"
python3 - "$p0" "$p1" "$a0" "$a1" "$b0" "$b1" "$t0" "$t1" "$hz" <<'PY'
import sys
p0, p1, a0, a1, b0, b1 = map(int, sys.argv[1:7])
t0, t1, hz = float(sys.argv[7]), float(sys.argv[8]), int(sys.argv[9])
w, n = t1 - t0, p1 - p0
print(f"window {w:.1f} s: {n / w:,.0f} payments/s; payd {(a1 - a0) / hz / w:.0%} of its core "
      f"({(a1 - a0) / hz * 1e6 / n:.1f} µs a payment), the harness {(b1 - b0) / hz / w:.0%} of its")
PY
echo
echo "| thread | CPU µs a payment | waiting for the CPU µs a payment | voluntary switches a payment |"
echo "|---|---:|---:|---:|"
join <(sort "$work/threads0" | awk '{c[$1]+=$2; w[$1]+=$3; v[$1]+=$4} END {for (k in c) print k, c[k], w[k], v[k]}' | sort) \
  <(sort "$work/threads1" | awk '{c[$1]+=$2; w[$1]+=$3; v[$1]+=$4} END {for (k in c) print k, c[k], w[k], v[k]}' | sort) \
  | awk -v n="$((p1 - p0))" '{gsub(/[|]/, "/", $1); c = ($5 - $2) / 1e3 / n; if (c >= 0.05) printf "| `%s` | %.1f | %.1f | %.3f |\n", $1, c, ($6 - $3) / 1e3 / n, ($7 - $4) / n}'
echo
perf script -i "$work/block.data" -F cpu,time,event,trace 2>/dev/null | python3 loadtest/sync-trace.py
