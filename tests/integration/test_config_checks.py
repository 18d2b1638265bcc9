"""config suite (CFG001–CFG014) against real servers: a well-configured one passes, a broken one fails with the
offending setting named; bring-your-own config is judged by what the user's file declares."""

from __future__ import annotations

import time

import pytest

from static_support import (assert_never_better, assert_no_secret, bad_config_scenario, good_scenario, objects,
                            statuses, toml, wait_for)

pytestmark = pytest.mark.integration
CFG = [f"CFG{i:03d}" for i in range(1, 15)]

# what the broken cluster must name in each failing check's evidence
BAD_OBJECTS = {
    "CFG001": ["fsync=off", "full_page_writes=off"],
    "CFG002": ["synchronous_commit=off"],
    "CFG003": ["data_checksums=off"],
    "CFG004": ["wal_level=minimal"],
    "CFG005": ["archive_mode=off"],
    "CFG008": ["shared_preload_libraries"],
    "CFG009": ["idle_in_transaction_session_timeout", "neither statement_timeout nor lock_timeout"],
    "CFG010": ["shared_buffers is 0.0% of RAM", "work_mem × max_connections"],
    "CFG011": ["max_connections = 600 > 500", "superuser_reserved_connections = 1 < 3"],
    "CFG012": ["autovacuum=off", "public.no_vacuum"],
    "CFG013": ["requested"],
    "CFG014": ["log_min_duration_statement", "log_lock_waits", "log_temp_files", "log_checkpoints"],
}


@pytest.mark.parametrize("cid", [c for c in CFG if c != "CFG013"])
def test_config_check_passes_on_a_well_configured_server(pg_bins, run_pgready, cid):
    run = good_scenario(pg_bins, run_pgready)["superuser"]
    assert run.status(cid) == "pass", run.check(cid)


def test_config_good_evidence_figures(pg_bins, run_pgready):
    run = good_scenario(pg_bins, run_pgready)["superuser"]
    assert run.check("CFG006")["evidence"]["archived_count"] >= 1
    assert run.check("CFG006")["evidence"]["failed_count"] == 0
    assert run.check("CFG007")["evidence"]["version"].startswith(f"{pg_bins.major}.")
    assert run.check("CFG009")["evidence"]["timeouts"]["statement_timeout"]["from"].startswith("ALTER ROLE pgready_app")
    assert run.check("CFG010")["evidence"]["shared_buffers_ratio"] == 0.25
    assert run.status("CFG013") == "na" and "checkpoints since the stats reset" in run.check("CFG013")["summary"]


@pytest.mark.parametrize("cid", sorted(BAD_OBJECTS))
def test_config_check_fails_on_a_broken_server(pg_bins, run_pgready, cid):
    run = bad_config_scenario(pg_bins, run_pgready)["superuser"]
    assert run.status(cid) == "fail", run.check(cid)
    for needle in BAD_OBJECTS[cid]:
        assert needle in objects(run, cid), (cid, objects(run, cid))


def test_cfg006_na_when_archiving_is_off(pg_bins, run_pgready):
    run = bad_config_scenario(pg_bins, run_pgready)["superuser"]
    assert run.status("CFG006") == "na" and "archive_mode = off" in run.check("CFG006")["summary"]


def test_cfg013_requested_ratio_figure(pg_bins, run_pgready):
    ev = bad_config_scenario(pg_bins, run_pgready)["superuser"].check("CFG013")
    assert ev["evidence"]["requested"] >= 10 and ev["metrics"]["requested_checkpoint_ratio"] > 0.5


def test_config_monitor_role_never_better_than_superuser(pg_bins, run_pgready):
    for name in ("good", "bad"):
        sc = (good_scenario if name == "good" else bad_config_scenario)(pg_bins, run_pgready)
        assert_never_better(sc["superuser"], sc["monitor"], CFG)
        assert_no_secret(sc["superuser"], *sc["secrets"])
        assert_no_secret(sc["monitor"], *sc["secrets"])
    bad = bad_config_scenario(pg_bins, run_pgready)
    # pg_monitor reads every setting these checks need: same verdicts, not merely na
    assert {c: s for c, s in statuses(bad["monitor"]).items() if c in BAD_OBJECTS} == \
        {c: "fail" for c in BAD_OBJECTS}


BYO_CONF = """
# a production postgresql.conf as a user would bring it
shared_buffers = 4GB
work_mem = 16MB
max_connections = 100
archive_mode = on
archive_command = '/bin/true'
wal_level = replica
"""


def test_byo_config_is_judged_by_what_the_file_declares(pg_bins, run_pgready, tmp_path):
    """The sandbox archives with its own command, caps shared_buffers and adds a logging baseline: the checks
    must judge the user's '/bin/true', the declared 4GB and PostgreSQL's defaults for what the file omits."""
    conf = tmp_path / "postgresql-production.conf"
    conf.write_text(BYO_CONF)
    run = run_pgready("--pgready-postgresql-conf", str(conf), "--pgready-pg-bin", str(pg_bins.bindir),
                      "--pgready-suite", "config",
                      config=toml(replicas=0, declared_ram="16GB"))
    s = statuses(run)
    assert s["CFG005"] == "fail" and "'/bin/true' is a no-op" in objects(run, "CFG005")
    assert run.check("CFG005")["evidence"]["archive_command_origin"] == "your config"
    assert s["CFG006"] == "na" and "bring-your-own" in run.check("CFG006")["summary"]
    assert s["CFG010"] == "pass", run.check("CFG010")  # 4GB of 16GB, not the sandbox's 256MB cap
    assert run.check("CFG010")["evidence"]["shared_buffers_bytes"] == 4 * 1024 ** 3
    assert s["CFG008"] == "fail"  # the file preloads nothing: the sandbox's pg_stat_statements is not the user's
    assert s["CFG009"] == "fail" and "idle_in_transaction_session_timeout" in objects(run, "CFG009")
    assert s["CFG014"] == "fail" and "log_lock_waits = off" in objects(run, "CFG014")
    assert s["CFG001"] == "pass" and s["CFG004"] == "pass"


def test_cfg013_passes_when_checkpoints_are_timed(pg_bins, run_pgready):
    """Kept last in the module: the good cluster (checkpoint_timeout = 30s, counters reset at build) has had
    time to run a timed checkpoint while the other tests ran."""
    sc = good_scenario(pg_bins, run_pgready)
    c = sc["cluster"]
    try:
        with c.primary.connect() as conn:
            wait_for("a timed checkpoint", lambda: conn.execute(sc["stats_sql"]).fetchone()[0] >= 1,
                     timeout=max(5.0, 50 - (time.monotonic() - sc["reset_at"])), every=0.5)
        run = run_pgready("--pgready-dsn", c.primary.dsn(), "--pgready-suite", "config", "-k", "checkpoints_timed",
                          config=toml(min_checkpoints=1))
        assert run.status("CFG013") == "pass", run.check("CFG013")
        assert run.check("CFG013")["evidence"]["timed"] >= 1
        assert run.check("CFG013")["metrics"]["requested_checkpoint_ratio"] < 0.1
    finally:
        c.close()
