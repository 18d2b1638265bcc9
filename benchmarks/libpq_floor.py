"""The floor under any Python load generator: a bare blocking libpq loop at a fixed rate (no gevent, no Locust).

Run by bench_load.py in a child process (its own interpreter and GIL, like a Locust child) beside
`pgbench -R`, with the harness's timing rule: from the actual start unless the previous request overran
the schedule. If this loop is already far from pgbench, the gap is Python calling libpq, not the harness.
The DSN comes on stdin (never on a command line); one JSON line goes to stdout.

    echo "$DSN" | python benchmarks/libpq_floor.py --clients 8 --rate 200 --seconds 10 --warmup 2 --accounts 100000
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time

import psycopg
from psycopg import pq

QUERY = b"SELECT val FROM pgready_load.accounts WHERE aid = $1"


def main() -> None:
    ap = argparse.ArgumentParser()
    for name, kind in (("clients", int), ("rate", float), ("seconds", float), ("warmup", float), ("accounts", int)):
        ap.add_argument(f"--{name}", type=kind, required=True)
    a = ap.parse_args()
    dsn = sys.stdin.readline().strip()
    conns = [psycopg.connect(dsn, autocommit=True) for _ in range(a.clients)]
    for c in conns:
        res = c.pgconn.prepare(b"p", QUERY, None)
        if res.status != pq.ExecStatus.COMMAND_OK:
            sys.exit(f"prepare failed: {res.error_message.decode(errors='replace')}")
    interval = 1.0 / a.rate
    t0 = time.perf_counter()
    steady, stop = t0 + a.warmup, t0 + a.warmup + a.seconds
    nxt, i, prev_end = t0, 0, t0
    lat: list[float] = []
    first = last = None
    while True:
        nxt += interval
        delay = nxt - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        start = time.perf_counter()
        if start >= stop:
            break
        if prev_end > nxt:  # still busy at the scheduled start: that queueing counts, as in the harness
            start = nxt
        pg = conns[i % a.clients].pgconn
        i += 1
        res = pg.exec_prepared(b"p", [b"%d" % random.randint(1, a.accounts)])
        prev_end = end = time.perf_counter()
        if res.status != pq.ExecStatus.TUPLES_OK:
            sys.exit(f"query failed: {res.error_message.decode(errors='replace')}")
        if start >= steady:
            lat.append(end - start)
            first = first if first is not None else time.time() - (end - start)
            last = time.time()
    for c in conns:
        c.close()
    lat.sort()

    def pct(p: float) -> float:
        return round(lat[max(0, min(len(lat) - 1, -(-len(lat) * p // 100) - 1))] * 1000, 3)

    print(json.dumps({"n": len(lat), "rps": len(lat) / a.seconds, "p50": pct(50), "p95": pct(95), "p99": pct(99),
                      "window": [first, last]}))


if __name__ == "__main__":
    main()
