#!/usr/bin/env bash
# kill -9 under the engine bench's load, then `payd verify` (issue #14): for each delay,
# `payd bench engine` (1M accounts, 1,024 submitters, both cores) is killed with SIGKILL
# that many seconds after its start (populating takes the first ≈ 3 s), and the store it
# left is opened, replayed and checked against a replay of the whole journal.
#   loadtest/engine-crash.sh PAYD DELAY_SECONDS...
# One line per kill: what open replayed and how long it took, then verify's verdict.
set -euo pipefail
[ $# -ge 2 ] || { sed -n 2,7p "$0"; exit 2; }
payd=$1
shift
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export RONGPAY_ADMIN_TOKEN=${RONGPAY_ADMIN_TOKEN:-adm_engine_crash_0123456789}
for delay in "$@"; do
  rm -rf "$work/run"
  mkdir -p "$work/run"
  taskset -c 0,1 "$payd" bench engine --accounts 1000000 --submitters 1024 --seconds 6 \
    --warmup 2 --dir "$work/run" >"$work/bench.log" 2>&1 &
  pid=$!
  sleep "$delay"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  left=$(ls "$work/run/store/ingest" 2>/dev/null | tr '\n' ' ')
  out=$(cd "$work" && "$payd" verify --data-dir "$work/run/store" 2>&1) && status=ok || status=FAILED
  recovered=$(echo "$out" | grep -o '"last_seq":[0-9]*,"accounts":[0-9]*,"replayed":[0-9]*' | head -1)
  opened=$(echo "$out" | grep '"store recovered"' | grep -o '"elapsed_ms":[0-9]*' | head -1)
  echo "killed at ${delay} s: ${recovered} ${opened} ingest dir: [${left}]"
  echo "$out" | grep '^payd verify' || echo "$out" | tail -3
  [ "$status" = ok ] || exit 1
done
