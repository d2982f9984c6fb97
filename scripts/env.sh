# Sourced by the run and test scripts: one warm target directory outside the clone when the
# machine has one (RocksDB's C++ takes ~12 minutes per profile to compile), else ./target.
cache="${HOME:-/root}/.cache/rongpay/target"
if [ -z "${CARGO_TARGET_DIR:-}" ] && [ -d "$cache" ]; then
  export CARGO_TARGET_DIR="$cache"
fi
