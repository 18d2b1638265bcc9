"""FO001–FO009, REP005, REP006, POOL005 through `pytest --pgready` as a user runs them: each check
passes on a healthy cluster and fails — with the offending object in the evidence — when the
property is broken on purpose (async where sync is declared, retention too small for an outage, a
fence that does nothing, a pooler nobody repoints, pg_rewind refused, clients without timeouts,
an unbounded slot, an RTO/switchover target that cannot be met).

CI runs these drills on ONE PostgreSQL major (the first available; PGREADY_TEST_MAJORS picks
another): the five plugin runs below cost about four minutes per major on two shared cores, and
what differs between majors in these drills (timeline switch and history files, pg_rewind, the
sync-rep cancel warning, slot invalidation) is exercised on every major by tests/integration/
test_oracle.py. Each run is module-scoped and shared by the assertions of the checks it proves.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SUITE = ROOT / "suites" / "test_failover.py"
SUITES = "failover,replication,pooling"

# CI: fewer trials and short bounds (the drills' defaults are for a real readiness run)
BASE_CONFIG: dict[str, Any] = {
    "failover_trials": 2, "client_query_timeout_s": 1, "client_conninfo": "connect_timeout=2",
    "resume_timeout_seconds": 15, "partition_seconds": 1.2, "replica_catchup_timeout_s": 20,
    "max_time_to_error_seconds": 3,
}
# PgBouncer's server_login_retry (15 s by default) holds a pool after a failed connect to the dead
# primary, even once it is repointed: 1 s keeps the pooled drills short (the drill reports the delay).
PGBOUNCER_INI = """[databases]
app = host=localhost port=5432 dbname=app
[pgbouncer]
pool_mode = transaction
server_login_retry = 1
default_pool_size = 20
max_client_conn = 500
"""
# A patch plugin that makes toxiproxy-server "not installed" for the local provider.
NO_TOXIPROXY_PLUGIN = """
import pytest_pgready.cluster.local as local
local.find_toxiproxy = lambda: None
"""


def _drill_major() -> int:
    from pytest_pgready.cluster.binaries import all_postgres

    majors = sorted({b.major for b in all_postgres()})
    want = os.environ.get("PGREADY_TEST_MAJORS")
    if want:
        keep = {int(x) for x in want.split(",") if x.strip()}
        majors = [m for m in majors if m in keep]
    if not majors:
        pytest.skip("no PostgreSQL major available for the failover drills")
    return majors[0]


from conftest import PgReadyRun  # noqa: E402


class Run(PgReadyRun):
    def expect(self, cid: str, status: str) -> dict[str, Any]:
        c = self.check(cid)
        assert c["status"] == status, (f"{cid}: {c['status']} ({c['summary']})\n"
                                       f"{json.dumps(c['evidence'], default=str)[:3000]}\n{self.output[-3000:]}")
        return c


def _toml(values: dict[str, Any]) -> str:
    return "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items())


def _run(tmp: Path, name: str, *, select: str, config: dict[str, Any] | None = None, conf: str | None = None,
         plugin: str | None = None, timeout: float = 600) -> Run:
    d = tmp / name
    d.mkdir()
    (d / "pgready.toml").write_text(_toml({**BASE_CONFIG, **(config or {})}))
    (d / "pgbouncer.ini").write_text(PGBOUNCER_INI)
    args = [sys.executable, "-m", "pytest", "--pgready", "-p", "no:cacheprovider", "-q", "-rN", str(SUITE),
            "--pgready-suite", SUITES, "--pgready-report-dir", str(d / "report"), "--pgready-config",
            str(d / "pgready.toml"), "--pgready-pgbouncer-ini", str(d / "pgbouncer.ini"),
            "--pgready-pg-version", str(_drill_major()), "-k", select]
    if conf is not None:
        (d / "postgresql.conf").write_text(conf)
        args += ["--pgready-postgresql-conf", str(d / "postgresql.conf")]
    env = {**os.environ}
    for k in ("PYTEST_XDIST_WORKER", "PYTEST_ADDOPTS"):
        env.pop(k, None)
    if plugin is not None:
        (d / "pgready_test_patch.py").write_text(plugin)
        env["PYTHONPATH"] = f"{d}{os.pathsep}{env.get('PYTHONPATH', '')}"
        args += ["-p", "pgready_test_patch"]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=str(d), env=env,
                          stdin=subprocess.DEVNULL)
    path = d / "report" / "readiness.json"
    return Run(proc.returncode, proc.stdout + proc.stderr, json.loads(path.read_text()) if path.exists() else None,
               d / "report")


def _secret() -> str:
    from pytest_pgready.cluster.binaries import all_postgres
    from pytest_pgready.cluster.osuser import service_user
    from pytest_pgready.cluster.template import get_template

    bins = next(b for b in all_postgres() if b.major == _drill_major())
    return get_template(bins, service_user()).password


def _no_secret(run: Run) -> None:
    pw = _secret()
    assert pw not in run.output
    for f in run.report_dir.glob("readiness.*"):
        assert pw not in f.read_text(errors="replace"), f.name


# ------------------------------------------------------------------------------------------- the runs
@pytest.fixture(scope="module")
def healthy(tmp_path_factory) -> Run:
    """Every check on a healthy cluster with the embedded defaults."""
    return _run(tmp_path_factory.mktemp("fo"), "healthy", select="test_", config={"outage_wal_mb": 48})


@pytest.fixture(scope="module")
def broken_replication(tmp_path_factory) -> Run:
    """Declared synchronous but commits are local; no RPO allowed; retention smaller than an outage."""
    return _run(tmp_path_factory.mktemp("fo"), "replication", select="fo002 or fo003 or fo004 or rep005",
                config={"rpo_seconds": 0, "outage_wal_mb": 64, "replica_catchup_timeout_s": 8},
                conf="synchronous_commit = local\nmax_slot_wal_keep_size = 32MB\nwal_keep_size = 0\n")


@pytest.fixture(scope="module")
def broken_ha(tmp_path_factory) -> Run:
    """Your HA tool promotes with psql but fences with `true` and never repoints PgBouncer."""
    cfg = {"failover_trials": 1, "resume_timeout_seconds": 6, "fence_command": "true",
           "promote_command": "psql -X -q -h {new_primary_host} -p {new_primary_port} -U postgres -d postgres "
                              "-c 'SELECT pg_promote()'"}
    return _run(tmp_path_factory.mktemp("fo"), "ha", select="fo005 or fo009 or pool005", config=cfg)


@pytest.fixture(scope="module")
def broken_targets(tmp_path_factory) -> Run:
    """An RTO and a switchover target nobody meets, clients without timeouts, pg_rewind refused
    (full_page_writes = off) and an unbounded slot."""
    cfg = {"failover_trials": 1, "rto_seconds": 0.05, "switchover_gap_seconds": 0.01, "client_query_timeout_s": 0,
           "client_conninfo": "", "max_time_to_error_seconds": 2}
    return _run(tmp_path_factory.mktemp("fo"), "targets", select="fo001 or fo006 or fo007 or fo008 or rep006",
                config=cfg, conf="full_page_writes = off\nmax_slot_wal_keep_size = -1\n")


@pytest.fixture(scope="module")
def without_toxiproxy(tmp_path_factory) -> Run:
    return _run(tmp_path_factory.mktemp("fo"), "notoxi", select="fo004 or fo007 or fo002", plugin=NO_TOXIPROXY_PLUGIN)


# ------------------------------------------------------------------------------------------- FO001
def test_fo001_passes_with_write_gap_percentiles(healthy) -> None:
    c = healthy.expect("FO001", "pass")
    m = c["metrics"]["failover_write_gap_seconds"]
    assert len(m["trials"]) == 2 and m["p50"] <= m["p95"] <= m["max"] < 15
    assert healthy.report["metrics"]["failover_write_gap_seconds"] == m
    assert all(t["resolution_s"] is None or t["resolution_s"] <= 0.05 for t in c["evidence"]["trials"])
    assert c["evidence"]["trials"][0]["rejoin"]["method"] == "rewind"


def test_fo001_fails_when_the_rto_cannot_be_met(broken_targets) -> None:
    c = broken_targets.expect("FO001", "fail")
    assert "exceeds the declared RTO 0.05s" in c["summary"]
    assert c["evidence"]["objects"][0].startswith("trial 1:")


# ------------------------------------------------------------------------------------------- FO002
def test_fo002_passes_with_sync_replication(healthy) -> None:
    c = healthy.expect("FO002", "pass")
    assert c["metrics"]["lost_acknowledged_writes"] == 0
    assert c["evidence"]["declared"]["synchronous_standby_names"].startswith("FIRST 1")
    assert c["evidence"]["oracle"]["acknowledged"] > 0 and c["evidence"]["stall"]["seconds"] > 0


def test_fo002_fails_when_sync_is_declared_but_commits_are_local(broken_replication) -> None:
    c = broken_replication.expect("FO002", "fail")
    assert "synchronous_commit = local" in c["summary"]
    assert c["evidence"]["objects"][0].startswith("pgready_oracle(writer=")
    assert c["metrics"]["lost_acknowledged_writes"] > 0


# ------------------------------------------------------------------------------------------- FO003
def test_fo003_passes_and_measures_the_loss(healthy) -> None:
    c = healthy.expect("FO003", "pass")
    lost = c["metrics"]["lost_acknowledged_writes"]
    assert lost > 0 and healthy.report["metrics"]["lost_acknowledged_writes"] == lost
    assert 0 < c["metrics"]["lost_seconds"] <= 300 and c["metrics"]["lost_wal_bytes"] is not None


def test_fo003_fails_when_rpo_is_zero_on_async(broken_replication) -> None:
    c = broken_replication.expect("FO003", "fail")
    assert "more than the declared RPO 0s" in c["summary"]
    assert c["evidence"]["objects"][0].startswith("pgready_oracle(writer=")


# ------------------------------------------------------------------------------------------- FO004
def test_fo004_passes_sync_blocks_async_catches_up(healthy) -> None:
    c = healthy.expect("FO004", "pass")
    sync, asyn = c["evidence"]["phases"]
    assert sync["acknowledged_during_partition"] == 0 and sync["cancelled_sync_commits_unknown"] > 0
    assert asyn["acknowledged_during_partition"] > 0 and asyn["standby_caught_up_s"] is not None


def test_fo004_fails_on_local_commits_and_lost_slot(broken_replication) -> None:
    c = broken_replication.expect("FO004", "fail")
    problems = c["evidence"]["problems"]
    assert any(p.startswith("sync:") and "acknowledged while the standby was cut off" in p for p in problems)
    assert any(p.startswith("async:") and "did not catch up" in p for p in problems)
    assert any("wal_status lost" in o for o in c["evidence"]["objects"])


def test_toxiproxy_drills_na_without_toxiproxy_process_drills_run(without_toxiproxy) -> None:
    for cid in ("FO004", "FO007"):
        c = without_toxiproxy.expect(cid, "na")
        assert "toxiproxy-server" in c["summary"] and "go install" in c["summary"]
    without_toxiproxy.expect("FO002", "pass")


# ------------------------------------------------------------------------------------------- FO005
def test_fo005_passes_with_pgready_fence(healthy) -> None:
    c = healthy.expect("FO005", "pass")
    ev = c["evidence"]
    assert ev["acknowledged_by_old_primary_after_promotion"] == 0
    assert ev["failover"]["fence"]["method"].startswith("pgready")
    assert set(ev["acknowledged_by_new_primary"]) >= {"multihost", "pooler"}


def test_fo005_fails_when_the_fence_does_nothing(broken_ha) -> None:
    c = broken_ha.expect("FO005", "fail")
    assert "split brain" in c["summary"] and "primary" in c["summary"]
    assert c["evidence"]["failover"]["fence"]["method"] == "fence_command"
    assert any(o.endswith("via primary") for o in c["evidence"]["objects"])


# ------------------------------------------------------------------------------------------- FO006
def test_fo006_passes_rewind_and_converge(healthy) -> None:
    c = healthy.expect("FO006", "pass")
    assert c["evidence"]["rejoin"]["method"] == "rewind" and c["evidence"]["rejoin"]["streaming"]
    assert c["evidence"]["diverged_writes_discarded"] > 0


def test_fo006_fails_when_pg_rewind_is_refused(broken_targets) -> None:
    c = broken_targets.expect("FO006", "fail")
    assert "full_page_writes" in c["summary"]


# ------------------------------------------------------------------------------------------- FO007
def test_fo007_passes_with_client_timeouts(healthy) -> None:
    c = healthy.expect("FO007", "pass")
    assert len(c["evidence"]["probes"]) == 6 and c["metrics"]["max_time_to_error_seconds"] <= 3


def test_fo007_fails_for_a_client_without_timeouts(broken_targets) -> None:
    c = broken_targets.expect("FO007", "fail")
    objs = c["evidence"]["objects"]
    assert any(o.startswith("blackhole / open connection: hung") for o in objs)
    assert any(o.startswith("latency / open connection") for o in objs)


# ------------------------------------------------------------------------------------------- FO008
def test_fo008_passes_planned_switchover(healthy) -> None:
    c = healthy.expect("FO008", "pass")
    trials = c["evidence"]["trials"]
    assert len(trials) == 2 and all(t["lost"] == 0 and t["acknowledged"] > 0 for t in trials)
    m = c["metrics"]["switchover_write_gap_seconds"]
    assert 0 < m["p50"] <= m["p95"] <= m["max"] and len(m["trials"]) == 2


def test_fo008_fails_over_the_gap_target(broken_targets) -> None:
    c = broken_targets.expect("FO008", "fail")
    assert "exceeds 0.01s" in c["summary"] and c["evidence"]["objects"][0].startswith("trial 1: write gap")


# ------------------------------------------------------------------------------------------- FO009 / POOL005
def test_fo009_passes_multihost_and_pooler(healthy) -> None:
    c = healthy.expect("FO009", "pass")
    assert c["metrics"]["multihost_resumed_seconds"] > 0 and c["metrics"]["pooler_resumed_seconds"] > 0


def test_fo009_fails_when_the_pooler_is_not_repointed(broken_ha) -> None:
    c = broken_ha.expect("FO009", "fail")
    assert c["evidence"]["objects"] == ["client path pooler"]
    assert c["evidence"]["resumed_after_fault_s"]["multihost"] is not None


def test_pool005_passes_after_failover_and_rejoin(healthy) -> None:
    c = healthy.expect("POOL005", "pass")
    assert c["metrics"]["read_only_errors"] == 0 and c["evidence"]["idle_recovered"] == "4/4"


def test_pool005_fails_with_read_only_errors(broken_ha) -> None:
    c = broken_ha.expect("POOL005", "fail")
    assert "read-only transaction" in c["summary"]
    assert any("read-only transaction" in o for o in c["evidence"]["objects"])


# ------------------------------------------------------------------------------------------- REP005 / REP006
def test_rep005_passes_killed_replica_catches_up(healthy) -> None:
    c = healthy.expect("REP005", "pass")
    assert c["metrics"]["replica_catchup_seconds"] > 0 and c["evidence"]["wal_written_while_down_mb"] >= 48


def test_rep005_fails_when_retention_is_smaller_than_the_outage(broken_replication) -> None:
    c = broken_replication.expect("REP005", "fail")
    assert c["evidence"]["objects"] == ["replica1 (slot wal_status lost)"]


def test_rep006_passes_slot_invalidated_primary_writable(healthy) -> None:
    c = healthy.expect("REP006", "pass")
    assert c["evidence"]["scaled_down"] and c["evidence"]["primary_writable"]
    assert c["evidence"]["wal_status_by_mb_written"][-1][1] == "lost"


def test_rep006_fails_for_an_unbounded_slot(broken_targets) -> None:
    c = broken_targets.expect("REP006", "fail")
    assert "unbounded" in c["summary"] and c["evidence"]["objects"] == ["replication slot replica1"]


# ------------------------------------------------------------------------------------------- hygiene
def test_no_secret_in_reports_or_output(healthy, broken_ha) -> None:
    for run in (healthy, broken_ha):
        _no_secret(run)
