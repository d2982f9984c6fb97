#!/usr/bin/env bash
# Installs what rongpay needs on a fresh Debian machine, in two tiers:
#   scripts/setup.sh build   what building and serving payd needs: libclang and clang (bindgen,
#                            for the rocksdb crate's bundled C++). This is all the run command
#                            installs.
#   scripts/setup.sh test    (the default) the build tier plus the test tools: Prometheus/promtool
#                            and Alertmanager (real scrapes, rule tests, the end-to-end alert;
#                            scripts/ops.sh), chromium (the ops page and the checkout in a
#                            headless browser) with a CJK font (fonts-wqy-microhei: the pages'
#                            Chinese text in screenshots), Node.js and npm (Playwright's core
#                            and axe-core from npm drive it: `npm ci` in browser/), jq
#                            (docs/ops/LOGS.md's one-liners), curl and openssl (TLS tests:
#                            certificates made at test time, real clients), schemathesis from
#                            PyPI (API fuzzing), cargo-fuzz from crates.io, rustfmt and clippy.
# Idempotent: skips what is already installed.
set -euo pipefail
tier="${1:-test}"
case "$tier" in
  build) packages=(libclang-dev clang) ;;
  test) packages=(libclang-dev clang prometheus prometheus-alertmanager chromium fonts-wqy-microhei jq curl openssl) ;;
  *) echo "usage: scripts/setup.sh [build|test]" >&2; exit 2 ;;
esac
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]} (Debian packages)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
[ "$tier" = build ] && exit 0
# Node.js and npm: the machine's own when it has them (Debian's otherwise).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "setup: installing nodejs npm (Debian packages)"
  apt-get update -qq
  apt-get install -y -qq nodejs npm >/dev/null
fi
# The browser tests' npm packages (pinned by browser/package-lock.json).
here="$(cd "$(dirname "$0")/.." && pwd)"
if [ ! -f "$here/browser/node_modules/.package-lock.json" ] \
  || ! cmp -s <(jq -S '.packages | del(.[""])' "$here/browser/package-lock.json") \
               <(jq -S '.packages | del(.[""])' "$here/browser/node_modules/.package-lock.json"); then
  echo "setup: installing the browser tests' npm packages (npm ci in browser/)"
  npm ci --prefix "$here/browser" --no-audit --no-fund --loglevel=error >/dev/null
fi
# schemathesis fuzzes the live API from its OpenAPI document in the test suite.
st="$(python3 -c "import sysconfig; print(sysconfig.get_path('scripts'))")/schemathesis"
if ! "$st" --version 2>/dev/null | grep -q "4.32.5"; then
  echo "setup: installing schemathesis 4.32.5 (PyPI)"
  python3 -m pip install -q --root-user-action=ignore "schemathesis==4.32.5"
fi
# cargo-fuzz (crates.io) runs the fuzz targets on stable Rust (`-s none`).
if ! cargo fuzz --version 2>/dev/null | grep -q "0.13.2"; then
  echo "setup: installing cargo-fuzz 0.13.2 (crates.io)"
  cargo install -q --locked cargo-fuzz --version 0.13.2
fi
for c in rustfmt clippy; do
  rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c"
done
