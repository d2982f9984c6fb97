#!/usr/bin/env bash
# TigerBeetle beside payd, in one go (issue #14): TigerBeetle's own `benchmark`, payd's engine
# bench and payd's batch endpoint over HTTP, each with its rate and its CPU µs per transfer
# (process CPU time / transfers, which moves less with this machine's noise than a rate),
# then the ratios.
#
#   TB_BIN=/path/to/tigerbeetle loadtest/tb-bench.sh
#   TB_SRC=/path/to/tigerbeetle loadtest/tb-bench.sh   # a git checkout of 0.17.8: built here
#                                                      # with Zig 0.14.1 from PyPI's `ziglang`
#
# Nothing of TigerBeetle is committed to this repository. Settings (environment):
# ACCOUNTS (1000000), TRANSFERS for TigerBeetle (4000000), SECS per payd run (10).
set -euo pipefail
cd "$(dirname "$0")/.."
accounts="${ACCOUNTS:-1000000}"
transfers="${TRANSFERS:-4000000}"
secs="${SECS:-10}"

if [ -z "${TB_BIN:-}" ]; then
  if [ -z "${TB_SRC:-}" ]; then
    echo "tb-bench: set TB_BIN (a tigerbeetle binary) or TB_SRC (a git checkout of TigerBeetle 0.17.8)" >&2
    exit 2
  fi
  if [ "$(python3 -m ziglang version 2>/dev/null)" != "0.14.1" ]; then
    python3 -m pip install --quiet ziglang==0.14.1
  fi
  (cd "$TB_SRC" && python3 -m ziglang build -Drelease)
  TB_BIN="$TB_SRC/tigerbeetle"
