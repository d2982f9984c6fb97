#!/usr/bin/env python3
"""What one durable write costs on this machine's filesystem: 4 KB and 24 KB (a group of
≈ 40 balance payments is ≈ 20 KB) written then synced, 2,000 times each, to a file that
grows (as RocksDB's WAL is appended), to a preallocated one, over blocks already written (as
a recycled WAL file is), and over blocks already written with `O_DIRECT | O_DSYNC` (each
write durable by itself, no page cache and no `fdatasync`: one request with FUA where the
device has it, else the write and a cache flush, against the appended file's data, inode
and flush; what a log of our own on preallocated files would do). Prints wall and CPU
(user + system) time per durable write. docs/ARCHITECTURE.md ("Group commit") cites it.

Then 24 KB appended and synced, and written with `O_DIRECT | O_DSYNC`, 600 times each with
a busy pause of 0, 0.2, 1 and 2 ms of CPU work before each write (a group commit's syncs
under HTTP load are that far apart): median and p90 of each durable write. Some virtual
disks are fast only back to back (issue #14, sessions 43 and 44 in docs/BENCHMARKS.md).

    python3 loadtest/fsync-probe.py [directory, default: the current one]
"""
import mmap
import os
import resource
import sys
import time


DIRECT = "overwrite, O_DIRECT + O_DSYNC"


def open_probe(directory, mode, total):
    """The probe's file, laid out as `mode` says, for `total` bytes of writes."""
    path = os.path.join(directory, f".fsync-probe-{os.getpid()}")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    if mode in ("overwrite", DIRECT):
        os.write(fd, b"\0" * (total + 4096))
        os.fsync(fd)
        os.lseek(fd, 0, os.SEEK_SET)
        if mode == DIRECT:
            os.close(fd)
            fd = os.open(path, os.O_RDWR | os.O_DIRECT | os.O_DSYNC)
    elif mode == "preallocated":
        os.posix_fallocate(fd, 0, total + 4096)
        os.fsync(fd)
    return path, fd


def payload(size, mode):
    if mode != DIRECT:
        return b"x" * size
    # O_DIRECT needs an aligned buffer: an anonymous mapping is page-aligned.
    buf = mmap.mmap(-1, size)
    buf.write(b"x" * size)
    return buf


def durable_write(fd, buf, mode):
    os.write(fd, buf)
    if mode != DIRECT:
        os.fdatasync(fd)


def run(directory, mode, n=2000, size=4000):
    path, fd = open_probe(directory, mode, n * size)
    try:
        buf = payload(size, mode)
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.monotonic()
        for _ in range(n):
            durable_write(fd, buf, mode)
        wall = time.monotonic() - t0
        r1 = resource.getrusage(resource.RUSAGE_SELF)
    finally:
        os.close(fd)
        os.remove(path)
    cpu = (r1.ru_stime - r0.ru_stime) + (r1.ru_utime - r0.ru_utime)
    print(f"| {mode} | {size // 1024} | {wall / n * 1e6:.0f} | {cpu / n * 1e6:.1f} |")


def paused(directory, pause_s, mode, n=600, size=24576):
    path, fd = open_probe(directory, mode, n * size)
    took = []
    try:
        buf = payload(size, mode)
        for _ in range(n):
            end = time.perf_counter() + pause_s
            while time.perf_counter() < end:
                pass
            t = time.perf_counter()
            durable_write(fd, buf, mode)
            took.append(time.perf_counter() - t)
    finally:
        os.close(fd)
        os.remove(path)
    took.sort()
    print(f"| {mode} | {pause_s * 1e3:g} | {took[n // 2] * 1e6:.0f} | {took[n * 9 // 10] * 1e6:.0f} |")


def main():
    directory = sys.argv[1] if len(sys.argv) > 1 else "."
    print("| file | KB a write | µs wall per durable write | µs CPU per durable write |")
    print("|---|---:|---:|---:|")
    modes = ["append", "preallocated", "overwrite", DIRECT]
    for size in [4096, 24576]:
        for mode in modes + modes:
            run(directory, mode, size=size)
    print()
    print("| 24 KB durable write | busy pause before each, ms | µs wall p50 | µs wall p90 |")
    print("|---|---:|---:|---:|")
    for pause_s in [0, 0.0002, 0.001, 0.002]:
        for mode in ["append", DIRECT]:
            paused(directory, pause_s, mode)


if __name__ == "__main__":
    main()
