#!/usr/bin/env python3
"""Attributes `perf script -F comm,tid,ip,sym` samples (with call chains) of payd to the stages
of a request, and prints each stage's share of payd's CPU and its µs per payment.

Frames are read from the leaf up. The first frame that names a stage decides, except that a
generic operation (JSON parsing or rendering, a store read, bincode) done on behalf of a
concern (the access log rendering its line, idempotency reading its record) belongs to that
concern: when the first match is generic, the next concern or flow frame up the stack
decides between the two. Async wrappers that enclose the whole rest of the request (the
signature middleware's future, the middleware chain) are skipped: they name no work of
their own. Threads that do one job (the group-commit writer, RocksDB's flush and
compaction) are attributed by name. Allocation counts where it happens."""
import argparse
import collections
import re
import sys

THREADS = [
    ("rongpay-wal", "store: group-commit writer (RocksDB write, WAL, fsync)"),
    ("rocksdb:high", "store: RocksDB flush"),
    ("rocksdb:low", "store: RocksDB compaction"),
]


# Threads whose runtime and syscall samples belong to one stage: the log writer's, and the
# main thread's (named after the binary's file: `--main-thread`), where payd runs the ledger
# (its coordinator and shard actors) when it may use two CPUs. Pinned to one, as the
# profiles run it, payd runs the ledger on the HTTP worker (`ledger_home` auto): the
# ledger's own code still counts by its frames (`actors::`), the runtime around it as the
# HTTP server's.
def thread_runtime(main_thread):
    return [
        ("tracing-appende", "access log, tracing"),
        ("log-writer", "access log, tracing"),
        (main_thread + " ", "ledger: coordinator, shards"),
    ]


WRAPPERS = re.compile(r"^api::auth::verify_signature::\{\{closure\}\}$|^api::server::serve")
CONCERN, GENERIC, FLOW = 1, 2, 3
STAGES = [
    (CONCERN, "auth: key lookup, signature", r"api::auth::|services::merchants::(by_key|key_sha256)"),
    # Hashing belongs to whoever hashes: auth's signatures and key digests, the batch
    # endpoint's ledger ids.
    (GENERIC, "auth: key lookup, signature", r"hmac|sha2::|subtle::"),
    (CONCERN, "batch transfers: checks, ledger ids, notes", r"services::transfers::"),
    (CONCERN, "idempotency", r"idempotency"),
    (CONCERN, "risk", r"services::risk|services::metrics::risk"),
    (CONCERN, "rate limits", r"ratelimit|governor"),
    (CONCERN, "metrics", r"^metrics::|metrics_util|metrics_exporter|api::metrics|services::metrics"),
    (CONCERN, "access log, tracing", r"api::access|api::logwriter|tracing_subscriber|tracing_appender|tracing_core|^tracing::"),
    (CONCERN, "ledger: coordinator, shards", r"actors::"),
    (GENERIC, "parse: body, JSON, amounts", r"serde_json::de|serde_core::de|serde::de|api::body::|rust_decimal|parse_positive|check_out_trade_no"),
    (GENERIC, "render: the payment's JSON", r"serde_json::ser|Serialize for|services::payments::view|payment_id_text|merchant_id_text"),
    (GENERIC, "store reads (records, indexes)", r"rocksdb|services::records::read"),
    (GENERIC, "records: bincode encode", r"bincode"),
    (FLOW, "payment flow (services, other)", r"services::"),
    (FLOW, "api handlers (other)", r"^api::"),
    (FLOW, "HTTP server, runtime, sockets", r"actix_http|actix_server|actix_web|actix_rt|actix::|tokio::|mio::|entry_SYSCALL|do_syscall|tcp_|sock_|epoll|__x64_sys|std::sys::backtrace"),
]
COMPILED = [(level, name, re.compile(p)) for level, name, p in STAGES]


def classify(frame):
    if WRAPPERS.search(frame):
        return None
    for level, name, pattern in COMPILED:
        if pattern.search(frame):
            return level, name
    return None


def samples(lines):
    head, frames = None, []
    for line in lines:
        line = line.rstrip("\n")
        if not line:
            if head is not None:
                yield head, frames
            head, frames = None, []
        elif line[0] == "\t":
            # "\t<address> <symbol>"
            frames.append(line.strip().partition(" ")[2])
        else:
            head = line.strip()
    if head is not None:
        yield head, frames


def stage(head, frames, runtime):
    for prefix, name in THREADS:
        if head.startswith(prefix):
            return name
    found = stage_of_stack(frames)
    if found.startswith(("HTTP server", "other")):
        for prefix, name in runtime:
            if head.startswith(prefix):
                return name
    return found


def stage_of_stack(frames):
    generic = None
    for frame in frames:  # innermost first, as perf prints them
        found = classify(frame)
        if found is None:
            continue
        level, name = found
        if level == GENERIC:
            generic = generic or name
            continue
        if generic is not None and level == FLOW:
            return generic
        return name
    return generic or "other (libc, kernel, unresolved)"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--payments", type=int, required=True)
    ap.add_argument("--cpu-seconds", type=float, required=True)
    ap.add_argument("--unit", default="payment", help="what --payments counts (batch: transfer)")
    ap.add_argument(
        "--main-thread",
        default="payd",
        help="the main thread's name (/proc/<pid>/comm: the binary's file name, 15 bytes at most)",
    )
    args = ap.parse_args()
    runtime = thread_runtime(args.main_thread)
    counts = collections.Counter()
    threads = collections.Counter()
    for head, frames in samples(sys.stdin):
        counts[stage(head, frames, runtime)] += 1
        # "<comm> <tid>": a thread's name without its id (pools share one name).
        threads[head.rsplit(None, 1)[0]] += 1
    total = sum(counts.values())
    if total == 0 or args.payments == 0:
        sys.exit("no samples or no payments")
    us_per_payment = args.cpu_seconds * 1e6 / args.payments
    print(f"\n{total} samples; payd CPU {us_per_payment:.1f} µs per {args.unit}\n")
    print(f"| stage | share of payd's CPU | µs per {args.unit} |")
    print("|---|---:|---:|")
    for name, n in counts.most_common():
        print(f"| {name} | {100 * n / total:.1f}% | {us_per_payment * n / total:.1f} |")
    print(f"\n| thread | share of payd's CPU | µs per {args.unit} |")
    print("|---|---:|---:|")
    for name, n in threads.most_common():
        print(f"| `{name}` | {100 * n / total:.1f}% | {us_per_payment * n / total:.1f} |")


if __name__ == "__main__":
    main()