fi
scripts/setup.sh build
. scripts/env.sh
cargo build --profile dist --workspace -q
bin="${CARGO_TARGET_DIR:-target}/dist"
work=$(mktemp -d)
payd_pid=
cleanup() {
  if [ -n "$payd_pid" ]; then kill "$payd_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # user + system, in 1/100 s
machine="$(nproc --all) cores, $(lscpu | sed -n 's/^Model name: *//p'), Linux $(uname -r)"
echo "machine: $machine; $(date -u +%Y-%m-%dT%H:%MZ)"
echo "tigerbeetle: $("$TB_BIN" version 2>&1 | head -1)"

# 1. TigerBeetle's own benchmark: one replica and its load generator, both cores, batches of
#    8,189 transfers (its default), accounts uniform.
(cd "$work" && /usr/bin/time -f "%U %S" -o "$work/tb.time" "$TB_BIN" benchmark \
  --account-count="$accounts" --transfer-count="$transfers" >"$work/tb.out" 2>&1) || {
  cat "$work/tb.out" >&2
  exit 1
}
tb_rate=$(sed -n 's/^load accepted = \([0-9,]*\) tx\/s.*/\1/p' "$work/tb.out" | tr -d ,)
tb_p99=$(sed -n 's/^batch latency p99 *= *\([0-9]*\) ms.*/\1/p' "$work/tb.out")
tb_cpu=$(awk -v n="$transfers" '{printf "%.1f", ($1 + $2) * 1e6 / n}' "$work/tb.time")
echo "tigerbeetle benchmark: $tb_rate transfers/s, batch p99 ${tb_p99:-?} ms, $tb_cpu CPU µs/transfer (replica + load generator, account creation and its query phase included)"

# 2. payd's engine: 1,024 submitters, in process, both cores.
"$bin/payd" bench engine --accounts "$accounts" --submitters 1024 --seconds "$secs" \
  --warmup 2 --dir "$work" 2>/dev/null | grep -E '^\| (uniform|hot)' >"$work/engine.out"
engine_rate=$(awk -F'|' '/uniform/ {gsub(/ /, "", $4); print $4}' "$work/engine.out")
engine_p99=$(awk -F'|' '/uniform/ {gsub(/ /, "", $6); print $6}' "$work/engine.out")
engine_cpu=$(awk -F'|' '/uniform/ {gsub(/ /, "", $11); print $11}' "$work/engine.out")
hot_rate=$(awk -F'|' '/hot/ {gsub(/ /, "", $4); print $4}' "$work/engine.out")
echo "payd engine (1,024 submitters, $accounts accounts): uniform $engine_rate transfers/s (p99 $engine_p99 ms, $engine_cpu CPU µs/transfer), hot $hot_rate"

# 3. payd's batch endpoint over HTTP, 16,380 transfers in flight (payd admits 16,384
#    commands at once), twice: server on core 0 and load generator on core 1, two
#    connections of 8,190 transfers each (issue #14's one-core measure), then both unpinned
#    on both cores, as TigerBeetle's replica and its load generator run in step 1 (the
#    like-for-like ratio), as six connections of 2,730: on two cores payd's two HTTP
#    workers, its ledger, its writer and the harness overlap better with more, smaller
#    requests (+7.5% over 2 x 8,190 in alternated runs, docs/BENCHMARKS.md).
token="adm_tb_$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
port=18580
payd_cpus=0
lt_cpus=1
conns=2
size=8190
fresh_payd() {
  if [ -n "$payd_pid" ]; then kill "$payd_pid"; wait "$payd_pid" 2>/dev/null || true; fi
  rm -rf "$work/payd"
  RONGPAY_ADMIN_TOKEN="$token" taskset -c "$payd_cpus" "$bin/payd" serve --data-dir "$work/payd" \
    --listen "127.0.0.1:$port" >>"$work/payd.log" 2>&1 &
  payd_pid=$!
  for _ in $(seq 1 400); do curl -sf "127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.05; done
}
lt() {
  RONGPAY_ADMIN_TOKEN="$token" /usr/bin/time -f "%U %S" -o "$work/lt.time" \
    taskset -c "$lt_cpus" "$bin/loadtest" run --addr "127.0.0.1:$port" \
    --connections "$conns" --scenario batch --batch-size "$size" --accounts 10000 --out "$work/lt" \
    -q "$@"
}
lt_ticks() { awk '{printf "%d", ($1 + $2) * 100}' "$work/lt.time"; }
# Prints "rate payd-µs payd+load-generator-µs" per transfer; the setup's own CPU (10,000
# funded accounts), measured alone, is taken off both.
batch_run() {
  fresh_payd
  local before setup_ticks setup_lt run_ticks run_lt done_transfers rate
  before=$(ticks "$payd_pid")
  lt --setup-only >/dev/null
  setup_ticks=$(($(ticks "$payd_pid") - before))
  setup_lt=$(lt_ticks)
  fresh_payd
  before=$(ticks "$payd_pid")
  lt --duration "${secs}s" --warmup 0s --label "tb-bench-batch-$1" >"$work/batch.out"
  run_ticks=$(($(ticks "$payd_pid") - before))
  run_lt=$(lt_ticks)
  grep -E '^batch|^checks' "$work/batch.out" >&2
  rate=$(sed -n 's/.* = \([0-9]*\) transfers\/s.*/\1/p' "$work/batch.out")
  done_transfers=$(sed -n 's/^batch: \([0-9]*\) requests of \([0-9]*\) .*/\1 \2/p' "$work/batch.out" |
    awk '{print $1 * $2}')
  local line
  line=$(awk -v r="$rate" -v t="$run_ticks" -v s="$setup_ticks" -v lt="$run_lt" -v ls="$setup_lt" \
    -v n="$done_transfers" 'BEGIN {n = (n > 0 ? n : 1); printf "%s %.1f %.1f", r, (t - s) * 1e4 / n, (t - s + lt - ls) * 1e4 / n}')
  # (A subshell runs this: the EXIT trap would not know its payd.) Stopped before the line
  # is printed: the caller goes on at the line, and the next run's payd takes the same
  # directory, which this one's shutdown (its final checkpoint, flush and dedup ingestion)
  # may still be writing.
  kill "$payd_pid"
  wait "$payd_pid" 2>/dev/null || true
  echo "$line"
}
read -r batch_rate batch_cpu batch_cpu_all < <(batch_run one-core)
echo "payd batch endpoint (server on 1 core, load generator on the other; 2 connections x 8,190 transfers): $batch_rate transfers/s, $batch_cpu CPU µs/transfer (payd's CPU, setup taken off; $batch_cpu_all with the load generator's)"
payd_cpus=0,1
lt_cpus=0,1
conns=6
size=2730
read -r both_rate both_cpu both_cpu_all < <(batch_run both-cores)
echo "payd batch endpoint (server and load generator on both cores, as TigerBeetle's benchmark; 6 connections x 2,730 transfers): $both_rate transfers/s, $both_cpu CPU µs/transfer (payd's; $both_cpu_all with the load generator's)"

# 4. Ratios.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}'; }
echo
echo "| measure | payd | TigerBeetle | payd / TigerBeetle | target |"
echo "|---|---:|---:|---:|---:|"
echo "| engine uniform transfers/s | $engine_rate | $tb_rate | $(ratio "$engine_rate" "$tb_rate") | ≥ 1.5 |"
echo "| batch endpoint transfers/s (payd on 1 core) | $batch_rate | $tb_rate | $(ratio "$batch_rate" "$tb_rate") | ≥ 3 |"
echo "| batch endpoint transfers/s (both on both cores) | $both_rate | $tb_rate | $(ratio "$both_rate" "$tb_rate") | ≥ 3 |"
echo "| engine CPU µs/transfer | $engine_cpu | $tb_cpu | $(ratio "$engine_cpu" "$tb_cpu") | |"
echo "| batch endpoint CPU µs/transfer (payd + load generator, both cores) | $both_cpu_all | $tb_cpu | $(ratio "$both_cpu_all" "$tb_cpu") | |"
