#!/usr/bin/env python3
"""The settlement steps' cost at scale (issue #16, "Cost: the settlement steps for 100k
merchants finish within the day-end's budget, measured"): against a running payd (and, if
given, its payout channel on channel-sim), creates MERCHANTS merchants (T+0, a payout
account), pays each once from one funded payer, closes the date, and prints every day-end
step's duration, then how long the payouts took to resolve. Standard library only; a
thread pool of keep-alive connections.

Usage: settlement-cost.py ADDR ADMIN_TOKEN MERCHANTS [THREADS]
"""
import http.client
import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

addr, token, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
threads = int(sys.argv[4]) if len(sys.argv) > 4 else 16
host, port = addr.split(":")
local = threading.local()


def call(method, path, body=None, key=token):
    if not hasattr(local, "conn"):
        local.conn = http.client.HTTPConnection(host, int(port), timeout=120)
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": f"Bearer {key}"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    for attempt in range(20):
        try:
            local.conn.request(method, path, body=data, headers=headers)
            r = local.conn.getresponse()
            payload = r.read()
            if r.status in (429, 503):
                time.sleep(0.05 * (attempt + 1))
                continue
            return r.status, json.loads(payload) if payload else None
        except (ConnectionError, http.client.HTTPException):
            local.conn = http.client.HTTPConnection(host, int(port), timeout=120)
    raise RuntimeError(f"{method} {path}: no answer")


def merchant(i):
    status, v = call("POST", "/v1/merchants", {
        "name": f"cost shop {i}", "fee_rate": "0.006", "settlement_cycle_days": 0,
        "payout_account": {"bank": "ICBC", "account_number": f"62220202{i:011d}", "name": f"Shop {i} Ltd"},
    })
    assert status == 201, (status, v)
    return v["secret_key"]


def timed(what, f):
    t0 = time.monotonic()
    out = f()
    dt = time.monotonic() - t0
    print(f"{what}: {dt:.1f} s", flush=True)
    return out


with ThreadPoolExecutor(threads) as pool:
    keys = timed(f"create {n} merchants", lambda: list(pool.map(merchant, range(n))))
    status, payer = call("POST", "/v1/accounts", {"currency": "CNY"})
    assert status == 201
    status, _ = call("POST", f"/v1/accounts/{payer['id']}/deposits", {"amount": f"{n * 100}.00"})
    assert status == 201

    def pay(i):
        status, v = call("POST", "/v1/payments", {
            "out_trade_no": f"cost-{i}", "amount": f"{10 + i % 90}.00", "currency": "CNY",
            "payment_method": {"type": "balance", "account_id": payer["id"]},
        }, key=keys[i])
        assert status == 201 and v["status"] == "succeeded", (status, v)

    timed(f"{n} payments", lambda: list(pool.map(pay, range(n))))

_, dates = call("GET", "/v1/gl/business_date")
date = dates["business_date"]
t0 = time.monotonic()
status, _ = call("POST", "/v1/gl/day_end", {})
assert status == 202, status
while True:
    _, d = call("GET", f"/v1/gl/day_end/{date}")
    if d["status"] != "running":
        break
    time.sleep(0.5)
print(f"day-end of {date}: {d['status']} in {time.monotonic() - t0:.1f} s "
      f"({d['accounts']} accounts, {d['postings']} postings)")
for s in d["steps"]:
    print(f"  {s['name']:<22} {s['status']:<7} {s['detail']}")
assert d["status"] == "done"
t1 = time.monotonic()


def in_transit():
    _, v = call("GET", "/v1/gl/accounts")
    return next((a["balance"] for a in v["data"] if a["code"] == "2104" and a["currency"] == "CNY"), "0.00")


first = in_transit()
while True:
    left = in_transit()
    if left == "0.00" or time.monotonic() - t1 > 3600:
        break
    time.sleep(2)
print(f"payouts: {first} in transit after the day-end, {left} left after "
      f"{time.monotonic() - t1:.1f} s (2104 Merchant payouts in transit)")
