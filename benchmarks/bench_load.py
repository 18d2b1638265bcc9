"""How the pgready load harness compares with pgbench on the same query (prints a table, asserts nothing).

1. Throughput at saturation: the point lookup, 8 clients, prepared protocol, side by side. Target: the
   harness reaches >= 0.6 of pgbench with one Locust process per core.
2. Latency at a fixed rate well below saturation (200/s): harness open model (latency from the scheduled
   start) vs pgbench -R 200 with its per-transaction log. Target: p50 and p95 within 25 %.

    .venv/bin/python benchmarks/bench_load.py [--seconds 10] [--clients 8] [--rate 200] [--major 15]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_pgready.cluster.binaries import all_postgres  # noqa: E402
from pytest_pgready.cluster.local import provision_local  # noqa: E402
from pytest_pgready.settings import build  # noqa: E402
from pytest_pgready.workload import dataset  # noqa: E402
from pytest_pgready.workload.locustfiles import builtin  # noqa: E402
from pytest_pgready.workload.pgbench import POINT, run_pgbench  # noqa: E402
from pytest_pgready.workload.runner import LoadSpec, run_load  # noqa: E402


def _rel(a: float, b: float) -> str:
    return f"{(a - b) / b:+.1%}" if b else "n/a"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--major", type=int, default=None)
    a = ap.parse_args()

    bins = [b for b in all_postgres() if a.major in (None, b.major)][0]
    cluster = provision_local(build({}, None, None), bins=bins, replicas=0, pgbouncer=False, toxiproxy=False,
                              archive=False)
    try:
        with cluster.primary.connect() as conn:
            ds = dataset.create(conn)
        script = POINT.format(accounts=ds["accounts"])
        dsn = cluster.primary.dsn()
        print(f"PostgreSQL {bins.version} · point lookup on {ds['accounts']:,} accounts · {a.clients} clients · "
              f"prepared protocol · {a.seconds:g} s per run · {os.cpu_count()} cores\n")

        # 1. throughput at saturation
        rows = []
        for procs in sorted({1, a.processes}):
            t = time.monotonic()
            h = run_load(LoadSpec(builtin("point"), users=a.clients, duration_s=a.seconds, warmup_s=2,
                                  processes=procs, extra={"dataset": ds}), dsn)
            rows.append((f"pgready harness, {procs} Locust process{'es' if procs > 1 else ''}", h.throughput_rps,
                         h.latency_ms.get("p50"), h.latency_ms.get("p95"), time.monotonic() - t))
        t = time.monotonic()
        pg = run_pgbench(cluster, script, clients=a.clients, threads=a.processes, seconds=a.seconds, log=True)
        rows.append((f"pgbench -c {a.clients} -j {min(a.clients, a.processes)} -M prepared", pg.tps,
                     pg.percentile_ms(50), pg.percentile_ms(95), time.monotonic() - t))
        print("1. Throughput at saturation")
        print(f"   {'generator':<42} {'req/s':>10} {'p50 ms':>8} {'p95 ms':>8} {'vs pgbench':>11}")
        for name, rps, p50, p95, _ in rows:
            print(f"   {name:<42} {rps:>10.0f} {p50 or 0:>8.3f} {p95 or 0:>8.3f} {rps / pg.tps:>10.2f}x")
        print("   target: >= 0.60x with one Locust process per core\n")

        # 2. latency at a fixed rate
        h = run_load(LoadSpec(builtin("point"), users=a.clients, duration_s=a.seconds, warmup_s=2, rate=a.rate,
                              processes=1, extra={"dataset": ds}), dsn)
        pg = run_pgbench(cluster, script, clients=a.clients, threads=1, seconds=a.seconds, rate=a.rate, log=True)
        print(f"2. Latency at a fixed rate of {a.rate:g}/s (open model; pgbench -R {a.rate:g} -l)")
        print(f"   {'':<14} {'achieved/s':>10} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
        hl = h.latency_ms
        print(f"   {'pgready':<14} {h.throughput_rps:>10.1f} {hl['p50']:>8.3f} {hl['p95']:>8.3f} {hl['p99']:>8.3f}")
        p50, p95, p99 = pg.percentile_ms(50), pg.percentile_ms(95), pg.percentile_ms(99)
        print(f"   {'pgbench':<14} {pg.tps:>10.1f} {p50:>8.3f} {p95:>8.3f} {p99:>8.3f}")
        print(f"   {'difference':<14} {'':>10} {_rel(hl['p50'], p50):>8} {_rel(hl['p95'], p95):>8} "
              f"{_rel(hl['p99'], p99):>8}")
        print("   target: p50 and p95 within 25 %")
    finally:
        cluster.close()


if __name__ == "__main__":
    main()
