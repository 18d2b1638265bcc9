"""The databases of the schema/indexes integration tests, built once per PostgreSQL major, and the plugin
runs against them; test_schema_checks.py and test_index_checks.py assert on the cached reports.

A plugin run costs about two seconds, so the runs are few and wide: every planted violation of both
suites sits in one database and one run proves them all. Scenarios live on the session's shared
cluster (`pg_cluster`) and go with it. Every wait has a deadline; nothing here targets anything but
127.0.0.1.
"""

from __future__ import annotations

import secrets
import threading
from pathlib import Path
from typing import Any, Callable

import psycopg
from psycopg import sql

from static_support import cached, dsn_as, make_login_role, wait_for

HERE = Path(__file__).resolve().parent
SUITES = "schema,indexes"

# usage checks judged at once (min_stats_age_days = 0) and floors small enough for test-sized data
TUNED = """min_stats_age_days = 0
index_bloat_min_bytes = 1048576
seqscan_min_rows = 1000
timestamp_allow = ["bad.allowed_ts.*"]
unlogged_allow = ["bad.cache_*"]
"""


def create_db(cluster: Any, prefix: str) -> str:
    name = f"{prefix}_{secrets.token_hex(4)}"
    with cluster.primary.connect(dbname="postgres") as c:
        c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name


def load(cluster: Any, dbname: str, *files: str) -> None:
    """Apply SQL files with psql, as a user would (autocommit: VACUUM and CONCURRENTLY work)."""
    ep = cluster.primary.endpoint
    for f in files:
        r = cluster.run_tool(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", ep.host, "-p", str(ep.port),
                              "-U", ep.user, "-d", dbname, "-f", str(HERE / f)],
                             env={"PGCLIENTENCODING": "UTF8"}, timeout=120)
        assert r.returncode == 0, f"{f}: {r.stderr[-2000:]}"


def _stat(cluster: Any, dbname: str, query: str) -> Any:
    with cluster.primary.connect(dbname=dbname) as c:
        return c.execute(query).fetchone()[0]


def _monitor(cluster: Any, dbname: str, prefix: str) -> tuple[str, str, str]:
    """A non-superuser LOGIN role holding pg_monitor only: (role, dsn, password)."""
    role = f"{prefix}_{secrets.token_hex(3)}"
    with cluster.primary.connect(dbname="postgres") as c:
        pw = make_login_role(c, role, "pg_monitor")
    return role, dsn_as(cluster, role, pw, dbname), pw


# --------------------------------------------------------------------------------------------- clean
def clean_scenario(pg_cluster: Any, run_pgready: Callable[..., Any]) -> dict[str, Any]:
    """clean.sql + pitfalls_pass.sql, judged with the default settings (young statistics), with TUNED,
    and with TUNED as a pg_monitor role (which can read no sequence and no pg_stats row)."""

    def build() -> dict[str, Any]:
        db = create_db(pg_cluster, "sch_clean")
        load(pg_cluster, db, "clean.sql", "pitfalls_pass.sql")
        wait_for("index usage of the load visible", lambda: _stat(
            pg_cluster, db, "SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = 'orders_created_at_idx'"))
        _, mon_dsn, mon_pw = _monitor(pg_cluster, db, "mon_clean")
        dsn = pg_cluster.primary.dsn(dbname=db)
        return {"db": db, "major": int(pg_cluster.bin.major), "secrets": [pg_cluster.password, mon_pw],
                "default": run_pgready("--pgready-dsn", dsn, "--pgready-suite", SUITES),
                "tuned": run_pgready("--pgready-dsn", dsn, "--pgready-suite", SUITES, config=TUNED),
                "monitor": run_pgready("--pgready-dsn", mon_dsn, "--pgready-suite", SUITES, config=TUNED)}

    return cached("schema-indexes-clean", int(pg_cluster.bin.major), build)


# -------------------------------------------------------------------------------------------- broken
BUILDING_INDEX = "scanned_v_building"


