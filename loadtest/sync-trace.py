#!/usr/bin/env python3
"""Reads `perf script -F cpu,time,event,trace` of the block_rq_issue and block_rq_complete
tracepoints (loadtest/sync-trace.sh) and prints, for each request type (`WS` a synced write,
`WSM` a synced metadata write, `FF` a cache flush, ...), its time in the device (issue to
completion) and the time from the previous request's completion to its issue."""
import collections
import re
import sys

LINE = re.compile(
    r"([\d.]+):\s+block:(block_rq_issue|block_rq_complete):\s+\S+\s+(\S+)\s+(?:\d+\s+)?\(\)\s+(\d+)\s+\+\s+\d+"
)


def quantile(values, q):
    return values[min(len(values) - 1, int(len(values) * q))] * 1e6


def main():
    issued, flushes = {}, []
    device = collections.defaultdict(list)
    gap = collections.defaultdict(list)
    last_done = None
    for line in sys.stdin:
        m = LINE.search(line)
        if not m:
            continue
        t, event, rwbs, sector = float(m.group(1)), m.group(2), m.group(3), m.group(4)
        if event == "block_rq_issue":
            if last_done is not None:
                gap[rwbs].append(t - last_done)
            if rwbs == "FF":
                flushes.append(t)
            else:
                issued[sector] = (t, rwbs)
        elif rwbs == "FF" and flushes:
            device["FF"].append(t - flushes.pop(0))
            last_done = t
        elif sector in issued:
            start, kind = issued.pop(sector)
            device[kind].append(t - start)
            last_done = t
    print("| request | count in 1 s | device µs p50 | p90 | µs since the previous completion p50 | p90 |")
    print("|---|---:|---:|---:|---:|---:|")
    for kind in sorted(device):
        d = sorted(device[kind])
        g = sorted(gap[kind]) or [0.0]
        print(f"| {kind} | {len(d)} | {quantile(d, 0.5):.0f} | {quantile(d, 0.9):.0f} | "
              f"{quantile(g, 0.5):.0f} | {quantile(g, 0.9):.0f} |")


if __name__ == "__main__":
    main()
