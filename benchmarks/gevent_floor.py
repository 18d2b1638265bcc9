"""The throughput floor under any gevent load generator: greenlets calling libpq, nothing else.

Each of `--processes` child processes (own interpreter and GIL, like Locust's `--processes`) runs
clients/processes greenlets under gevent's monkey-patching; each greenlet sends the prepared point
lookup with libpq's asynchronous calls and waits for the answer on one libev io watcher, in a tight
loop: no Locust, no task loop, no parameter adaptation, no row decoding, no timing, no statistics.
Whatever a Locust-based harness does per request costs more than this; bench_load.py prints it beside
the harness and pgbench so the harness's own share of the gap is visible.
The DSN comes on stdin (never on a command line); one JSON line goes to stdout.

    echo "$DSN" | python benchmarks/gevent_floor.py --clients 8 --processes 2 --seconds 10 --warmup 2 --accounts 100000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

QUERY = b"SELECT val FROM pgready_load.accounts WHERE aid = $1"


def _parent(a: argparse.Namespace, dsn: str) -> None:
    argv = [sys.executable, __file__, "--child", *sys.argv[1:]]
    # each child a session of its own, as the harness's forked Locust workers and every backend are
    # (pytest_pgready/workload/own_session.py): under autogroup scheduling the floor stays comparable
    kids = [subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True)
            for _ in range(a.processes)]
    limit = a.warmup + a.seconds + 60

    def talk(k: subprocess.Popen) -> tuple[int, str]:
        try:
            out, _ = k.communicate(dsn + "\n", timeout=limit)
        except subprocess.TimeoutExpired:
            k.kill()
            return -1, ""
        return k.returncode, out

    with ThreadPoolExecutor(len(kids)) as pool:  # all start together: each window is warm-up + seconds
        got = list(pool.map(talk, kids))
    if any(rc for rc, _ in got):
        sys.exit(f"gevent_floor: a child failed or overran {limit:g} s (exits {[rc for rc, _ in got]})")
    outs = [json.loads(out) for _, out in got]
    n = sum(o["n"] for o in outs)
    print(json.dumps({"n": n, "rps": n / a.seconds, "processes": a.processes}))


def _child(a: argparse.Namespace, dsn: str) -> None:
    from gevent import monkey

    monkey.patch_all()
    import random
    import time

    import gevent
    from gevent.hub import Waiter, get_hub
    import psycopg
    from psycopg import pq

    tuples_ok = pq.ExecStatus.TUPLES_OK
    hub = get_hub()
    t0 = time.perf_counter()
    steady, stop = t0 + a.warmup, t0 + a.warmup + a.seconds
    done = [0]

    def client() -> None:
        conn = psycopg.connect(dsn, autocommit=True)
        pg = conn.pgconn
        if pg.prepare(b"p", QUERY, None).status != pq.ExecStatus.COMMAND_OK:
            sys.exit("gevent_floor: prepare failed")
        pg.nonblocking = 1
        watcher = hub.loop.io(pg.socket, 1)
        n = 0
        while (now := time.perf_counter()) < stop:
            pg.send_query_prepared(b"p", [b"%d" % (1 + int(random.random() * a.accounts))])  # as load/point.py
            while pg.flush():
                pass
            res = None
            while True:
                if pg.is_busy():
                    waiter = Waiter(hub)
                    watcher.start(waiter.switch, None)
                    try:
                        waiter.get()
                    finally:
                        watcher.stop()
                    pg.consume_input()
                    continue
                r = pg.get_result()
                if r is None:
                    break
                res = r
            if res is None or res.status != tuples_ok:
                sys.exit("gevent_floor: query failed")
            if now >= steady:
                n += 1
        done[0] += n
        watcher.close()
        conn.close()

    gevent.joinall([gevent.spawn(client) for _ in range(a.clients // a.processes)])
    print(json.dumps({"n": done[0]}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--child", action="store_true")
    for name, kind in (("clients", int), ("processes", int), ("seconds", float), ("warmup", float),
                       ("accounts", int)):
        ap.add_argument(f"--{name}", type=kind, required=True)
    a = ap.parse_args()
    if a.clients % a.processes:
        sys.exit("gevent_floor: --clients must be a multiple of --processes")
    dsn = sys.stdin.readline().strip()
    (_child if a.child else _parent)(a, dsn)


if __name__ == "__main__":
    os.environ.pop("PSYCOPG_WAIT_FUNC", None)
    main()