class _BlockedBuild:
    """A CREATE INDEX CONCURRENTLY held in 'waiting for writers' by an open transaction: an invalid index
    that is being built right now. Released (and the index dropped) on exit; nothing outlives 120 s."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.error: Exception | None = None

    def _build(self) -> None:
        try:
            with psycopg.connect(self.dsn, autocommit=True, options="-c statement_timeout=120s") as c:
                c.execute(f"CREATE INDEX CONCURRENTLY {BUILDING_INDEX} ON bad.scanned (v)")
        except Exception as e:  # reported by the test through self.error
            self.error = e

    def __enter__(self) -> "_BlockedBuild":
        self.blocker = psycopg.connect(self.dsn, options="-c statement_timeout=120s")
        self.blocker.execute("INSERT INTO bad.scanned (v) VALUES (0)")  # a writer CIC must wait for
        self.thread = threading.Thread(target=self._build, daemon=True)
        self.thread.start()

        def waiting() -> bool:
            with psycopg.connect(self.dsn, autocommit=True) as c:
                return bool(c.execute(
                    "SELECT count(*) FROM pg_stat_progress_create_index p JOIN pg_class i ON i.oid = p.index_relid "
                    "WHERE i.relname = %s", (BUILDING_INDEX,)).fetchone()[0])

        wait_for("CREATE INDEX CONCURRENTLY waiting for the writer", waiting, timeout=30)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.blocker.rollback()
        self.blocker.close()
        self.thread.join(60)
        with psycopg.connect(self.dsn, autocommit=True) as c:
            c.execute(f"DROP INDEX IF EXISTS bad.{BUILDING_INDEX}")


def broken_scenario(pg_cluster: Any, run_pgready: Callable[..., Any]) -> dict[str, Any]:
    """broken.sql + pitfalls_fail.sql + hostile.sql, judged with TUNED as superuser (while an index is
    being built concurrently) and as a pg_monitor role allowed to read one sequence only."""

    def build() -> dict[str, Any]:
        db = create_db(pg_cluster, "sch_broken")
        load(pg_cluster, db, "broken.sql", "pitfalls_fail.sql", "hostile.sql")
        wait_for("seq scans of bad.scanned visible", lambda: _stat(
            pg_cluster, db, "SELECT seq_scan >= 3 FROM pg_stat_user_tables WHERE relid = 'bad.scanned'::regclass"))
        role, mon_dsn, mon_pw = _monitor(pg_cluster, db, "mon_broken")
        with pg_cluster.primary.connect(dbname=db) as c:
            c.execute(sql.SQL("GRANT SELECT ON SEQUENCE trap.legacy_seq TO {}").format(sql.Identifier(role)))
        dsn = pg_cluster.primary.dsn(dbname=db)
        with _BlockedBuild(dsn) as building:
            su = run_pgready("--pgready-dsn", dsn, "--pgready-suite", SUITES, config=TUNED)
        assert building.error is None, f"the concurrent index build failed: {building.error}"
        mon = run_pgready("--pgready-dsn", mon_dsn, "--pgready-suite", SUITES, config=TUNED)
        return {"db": db, "major": int(pg_cluster.bin.major), "secrets": [pg_cluster.password, mon_pw],
                "superuser": su, "monitor": mon}

    return cached("schema-indexes-broken", int(pg_cluster.bin.major), build)


# ------------------------------------------------------------------------------------------- waivers
WAIVER_SQL = """
CREATE TABLE public.p (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY);
CREATE TABLE public.a (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, b bigint REFERENCES public.p (id));
CREATE TABLE public.c (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, d bigint REFERENCES public.p (id));
"""
PARTLY_WAIVED = """
[[waivers]]
id = "IDX001:public.a(b)"
reason = "a holds ten rows; reviewed by the DBA"

[[waivers]]
id = "IDX001:public.c(d)"
reason = "was fine last year"
expires = 2020-01-01
"""
ALL_WAIVED = """
[[waivers]]
id = "IDX001:public.a(b)"
reason = "a holds ten rows; reviewed by the DBA"

[[waivers]]
id = "IDX001:public.c(d)"
reason = "c is append-only; p rows are never deleted"
"""


def waiver_scenario(pg_cluster: Any, run_pgready: Callable[..., Any]) -> dict[str, Any]:
    """Two unindexed FKs (public.a(b), public.c(d)) judged with per-object waivers (one live, one expired;
    then both live), and an empty database (no application table at all)."""

    def build() -> dict[str, Any]:
        db = create_db(pg_cluster, "sch_waiver")
        with pg_cluster.primary.connect(dbname=db) as c:
            c.execute(WAIVER_SQL)
        dsn = pg_cluster.primary.dsn(dbname=db)
        empty = pg_cluster.primary.dsn(dbname=create_db(pg_cluster, "sch_empty"))
        return {"partly": run_pgready("--pgready-dsn", dsn, "--pgready-suite", SUITES, config=PARTLY_WAIVED),
                "all": run_pgready("--pgready-dsn", dsn, "--pgready-suite", SUITES, config=ALL_WAIVED),
                "empty": run_pgready("--pgready-dsn", empty, "--pgready-suite", SUITES)}

    return cached("schema-indexes-waivers", int(pg_cluster.bin.major), build)
