"""backup suite: a backup counts when it has been restored and the restored data proven identical (BKP001–BKP005).

The procedures live in pytest_pgready.drills.backup_* (BackupLab in drills.backup); a module-scoped lab shares the expensive parts:
one logical round trip (BKP001, BKP004's seed data, BKP005) and one base backup of the target
(BKP002, BKP003, BKP005). BKP001 also runs on a read-only external target: it only reads from it
and restores into a local scratch instance.
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest


@pytest.fixture(scope="module")
def backup_lab(pgready_cluster, pgready_settings) -> Iterator[Any]:
    from pytest_pgready.drills.backup import BackupLab


    lab = BackupLab(pgready_cluster, pgready_settings)
    try:
        yield lab
    finally:
        lab.close()


def _na_if_unreadable(record: Any, call: Any) -> Any:
    """Run a drill step; a role that cannot read everything makes the check na (never a partial pass)."""
    from pytest_pgready.drills.content import ContentUnreadable


    try:
        return call()
    except ContentUnreadable as e:
        record.na(f"the connected role cannot read all data ({e}): grant it pg_read_all_data "
                  f"(PostgreSQL 14+) or run the backup checks as the role your backups use")


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


# ------------------------------------------------------------------------------------------------ BKP001
@pytest.mark.pgready(id="BKP001")
def test_bkp001_logical_round_trip(backup_lab, pgready_record) -> None:
    """pg_dump → pg_restore into a scratch instance: schema, counts, checksums, sequences, large objects."""
    rec = pgready_record
    r = _na_if_unreadable(rec, backup_lab.logical)
    if r.dump_error and "permission denied" in r.dump_error:
        rec.na(f"pg_dump cannot read everything as this role ({r.dump_error[:200]}): grant pg_read_all_data or "
               f"run as the role your backups use")
    rec.metric("dump_seconds", round(r.dump_seconds, 3), report=True)
    rec.metric("restore_seconds", round(r.restore_seconds, 3), report=True)
    rec.metric("dump_mb_s", round(r.dump_mb_s, 2), report=True)
    rec.metric("restore_mb_s", round(r.restore_mb_s, 2), report=True)
    rec.metric("verify_seconds", round(r.checksum_seconds, 3))
    rec.add(database=r.database, database_bytes=r.db_bytes, dump_bytes=r.dump_bytes, dump_format=r.fmt,
            jobs=r.jobs, restored_into=f"PostgreSQL {r.scratch_major} scratch instance",
            source=r.source.summary() if r.source else None, restored=r.restored.summary() if r.restored else None,
            notes=r.notes)
    missing = r.missing_extensions()
    if missing:
        rec.na(f"the local PostgreSQL {r.scratch_major} lacks extension(s) {', '.join(missing)} that the database "
               f"uses: install them here, or point --pgready-pg-bin at a build that has them")
    problems = r.problems()
    s = r.source
    if not problems and s is not None and not (s.tables or s.sequences or s.large_objects[0]):
        rec.na(f"{r.database} holds no tables, sequences or large objects: nothing to prove. Load your schema "
               f"and data (--pgready-init-sql) or point --pgready-dsn at a real database")
    if problems:
        rec.fail(f"the logical restore of {r.database} is not identical: {len(problems)} differences",
                 objects=r.objects(), problems=problems[:50],
                 remedy="fix what pg_restore reported (often: functions that depend on search_path, "
                        "missing extensions or roles), then rerun")
    rec.summary(f"pg_dump → pg_restore round trip identical: {_n(len(s.tables), 'table')}, {_n(s.rows, 'row')}, "
                f"{_n(len(s.sequences), 'sequence')}, {_n(s.large_objects[0], 'large object')}, "
                f"{_n(len(s.schema or {}), 'schema object')}")


# ------------------------------------------------------------------------------------------------ BKP002
@pytest.mark.pgready(id="BKP002")
def test_bkp002_physical_round_trip(backup_lab, pgready_cluster_factory, pgready_record) -> None:
    """pg_basebackup → pg_verifybackup → start the copy → amcheck → checksums equal the source's."""
    from pytest_pgready.drills.backup_physical import incremental_round_trip
    from pytest_pgready.drills.toolrun import DrillError


    rec = pgready_record
    try:
        r = _na_if_unreadable(rec, backup_lab.physical)
    except DrillError as e:
        msg = str(e)
        if "replication" in msg and ("permission" in msg or "must be" in msg or "no pg_hba.conf entry" in msg):
            rec.na(f"this role cannot take a base backup ({msg[:200]}): grant it REPLICATION and allow it in "
                   f"pg_hba.conf, or run the backup checks as your backup role")
        rec.fail(f"the base backup failed: {msg[:300]}", objects=["pg_basebackup"],
                 remedy="checksum failures mean the source has corrupted pages: find them with pg_amcheck / "
                        "pg_checksums --check and restore those tables")
    b = r.backup
    if r.amcheck is not None and r.amcheck.unavailable:
        rec.na(f"amcheck is not available with the local PostgreSQL ({r.amcheck.unavailable}): install the "
               f"contrib package of this version")
    if r.changing and not sum(r.compared.values()):
        rec.na(f"every table changed while the base backup ran ({len(r.changing)}): nothing could be compared; "
               f"run the backup suite while writers are paused")
    rec.metric("basebackup_seconds", round(b.seconds, 3), report=True)
    rec.metric("backup_mb_s", round(b.mb_s, 2), report=True)
    rec.metric("physical_restore_seconds", round(r.restore_seconds, 3))
    rec.metric("physical_restore_mb_s", round(r.restore_mb_s, 2))
    rec.add(backup_bytes=b.bytes, manifest_checksums=b.manifest_checksums, wal_range=f"{b.start_lsn}–{b.end_lsn}",
            verify=r.verify_output, compared_tables=r.compared, tables_changing_during_backup=r.changing[:20],
            amcheck=None if r.amcheck is None else {"btree_indexes": r.amcheck.indexes, "tables": r.amcheck.tables,
                                                    "verify_heapam": r.amcheck.heapam},
            notes=r.notes)
    problems, objects = r.problems(), r.objects()
    major = backup_lab.target_major()
    if major >= 17:
        cluster = pgready_cluster_factory(replicas=0, archive=False, init_sql=False, conf={"summarize_wal": "on"})
        if cluster.bin.major >= 17:
            from pytest_pgready.drills.scratch import bare_host


            host = bare_host(cluster.bin)
            try:
                inc = incremental_round_trip(cluster, host)
            finally:
                host.close()
            rec.add(incremental={"postgresql": cluster.bin.version, "verified": inc.verified,
                                 "notes": inc.notes, "problems": inc.problems()})
            problems += [f"incremental: {p}" for p in inc.problems()]
            objects += [f"incremental: {o}" for o in inc.objects()]
        else:
            rec.add(incremental=f"not drilled: the local binaries are PostgreSQL {cluster.bin.major} (< 17)")
    else:
        rec.add(incremental=f"PostgreSQL {major} < 17 has no incremental backup (pg_basebackup --incremental)")
    if problems:
        rec.fail(f"the physical backup does not restore cleanly: {len(problems)} problems",
                 objects=objects, problems=problems[:50],
                 remedy="a failing amcheck or checksum means the source itself is damaged: REINDEX / restore "
                        "from an older backup; a failing pg_verifybackup means the backup is")
    rec.summary(f"base backup verified, restored copy started, amcheck clean on {r.amcheck.indexes} btree indexes, "
                f"content identical in {sum(r.compared.values())} tables")


