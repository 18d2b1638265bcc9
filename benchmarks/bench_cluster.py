"""Time to a ready primary + replica + pgbouncer, against a bare initdb + pg_ctl start of one node.

Both are measured side by side, alternating, in one run (the machine is noisy: only the ratio
means something). Target from issue 2: ratio <= 2.5. Also prints this process's peak RSS.
usage: python benchmarks/bench_cluster.py [--rounds 5] [--major 15]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from pytest_pgready.cluster.binaries import find_postgres
from pytest_pgready.cluster.local import provision_local
from pytest_pgready.cluster.osuser import service_user
from pytest_pgready.cluster.sandbox import base_dir, free_port
from pytest_pgready.cluster.template import run_as
from pytest_pgready.settings import build


def bare(bins) -> float:
    """What a person would do by hand: initdb, then pg_ctl start -w."""
    user = service_user()
    d = Path(tempfile.mkdtemp(prefix="bare-", dir=base_dir()))
    user.chown(d)
    t0 = time.perf_counter()
    r = run_as(user, [str(bins.tool("initdb")), "-D", str(d / "data"), "-U", "postgres", "--auth=trust",
                      "--no-instructions"], 120, cwd=d)
    assert r.returncode == 0, r.stderr
    r = run_as(user, [str(bins.tool("pg_ctl")), "start", "-w", "-D", str(d / "data"), "-l", str(d / "log"),
                      "-o", f"-p {free_port()} -k {d} -c listen_addresses=127.0.0.1"], 120, cwd=d)
    assert r.returncode == 0, r.stderr
    elapsed = time.perf_counter() - t0
    run_as(user, [str(bins.tool("pg_ctl")), "stop", "-m", "immediate", "-D", str(d / "data")], 60, cwd=d)
    shutil.rmtree(d, ignore_errors=True)
    return elapsed


def pgready(bins, settings, toxiproxy: bool) -> float:
    t0 = time.perf_counter()
    c = provision_local(settings, bins=bins, replicas=1, pgbouncer=True, toxiproxy=toxiproxy)
    elapsed = time.perf_counter() - t0
    c.close()
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--major", type=int, default=None)
    a = ap.parse_args()
    bins = find_postgres(None, a.major)
    settings = build({}, None, None)
    pgready(bins, settings, False)  # build the cached initdb template once: the cache is the point
    rows: dict[str, list[float]] = {"bare initdb + pg_ctl start (1 node)": [],
                                    "pgready primary + replica + pgbouncer": [],
                                    "pgready primary + replica + pgbouncer + toxiproxy": []}
    names = list(rows)
    for _ in range(a.rounds):
        rows[names[0]].append(bare(bins))
        rows[names[1]].append(pgready(bins, settings, False))
        rows[names[2]].append(pgready(bins, settings, True))
    base = statistics.median(rows[names[0]])
    print(f"PostgreSQL {bins.version} ({bins.source}), {a.rounds} rounds, medians:")
    for name, vals in rows.items():
        med = statistics.median(vals)
        print(f"  {name:<52} {med:6.2f} s   ratio {med / base:4.2f}   (min {min(vals):.2f}, max {max(vals):.2f})")
    print("  target: pgready primary + replica + pgbouncer ratio <= 2.5")
    print(f"  peak RSS of the plugin process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MiB")


if __name__ == "__main__":
    main()
