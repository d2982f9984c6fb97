#!/usr/bin/env bash
# The kill -9 tests as a soak (the "nothing acknowledged is ever lost" guarantee, run more
# often than the suite runs it): every integration test whose name mentions a kill, ROUNDS
# times each, then the engine's own crash test for CYCLES kill cycles (24 in the suite).
#   scripts/kill-soak.sh [ROUNDS, default 5] [CYCLES, default 100]
# One line per test run (round, test, outcome, seconds); a failed run's output is kept in
# $OUT (default loadtest-out/kill-soak-<time>). Exits non-zero if any run failed.
set -uo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
cycles=${2:-100}
scripts/setup.sh build
. scripts/env.sh
out="${OUT:-loadtest-out/kill-soak-$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$out"
# The api crate's integration test binary (payd over HTTP; storage has one of the same name),
# found from cargo's own report.
bin=$(cargo test --release --workspace --test integration --no-run --message-format=json 2>/dev/null |
  python3 -c '
import json, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if (m.get("reason") == "compiler-artifact" and m["target"]["name"] == "integration"
            and "rongpay-api" in m["package_id"] and m.get("executable")):
        print(m["executable"])')
[ -x "$bin" ] || { echo "kill-soak: the integration test binary was not built" >&2; exit 1; }
mapfile -t tests < <("$bin" --list 2>/dev/null | sed -n 's/^\(.*kill.*\): test$/\1/p')
echo "${#tests[@]} kill -9 tests, $rounds rounds"
failed=0
for round in $(seq 1 "$rounds"); do
  for t in "${tests[@]}"; do
    started=$(date +%s)
    # Run from the api crate's directory, as `cargo test` does.
    if (cd api && "$bin" --exact "$t" >"$out/last.log" 2>&1) && grep -q '^test result: ok. 1 passed' "$out/last.log"; then
      echo "$round $t ok $(($(date +%s) - started))s"
    else
      echo "$round $t FAILED (output: $out/$round-${t//::/-}.log)"
      cp "$out/last.log" "$out/$round-${t//::/-}.log"
      failed=$((failed + 1))
    fi
  done
done
started=$(date +%s)
if RONGPAY_CRASH_CYCLES=$cycles cargo test --release -q --workspace --test crash -- --nocapture >"$out/crash.log" 2>&1; then
  echo "actors crash test: $(grep -c 'cycle [0-9]*: killed' "$out/crash.log") kill cycles ok $(($(date +%s) - started))s"
else
  echo "actors crash test FAILED after $(grep -c 'cycle [0-9]*: killed' "$out/crash.log") cycles (output: $out/crash.log)"
  failed=$((failed + 1))
fi
echo "$failed failed"
[ "$failed" -eq 0 ]
