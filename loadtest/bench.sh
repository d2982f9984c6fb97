#!/usr/bin/env bash
# The benchmark report of docs/BENCHMARKS.md, in one run on this machine:
#   - payd's trivial GET /healthz ceiling (the harness, and wrk),
#   - durable balance payments, uniform and one hot merchant (the harness, closed loop),
#   - the same uniform load from wrk with a Lua script (a second, independent client),
#   - payments with refunds, idempotent retries and declines mixed in,
#   - card payments through channel-sim (2 channels, 1 ms), healthy and with one failing 30%,
#   - an open-loop run at 50% of the uniform closed-loop rate (latency without coordinated
#     omission),
#   - the PostgreSQL ledger (one ACID transaction per payment, default durability), uniform
#     and hot, driven by the same harness.
# The server under test (payd, then PostgreSQL) is pinned to core 0, the load generator to
# core 1. Prints one table with ratios; reports and plots go to $OUT.
# Usage: loadtest/bench.sh [seconds per run, default 10] [connections, default 64]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"
conns="${2:-64}"
scripts/setup.sh build
export DEBIAN_FRONTEND=noninteractive
if ! command -v wrk >/dev/null || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  apt-get install -y -qq wrk postgresql >/dev/null
fi
. scripts/env.sh
cargo build --profile dist --workspace -q
bin="${CARGO_TARGET_DIR:-target}/dist"
out="${OUT:-loadtest-out/bench-$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$out"
work=$(mktemp -d)
chmod 755 "$work"
machine="$(nproc --all) cores, $(lscpu | sed -n 's/^Model name: *//p'), Linux $(uname -r)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -f "$work/pg/postmaster.pid" ]; then runuser -u postgres -- "$pgbin/pg_ctl" -D "$work/pg" -m fast stop >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# ---- payd. Runs compared with each other start on an empty data dir (a fresh payd): a
# store that earlier runs have grown is slower (bigger memtables, compactions), which made
# the order of the runs decide their ratios.
token="adm_bench_$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
port=18480
export RONGPAY_ADMIN_TOKEN="$token"
# The rate limits stay on (their cost is measured), but one merchant at full speed must not
# be throttled by the default per-merchant limit.
export RONGPAY_RATE_MERCHANT_PER_S=1000000 RONGPAY_RATE_MERCHANT_BURST=1000000
payd_pid=
payd_cpus=0
fresh_payd() {
  if [ -n "$payd_pid" ]; then kill "$payd_pid"; wait "$payd_pid" 2>/dev/null || true; fi
  rm -rf "$work/payd"
  taskset -c "$payd_cpus" "$bin/payd" serve --data-dir "$work/payd" --listen "127.0.0.1:$port" \
    >>"$work/payd.log" 2>&1 &
  payd_pid=$!
  pids+=("$payd_pid")
  for _ in $(seq 1 400); do curl -sf "127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.05; done
}
lt() { taskset -c 1 "$bin/loadtest" run --addr "127.0.0.1:$port" --duration "${secs}s" \
  --connections "$conns" --out "$out" -q "$@" | grep -E '^\| [a-z]|^checks' ; }
echo "machine: $machine; server on core 0, load on core 1, $conns connections, ${secs}s per run"
fresh_payd
lt --scenario healthz --label healthz
taskset -c 1 wrk -t1 -c"$conns" -d"${secs}s" "http://127.0.0.1:$port/healthz" | grep -E "Requests/sec" | sed 's/^/wrk healthz: /'
lt --scenario uniform --accounts 10000 --label payd-uniform
fresh_payd
lt --scenario hot --accounts 10000 --label payd-hot
fresh_payd
taskset -c 1 "$bin/loadtest" run --addr "127.0.0.1:$port" --accounts 10000 --setup-only \
  --wrk-setup "$work/wrk.txt" -q
WRK_SETUP="$work/wrk.txt" WRK_JSON="$out/wrk-payments.json" LABEL=wrk-payments CONNECTIONS="$conns" \
  MACHINE="$machine" RUN_ID="b$RANDOM" taskset -c 1 wrk -t1 -c"$conns" -d"${secs}s" \
  -s loadtest/wrk/payments.lua "http://127.0.0.1:$port" | grep '^wrk:'
