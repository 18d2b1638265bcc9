"""PERF005 must report the application's slow statements, never pgready's own heavy ones.

The demo once failed PERF005 on the content checksum the backup drills run: pg_stat_statements
had kept it under the application's name. This proves the mark survives in pg_stat_statements'
text and that the check's own query leaves marked statements (and pg_dump's COPYs) out.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _slow_sql() -> str:
    spec = importlib.util.spec_from_file_location("perf_suite", ROOT / "suites" / "test_performance.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["perf_suite"] = mod  # its dataclasses look themselves up there
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod.SLOW_SQL


def test_marked_harness_statements_stay_out_of_perf005(scratch_db) -> None:
    from pytest_pgready.drills.content import read_content

    with scratch_db.connect() as c:
        c.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        c.execute("CREATE TABLE app_t (id int PRIMARY KEY, v text)")
        c.execute("INSERT INTO app_t SELECT g, md5(g::text) FROM generate_series(1, 1000) g")
        c.execute("SELECT pg_stat_statements_reset()")
        for _ in range(3):  # the harness: checksums, called often enough to count
            with c.transaction():
                read_content(c)
        for _ in range(3):  # the application: a slow statement that must be reported
            c.execute("SELECT count(*), pg_sleep(0.01) FROM app_t WHERE v LIKE %s", ("%ab%",))
        for _ in range(2):  # what pg_dump sends
            with c.cursor().copy("COPY app_t TO STDOUT") as cp:
                for _block in cp:
                    pass
        texts = [r[0] for r in c.execute("SELECT query FROM pg_stat_statements WHERE dbid = "
                                         "(SELECT oid FROM pg_database WHERE datname = current_database())")]
        assert any("/* pgready */" in t and "app_t" in t for t in texts), texts  # the mark is kept
        row = c.execute(_slow_sql(), {"min_calls": 2, "slow_ms": 0}).fetchone()
    reported = [q for _db, q, _calls, _ms in row[3]]
    assert any("pg_sleep" in q for q in reported), reported
    assert not any("pgready" in q for q in reported), reported
    assert not any(q.upper().startswith("COPY") for q in reported), reported
