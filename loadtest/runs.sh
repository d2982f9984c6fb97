# Sourced by loadtest/ab.sh, loadtest/threads.sh, loadtest/batch-shape.sh and
# loadtest/sync-stalls.sh (from the repo's root): builds payd and the harness and sets up
# what their runs share. Set `port`, `sim_port` and `token_prefix` first. Leaves `bin`, `work`
# (removed at exit), `pids` (killed at exit) and `start_sim`.
scripts/setup.sh build
. scripts/env.sh
cargo build --profile dist --workspace -q
bin="${CARGO_TARGET_DIR:-target}/dist"
work=$(mktemp -d)
export RONGPAY_ADMIN_TOKEN="${token_prefix}_$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export RONGPAY_RATE_MERCHANT_PER_S=1000000 RONGPAY_RATE_MERCHANT_BURST=1000000
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
# channel-sim on core 1 at $sim_port, two channels of 1 ms median latency, as the card runs
# of loadtest/bench.sh have; returns once it answers. SIM=path runs another channel-sim build,
# e.g. one from before session 45 fixed its delays: `SIM=/tmp/channel-sim-old loadtest/ab.sh card ...`.
start_sim() {
  taskset -c 1 "${SIM:-$bin/channel-sim}" --listen "127.0.0.1:$sim_port" --channel 'a={"latency_ms":1}' \
    --channel 'b={"latency_ms":1}' >"$work/sim.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do curl -sf "127.0.0.1:$sim_port/_sim/channels" >/dev/null && break; sleep 0.05; done
}
