"""How the schema and indexes suites scale with the size of the catalog: 20 tables vs 2,000.

    python benchmarks/bench_static.py [--major 18] [--tables 2000] [--repeat 5]

Provisions an embedded cluster, generates both schemas in the server (one DO block each: tables with
an identity key, an FK to the previous table, an index on most FKs, money and quantity columns, a
little data, ANALYZE) and measures, side by side:

  * in-process: each check's one query (the *_SQL constants of suites/test_schema.py and
    test_indexes.py), median of --repeat runs after a warm-up, on one connection;
  * whole plugin runs: `pytest --pgready --pgready-suite schema,indexes` wall time (startup included),
    median of three.

The ratio column is large/small; the target for a whole run is ≤ 2 (no per-table round trips: every
check is one query whatever the number of tables). No assertion: it prints.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SUITES = ROOT / "suites"

GENERATE = """
DO $$
DECLARE
    n int := %(tables)s;
BEGIN
    CREATE SCHEMA bench;
    FOR i IN 1..n LOOP
        EXECUTE format(
            'CREATE TABLE bench.%%I (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, %%s name text NOT NULL, '
            'amount numeric(12, 2) NOT NULL CHECK (amount >= 0), quantity integer NOT NULL CHECK (quantity >= 0), '
            'created_at timestamptz NOT NULL DEFAULT now())',
            't' || i,
            CASE WHEN i > 1 THEN format('parent_id bigint REFERENCES bench.%%I (id),', 't' || (i - 1)) ELSE '' END);
        IF i > 1 AND i %% 10 <> 0 THEN   -- every tenth FK is left unindexed: IDX001 has findings to list
            EXECUTE format('CREATE INDEX ON bench.%%I (parent_id)', 't' || i);
        END IF;
        EXECUTE format('CREATE INDEX ON bench.%%I (created_at)', 't' || i);
        EXECUTE format('INSERT INTO bench.%%I (name, amount, quantity) SELECT ''r'' || g, g, g '
                       'FROM generate_series(1, 20) g', 't' || i);
        IF i %% 200 = 0 THEN
            COMMIT;   -- a transaction per 200 tables: the lock table holds one transaction's locks
        END IF;
    END LOOP;
END $$;
"""


def _suite(name: str) -> Any:
    if str(SUITES) not in sys.path:
        sys.path.insert(0, str(SUITES))
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", SUITES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def check_queries() -> dict[str, Any]:
    """Each check's query as it runs with the default settings (IDX006 binds its size floor)."""
    from psycopg import sql

    from pytest_pgready.settings import SPEC_BY_NAME

    out: dict[str, Any] = {}
    for name in ("test_schema", "test_indexes"):
        mod = _suite(name)
        for attr, value in vars(mod).items():
            m = re.fullmatch(r"((?:SCH|IDX)\d{3})_SQL", attr)
            if m:
                out[m.group(1)] = value
    out["IDX006"] = sql.SQL(out["IDX006"]).format(
        min_bytes=sql.Literal(SPEC_BY_NAME["index_bloat_min_bytes"].default))
    return dict(sorted(out.items()))


def make_db(cluster: Any, name: str, tables: int) -> float:
    from psycopg import sql

    t0 = time.perf_counter()
    with cluster.primary.connect(dbname="postgres") as c:
        c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with cluster.primary.connect(dbname=name) as c:
        c.execute(GENERATE % {"tables": int(tables)})
        c.execute("ANALYZE")
    return time.perf_counter() - t0


def time_queries(cluster: Any, dbname: str, queries: dict[str, Any], repeat: int) -> dict[str, float]:
    out = {}
    with cluster.primary.connect(dbname=dbname) as c:
        for cid, q in queries.items():
            c.execute(q).fetchall()  # warm-up: catalog caches, plan
            runs = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                c.execute(q).fetchall()
                runs.append(time.perf_counter() - t0)
            out[cid] = statistics.median(runs)
    return out


def time_plugin(cluster: Any, dbname: str, workdir: Path, runs: int = 3) -> tuple[float, dict[str, float]]:
    walls, checks = [], {}
    for i in range(runs):
        report = workdir / f"{dbname}-{i}"
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pytest", "--pgready", "-p", "no:cacheprovider", "-q",
                        "--pgready-dsn", cluster.primary.dsn(dbname=dbname), "--pgready-suite", "schema,indexes",
                        "--pgready-report-dir", str(report)], capture_output=True, text=True, cwd=str(workdir),
                       timeout=600, stdin=subprocess.DEVNULL)
        walls.append(time.perf_counter() - t0)
        data = json.loads((report / "readiness.json").read_text())
        for c in data["checks"]:
            checks.setdefault(c["id"], []).append(c["duration_s"])
    return statistics.median(walls), {k: statistics.median(v) for k, v in checks.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--major", type=int, default=None, help="PostgreSQL major to provision (default: newest found)")
    ap.add_argument("--tables", type=int, default=2000)
    ap.add_argument("--small", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    from pytest_pgready.cluster.binaries import all_postgres
    from pytest_pgready.cluster.local import provision_local
    from pytest_pgready.settings import build

    bins = sorted(all_postgres(), key=lambda b: b.major)
    if args.major:
        bins = [b for b in bins if b.major == args.major]
    if not bins:
        sys.exit(f"no PostgreSQL {args.major or ''} found")
    queries = check_queries()
    cluster = provision_local(build({}, None, None), bins=bins[-1], replicas=0, pgbouncer=False, toxiproxy=False)
    try:
        built = {n: make_db(cluster, f"bench_{n}", n) for n in (args.small, args.tables)}
        q = {n: time_queries(cluster, f"bench_{n}", queries, args.repeat) for n in built}
        with tempfile.TemporaryDirectory() as tmp:
            plugin = {n: time_plugin(cluster, f"bench_{n}", Path(tmp)) for n in built}
    finally:
        cluster.close()

    s, l = args.small, args.tables
    print(f"\nschema+indexes suites, PostgreSQL {bins[-1].version}: {s} vs {l} tables "
          f"(generated in {built[s]:.1f} s and {built[l]:.1f} s)\n")
    print(f"{'check':<8} {'query ' + str(s):>12} {'query ' + str(l):>12} {'ratio':>7}   "
          f"{'in run ' + str(s):>12} {'in run ' + str(l):>12}")
    for cid in queries:
        a, b = q[s][cid], q[l][cid]
        ra, rb = plugin[s][1].get(cid), plugin[l][1].get(cid)
        print(f"{cid:<8} {a * 1000:>10.1f}ms {b * 1000:>10.1f}ms {b / a:>6.1f}x   "
              f"{(ra or 0) * 1000:>10.1f}ms {(rb or 0) * 1000:>10.1f}ms")
    qa, qb = sum(q[s].values()), sum(q[l].values())
    print(f"{'all SQL':<8} {qa * 1000:>10.1f}ms {qb * 1000:>10.1f}ms {qb / qa:>6.1f}x")
    wa, wb = plugin[s][0], plugin[l][0]
    verdict = "within" if wb / wa <= 2 else "ABOVE"
    print(f"{'run':<8} {wa:>11.2f}s {wb:>11.2f}s {wb / wa:>6.2f}x   whole plugin run, startup included "
          f"({verdict} the 2x target)")


if __name__ == "__main__":
    main()
