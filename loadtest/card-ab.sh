#!/usr/bin/env bash
# Card payments against balance payments, alternated between payd builds (issue #14): for
# each binary given, in order, a fresh payd on core 0 runs uniform balance payments, then a
# fresh payd runs card payments through channel-sim (two channels, 1 ms median latency, on
# the load generator's core 1); prints both rates and their ratio. Give the binaries twice
# or more, alternated (A B A B), so that the machine's drift shows as noise, not as a
# difference between builds.
#   loadtest/card-ab.sh SECONDS PAYD [PAYD ...]
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { sed -n 2,8p "$0"; exit 2; }
secs=$1
shift
scripts/setup.sh build
. scripts/env.sh
cargo build --release --workspace -q
bin="${CARGO_TARGET_DIR:-target}/release"
work=$(mktemp -d)
port=18580
sim_port=18590
export RONGPAY_ADMIN_TOKEN="adm_ab_$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export RONGPAY_RATE_MERCHANT_PER_S=1000000 RONGPAY_RATE_MERCHANT_BURST=1000000
taskset -c 1 "$bin/channel-sim" --listen "127.0.0.1:$sim_port" --channel 'a={"latency_ms":1}' \
  --channel 'b={"latency_ms":1}' >"$work/sim.log" 2>&1 &
sim=$!
trap 'kill $sim 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do curl -sf "127.0.0.1:$sim_port/_sim/channels" >/dev/null && break; sleep 0.05; done
# One run on a fresh payd: prints its payments per second.
run() {
  rm -rf "$work/payd"
  taskset -c 0 "$1" serve --data-dir "$work/payd" --listen "127.0.0.1:$port" >"$work/payd.log" 2>&1 &
  local payd=$!
  for _ in $(seq 1 400); do curl -sf "127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.05; done
  local extra=()
  [ "$2" = card ] && extra=(--sim "127.0.0.1:$sim_port")
  taskset -c 1 "$bin/loadtest" run --addr "127.0.0.1:$port" --duration "${secs}s" --connections 64 \
    --scenario "$2" --accounts 10000 "${extra[@]}" --label "$2" --out "$work/out" -q >/dev/null 2>&1
  kill "$payd"
  wait "$payd" 2>/dev/null || true
  python3 -c "import json; print(round(json.load(open('$work/out/$2.json'))['throughput']))"
}
echo "| payd | uniform ok/s | card ok/s | card / uniform |"
echo "|---|---:|---:|---:|"
for payd in "$@"; do
  u=$(run "$payd" uniform)
  c=$(run "$payd" card)
  echo "| $payd | $u | $c | $(python3 -c "print(f'{$c / $u:.3f}')") |"
done
