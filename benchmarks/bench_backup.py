"""What does proving a logical backup cost over just taking and loading one?

    python benchmarks/bench_backup.py [--mb 300] [--major 15] [--jobs 2] [--repeat 1]

Generates about --mb MB of data in a local cluster (in the server, with generate_series), then
times side by side in one run:
  (a) bare:  pg_dump -Fc, then pg_restore into a fresh database;
  (b) drill: the BKP001 drill (pytest_pgready.drills.backup_logical.logical_round_trip): the dump in an
      exported snapshot with the source checksums computed concurrently, pg_restore -j, then the
      restored checksums and both schemas compared.
Prints seconds, MB/s and the ratio b/a (the target is <= 1.5). Both restore into the same already
running scratch instance, so instance start-up is outside both figures (it is printed apart).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Three shapes of table: narrow numeric rows, text-heavy rows and jsonb documents, ~1/3 of the bytes each.
GENERATE = """
CREATE TABLE bench_events (id bigint PRIMARY KEY, account int NOT NULL, at timestamptz NOT NULL, amount numeric(12,2));
INSERT INTO bench_events SELECT g, g % 5000, TIMESTAMPTZ '2025-01-01' + g * INTERVAL '1 second', (g % 100000) / 100.0
  FROM generate_series(1, {events}) g;
CREATE INDEX ON bench_events (account, at);
CREATE TABLE bench_notes (id bigint PRIMARY KEY, title text NOT NULL, body text NOT NULL);
INSERT INTO bench_notes SELECT g, 'note ' || g, repeat(md5(g::text), 8) FROM generate_series(1, {notes}) g;
CREATE TABLE bench_docs (id bigint PRIMARY KEY, doc jsonb NOT NULL);
INSERT INTO bench_docs SELECT g, jsonb_build_object('id', g, 'tags', jsonb_build_array('a', 'b', g % 7),
                                                    'name', md5(g::text), 'n', g * 1.5)
  FROM generate_series(1, {docs}) g;
"""


def rows_for(mb: float) -> dict[str, int]:
    # measured row footprints incl. indexes: events ~120 B, notes ~330 B, docs ~190 B
    third = mb * 1024 * 1024 / 3
    return {"events": int(third / 120), "notes": int(third / 330), "docs": int(third / 190)}


def bare(scratch, source, db: str, work: Path) -> tuple[float, float]:
    """pg_dump -Fc + pg_restore into a fresh database: the baseline (no verification)."""
    from pytest_pgready.drills.toolrun import create_restore_db, dsn_of, socket_dsn, source_pgpass

    env = {"PGPASSFILE": str(source_pgpass(scratch, source.primary))}
    out = work / "bare.pgc"
    t0 = time.perf_counter()
    r = scratch.run_tool([str(scratch.bin.tool("pg_dump")), "-Fc", "-d", dsn_of(source.primary, db), "-f", str(out)],
                         env=env, timeout=3600)
    dump = time.perf_counter() - t0
    assert r.returncode == 0, r.stderr
    create_restore_db(scratch, "bench_bare")
    t0 = time.perf_counter()
    r = scratch.run_tool([str(scratch.bin.tool("pg_restore")), "-d", socket_dsn(scratch, "bench_bare"), str(out)],
                         timeout=3600)
    restore = time.perf_counter() - t0
    assert r.returncode == 0, r.stderr
    out.unlink()
    return dump, restore


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=300, help="approximate size of the generated data (default 300)")
    ap.add_argument("--major", type=int, default=None, help="PostgreSQL major to use (default: the first found)")
    ap.add_argument("--jobs", type=int, default=2, help="parallel jobs of the drill's pg_dump/pg_restore")
    ap.add_argument("--repeat", type=int, default=1, help="repeat both measurements and keep the fastest")
    args = ap.parse_args(argv)

    from pytest_pgready.cluster.binaries import find_postgres
    from pytest_pgready.cluster.local import provision_local
    from pytest_pgready.drills.backup_logical import logical_round_trip
    from pytest_pgready.drills.scratch import scratch_instance
    from pytest_pgready.drills.toolrun import MB
    from pytest_pgready.settings import build

    settings = build({}, None, None)
    bins = find_postgres(None, args.major)
    source = provision_local(settings, bins=bins, replicas=0, pgbouncer=False, toxiproxy=False, archive=False,
                             init_sql=False, byo=False)
    scratch = None
    try:
        t0 = time.perf_counter()
        with source.primary.connect() as c:
            c.execute("SET synchronous_commit = off")
            c.execute(GENERATE.format(**rows_for(args.mb)))
            c.execute("VACUUM ANALYZE")
            size = c.execute("SELECT pg_database_size(current_database())").fetchone()[0]
        print(f"PostgreSQL {bins.version}: generated {size / MB:,.0f} MB in {time.perf_counter() - t0:.1f}s")
        t0 = time.perf_counter()
        scratch = scratch_instance(settings, bins)
        print(f"scratch instance started in {time.perf_counter() - t0:.2f}s (outside both figures)")
        work = scratch.workdir
        best_a = best_b = None
        for i in range(args.repeat):
            d, r = bare(scratch, source, "app", work)
            a = (d + r, d, r)
            t0 = time.perf_counter()
            res = logical_round_trip(source.primary, "app", scratch, jobs=args.jobs)
            total = time.perf_counter() - t0
            assert not res.problems(), res.problems()
            b = (total, res.dump_seconds, res.restore_seconds, total - res.dump_seconds - res.restore_seconds, res)
            best_a = a if best_a is None or a[0] < best_a[0] else best_a
            best_b = b if best_b is None or b[0] < best_b[0] else best_b
            if res.dump_path is not None:
                import shutil

                shutil.rmtree(res.dump_path.parent, ignore_errors=True)
        a_total, a_dump, a_restore = best_a
        b_total, b_dump, b_restore, b_verify, res = best_b
        mb = size / MB
        print(f"\n{'':38}{'seconds':>9}{'MB/s':>9}")
        print(f"{'(a) pg_dump -Fc':38}{a_dump:9.2f}{mb / a_dump:9.1f}")
        print(f"{'    pg_restore':38}{a_restore:9.2f}{mb / a_restore:9.1f}")
        print(f"{'    total':38}{a_total:9.2f}{mb / a_total:9.1f}")
        print(f"{f'(b) pg_dump -F{res.fmt[0]} (+ source checksums)':38}{b_dump:9.2f}{mb / b_dump:9.1f}")
        print(f"{f'    pg_restore -j {res.jobs}':38}{b_restore:9.2f}{mb / b_restore:9.1f}")
        print(f"{'    verify (checksums, schema)':38}{b_verify:9.2f}")
        print(f"{'    total':38}{b_total:9.2f}{mb / b_total:9.1f}")
        ratio = b_total / a_total
        print(f"\nratio b/a = {ratio:.2f} (target <= 1.5): {'OK' if ratio <= 1.5 else 'OVER'}; "
              f"{len(res.source.tables)} tables, {res.source.rows:,} rows verified")
        return 0
    finally:
        if scratch is not None:
            scratch.close()
        source.close()


if __name__ == "__main__":
    raise SystemExit(main())
