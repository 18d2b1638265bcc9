"""health suite (HLT001–HLT010) against real servers.

The unhealthy primary is made so for real: pg_resetwal moves the next XID past half the wraparound horizon,
a 1MB shared_buffers with a sequential-scan loop drives the cache hit ratio down, one session sits idle in a
transaction holding an XID, a snapshot and a lock that another session waits for, a prepared transaction
is left behind, a table is bloated and another never analyzed — and the archiver fails. The time
thresholds are lowered in the run's config so the test needs seconds, not minutes.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import pytest

from static_support import (Loader, assert_never_better, assert_no_secret, cached, dsn_as, good_scenario,
                            make_login_role, objects, settings, statuses, toml, wait_for)

pytestmark = pytest.mark.integration
HLT = [f"HLT{i:03d}" for i in range(1, 11)]
NEXT_XID = 1200 * 1048576  # > 2^31 × 0.5; a multiple of a pg_xact segment so the server zeroes fresh pages

SICK_SQL = """
CREATE TABLE bloated (id int PRIMARY KEY, pad text) WITH (autovacuum_enabled = false);
INSERT INTO bloated SELECT g, repeat('b', 50) FROM generate_series(1, 2000) g;
DELETE FROM bloated WHERE id > 500;
CREATE TABLE never_analyzed (id int PRIMARY KEY) WITH (autovacuum_enabled = false);
INSERT INTO never_analyzed SELECT generate_series(1, 1000);
CREATE TABLE big (id int, pad text) WITH (autovacuum_enabled = false);
INSERT INTO big SELECT g, repeat('z', 100) FROM generate_series(1, 30000) g;
CREATE TABLE locked (id int);
SELECT pg_stat_force_next_flush();
"""
SICK_CONFIG = dict(max_xact_age_seconds=1, max_idle_in_xact_seconds=1, max_lock_wait_seconds=0.5,
                   max_connection_ratio=0.02, bloat_min_rows=100, max_prepared_xact_age_seconds=1,
                   max_xmin_horizon_xids=5, cache_sample_seconds=2.5, cache_min_reads=100)
BAD_OBJECTS = {
    "HLT001": ["database app: xid age"],
    "HLT002": ["blocks read from outside shared_buffers"],
    "HLT003": ["(idle-in-xact)"],
    "HLT004": ["(idle-in-xact): idle in transaction"],
    "HLT005": ["(lock-waiter) waits", "on public.locked, blocked by"],
    "HLT006": ["connections"],
    "HLT007": ["public.bloated: 1500 dead of 2000"],
    "HLT008": ["public.never_analyzed: never analyzed"],
    "HLT009": ["pgready_forgotten (owner postgres, database app)"],
    "HLT010": ["(idle-in-xact)"],
}


def sick_scenario(pg_bins: Any, run_pgready: Any) -> dict[str, Any]:
    from pytest_pgready.cluster.local import provision_local

    def build() -> dict[str, Any]:
        c = provision_local(settings(), bins=pg_bins, replicas=0, pgbouncer=False, toxiproxy=False,
                            conf={"max_prepared_transactions": "10", "shared_buffers": "1MB",
                                  "autovacuum_freeze_max_age": "2000000000",
                                  "autovacuum_multixact_freeze_max_age": "2000000000"})
        held: list[Any] = []
        try:
            node = c.primary
            node.stop()
            r = c.run_tool(["pg_resetwal", "-x", str(NEXT_XID), "-D", str(node.datadir)], as_owner=True, timeout=60)
            assert r.returncode == 0, r.stderr
            node.start()
            with node.connect() as conn:
                mon_pw = make_login_role(conn, "monitor", "pg_monitor")
                plain_pw = make_login_role(conn, "plain")
                conn.execute("GRANT pg_read_all_settings TO plain")  # sees settings, not other sessions
                conn.execute(SICK_SQL)
                wait_for("dead tuples in the statistics", lambda: conn.execute(
                    "SELECT n_dead_tup >= 1500 FROM pg_stat_user_tables WHERE relname = 'bloated'").fetchone()[0])
                conn.execute("ALTER SYSTEM SET archive_command = 'false'")
                conn.execute("SELECT pg_reload_conf()")
                conn.execute("SELECT pg_switch_wal()")
                wait_for("a failed archive attempt", lambda: conn.execute(
                    "SELECT failed_count > 0 FROM pg_stat_archiver").fetchone()[0], timeout=30, every=0.2)
            # a forgotten prepared transaction
            prep = node.connect()
            held.append(prep)
            prep.execute("BEGIN")
            prep.execute("INSERT INTO bloated VALUES (-1, 'prepared')")
            prep.execute("PREPARE TRANSACTION 'pgready_forgotten'")
            # idle in transaction, holding an XID, a snapshot and a lock
            idle = node.connect(application_name="idle-in-xact")
            held.append(idle)
            idle.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            idle.execute("SELECT txid_current()")
            idle.execute("LOCK TABLE locked IN ACCESS EXCLUSIVE MODE")
            # a session waiting for that lock (its thread ends when the lock goes with the cluster)
            waiter = node.connect(application_name="lock-waiter")
            held.append(waiter)
            threading.Thread(target=_wait_for_lock, args=(waiter,), daemon=True).start()
            with node.connect() as conn:
                for _ in range(10):  # age the held snapshot
                    conn.execute("SELECT txid_current()")
            time.sleep(1.2)
            cfg = toml(**SICK_CONFIG)
            runs = {}
            with Loader(node.dsn(), "SELECT count(*) FROM big"):
                runs["superuser"] = run_pgready("--pgready-dsn", node.dsn(), "--pgready-suite", "config,health",
                                                config=cfg)
                runs["monitor"] = run_pgready("--pgready-dsn", dsn_as(c, "monitor", mon_pw), "--pgready-suite",
                                              "config,health", config=cfg)
                runs["plain"] = run_pgready("--pgready-dsn", dsn_as(c, "plain", plain_pw), "--pgready-suite",
                                            "config,health", config=cfg)
            runs["secrets"] = [c.password, mon_pw, plain_pw]
            return runs
        finally:
            c.close()
            for h in held:
                try:
                    h.close()
                except Exception:
                    pass

    return cached("sick", pg_bins.major, build)


def _wait_for_lock(conn: Any) -> None:
    try:
        conn.execute("SET statement_timeout = '120s'")
        conn.execute("SELECT count(*) FROM locked")
    except psycopg.Error:
        pass  # the cluster went away


@pytest.mark.parametrize("cid", HLT)
def test_health_check_passes_on_a_healthy_server(pg_bins, run_pgready, cid):
    run = good_scenario(pg_bins, run_pgready)["superuser"]
    assert run.status(cid) == "pass", run.check(cid)


def test_health_good_figures(pg_bins, run_pgready):
    run = good_scenario(pg_bins, run_pgready)["superuser"]
    assert run.check("HLT002")["metrics"]["cache_hit_ratio"] >= 0.95
    assert run.check("HLT007")["evidence"]["tables_judged"] >= 1  # items: 2000 rows, 10 dead
    assert run.check("HLT008")["evidence"]["tables_judged"] >= 1
    assert run.check("HLT001")["evidence"]["limit"] == 2 ** 30


@pytest.mark.parametrize("cid", sorted(BAD_OBJECTS))
def test_health_check_fails_on_a_sick_server(pg_bins, run_pgready, cid):
    run = sick_scenario(pg_bins, run_pgready)["superuser"]
    assert run.status(cid) == "fail", run.check(cid)
    for needle in BAD_OBJECTS[cid]:
        assert needle in objects(run, cid), (cid, objects(run, cid))


def test_health_fail_figures(pg_bins, run_pgready):
    run = sick_scenario(pg_bins, run_pgready)["superuser"]
    assert run.check("HLT001")["metrics"]["max_xid_age"] > 2 ** 30
    assert run.check("HLT002")["metrics"]["cache_hit_ratio"] < 0.95
    assert run.check("HLT010")["summary"].startswith("the xmin horizon is")
    assert "held by session pid" in run.check("HLT010")["summary"]


def test_cfg006_fails_when_the_archiver_fails(pg_bins, run_pgready):
    run = sick_scenario(pg_bins, run_pgready)["superuser"]
    assert run.status("CFG006") == "fail", run.check("CFG006")
    ev = run.check("CFG006")["evidence"]
    assert ev["failed_count"] >= 1 and ev["last_failed_wal"] in objects(run, "CFG006")


def test_health_restricted_roles_never_better_than_superuser(pg_bins, run_pgready):
    sc = sick_scenario(pg_bins, run_pgready)
    ids = HLT + [f"CFG{i:03d}" for i in range(1, 15)]
    assert_never_better(sc["superuser"], sc["monitor"], ids)
    assert_never_better(sc["superuser"], sc["plain"], ids)
    for r in ("superuser", "monitor", "plain"):
        assert_no_secret(sc[r], *sc["secrets"])
    assert {c: s for c, s in statuses(sc["monitor"]).items() if c in BAD_OBJECTS} == {c: "fail" for c in BAD_OBJECTS}
    plain = sc["plain"]
    for cid in ("HLT003", "HLT004", "HLT005"):  # other sessions are hidden from a plain role
        assert plain.status(cid) == "na" and "pg_read_all_stats" in plain.check(cid)["summary"], plain.check(cid)
    # the prepared transaction is visible to anyone and holds the horizon too: a fail on what it can see
    assert plain.status("HLT010") == "fail" and "prepared transaction pgready_forgotten" in objects(plain, "HLT010")
    good = good_scenario(pg_bins, run_pgready)
    assert_never_better(good["superuser"], good["monitor"], HLT)
