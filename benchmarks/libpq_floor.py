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

from pathlib import Path

import psycopg
from psycopg import pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pytest_pgready.workload.pgbench import _percentile_ms  # noqa: E402  (the same nearest rank as pgbench's side)

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
    lat: list[int] = []  # µs, like pgbench's log
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
            lat.append(round((end - start) * 1e6))
            first = first if first is not None else time.time() - lat[-1] / 1e6
            last = time.time()
    for c in conns:
        c.close()
    pct = {f"p{p}": _percentile_ms(lat, p) for p in (50, 95, 99)}
    print(json.dumps({"n": len(lat), "rps": len(lat) / a.seconds, **pct,
                      "window": [first, last]}))


if __name__ == "__main__":
    main()
