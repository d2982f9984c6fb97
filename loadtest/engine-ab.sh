#!/usr/bin/env bash
# The engine bench of two or more payd builds, alternated, on fresh directories (issue #14):
# 1,024 submitters over 1M accounts, both cores, uniform and hot account. Give the binaries
# in the order to alternate (A B); each round runs each once. PAYD@ARGS adds the bench's
# flags, comma-separated (e.g. payd@--balance-seal-accounts=0: one build, two settings).
#   loadtest/engine-ab.sh ROUNDS SECONDS PAYD[@ARGS] [PAYD[@ARGS] ...]
# One line per run: transfers/s, p50/p99/p999 ms and CPU µs per transfer of the uniform
# scenario, then the hot account's rate, p99 and CPU µs.
set -euo pipefail
[ $# -ge 3 ] || { sed -n 2,9p "$0"; exit 2; }
rounds=$1
secs=$2
shift 2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export RONGPAY_ADMIN_TOKEN=${RONGPAY_ADMIN_TOKEN:-adm_engine_ab_0123456789}
for _ in $(seq 1 "$rounds"); do
  for spec in "$@"; do
    bin=${spec%%@*}
    extra=()
    if [ "$spec" != "$bin" ]; then IFS=, read -r -a extra <<<"${spec#*@}"; fi
    rm -rf "$work/run"
    mkdir -p "$work/run"
    out=$(taskset -c 0,1 "$bin" bench engine --accounts 1000000 --submitters 1024 \
      --seconds "$secs" --warmup 2 --dir "$work/run" "${extra[@]}" 2>&1)
    u=$(echo "$out" | grep '^| uniform' | awk -F'|' '{printf "uniform %s p50 %s p99 %s p999 %s cpu %s", $4, $5, $6, $7, $11}')
    h=$(echo "$out" | grep '^| hot' | awk -F'|' '{printf "hot %s p99 %s cpu %s", $4, $6, $11}')
    echo "$(date -u +%H:%M:%S) $spec: $u | $h"
  done
done