# ------------------------------------------------------------------------------------------------ BKP003
@pytest.mark.pgready(id="BKP003")
def test_bkp003_corruption_is_detected(backup_lab, pgready_record) -> None:
    """Flipped bytes in a data file and a missing WAL segment must make verification or restore fail."""
    rec = pgready_record
    r = backup_lab.corruption()
    rec.add(victim=r.victim, data_checksums=r.data_checksums, manifest_checksums=r.manifest_checksums,
            probes=[{"fault": p.fault, "detected_by": p.caught_by, "missed_by": p.missed_by, "evidence": p.evidence}
                    for p in r.probes])
    problems = r.problems()
    if problems:
        rec.fail(f"{len(problems)} corruptions went unnoticed", objects=r.objects(),
                 problems=problems,
                 remedy="enable data checksums (pg_checksums --enable on a stopped cluster) and keep backup "
                        "manifest checksums (pg_basebackup --manifest-checksums=CRC32C or SHA256)")
    rec.summary("; ".join(f"{p.fault.split(' (')[0]}: caught by {', '.join(p.caught_by)}" for p in r.probes))


# ------------------------------------------------------------------------------------------------ BKP004
@pytest.mark.pgready(id="BKP004")
def test_bkp004_user_backup_tools(backup_lab, pgready_settings, pgready_cluster_factory, pgready_record) -> None:
    """Your own backup_command and restore_command_line round-trip the data exactly."""
    from pytest_pgready.drills.backup_logical import seed_from_logical
    from pytest_pgready.drills.backup_tools import PLACEHOLDERS, user_tools_round_trip
    from pytest_pgready.drills.scratch import scratch_instance


    rec, s = pgready_record, pgready_settings
    missing = [k for k in ("backup_command", "restore_command_line") if not getattr(s, k)]
    if missing:
        rec.na(f"no {' / '.join(missing)} configured: set backup_command and restore_command_line in "
               f"[tool.pgready] (placeholders {', '.join('{' + p + '}' for p in PLACEHOLDERS)}) to prove your "
               f"own tooling")
    logical = _na_if_unreadable(rec, backup_lab.logical)
    source = pgready_cluster_factory(replicas=0, archive=True, init_sql=False)
    seed_errors = seed_from_logical(source, logical)
    scratch = scratch_instance(s, source.bin)
    try:
        r = user_tools_round_trip(source, "app", scratch, s.backup_command, s.restore_command_line,
                                  s.backup_command_timeout_s)
    finally:
        scratch.close()
    runs = {k: {"seconds": round(v.seconds, 3), "exit": v.returncode, "output": v.output}
            for k, v in (("backup", r.backup), ("restore", r.restore)) if v is not None}
    rec.add(commands=runs, restore_mode=r.mode, seeded_from=logical.database, seed_errors=seed_errors[:10],
            notes=r.notes,
            source=r.source.summary() if r.source else None, restored=r.restored.summary() if r.restored else None)
    if r.restore is not None:
        rec.metric("user_restore_seconds", round(r.restore.seconds, 3))
    problems = r.problems()
    if problems:
        rec.fail(f"your backup/restore commands do not round-trip the data: {len(problems)} problems",
                 objects=r.objects(), problems=problems[:50])
    rec.summary(f"your backup and restore commands round-trip {len(r.source.tables)} tables, "
                f"{r.source.rows:,} rows exactly ({r.mode} restore)")


