#!/usr/bin/env python3
"""How long channel-sim takes to answer a charge, against the latency it is configured for.

Starts the given channel-sim on core 1 with one channel, sets its `latency_ms` to each
value in turn and sends it sequential charges over one keep-alive connection from core 0
(one `send` a request, TCP_NODELAY), timing each until its whole answer is read. Prints
the delivered p10, p50, p90 and mean beside the configured distribution's (log-normal,
median `latency_ms`, sigma 0.3: the p10, p50, p90 and mean are 0.681, 1, 1.469 and 1.046
times the median). The card runs of loadtest/bench.sh and loadtest/ab.sh use a 1 ms median.

    python3 loadtest/sim-latency.py [--sim PATH] [--requests N] [LATENCY_MS ...]

PATH defaults to the `dist` build's channel-sim (loadtest/ab.sh builds it; or
`. scripts/env.sh && cargo build --profile dist -p rongpay-sims`)."""
import argparse
import json
import os
import socket
import statistics
import subprocess
import time
import urllib.request

CONTROL = 18795
SIGMA_QUANTILES = {"p10": 0.681, "p50": 1.0, "p90": 1.469, "mean": 1.046}


def control(method, path, body=None):
    req = urllib.request.Request(
        f"http://127.0.0.1:{CONTROL}{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.load(r)


def answer(sock):
    buf = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            raise SystemExit("channel-sim closed the connection")
        buf += chunk
        head, sep, rest = buf.partition(b"\r\n\r\n")
        if sep:
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            if len(rest) >= length:
                return head.split(b" ", 2)[1]


def charges(port, n, tag):
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    took = []
    for i in range(n):
        body = json.dumps(
            {"request_id": f"{tag}-{i}", "amount_minor": 100, "currency": "CNY",
             "instrument": "tok_probe", "notify_url": None}
        ).encode()
        req = (
            b"POST /charges HTTP/1.1\r\nHost: sim\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)
        ) + body
        start = time.perf_counter()
        sock.sendall(req)
        status = answer(sock)
        took.append((time.perf_counter() - start) * 1000)
        if status != b"200":
            raise SystemExit(f"charge answered {status.decode()}")
    sock.close()
    took.sort()
    return {
        "p10": took[n // 10],
        "p50": took[n // 2],
        "p90": took[9 * n // 10],
        "mean": statistics.mean(took),
    }


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    # Where scripts/env.sh builds: $CARGO_TARGET_DIR, else the machine's warm cache, else ./target.
    cache = os.path.expanduser("~/.cache/rongpay/target")
    target = os.environ.get("CARGO_TARGET_DIR") or (
        cache if os.path.isdir(cache) else os.path.join(here, "..", "target")
    )
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sim", default=os.path.join(target, "dist", "channel-sim"))
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("latency_ms", nargs="*", type=float, default=[0, 0.5, 1, 2])
    args = ap.parse_args()
    os.sched_setaffinity(0, {0})
    sim = subprocess.Popen(
        ["taskset", "-c", "1", args.sim, "--listen", f"127.0.0.1:{CONTROL}",
         "--channel", 'probe={"latency_ms":1}'],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                channels = control("GET", "/_sim/channels")["data"]
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise SystemExit("channel-sim did not start")
        port = int(channels[0]["url"].rsplit(":", 1)[1])
        print(f"channel-sim: {args.sim}; {args.requests} sequential charges per latency, ms")
        print()
        print("| latency_ms | p10 | p50 | p90 | mean | configured p10 · p50 · p90 · mean |")
        print("|---:|---:|---:|---:|---:|---|")
        for ms in args.latency_ms:
            control("PUT", "/_sim/channels/probe", {"latency_ms": ms})
            got = charges(port, args.requests, f"probe-{time.time_ns()}")
            want = " · ".join(f"{ms * SIGMA_QUANTILES[k]:.3f}" for k in ("p10", "p50", "p90", "mean"))
            print(f"| {ms:g} | {got['p10']:.3f} | {got['p50']:.3f} | {got['p90']:.3f} | {got['mean']:.3f} | {want} |")
    finally:
        sim.terminate()
        sim.wait()


if __name__ == "__main__":
    main()
