"""Every static suite is read-only: run them all against a database with data and prove nothing was written.

Three independent witnesses, before and after the run: the content checksum of every user table, the list of
objects (relations, functions, schemas, roles, databases by oid and name — a temp table or schema would show),
and the write counters (pg_stat_user_tables n_tup_ins/upd/del and pg_stat_database tup_* of the database,
which also count catalog writes). The witnesses are themselves tested: one real INSERT must change them.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from psycopg import sql

from static_support import toml, wait_for

pytestmark = pytest.mark.integration
STATIC_SUITES = "schema,indexes,config,security,health,replication"

SCHEMA = """
CREATE SCHEMA shop;
CREATE TABLE shop.customers (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text UNIQUE NOT NULL);
CREATE TABLE shop.orders (id bigserial PRIMARY KEY, customer_id bigint NOT NULL REFERENCES shop.customers,
                          total numeric(12,2) NOT NULL CHECK (total >= 0), placed_at timestamptz DEFAULT now());
CREATE TABLE shop.audit (id int PRIMARY KEY, note text);
CREATE INDEX ON shop.orders (customer_id);
CREATE VIEW shop.big_orders AS SELECT * FROM shop.orders WHERE total > 100;
CREATE FUNCTION shop.order_count() RETURNS bigint LANGUAGE sql STABLE AS 'SELECT count(*) FROM shop.orders';
INSERT INTO shop.customers (email) SELECT 'c' || g || '@example.com' FROM generate_series(1, 300) g;
INSERT INTO shop.orders (customer_id, total) SELECT 1 + g % 300, g % 500 FROM generate_series(1, 3000) g;
INSERT INTO shop.audit SELECT g, 'n' || g FROM generate_series(1, 100) g;
DELETE FROM shop.orders WHERE id % 10 = 0;
"""

OBJECTS_SQL = """
SELECT 'class', oid::bigint, relnamespace::bigint || '.' || relname || ':' || relkind::text FROM pg_class
UNION ALL SELECT 'proc', oid::bigint, pronamespace::bigint || '.' || proname FROM pg_proc
UNION ALL SELECT 'namespace', oid::bigint, nspname FROM pg_namespace
UNION ALL SELECT 'role', oid::bigint, rolname FROM pg_roles
UNION ALL SELECT 'database', oid::bigint, datname FROM pg_database
ORDER BY 1, 2
"""
COUNTERS_SQL = """
SELECT (SELECT coalesce(sum(n_tup_ins), 0) || '/' || coalesce(sum(n_tup_upd), 0) || '/' || coalesce(sum(n_tup_del), 0)
          FROM pg_stat_user_tables),
       (SELECT tup_inserted || '/' || tup_updated || '/' || tup_deleted
          FROM pg_stat_database WHERE datname = current_database()),
       (SELECT coalesce(sum(autovacuum_count + autoanalyze_count), 0) FROM pg_stat_all_tables)
"""
TABLES_SQL = """
SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_%' ORDER BY 1, 2
"""


def snapshot(db: Any) -> dict[str, Any]:
    with db.connect() as conn:
        sums = {}
        for nsp, rel in conn.execute(TABLES_SQL).fetchall():
            q = sql.SQL("SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {} t")
            sums[f"{nsp}.{rel}"] = conn.execute(q.format(sql.Identifier(nsp, rel))).fetchone()
        objects = conn.execute(OBJECTS_SQL).fetchall()
        user_w, db_w, autovac = conn.execute(COUNTERS_SQL).fetchone()
    return {"content": sums, "objects": objects, "user_writes": user_w, "db_writes": db_w, "autovac": autovac}


def settle(db: Any, app_name: str = "pytest-pgready") -> None:
    """Wait (bounded) until the plugin's backends are gone: they flush their statistics as they exit."""
    with db.connect() as conn:
        wait_for("pgready sessions to end", lambda: conn.execute(
            "SELECT count(*) = 0 FROM pg_stat_activity WHERE application_name = %s AND pid <> pg_backend_pid()",
            (app_name,)).fetchone()[0], timeout=15)
    time.sleep(0.2)


def test_static_suites_write_nothing(scratch_db, run_pgready):
    scratch_db.execute(SCHEMA)
    with scratch_db.connect() as conn:
        conn.execute("VACUUM ANALYZE")  # leave autovacuum nothing to do during the run
        conn.execute("SELECT pg_stat_force_next_flush()")
    settle(scratch_db, "pytest-pgready")
    time.sleep(1.1)  # our own setup session's counters: flushed at its exit above
    before = snapshot(scratch_db)
    run = run_pgready("--pgready-dsn", scratch_db.dsn, "--pgready-suite", STATIC_SUITES,
                      config=toml(cache_sample_seconds=0.2))
    assert run.report is not None, run.output[-3000:]
    ran = [c for c in run.report["checks"] if not c["summary"].startswith("not implemented")]
    assert len(ran) >= 30, "the static suites did not run"
    assert not [c for c in run.report["checks"] if c["status"] == "error"], \
        [(c["id"], c["summary"]) for c in run.report["checks"] if c["status"] == "error"]
    settle(scratch_db)
    after = snapshot(scratch_db)
    if after["autovac"] != before["autovac"]:
        pytest.skip("autovacuum worked in the database during the run: the write counters are inconclusive")
    assert after["content"] == before["content"]
    assert after["objects"] == before["objects"]
    assert after["user_writes"] == before["user_writes"]
    assert after["db_writes"] == before["db_writes"]

    # the witnesses see a real write
    with scratch_db.connect() as conn:
        conn.execute("INSERT INTO shop.audit VALUES (1000, 'witness')")
        conn.execute("SELECT pg_stat_force_next_flush()")
    settle(scratch_db, "no-such-app")
    witnessed = snapshot(scratch_db)
    assert witnessed["content"] != after["content"]
    wait_for("the insert in the counters", lambda: snapshot(scratch_db)["db_writes"] != after["db_writes"], 10, 0.2)
    assert snapshot(scratch_db)["user_writes"] != after["user_writes"]


def test_full_default_run_writes_nothing(scratch_db, run_pgready):
    """Every suite, no --pgready-allow-destructive: drills and load are na, BKP001 only dumps; nothing written."""
    scratch_db.execute(SCHEMA)
    with scratch_db.connect() as conn:
        conn.execute("VACUUM ANALYZE")
        conn.execute("SELECT pg_stat_force_next_flush()")
    settle(scratch_db, "pytest-pgready")
    time.sleep(1.1)
    before = snapshot(scratch_db)
    run = run_pgready("--pgready-dsn", scratch_db.dsn, config=toml(cache_sample_seconds=0.2), timeout=900)
    assert run.report is not None, run.output[-3000:]
    by_id = {c["id"]: c for c in run.report["checks"]}
    assert len(by_id) >= 85, "every catalogue check must appear in the report"
    for cid in ("FO001", "BKP002", "PITR002", "PERF001", "POOL002"):
        assert by_id[cid]["status"] == "na" and "allow-destructive" in by_id[cid]["summary"], by_id[cid]
    settle(scratch_db)
    after = snapshot(scratch_db)
    if after["autovac"] != before["autovac"]:
        pytest.skip("autovacuum worked in the database during the run: the write counters are inconclusive")
    assert after["content"] == before["content"]
    assert after["objects"] == before["objects"]
    assert after["user_writes"] == before["user_writes"]
    assert after["db_writes"] == before["db_writes"]
