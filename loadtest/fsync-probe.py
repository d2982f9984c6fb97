#!/usr/bin/env python3
"""What one fdatasync costs on this machine's filesystem: 4 KB written then synced, 2,000
times, to a file that grows (as RocksDB's WAL is appended), to a preallocated one, and over
blocks already written (as a recycled WAL file is). Prints wall and CPU (user + system)
time per write-and-sync. docs/ARCHITECTURE.md ("Group commit") cites it.

Then 24 KB appended and synced 600 times with a busy pause of 0, 0.2, 1 and 2 ms of CPU
work before each (a group commit's syncs under HTTP load are that far apart): median and
p90 of each write-and-sync. Some virtual disks are fast only back to back (issue #14,
session 43 in docs/BENCHMARKS.md).

    python3 loadtest/fsync-probe.py [directory, default: the current one]
"""
import os
import resource
import sys
import time


def run(directory, mode, n=2000, size=4000):
    path = os.path.join(directory, f".fsync-probe-{os.getpid()}")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        if mode == "overwrite":
            os.write(fd, b"\0" * (n * size + 4096))
            os.fsync(fd)
            os.lseek(fd, 0, os.SEEK_SET)
        elif mode == "preallocated":
            os.posix_fallocate(fd, 0, n * size + 4096)
            os.fsync(fd)
        buf = b"x" * size
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.monotonic()
        for _ in range(n):
            os.write(fd, buf)
            os.fdatasync(fd)
        wall = time.monotonic() - t0
        r1 = resource.getrusage(resource.RUSAGE_SELF)
    finally:
        os.close(fd)
        os.remove(path)
    cpu = (r1.ru_stime - r0.ru_stime) + (r1.ru_utime - r0.ru_utime)
    print(f"| {mode} | {wall / n * 1e6:.0f} | {cpu / n * 1e6:.1f} |")


def paused(directory, pause_s, n=600, size=24576):
    path = os.path.join(directory, f".fsync-probe-{os.getpid()}")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    buf = b"x" * size
    took = []
    try:
        for _ in range(n):
            end = time.perf_counter() + pause_s
            while time.perf_counter() < end:
                pass
            t = time.perf_counter()
            os.write(fd, buf)
            os.fdatasync(fd)
            took.append(time.perf_counter() - t)
    finally:
        os.close(fd)
        os.remove(path)
    took.sort()
    print(f"| {pause_s * 1e3:g} | {took[n // 2] * 1e6:.0f} | {took[n * 9 // 10] * 1e6:.0f} |")


def main():
    directory = sys.argv[1] if len(sys.argv) > 1 else "."
    print("| file | µs wall per write + fdatasync | µs CPU per write + fdatasync |")
    print("|---|---:|---:|")
    for mode in ["append", "preallocated", "overwrite", "append", "overwrite"]:
        run(directory, mode)
    print()
    print("| busy pause before each sync, ms | µs wall p50 | µs wall p90 |")
    print("|---:|---:|---:|")
    for pause_s in [0, 0.0002, 0.001, 0.002]:
        paused(directory, pause_s)


if __name__ == "__main__":
    main()