# ------------------------------------------------------------------------------------------------ BKP005
@pytest.mark.pgready(id="BKP005")
def test_bkp005_restore_time_within_rto(backup_lab, pgready_cluster, pgready_settings, pgready_record) -> None:
    """Measured restore throughput × the target's size ≤ the declared RTO.

    Throughput comes from the verified restores of this run (BKP001 logical, BKP002 physical); the
    fastest verified method is projected onto the size of every database of the target. Scored on the
    SLO curve with target = RTO/2 (0.9) and limit = RTO (0.5); above the RTO the check fails."""
    from pytest_pgready.drills.backup_rto import cluster_size, project_restore
    from pytest_pgready.drills.toolrun import MB


    rec, rto = pgready_record, float(pgready_settings.rto_seconds)
    if rto <= 0:
        rec.na("rto_seconds is 0: declare your recovery time objective (rto_seconds) to judge restores against")
    rates: dict[str, float] = {}
    why: list[str] = []
    for method, get in (("logical (pg_restore)", backup_lab.logical), ("physical (base backup)", backup_lab.physical)):
        try:
            r = get()
        except Exception as e:  # a method that cannot run is not a method
            why.append(f"{method}: {e.__class__.__name__}: {str(e)[:160]}")
            continue
        if r.problems():
            why.append(f"{method}: not verified (see BKP001/BKP002)")
        elif r.restore_mb_s > 0:
            rates[method] = r.restore_mb_s
    size = cluster_size(pgready_cluster.primary)
    p = project_restore(size, rates)
    rec.add(database_bytes=size, measured_mb_s=p.rates, excluded=why, rto_seconds=rto)
    if not p.rates:
        rec.na("no verified restore to measure throughput from: " + "; ".join(why))
    rec.metric("restore_mb_s", round(p.mb_s, 2), report=True)
    rec.slo("projected_restore_seconds", round(p.projected_seconds, 3), rto / 2, rto, report=True)
    rec.add(method=p.method)
    if p.projected_seconds > rto:
        rec.fail(f"restoring {size / MB:,.0f} MB at {p.mb_s:,.1f} MB/s ({p.method}) takes "
                 f"{p.projected_seconds:,.0f}s > RTO {rto:,.0f}s", objects=[p.method],
                 remedy="faster restores (parallel pg_restore -j, physical backups, faster storage) or a standby "
                        "to fail over to instead of restoring")
    rec.summary(f"restore of {size / MB:,.1f} MB projected at {p.projected_seconds:,.1f}s "
                f"({p.mb_s:,.1f} MB/s, {p.method}) ≤ RTO {rto:,.0f}s")
