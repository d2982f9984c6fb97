#!/usr/bin/env bash
# Prints the directory of the librocksdb.a that a build compiled, for builds under other
# flags to link instead of compiling RocksDB's C++ again (~12 minutes on 2 cores):
#   export ROCKSDB_LIB_DIR="$(scripts/rocksdb-lib.sh --release --workspace --all-targets)" ROCKSDB_STATIC=1
# The arguments are that build's (cargo build …): it runs (a no-op when it is up to date) and
# names its build script's out dir. Another librocksdb.a in the target dir, from a build of one
# package (which resolves other features for RocksDB's dependencies) or of another commit,
# may have been built with other features, and would not link.
set -euo pipefail
# The shared target dir (scripts/env.sh) when the caller has not sourced it: without it this
# build went to ./target and compiled RocksDB's C++ again (session 44).
cd "$(dirname "$0")/.."
. scripts/env.sh
lib=$(cargo build -q --message-format=json "$@" | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "build-script-executed" and "librocksdb-sys" in m["package_id"]:
        print(m["out_dir"] + "/librocksdb.a")
' | head -1)
[ -f "$lib" ] || { echo "rocksdb-lib: the build named no librocksdb.a ($lib)" >&2; exit 1; }
dirname "$lib"
