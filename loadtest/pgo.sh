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
port=18890
sim_port=18891
token_prefix=adm_pgo
. loadtest/runs.sh
target="${CARGO_TARGET_DIR:-$PWD/target}"
triple=$(rustc -vV | sed -n 's/^host: //p')
llvm=$(rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')
profdata="/usr/lib/llvm-$llvm/bin/llvm-profdata"
if [ ! -x "$profdata" ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "llvm-$llvm" >/dev/null
fi
ROCKSDB_LIB_DIR="$(scripts/rocksdb-lib.sh --profile dist --workspace)"
export ROCKSDB_LIB_DIR ROCKSDB_STATIC=1
# As .cargo/config.toml's, which RUSTFLAGS replaces. With --target, RUSTFLAGS reach the
# target's crates only, not build scripts and proc macros.
flags=""
if [ "$triple" = x86_64-unknown-linux-gnu ]; then
  flags="-C target-cpu=x86-64-v2 -C target-feature=+pclmulqdq"
fi
# A fixed directory, so that the instrumented build's flags stay the same from run to run.
raw="$target/pgo-raw"
rm -rf "$raw"
echo "pgo: building the instrumented payd" >&2
CARGO_TARGET_DIR="$target/pgo-generate" RUSTFLAGS="$flags -Cprofile-generate=$raw" \
  cargo build --profile dist -q --workspace --bin payd --target "$triple"
start_sim
for scenario in uniform card batch; do
  rm -rf "$work/payd"
  LLVM_PROFILE_FILE="$raw/payd-%p-%m.profraw" taskset -c 0 \
    "$target/pgo-generate/$triple/dist/payd" serve --data-dir "$work/payd" \
    --listen "127.0.0.1:$port" >"$work/payd.log" 2>&1 &
  payd=$!
  pids+=("$payd")
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
"$profdata" merge -o "$work/merged.profdata" "$raw"/*.profraw
# Named by its content: a new profile is new RUSTFLAGS, so cargo rebuilds with it (it does
# not track the file itself).
merged="$target/pgo-profiles/payd-$(sha256sum "$work/merged.profdata" | cut -c1-16).profdata"
mv "$work/merged.profdata" "$merged"
echo "pgo: building payd with $merged" >&2
CARGO_TARGET_DIR="$target/pgo-use" RUSTFLAGS="$flags -Cprofile-use=$merged" \
  cargo build --profile dist -q --workspace --bin payd --target "$triple"
echo "$target/pgo-use/$triple/dist/payd"
