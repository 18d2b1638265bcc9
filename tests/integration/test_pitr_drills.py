"""PITR001–PITR006 on real servers: each check passes on a healthy archive and fails when broken on purpose.

The suite functions run in-process with real clusters and a real Record. One healthy lab (base
backup + marker rows) and one lab whose archive_command is a no-op are shared per major.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

ROOT = Path(__file__).resolve().parents[2]
# An archive script that only keeps files named like WAL segments: the classic filter that drops the
# timeline history files a recovery needs to follow a failover.
DROPS_HISTORY = "case %f in *.history) exit 0;; esac; test ! -f {archive}/%f && cp %p {archive}/%f"


def _suite() -> Any:
    spec = importlib.util.spec_from_file_location("pgready_suite_pitr", ROOT / "suites" / "test_pitr.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


suite = _suite()


def settings(**over: Any) -> Any:
    from pytest_pgready.settings import build

    return build(over, None, None)


def run_check(fn: Callable[..., None], check_id: str, **fixtures: Any) -> tuple[str, Any]:
    from pytest_pgready.results import CheckFailed, CheckNA, Record

    rec = Record(check_id)
    try:
        fn(pgready_record=rec, **fixtures)
    except CheckFailed:
        return "fail", rec
    except CheckNA:
        return "na", rec
    return "pass", rec


class Holder:
    """The suite's lazy-lab interface around an already built lab."""

    def __init__(self, lab: Any) -> None:
        self.lab = lab

    def get(self) -> Any:
        return self.lab


def _lab(pg_bins: Any, archive_command: str | None = None) -> Iterator[Any]:
    from pytest_pgready.cluster.local import provision_local
    from pytest_pgready.drills.pitr import build_lab
    from pytest_pgready.drills.scratch import bare_host

    c = provision_local(settings(), bins=pg_bins, replicas=0, pgbouncer=False, toxiproxy=False, archive=True)
    host = bare_host(pg_bins)
    try:
        if archive_command:
            c.primary.set_conf(archive_command=archive_command)
        yield build_lab(c, host)
    finally:
        host.close()
        c.close()


@pytest.fixture(scope="module")
def lab(pg_bins) -> Iterator[Any]:
    yield from _lab(pg_bins)


@pytest.fixture(scope="module")
def lossy_lab(pg_bins) -> Iterator[Any]:
    """archive_command = /bin/true: the archiver reports success, the archive stays empty."""
    yield from _lab(pg_bins, "/bin/true")


@pytest.fixture
def factory(cluster_factory) -> Callable[..., Callable[..., Any]]:
    """pgready_cluster_factory's signature on the parametrized major, with extra conf to inject."""

    def with_conf(conf: dict[str, str] | None = None) -> Callable[..., Any]:
        def make(**kw: Any) -> Any:
            for k, v in (("replicas", 0), ("pgbouncer", False), ("toxiproxy", False)):
                kw.setdefault(k, v)
            if conf:
                kw["conf"] = {**(kw.get("conf") or {}), **conf}
            return cluster_factory(**kw)
        return make

    return with_conf


# ------------------------------------------------------------------------------------------------ PITR001
@pytest.mark.integration
def test_pitr001_passes_on_a_complete_archive(lab) -> None:
    status, rec = run_check(suite.test_pitr001_archive_is_continuous, "PITR001", pgready_cluster=lab.cluster,
                            pgready_settings=settings())
    assert status == "pass", rec.evidence
    assert rec.evidence["range"]["from_reason"].startswith("the latest base backup")
    assert rec.evidence["range"]["segments"] >= 3


@pytest.mark.integration
def test_pitr001_fails_when_a_segment_is_missing(factory) -> None:
    from pytest_pgready.drills.pitr import switch_and_wait

    c = factory()()
    names = []
    for _ in range(3):
        with c.primary.connect() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS t (x int); INSERT INTO t VALUES (1)")
        names.append(switch_and_wait(c.primary)[0])
    os.unlink(c.archive_dir / names[1])
    status, rec = run_check(suite.test_pitr001_archive_is_continuous, "PITR001", pgready_cluster=c,
                            pgready_settings=settings())
    assert status == "fail"
    assert rec.evidence["objects"] == [names[1]]