fresh_payd
lt --scenario uniform --accounts 10000 --mix refund=5,retry=5,decline=5 --label payd-mixed
# Card payments through channel-sim (two channels, 1 ms median latency; the simulator runs
# on the load generator's core), healthy and with one channel failing 30% of charges.
taskset -c 1 "$bin/channel-sim" --listen 127.0.0.1:18490 --channel 'a={"latency_ms":1}' \
  --channel 'b={"latency_ms":1}' >"$work/sim.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do curl -sf 127.0.0.1:18490/_sim/channels >/dev/null && break; sleep 0.05; done
fresh_payd
lt --scenario card --sim 127.0.0.1:18490 --label payd-card
fresh_payd
curl -sf -X PUT 127.0.0.1:18490/_sim/channels/b -H 'Content-Type: application/json' -d '{"error_rate":0.3}' >/dev/null
lt --scenario card --sim 127.0.0.1:18490 --label payd-card-b-failing-30pct
python3 - "$out" <<'PY'
import json, sys
for n in ["payd-card", "payd-card-b-failing-30pct"]:
    o = json.load(open(f"{sys.argv[1]}/{n}.json"))["outcomes"]
    print(f"{n}: {o.get('succeeded', 0)} of {sum(o.values())} succeeded ({o.get('succeeded', 0) / max(1, sum(o.values())):.4f})")
PY
fresh_payd
rate=$(python3 -c "import json; print(int(json.load(open('$out/payd-uniform.json'))['throughput'] * 0.5))")
lt --scenario uniform --accounts 10000 --rate "constant:$rate" --label payd-open-50pct
# The batch endpoint: 2 connections x 8,190 transfers keeps within payd's 16,384 commands in
# flight (more would be answered 503 overloaded, whole batches at a time).
fresh_payd
taskset -c 1 "$bin/loadtest" run --addr "127.0.0.1:$port" --duration "${secs}s" --connections 2 \
  --scenario batch --batch-size 8190 --accounts 10000 --out "$out" -q --label payd-batch \
  | grep -E '^\| [a-z]|^checks|^batch'
# The same with payd and the harness unpinned on both cores, as TigerBeetle's benchmark runs
# (loadtest/tb-bench.sh): 6 connections x 2,730, the same 16,380 transfers in flight, which
# on two cores lets the stages overlap (docs/BENCHMARKS.md).
payd_cpus=0,1
fresh_payd
"$bin/loadtest" run --addr "127.0.0.1:$port" --duration "${secs}s" --connections 6 \
  --scenario batch --batch-size 2730 --accounts 10000 --out "$out" -q --label payd-batch-both-cores \
  | grep -E '^\| [a-z]|^checks|^batch'
payd_cpus=0
kill "$payd_pid"; wait "$payd_pid" 2>/dev/null || true

# ---- PostgreSQL: a private cluster on loopback with the defaults (fsync, synchronous_commit)
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
mkdir -p "$work/pg" && chown postgres "$work/pg"
runuser -u postgres -- "$pgbin/initdb" -D "$work/pg" -A trust -U postgres >/dev/null
taskset -c 0 runuser -u postgres -- "$pgbin/pg_ctl" -D "$work/pg" -l "$work/pg/server.log" -w \
  -o "-p 55432 -k $work/pg -c listen_addresses=127.0.0.1" start >/dev/null
pg="host=127.0.0.1 port=55432 user=postgres dbname=postgres"
echo "postgres: $("$pgbin/postgres" --version), fsync=$(runuser -u postgres -- psql -h 127.0.0.1 -p 55432 -Atc 'show fsync'), synchronous_commit=$(runuser -u postgres -- psql -h 127.0.0.1 -p 55432 -Atc 'show synchronous_commit')"
lt --target postgres --pg "$pg" --scenario uniform --accounts 10000 --label postgres-uniform
lt --target postgres --pg "$pg" --scenario hot --accounts 10000 --label postgres-hot

echo
echo "## $(date -u +%Y-%m-%dT%H:%MZ), $machine"
"$bin/loadtest" table --baseline healthz --baseline payd-uniform --baseline postgres-uniform \
  --baseline postgres-hot "$out"/healthz.json "$out"/payd-uniform.json "$out"/payd-hot.json \
  "$out"/wrk-payments.json "$out"/payd-mixed.json "$out"/payd-open-50pct.json \
  "$out"/payd-card.json "$out"/payd-card-b-failing-30pct.json \
  "$out"/postgres-uniform.json "$out"/postgres-hot.json | tee "$out/table.md"
echo "reports and plots: $out"
