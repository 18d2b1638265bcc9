"""pitr suite: the WAL archive is complete and recovery lands exactly on the requested point (PITR001–PITR006).

PITR001 inspects the target's archive (the embedded cluster's, or `wal_archive_dir` for an external
target). The recovery drills run on a drill cluster built with the same binaries and configuration
(bring-your-own postgresql.conf included): one base backup, marker rows committed one at a time, and
copies of the backup recovered to each kind of target (module-scoped: built once for PITR002/3/4/6).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest


class _LazyLab:
    """The PITR lab, built on first use and shared; a failure to build it is remembered."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self._made: list[Any] = []
        self._lab: Any = None
        self._error: Exception | None = None

    def get(self) -> Any:
        if self._lab is None and self._error is None:
            from pytest_pgready.cluster.providers import new_cluster
            from pytest_pgready.drills.pitr import build_lab
            from pytest_pgready.drills.scratch import bare_host

            try:
                cluster = new_cluster(self.settings, replicas=0, archive=True, init_sql=False, host_files=True)
                self._made.append(cluster)
                host = bare_host(cluster.bin)
                self._made.append(host)
                self._lab = build_lab(cluster, host)
            except Exception as e:  # remembered: every check that needs the lab gets the same answer
                self._error = e
        if self._error is not None:
            raise self._error
        return self._lab

    def close(self) -> None:
        for c in reversed(self._made):
            c.close()


@pytest.fixture(scope="module")
def pitr_lab(pgready_settings) -> Iterator[_LazyLab]:
    lab = _LazyLab(pgready_settings)
    try:
        yield lab
    finally:
        lab.close()


def _run_cases(lab: Any, record: Any, cases: list[tuple[str, dict[str, str], list[int]]]) -> list[str]:
    from pytest_pgready.drills.pitr import recover_many

    recs = recover_many(lab, [(label, target, expected, None) for label, target, expected in cases])
    record.add(recoveries=[r.evidence() for r in recs], basebackup_lsn=lab.backup.start_lsn,
               drill_cluster=f"PostgreSQL {lab.cluster.bin.version}, {lab.cluster.config_source}")
    ok = [r for r in recs if r.outcome == "primary"]
    if ok:  # recoveries run two at a time: only a lone one is timed for the report
        record.metric("recovery_seconds", round(max(r.seconds for r in ok), 3), report=len(recs) == 1)
        replayed = [r.replayed_bytes for r in ok if r.replayed_bytes is not None]
        if replayed:
            record.metric("wal_replayed_bytes", max(replayed), report=True)
    record.metric("basebackup_seconds", round(lab.backup.seconds, 3))
    return [p for p in (r.problem() for r in recs) if p]


def _objects(problems: list[str]) -> list[str]:
    return [p.split(": ", 1)[0] for p in problems]


# ------------------------------------------------------------------------------------------------ PITR001
@pytest.mark.pgready(id="PITR001")
def test_pitr001_archive_is_continuous(pgready_cluster, pgready_settings, pgready_record) -> None:
    """No WAL segment is missing from the archive between the latest base backup and now."""
    import psycopg

    from pytest_pgready.drills.pitr import archive_continuity

    rec = pgready_record
    archive = pgready_cluster.archive_dir or pgready_settings.wal_archive_dir
    if archive is None:
        rec.na("the WAL archive is not visible to pgready: set wal_archive_dir to a local mount of the directory "
               "your archive_command writes to")
    if not Path(archive).is_dir():
        rec.na(f"wal_archive_dir {archive} is not a readable directory on this host: mount the archive here")
    try:
        r = archive_continuity(pgready_cluster.primary, Path(archive))
    except psycopg.errors.InsufficientPrivilege as e:
        rec.na(f"this role cannot switch WAL ({str(e).strip().splitlines()[0]}): grant EXECUTE ON FUNCTION "
               f"pg_switch_wal() or run as a superuser")
    rec.add(archive_mode=r.archive_mode, switched=r.switched, archiver=r.archiver,
            range=None if r.gaps is None else {"from": r.gaps.start, "to": r.gaps.end, "segments": r.gaps.checked,
                                               "from_reason": r.gaps.start_reason})
    problems = r.problems()
    if problems:
        rec.fail(problems[0] if len(problems) == 1 else f"{len(problems)} archive problems", objects=r.objects(),
                 problems=problems,
                 remedy="an archive_command must store every segment and fail (non-zero) when it cannot; take a "
                        "new base backup after repairing the archive")
    n = r.gaps.checked
    rec.summary(f"{n} WAL segment{'' if n == 1 else 's'} archived without a gap from {r.gaps.start} to {r.gaps.end}")


# ------------------------------------------------------------------------------------------------ PITR002
@pytest.mark.pgready(id="PITR002")
def test_pitr002_recovery_to_a_timestamp(pitr_lab, pgready_record) -> None:
    """Recovery to a timestamp yields exactly the rows committed before it."""
    from pytest_pgready.drills.pitr import time_cases

    lab = pitr_lab.get()
    problems = _run_cases(lab, pgready_record, time_cases(lab))
    if problems:
        pgready_record.fail(problems[0], objects=_objects(problems), problems=problems)
    pgready_record.summary("recovery_target_time restored exactly the rows committed before it")


