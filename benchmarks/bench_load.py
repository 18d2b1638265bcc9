"""How the pgready load harness compares with pgbench on the same query (prints tables, asserts nothing).

1. Throughput at saturation: the point lookup, 8 clients, the same protocol on both sides (prepared by
   default: `load_protocol = "prepared"` and `pgbench -M prepared`), the same TLS connection settings.
   Each round runs pgbench, the harness with one Locust process per core and the harness with a single
   process, one after the other in the same run (the order rotates between rounds); the ratio is taken
   within a round, so a neighbour's load on a shared machine hits both sides of it. Target: the harness
   reaches >= 0.6 of pgbench with one Locust process per core.
2. Latency at a fixed rate well below saturation (200/s): the harness's open model vs `pgbench -R 200`
   with its per-transaction log, in alternating rounds. pgbench times a -R transaction from its scheduled
   start, so its figures include its own wake-up lag; the harness counts from the schedule only when a
   user is still busy with its previous request. The comparison applies the harness's rule to pgbench's
   log (schedule lag excluded unless the client was busy) and shows pgbench's own figures beside it.
   Target: p50 and p95 within 25 %. Beside them, the floor under any Python client: a bare blocking
   libpq loop (benchmarks/libpq_floor.py, no gevent, no Locust) at the same rate, by the same rule.

    .venv/bin/python benchmarks/bench_load.py [--seconds 10] [--rounds 3] [--clients 8] [--rate 200]
                                              [--processes N] [--protocol prepared] [--major 15]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_pgready.cluster.binaries import all_postgres  # noqa: E402
from pytest_pgready.cluster.local import provision_local  # noqa: E402
from pytest_pgready.settings import build  # noqa: E402
from pytest_pgready.workload import dataset  # noqa: E402
from pytest_pgready.workload.locustfiles import builtin  # noqa: E402
from pytest_pgready.workload.pgbench import POINT, run_pgbench  # noqa: E402
from pytest_pgready.workload.runner import PROTOCOLS, LoadSpec, run_load  # noqa: E402


def _rel(a: float | None, b: float | None) -> str:
    return f"{(a - b) / b:+.1%}" if a is not None and b else "n/a"


def _tls(cluster: object) -> str:
    """Whether the connections both generators open use TLS (the sandbox accepts TLS only)."""
    with cluster.primary.connect() as conn:  # type: ignore[attr-defined]
        row = conn.execute("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
    return f"TLS ({row[1]})" if row and row[0] else "no TLS"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--protocol", choices=PROTOCOLS, default="prepared")
    ap.add_argument("--major", type=int, default=None)
    ap.add_argument("--only", choices=("throughput", "latency"), default=None)
    a = ap.parse_args()

    bins = [b for b in all_postgres() if a.major in (None, b.major)][0]
    cluster = provision_local(build({}, None, None), bins=bins, replicas=0, pgbouncer=False, toxiproxy=False,
                              archive=False)
    try:
        with cluster.primary.connect() as conn:
            ds = dataset.create(conn)
        script = POINT.format(accounts=ds["accounts"])
        a.accounts = ds["accounts"]
        dsn = cluster.primary.dsn()
        procs = max(1, a.processes)
        print(f"PostgreSQL {bins.version} · point lookup on {ds['accounts']:,} accounts · {a.clients} clients · "
              f"protocol {a.protocol} on both sides (load_protocol = {a.protocol!r}, pgbench -M {a.protocol}) · "
              f"{_tls(cluster)} on both · {a.seconds:g} s per run, {a.rounds} rounds · {os.cpu_count()} cores\n")

        def harness(processes: int, rate: float | None = None):  # noqa: ANN202
            return run_load(LoadSpec(builtin("point"), users=a.clients, duration_s=a.seconds, warmup_s=a.warmup,
                                     processes=processes, rate=rate, protocol=a.protocol,
                                     extra={"dataset": ds}), dsn)

        if a.only in (None, "throughput"):
            _throughput(a, cluster, script, procs, harness)
        if a.only in (None, "latency"):
            _latency(a, cluster, script, harness)
    finally:
        cluster.close()


def _throughput(a: argparse.Namespace, cluster: object, script: str, procs: int, harness) -> None:  # noqa: ANN001
    runners: list[tuple[str, int | None]] = [("pgbench", None), (f"harness {procs}p", procs)]
    runners += [("harness 1p", 1)] if procs > 1 else []
    runners += [(f"floor {procs}p", -procs)]  # negative: benchmarks/gevent_floor.py with that many processes
    rows: list[dict[str, float | None]] = []
    print("1. Throughput at saturation (req/s; ratio = harness / pgbench of the same round)")
    head = f"   {'round':<6}" + "".join(f"{n:>14}" for n, _ in runners) + "".join(
        f"{'ratio ' + n.replace('harness ', ''):>15}" for n, p in runners if p)
    print(head)
    for r in range(a.rounds):
        order = runners[r % len(runners):] + runners[:r % len(runners)]
        got: dict[str, float | None] = {}
        lat: dict[str, tuple[float | None, float | None]] = {}
        for name, p in order:
            if p is None:
                pg = run_pgbench(cluster, script, clients=a.clients, threads=procs, seconds=a.seconds,
                                 protocol=a.protocol, log=True, sampling_rate=0.02)
                got[name] = pg.tps
                lat[name] = (pg.percentile_ms(50), pg.percentile_ms(95))
            elif p < 0:
                fl = _gevent_floor(a, cluster, -p)
                got[name] = fl["rps"]
                lat[name] = (None, None)
            else:
                h = harness(p)
                got[name] = h.throughput_rps
                lat[name] = (h.latency_ms.get("p50"), h.latency_ms.get("p95"))
        rows.append(got)
        ratios = [got[n] / got["pgbench"] for n, p in runners if p]  # type: ignore[operator]
        print(f"   {r + 1:<6}" + "".join(f"{got[n]:>14.0f}" for n, _ in runners)
              + "".join(f"{x:>14.2f}x" for x in ratios)
              + "   p50/p95 ms: " + ", ".join(f"{n.split()[-1]} {lat[n][0]}/{lat[n][1]}" for n, p in runners
                                             if p is None or p > 0))
    med = {n: statistics.median(row[n] for row in rows) for n, _ in runners}  # type: ignore[type-var]
    mratio = {n: statistics.median(row[n] / row["pgbench"] for row in rows) for n, p in runners if p}  # type: ignore[operator]
    print(f"   {'median':<6}" + "".join(f"{med[n]:>14.0f}" for n, _ in runners)
          + "".join(f"{mratio[n]:>14.2f}x" for n, p in runners if p))
    print(f"   pgbench -c {a.clients} -j {min(a.clients, procs)} -M {a.protocol} (2 % of transactions logged); "
          f"harness: Locust with --processes {procs} (one per core) and a single process;\n"
          f"   floor: {procs} processes of bare greenlets calling libpq (benchmarks/gevent_floor.py: no Locust, "
          f"no adaptation, no timing), the most any gevent client reaches here")
    print("   target: >= 0.60x with one Locust process per core\n")


def _latency(a: argparse.Namespace, cluster: object, script: str, harness) -> None:  # noqa: ANN001
    print(f"2. Latency at a fixed rate of {a.rate:g}/s each (ms; harness open model, 1 process, and "
          f"pgbench -R {a.rate:g} -l -j 1 running at the same time; pgbench's transactions taken from the "
          f"harness's steady window)")
    print(f"   {'round':<6} {'':<24} {'achieved/s':>10} {'p50':>8} {'p95':>8} {'p99':>8}")
    diffs: list[tuple[float, ...]] = []
    floors: list[tuple[float, ...]] = []
    for r in range(a.rounds):
        box: dict[str, object] = {}

        def bench() -> None:
            try:
                box["pg"] = run_pgbench(cluster, script, clients=a.clients, threads=1, rate=a.rate, log=True,
                                        seconds=2 * (a.warmup + a.seconds) + 20, protocol=a.protocol)
            except Exception as e:  # noqa: BLE001 - reported below
                box["error"] = e

        t = threading.Thread(target=bench, daemon=True)
        t.start()
        time.sleep(1.0)
        h = harness(1, a.rate)
        fl = _floor(a, cluster)
        t.join()
        if "error" in box:
            raise box["error"]  # type: ignore[misc]
        pg = box["pg"].within(*h.window_epoch)  # type: ignore[attr-defined]
        hl = h.latency_ms
        hs = [hl["p50"], hl["p95"], hl["p99"]]
        ps = [pg.percentile_ms(p, started=True) for p in (50, 95, 99)]
        pr = [pg.percentile_ms(p) for p in (50, 95, 99)]
        lag = h.start_lag_ms or {}
        print(f"   {r + 1:<6} {'pgready':<24} {h.throughput_rps:>10.1f} " + " ".join(f"{x:>8.3f}" for x in hs)
              + f"   (its own start lag p50/p99 {lag.get('p50')}/{lag.get('p99')} ms, not charged)")
        print(f"   {'':<6} {'pgbench, same rule':<24} {pg.tps:>10.1f} " + " ".join(f"{x:>8.3f}" for x in ps))
        print(f"   {'':<6} {'pgbench as it logs':<24} {'':>10} " + " ".join(f"{x:>8.3f}" for x in pr))
        fs = [fl["p50"], fl["p95"], fl["p99"]]
        pf = box["pg"].within(*fl["window"])  # type: ignore[attr-defined]
        pfs = [pf.percentile_ms(p, started=True) for p in (50, 95, 99)]
        print(f"   {'':<6} {'bare libpq loop (floor)':<24} {fl['rps']:>10.1f} " + " ".join(f"{x:>8.3f}" for x in fs))
        print(f"   {'':<6} {'pgbench, same rule, then':<24} {pf.tps:>10.1f} " + " ".join(f"{x:>8.3f}" for x in pfs))
        floors.append(tuple(x / y - 1 for x, y in zip(fs, pfs)))
        print(f"   {'':<6} {'floor vs pgbench':<24} {'':>10} " + " ".join(f"{x:>+8.1%}" for x in floors[-1]))
        d = tuple(x / y - 1 for x, y in zip(hs, ps)) + tuple(x / y - 1 for x, y in zip(hs, pr))
        diffs.append(d)
        print(f"   {'':<6} {'vs pgbench, same rule':<24} {'':>10} " + " ".join(f"{x:>+8.1%}" for x in d[:3]))
        print(f"   {'':<6} {'vs pgbench as it logs':<24} {'':>10} " + " ".join(f"{x:>+8.1%}" for x in d[3:]))
    med = [statistics.median(d[i] for d in diffs) for i in range(6)]
    print(f"   {'median':<6} {'vs pgbench, same rule':<24} {'':>10} " + " ".join(f"{x:>+8.1%}" for x in med[:3]))
    print(f"   {'':<6} {'vs pgbench as it logs':<24} {'':>10} " + " ".join(f"{x:>+8.1%}" for x in med[3:]))
    fmed = [statistics.median(d[i] for d in floors) for i in range(3)]
    print(f"   {'':<6} {'floor vs pgbench':<24} {'':>10} " + " ".join(f"{x:>+8.1%}" for x in fmed))
    print("   target: p50 and p95 within 25 % (same rule); the floor row is what Python calling libpq costs by itself")


def _child(a: argparse.Namespace, cluster: object, script: str, what: str, *extra: str) -> dict:
    """One of the floor loops in a child process, with the bench's clients, duration and accounts; the DSN
    goes on its stdin (never on a command line) and one JSON line comes back."""
    argv = [sys.executable, str(Path(__file__).with_name(script)), "--clients", str(a.clients), *extra,
            "--seconds", str(a.seconds), "--warmup", str(a.warmup), "--accounts", str(a.accounts)]
    out = subprocess.run(argv, input=cluster.primary.dsn() + "\n", capture_output=True, text=True,  # type: ignore[attr-defined]
                         timeout=a.warmup + a.seconds + 90)
    if out.returncode:
        raise SystemExit(f"bench_load: the {what} loop failed: {out.stderr.strip()[-300:]}")
    return json.loads(out.stdout)


def _gevent_floor(a: argparse.Namespace, cluster: object, processes: int) -> dict:
    """benchmarks/gevent_floor.py at saturation, one process per core like the harness."""
    return _child(a, cluster, "gevent_floor.py", "gevent floor", "--processes", str(processes))


def _floor(a: argparse.Namespace, cluster: object) -> dict:
    """benchmarks/libpq_floor.py at the same rate as the harness."""
    return _child(a, cluster, "libpq_floor.py", "libpq floor", "--rate", str(a.rate))


if __name__ == "__main__":
    main()