@pytest.mark.integration
def test_pitr001_fails_with_a_noop_archive_command(factory) -> None:
    c = factory()()
    c.primary.set_conf(archive_command="/bin/true")
    with c.primary.connect() as conn:
        conn.execute("CREATE TABLE t (x int); INSERT INTO t VALUES (1)")
    status, rec = run_check(suite.test_pitr001_archive_is_continuous, "PITR001", pgready_cluster=c,
                            pgready_settings=settings())
    assert status == "fail"
    switched = rec.evidence["switched"]
    assert switched in rec.evidence["objects"]  # "archived" per pg_stat_archiver, absent from the archive
    assert rec.evidence["archiver"]["last_archived_wal"] == switched


@pytest.mark.integration
def test_pitr001_na_without_a_visible_archive(lab) -> None:
    class NoArchive:
        archive_dir = None
        primary = lab.cluster.primary

    status, rec = run_check(suite.test_pitr001_archive_is_continuous, "PITR001", pgready_cluster=NoArchive(),
                            pgready_settings=settings())
    assert status == "na"


# ------------------------------------------------------------------------------------------------ PITR002
@pytest.mark.integration
def test_pitr002_passes_with_exact_time_recovery(lab) -> None:
    status, rec = run_check(suite.test_pitr002_recovery_to_a_timestamp, "PITR002", pitr_lab=Holder(lab))
    assert status == "pass", rec.evidence
    (r,) = rec.evidence["recoveries"]
    assert r["rows"] == [0, 1, 2, 3] and r["outcome"] == "primary"
    assert rec.report_metrics["recovery_seconds"] > 0 and rec.report_metrics["wal_replayed_bytes"] > 0


@pytest.mark.integration
def test_pitr002_fails_when_the_archive_lost_the_wal(lossy_lab) -> None:
    status, rec = run_check(suite.test_pitr002_recovery_to_a_timestamp, "PITR002", pitr_lab=Holder(lossy_lab))
    assert status == "fail"
    assert rec.evidence["objects"] == ["recovery_target_time after marker 3"]
    assert "recovery ended before configured recovery target was reached" in rec.evidence["problems"][0]


# ------------------------------------------------------------------------------------------------ PITR003
@pytest.mark.integration
def test_pitr003_passes_for_lsn_xid_name_immediate(lab) -> None:
    status, rec = run_check(suite.test_pitr003_recovery_to_lsn_xid_name, "PITR003", pitr_lab=Holder(lab))
    assert status == "pass", rec.evidence
    rows = {r["label"]: r["rows"] for r in rec.evidence["recoveries"]}
    assert rows["recovery_target_xid of marker 4, inclusive"] == [0, 1, 2, 3, 4]
    assert rows["recovery_target_xid of marker 4, exclusive"] == [0, 1, 2, 3]
    assert rows["recovery_target immediate"] == [0]


@pytest.mark.integration
def test_pitr003_fails_when_the_archive_lost_the_wal(lossy_lab) -> None:
    status, rec = run_check(suite.test_pitr003_recovery_to_lsn_xid_name, "PITR003", pitr_lab=Holder(lossy_lab))
    assert status == "fail"
    # 'immediate' needs only the backup's own WAL: the other four targets cannot be reached
    assert len(rec.evidence["objects"]) == 4 and "recovery_target immediate" not in rec.evidence["objects"]


# ------------------------------------------------------------------------------------------------ PITR004
@pytest.mark.integration
def test_pitr004_passes_when_every_unreachable_target_is_refused(lab) -> None:
    status, rec = run_check(suite.test_pitr004_unreachable_target_refuses, "PITR004", pitr_lab=Holder(lab))
    assert status == "pass", rec.evidence
    assert {r["outcome"] for r in rec.evidence["recoveries"]} == {"exited"}
    logs = " ".join(" ".join(r.get("log", [])) for r in rec.evidence["recoveries"])
    assert "recovery ended before configured recovery target was reached" in logs
    assert "requested recovery stop point is before consistent recovery point" in logs


