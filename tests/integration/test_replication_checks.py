"""static replication checks (REP001–REP004) on a real primary with two streaming standbys (replica1 synchronous).

Pass: both stream, no lag, slots active and bounded, RPO 0 backed by replica1. Then it is broken for real:
replica2's replay is paused while WAL is written (lag in bytes), replica1 — the synchronous one — is stopped
(one standby missing, its slot inactive and retaining WAL, no sync standby), max_slot_wal_keep_size = -1.
"""

from __future__ import annotations

from typing import Any

import pytest

from static_support import (assert_never_better, assert_no_secret, cached, dsn_as, good_scenario, make_login_role,
                            objects, settings, statuses, toml, wait_for)

pytestmark = pytest.mark.integration
REP = ["REP001", "REP002", "REP003", "REP004"]


def replication_scenario(pg_bins: Any, run_pgready: Any) -> dict[str, Any]:
    from pytest_pgready.cluster.local import provision_local

    def build() -> dict[str, Any]:
        c = provision_local(settings(), bins=pg_bins, replicas=2, sync=True, pgbouncer=False, toxiproxy=False)
        try:
            p, r1, r2 = c.primary, c.replicas[0], c.replicas[1]
            with p.connect() as conn:
                mon_pw = make_login_role(conn, "monitor", "pg_monitor")
            topo = ["--pgready-dsn", p.dsn(), "--pgready-replica-dsn", r1.dsn(), "--pgready-replica-dsn", r2.dsn()]
            runs = {"pass": run_pgready(*topo, "--pgready-suite", "replication", config=toml(rpo_seconds=0))}
            with r2.connect() as conn:
                conn.execute("SELECT pg_wal_replay_pause()")
            with p.connect() as conn:
                conn.execute("CREATE TABLE filler AS SELECT g, repeat('w', 100) AS pad "
                             "FROM generate_series(1, 20000) g")
                lsn = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
                wait_for("replica1 flushed the filler", lambda: conn.execute(
                    "SELECT flush_lsn >= %s FROM pg_stat_replication WHERE application_name = 'replica1'",
                    (lsn,)).fetchone()[0])
                conn.execute("ALTER SYSTEM SET max_slot_wal_keep_size = -1")
                conn.execute("SELECT pg_reload_conf()")
            r1.stop()
            with p.connect() as conn:
                wait_for("replica1's walsender gone", lambda: conn.execute(
                    "SELECT count(*) = 0 FROM pg_stat_replication WHERE application_name = 'replica1'").fetchone()[0])
            # preflight refuses an unreachable --pgready-replica-dsn, so the lost standby is declared instead
            cfg = toml(rpo_seconds=0, max_replay_lag_bytes=1024, expected_replicas=2)
            runs["fail"] = run_pgready("--pgready-dsn", p.dsn(), "--pgready-replica-dsn", r2.dsn(),
                                       "--pgready-suite", "replication", config=cfg)
            runs["fail_monitor"] = run_pgready("--pgready-dsn", dsn_as(c, "monitor", mon_pw), "--pgready-suite",
                                               "replication", config=toml(rpo_seconds=0, max_replay_lag_bytes=1024,
                                                                          expected_replicas=2))
            runs["secrets"] = [c.password, mon_pw]
            return runs
        finally:
            c.close()

    return cached("replication", pg_bins.major, build)


@pytest.mark.parametrize("cid", REP)
def test_replication_check_passes_with_streaming_standbys(pg_bins, run_pgready, cid):
    run = replication_scenario(pg_bins, run_pgready)["pass"]
    assert run.status(cid) == "pass", run.check(cid)


def test_replication_pass_figures(pg_bins, run_pgready):
    run = replication_scenario(pg_bins, run_pgready)["pass"]
    assert run.check("REP001")["evidence"]["streaming"] == ["replica1", "replica2"]
    assert run.check("REP002")["metrics"]["replay_lag_bytes"] < 1024 * 1024
    assert "replay_lag_seconds" in run.check("REP002")["metrics"]
    assert run.check("REP004")["evidence"]["sync_standbys"] == ["replica1"]


def test_rep001_fails_when_an_expected_standby_is_gone(pg_bins, run_pgready):
    run = replication_scenario(pg_bins, run_pgready)["fail"]
    assert run.status("REP001") == "fail" and run.check("REP001")["summary"] == "1 of 2 expected standbys stream"
    assert "1 expected standbys are not connected" in objects(run, "REP001")


def test_rep002_fails_when_replay_lags(pg_bins, run_pgready):
    run = replication_scenario(pg_bins, run_pgready)["fail"]
    assert run.status("REP002") == "fail", run.check("REP002")
    assert "replica2: replay lag" in objects(run, "REP002")
    assert run.check("REP002")["metrics"]["replay_lag_bytes"] > 1024


def test_rep003_fails_on_an_inactive_slot_and_unbounded_retention(pg_bins, run_pgready):
    run = replication_scenario(pg_bins, run_pgready)["fail"]
    assert run.status("REP003") == "fail"
    assert "slot replica1 (physical, inactive) retains" in objects(run, "REP003")
    assert "max_slot_wal_keep_size = -1" in objects(run, "REP003")


def test_rep004_fails_without_a_connected_sync_standby(pg_bins, run_pgready):
    run = replication_scenario(pg_bins, run_pgready)["fail"]
    assert run.status("REP004") == "fail"
    assert "no standby named by synchronous_standby_names" in objects(run, "REP004")


def test_replication_na_without_standbys_or_rpo_zero(pg_bins, run_pgready):
    run = good_scenario(pg_bins, run_pgready)["superuser"]  # a lone primary, default RPO 300 s
    s = statuses(run)
    assert s["REP001"] == "na" and "expected_replicas" in run.check("REP001")["summary"]
    assert s["REP002"] == "na" and s["REP004"] == "na"
    assert s["REP003"] == "pass"  # no slot, retention bounded: measured, not absent


def test_replication_monitor_role_never_better_than_superuser(pg_bins, run_pgready):
    sc = replication_scenario(pg_bins, run_pgready)
    assert_never_better(sc["fail"], sc["fail_monitor"], REP)
    assert statuses(sc["fail_monitor"])["REP001"] == "fail"  # expected_replicas declared: same verdict
    for r in ("pass", "fail", "fail_monitor"):
        assert_no_secret(sc[r], *sc["secrets"])
