# Sourced by the run and test scripts: one warm target directory outside the clone when the
# machine has one (RocksDB's C++ takes ~12 minutes per profile to compile), else ./target.
cache="${HOME:-/root}/.cache/rongpay/target"
if [ -z "${CARGO_TARGET_DIR:-}" ] && [ -d "$cache" ]; then
  export CARGO_TARGET_DIR="$cache"
fi
# Test and bench binaries are relinked under a new name whenever their code changes, and the
# old ones (hundreds of MB each, with debug info) would pile up in a shared cache until the
# disk is full: drop executables not touched for two hours (cargo relinks any it still needs).
if [ -n "${CARGO_TARGET_DIR:-}" ] && [ -d "$CARGO_TARGET_DIR/release/deps" ]; then
  find "$CARGO_TARGET_DIR/release/deps" -maxdepth 1 -type f ! -name '*.*' -mmin +120 -delete 2>/dev/null || true
fi
# CI builds once from nothing, where incremental data only costs disk (several GB across the
# workspace's crates) and time; developers keep it (the release profile's `incremental`).
if [ -n "${CI:-}" ]; then
  export CARGO_INCREMENTAL=0
fi
# RocksDB's C++ (and the compression libraries' C) with clang, which the build tier installs
# for bindgen anyway: 17.2 minutes for librocksdb.a on 2 cores against g++'s 20.7, and the
# engine bench no different (docs/BENCHMARKS.md, "The test command from nothing, timed").
# A caller's own CC/CXX win.
export CC="${CC:-clang}" CXX="${CXX:-clang++}"