@pytest.mark.integration
def test_pitr004_fails_when_recovery_promotes_anyway(lab, monkeypatch) -> None:
    """A real server that promotes at the end of the archive (what PostgreSQL <= 12 did with an unreachable
    target, and what a recovery without the target does): the verdict must call it a promotion past the target."""
    import pytest_pgready.drills.pitr as pitr

    monkeypatch.setattr(pitr, "unreachable_cases", lambda lab: [
        ("end of archive without the target", {}, None)])
    status, rec = run_check(suite.test_pitr004_unreachable_target_refuses, "PITR004", pitr_lab=Holder(lab))
    assert status == "fail"
    assert rec.evidence["objects"] == ["end of archive without the target"]
    assert "promoted past an unreachable target (rows [0, 1, 2, 3, 4, 5, 6])" in rec.evidence["problems"][0]


# ------------------------------------------------------------------------------------------------ PITR005
@pytest.mark.integration
def test_pitr005_passes_with_a_short_archive_timeout(factory) -> None:
    status, rec = run_check(suite.test_pitr005_archive_rpo, "PITR005",
                            pgready_cluster_factory=factory({"archive_timeout": "2"}),
                            pgready_settings=settings(rpo_seconds=300, archive_rpo_window_s=1.5))
    assert status == "pass", rec.evidence
    assert rec.evidence["last_segment_measured"] is True  # waited for the natural switch, nothing projected
    assert 0 < rec.report_metrics["archive_rpo_seconds"] < 10
    assert rec.evidence["commits"] > 0


@pytest.mark.integration
def test_pitr005_fails_when_archive_timeout_exceeds_the_rpo(factory) -> None:
    status, rec = run_check(suite.test_pitr005_archive_rpo, "PITR005", pgready_cluster_factory=factory(),
                            pgready_settings=settings(rpo_seconds=30, archive_rpo_window_s=1.5))
    assert status == "fail"
    assert rec.evidence["objects"] == ["archive_timeout"]
    assert rec.metrics["archive_rpo_seconds"] > 60 and rec.score < 0.5  # archive_timeout 60s + switch latency


# ------------------------------------------------------------------------------------------------ PITR006
@pytest.mark.integration
def test_pitr006_passes_when_latest_timeline_is_followed(lab) -> None:
    status, rec = run_check(suite.test_pitr006_follows_new_timeline, "PITR006", pitr_lab=Holder(lab))
    assert status == "pass", rec.evidence
    assert rec.evidence["follow"]["rows"] == [0, 1, 2, 3, 101, 102]
    assert rec.evidence["follow"]["timeline"] > rec.evidence["branch_timeline"] > 1


@pytest.mark.integration
def test_pitr006_fails_when_history_files_are_not_archived(lab, monkeypatch) -> None:
    import pytest_pgready.drills.pitr as pitr

    monkeypatch.setattr(pitr, "timeline_follow", functools.partial(pitr.timeline_follow,
                                                                   archive_command=DROPS_HISTORY))
    status, rec = run_check(suite.test_pitr006_follows_new_timeline, "PITR006", pitr_lab=Holder(lab))
    assert status == "fail"
    problem = rec.evidence["problems"][0]
    assert "committed after the target but present: [4, 5, 6]" in problem and "it was not followed" in problem


# ------------------------------------------------------------------------------------------------ pure parts
def test_find_gaps_follows_timeline_history() -> None:
    from pytest_pgready.drills.pitr import find_gaps

    seg = 16 * 1024 * 1024
    names = ["000000010000000000000003", "000000010000000000000004", "000000010000000000000004.00000028.backup",
             "000000010000000000000005.partial", "00000002.history", "000000020000000000000005",
             "000000020000000000000006", "000000020000000000000008"]
    history = {2: "1\t0/5000100\tno recovery target specified\n"}
    g = find_gaps(names, history, 2, 8, seg)
    assert g.start == "000000010000000000000004" and g.start_reason.startswith("the latest base backup")
    assert g.missing == ["000000020000000000000007"]
    g = find_gaps([n for n in names if not n.endswith(".history")], {}, 2, 8, seg)
    assert g.missing == ["000000020000000000000007", "00000002.history"]  # recovery could not follow timeline 2
    assert find_gaps([], {}, 1, 9, seg).missing == ["000000010000000000000009"]
