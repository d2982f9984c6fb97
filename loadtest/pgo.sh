#!/usr/bin/env bash
# A profile-guided payd (issue #14, session 30), to compare with the `dist` build it starts
# from: builds payd instrumented (`-Cprofile-generate`), runs it under the harness's uniform
# balance payments, card payments (channel-sim, two 1 ms channels) and the batch endpoint
# (8 s each, payd on core 0, the load on core 1), merges the profiles with the
# `llvm-profdata` of rustc's own LLVM version (Debian's `llvm-N`, installed when missing),
# and builds payd again with them (`-Cprofile-use`). Prints the optimized binary's path;
# then, for example:
#   loadtest/ab.sh card 10 target/dist/payd "$pgo" target/dist/payd "$pgo"
# Both builds are the `dist` profile (fat LTO) in target directories of their own and link
# the librocksdb.a the `dist` build compiled (RocksDB's C++ is not profiled: recompiling it
# under other flags would take ~12 minutes each).
#   loadtest/pgo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
. scripts/env.sh
target="${CARGO_TARGET_DIR:-$PWD/target}"
triple=$(rustc -vV | sed -n 's/^host: //p')
llvm=$(rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')
profdata="/usr/lib/llvm-$llvm/bin/llvm-profdata"
if [ ! -x "$profdata" ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "llvm-$llvm" >/dev/null
fi
rocksdb_lib=$(cargo build --profile dist -q --workspace --message-format=json \
  | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "build-script-executed" and "librocksdb-sys" in m["package_id"]:
        print(m["out_dir"] + "/librocksdb.a")
' | head -1)
[ -f "$rocksdb_lib" ] || { echo "pgo: the build named no librocksdb.a ($rocksdb_lib)" >&2; exit 1; }
export ROCKSDB_LIB_DIR="$(dirname "$rocksdb_lib")" ROCKSDB_STATIC=1
bin="$target/dist"
# As .cargo/config.toml's, which RUSTFLAGS replaces. With --target, RUSTFLAGS reach the
# target's crates only, not build scripts and proc macros.
flags="-C target-cpu=x86-64-v2 -C target-feature=+pclmulqdq"
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
echo "pgo: building the instrumented payd" >&2
CARGO_TARGET_DIR="$target/pgo-generate" RUSTFLAGS="$flags -Cprofile-generate=$work/raw" \
  cargo build --profile dist -q --workspace --bin payd --target "$triple"
export RONGPAY_ADMIN_TOKEN="adm_pgo_$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export RONGPAY_RATE_MERCHANT_PER_S=1000000 RONGPAY_RATE_MERCHANT_BURST=1000000
port=18890
sim_port=18891
taskset -c 1 "$bin/channel-sim" --listen "127.0.0.1:$sim_port" --channel 'a={"latency_ms":1}' \
  --channel 'b={"latency_ms":1}' >"$work/sim.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do curl -sf "127.0.0.1:$sim_port/_sim/channels" >/dev/null && break; sleep 0.05; done
for scenario in uniform card batch; do
  rm -rf "$work/payd"
  LLVM_PROFILE_FILE="$work/raw/payd-%p-%m.profraw" taskset -c 0 \
    "$target/pgo-generate/$triple/dist/payd" serve --data-dir "$work/payd" \
    --listen "127.0.0.1:$port" >"$work/payd.log" 2>&1 &
  payd=$!
  for _ in $(seq 1 400); do curl -sf "127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.05; done
  case "$scenario" in
    card) load=(--connections 64 --sim "127.0.0.1:$sim_port") ;;
    batch) load=(--connections 2 --batch-size 8190) ;;
    *) load=(--connections 64) ;;
  esac
  taskset -c 1 "$bin/loadtest" run --addr "127.0.0.1:$port" --duration 8s --accounts 10000 \
    --scenario "$scenario" "${load[@]}" --label "$scenario" --out "$work/out" -q \
    >"$work/loadtest.out" 2>&1 || { tail -20 "$work/loadtest.out" >&2; exit 1; }
  # A clean exit writes the profile.
  kill -TERM "$payd"
  wait "$payd" 2>/dev/null || true
  echo "pgo: profiled $scenario: $(grep -m1 '^checks:' "$work/loadtest.out")" >&2
done
mkdir -p "$target/pgo-profiles"
"$profdata" merge -o "$work/merged.profdata" "$work"/raw/*.profraw
# Named by its content: a new profile is new RUSTFLAGS, so cargo rebuilds with it (it does
# not track the file itself).
merged="$target/pgo-profiles/payd-$(sha256sum "$work/merged.profdata" | cut -c1-16).profdata"
mv "$work/merged.profdata" "$merged"
echo "pgo: building payd with $merged" >&2
CARGO_TARGET_DIR="$target/pgo-use" RUSTFLAGS="$flags -Cprofile-use=$merged" \
  cargo build --profile dist -q --workspace --bin payd --target "$triple"
echo "$target/pgo-use/$triple/dist/payd"