# ------------------------------------------------------------------------------------------------ PITR003
@pytest.mark.pgready(id="PITR003")
def test_pitr003_recovery_to_lsn_xid_name(pitr_lab, pgready_record) -> None:
    """Recovery to an LSN, an XID (inclusive and exclusive), a restore point and 'immediate' is exact."""
    from pytest_pgready.drills.pitr import exact_cases

    lab = pitr_lab.get()
    cases = exact_cases(lab)
    problems = _run_cases(lab, pgready_record, cases)
    if problems:
        pgready_record.fail(f"{len(problems)} of {len(cases)} recovery targets are not exact",
                            objects=_objects(problems), problems=problems)
    pgready_record.summary(f"all {len(cases)} recovery targets (LSN, XID inclusive/exclusive, restore point, "
                           f"immediate) restored exactly the expected rows")


# ------------------------------------------------------------------------------------------------ PITR004
@pytest.mark.pgready(id="PITR004")
def test_pitr004_unreachable_target_refuses(pitr_lab, pgready_record) -> None:
    """An unreachable recovery target makes recovery stop instead of promoting a wrong state."""
    from pytest_pgready.drills.pitr import recover_many, unreachable_cases

    lab = pitr_lab.get()
    recs = recover_many(lab, [(label, target, None, dirs) for label, target, dirs in unreachable_cases(lab)])
    pgready_record.add(recoveries=[r.evidence() for r in recs])
    problems = [p for p in (r.problem() for r in recs) if p]
    if problems:
        pgready_record.fail(f"{len(problems)} unreachable targets were promoted past", objects=_objects(problems),
                            problems=problems,
                            remedy="PostgreSQL 13+ refuses these: upgrade, and always check the recovered state "
                                   "before promoting")
    pgready_record.summary(f"all {len(recs)} unreachable targets refused: "
                           + ", ".join(r.label for r in recs))


# ------------------------------------------------------------------------------------------------ PITR005
@pytest.mark.pgready(id="PITR005")
def test_pitr005_archive_rpo(pgready_cluster_factory, pgready_settings, pgready_record) -> None:
    """Measured archive RPO (how long committed data waits until its WAL is archived) ≤ declared RPO.

    Scored on the SLO curve with target = RPO/2 (0.9) and limit = RPO (0.5); above the RPO it fails."""
    from pytest_pgready.drills.pitr import measure_archive_rpo

    rec, rpo = pgready_record, float(pgready_settings.rpo_seconds)
    if rpo <= 0:
        rec.na("rpo_seconds = 0 can only be met by synchronous replication (REP004), not by WAL archiving: "
               "declare the RPO archiving must meet")
    cluster = pgready_cluster_factory(replicas=0, archive=True, init_sql=False)
    r = measure_archive_rpo(cluster, seconds=pgready_settings.archive_rpo_window_s)
    rec.add(archive_timeout_s=r.archive_timeout, commits=r.commits, wal_bytes=r.wal_bytes,
            segments_filled=r.segments_filled, write_seconds=round(r.write_seconds, 2),
            worst_filled_segment_delay_s=None if r.observed_max is None else round(r.observed_max, 3),
            last_segment_delay_s=None if r.tail_seconds is None else round(r.tail_seconds, 3),
            last_segment_measured=r.tail_measured,
            switch_latency_s=None if r.switch_latency is None else round(r.switch_latency, 3), notes=r.notes,
            drill_cluster=f"PostgreSQL {cluster.bin.version}, {cluster.config_source}")
    measured = r.rpo_seconds
    if measured is None:
        rec.fail("archive RPO is unbounded: " + ("; ".join(r.notes) or "the last segment was never archived"),
                 objects=["archive_timeout"], remedy=f"set archive_timeout ≤ {rpo / 2:.0f}s, or stream WAL "
                                                     f"(pg_receivewal) to the archive host")
    rec.slo("archive_rpo_seconds", round(measured, 3), rpo / 2, rpo, report=True)
    if measured > rpo:
        rec.fail(f"archive RPO {measured:.1f}s > declared RPO {rpo:.0f}s", objects=["archive_timeout"],
                 remedy=f"lower archive_timeout (now {r.archive_timeout:.0f}s) below the RPO, or stream WAL "
                        f"(pg_receivewal) to the archive host")
    rec.summary(f"archive RPO {measured:.1f}s ≤ {rpo:.0f}s (archive_timeout {r.archive_timeout:.0f}s)")


# ------------------------------------------------------------------------------------------------ PITR006
@pytest.mark.pgready(id="PITR006")
def test_pitr006_follows_new_timeline(pitr_lab, pgready_record) -> None:
    """Recovery with recovery_target_timeline = 'latest' follows a failover onto the new timeline."""
    from pytest_pgready.drills.pitr import timeline_follow

    lab = pitr_lab.get()
    r = timeline_follow(lab)
    pgready_record.add(branch=r.branch.evidence(), follow=r.follow.evidence() if r.follow else None,
                       branch_timeline=r.branch_timeline, branch_rows=r.new_rows)
    problems = r.problems()
    if problems:
        pgready_record.fail(problems[0], objects=_objects(problems), problems=problems,
                            remedy="archive the timeline history files (*.history) with the segments")
    pgready_record.summary(f"recovery followed timeline {r.branch_timeline} and ended with the branch's rows")
