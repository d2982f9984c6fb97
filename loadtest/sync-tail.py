#!/usr/bin/env python3
"""The tail of a durable write on this machine's file system, alone: 8 KB appended and
`fdatasync`ed back to back (0.2 ms of CPU work between writes, as a group commit's syncs
under load are spaced) for SECONDS, the file deleted and started again every 64 MB as a WAL
is after its memtables' flush (ROTATE=0: one growing file, nothing deleted while measuring).
Prints the syncs' median, p99, max, and how many took over 10, 25 and 100 ms, and the mount
options of the directory's file system (`discard` there means every deleted file sends the
disk a discard the next syncs wait behind: docs/ARCHITECTURE.md, Operations).

    python3 loadtest/sync-tail.py [seconds, default 30] [directory, default: the current one]

fsync-probe.py measures what a durable write costs; this measures how often one is slow, the
thing a stall of every payment in flight comes from (docs/BENCHMARKS.md, session 52).
"""
import json
import os
import subprocess
import sys
import time

WRITE = 8192
ROTATE_WRITES = (64 << 20) // WRITE
PAUSE_S = 0.0002


def mount_of(directory):
    """(mount point, type, options) of the file system holding `directory` (util-linux's
    findmnt); None where it cannot tell."""
    try:
        out = subprocess.run(
            ["findmnt", "-J", "-o", "TARGET,FSTYPE,OPTIONS", "-T", directory],
            capture_output=True, text=True, check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    fs = json.loads(out)["filesystems"][0]
    return fs["target"], fs["fstype"], fs["options"].split(",")


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 30.0
    directory = sys.argv[2] if len(sys.argv) > 2 else "."
    rotate = os.environ.get("ROTATE", "1") != "0"
    path = os.path.join(directory, f".sync-tail-{os.getpid()}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    fd = os.open(path, flags, 0o644)
    block = b"x" * WRITE
    took = []
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            os.write(fd, block)
            started = time.perf_counter()
            os.fdatasync(fd)
            took.append(time.perf_counter() - started)
            if rotate and len(took) % ROTATE_WRITES == 0:
                os.close(fd)
                os.unlink(path)
                fd = os.open(path, flags, 0o644)
            spin = time.perf_counter()
            while time.perf_counter() - spin < PAUSE_S:
                pass
    finally:
        os.close(fd)
        os.unlink(path)
    took.sort()
    n = len(took)
    mount = mount_of(directory)
    discard = mount is not None and any(
        o == "discard" or o.startswith("discard=") for o in mount[2]
    )
    print(
        f"{n} syncs of {WRITE} B in {seconds:.0f} s ({'deleting every 64 MB' if rotate else 'one file'}), "
        f"{mount[1] if mount else '?'} at {mount[0] if mount else '?'}, "
        f"online discard {'on' if discard else 'off'}: "
        f"median {took[n // 2] * 1e6:.0f} µs, p99 {took[int(n * 0.99)] * 1e6:.0f} µs, "
        f"max {took[-1] * 1e3:.1f} ms; over 10 ms {sum(t > 0.010 for t in took)}, "
        f"over 25 ms {sum(t > 0.025 for t in took)}, over 100 ms {sum(t > 0.100 for t in took)}"
    )


if __name__ == "__main__":
    main()
