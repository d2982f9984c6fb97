#!/usr/bin/env bash
# Installs what building and testing rongpay needs on a fresh Debian machine:
# libclang (bindgen, for the rocksdb crate's bundled C++), clang, and Prometheus/promtool
# (real scrapes in tests). Idempotent: skips packages already installed.
set -euo pipefail
packages=(libclang-dev clang prometheus)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
for c in rustfmt clippy; do
  rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c"
done
