"""BKP002, the physical round trip: a base backup that verifies, starts, passes amcheck and matches.

pg_basebackup with a manifest, pg_verifybackup, the copy started as its own server, amcheck, and the
content compared with the source's before/after snapshots; `incremental_round_trip` does the same for
an incremental backup combined with pg_combinebackup (PostgreSQL 17+). `take_base_backup` and
`start_copy_of` are also the building blocks of BKP003 and PITR.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cluster.local import LocalCluster, LocalNode
from .amcheck import Amcheck, amcheck
from .content import Difference, Snapshot, compare, snapshot_database
from .scratch import add_copy, copy_tree, discard, tree_bytes
from .toolrun import MB, DrillError, _run, _tail, dsn_of, source_pgpass

DATABASES_SQL = "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1"


@dataclass
class BaseBackup:
    path: Path
    seconds: float
    bytes: int
    start_lsn: str
    end_lsn: str
    timeline: int
    start_wal: str
    manifest_checksums: str
    user: str  # the role copies are opened as (a superuser of the source)
    incremental: bool = False

    @property
    def mb_s(self) -> float:
        return self.bytes / MB / self.seconds if self.seconds > 0 else 0.0


def _read_backup_facts(path: Path) -> tuple[str, str, int, str]:
    label = (path / "backup_label").read_text()
    m = re.search(r"START WAL LOCATION: (\S+) \(file (\w+)\)", label)
    tli = re.search(r"START TIMELINE: (\d+)", label)
    start, wal = (m.group(1), m.group(2)) if m else ("0/0", "")
    end = start
    manifest = path / "backup_manifest"
    if manifest.exists():
        ranges = json.loads(manifest.read_text()).get("WAL-Ranges") or []
        if ranges:
            end = ranges[-1]["End-LSN"]
    return start, end, int(tli.group(1)) if tli else 1, wal


def take_base_backup(node: Any, host: LocalCluster, name: str, *, manifest_checksums: str = "CRC32C",
                     incremental_of: BaseBackup | None = None, timeout: float = 3600) -> BaseBackup:
    """pg_basebackup -X stream (plain format, with a manifest) into host.workdir/name, as the file owner."""
    path = host.workdir / name
    env = {"PGPASSFILE": str(source_pgpass(host, node))}
    argv = [str(host.bin.tool("pg_basebackup")), "-d", dsn_of(node), "-D", str(path), "-X", "stream", "-c", "fast",
            "--no-sync", "-l", f"pytest-pgready {name}"]
    argv.append(f"--manifest-checksums={manifest_checksums}")
    if incremental_of is not None:
        argv.append(f"--incremental={incremental_of.path / 'backup_manifest'}")
    r, seconds = _run(host, argv, env=env, as_owner=True, timeout=timeout)
    if r.returncode != 0:
        raise DrillError(f"pg_basebackup failed: {' | '.join(_tail(r.stderr, 3))}")
    start, end, tli, wal = _read_backup_facts(path)
    return BaseBackup(path, seconds, tree_bytes(path), start, end, tli, wal, manifest_checksums, node.endpoint.user,
                      incremental_of is not None)


def verify_backup(host: LocalCluster, path: Path, timeout: float = 3600) -> tuple[bool, list[str]]:
    r, _ = _run(host, [str(host.bin.tool("pg_verifybackup")), str(path)], as_owner=True, timeout=timeout)
    return r.returncode == 0, _tail(r.stderr + r.stdout, 4)


def start_copy_of(host: LocalCluster, backup_path: Path, name: str, user: str, *,
                  settings: dict[str, str] | None = None, signal_file: str | None = None,
                  wait: bool = True, timeout: float = 120) -> tuple[LocalNode, float]:
    """Restore = copy the backup into a fresh data dir and start it; returns the node and the seconds."""
    dst = host.workdir / name
    t0 = time.perf_counter()
    copy_tree(backup_path, dst)
    node = add_copy(host, dst, name, user=user, settings=settings, signal=signal_file)
    node.start(wait=wait, timeout=timeout)
    return node, time.perf_counter() - t0


def databases(node: Any) -> list[str]:
    with node.connect(dbname="postgres") as c:
        return [r[0] for r in c.execute(DATABASES_SQL).fetchall()]


def source_snapshots(node: Any, dbs: list[str] | None = None) -> dict[str, Snapshot]:
    return {db: snapshot_database(node, db) for db in (dbs or databases(node))}


@dataclass
class SourceBackup:
    """A base backup and the source's content just before and just after it."""

    backup: BaseBackup
    before: dict[str, Snapshot]
    after: dict[str, Snapshot]

    def stable(self, db: str) -> tuple[set[str], set[str]]:
        """Tables and sequences that did not change while the backup ran: the copy must match them exactly."""
        a, b = self.before.get(db), self.after.get(db)
        if a is None or b is None:
            return set(), set()
        tables = {t for t in a.tables if a.tables[t] == b.tables.get(t) and t not in b.unlogged}
        seqs = {s for s in a.sequences if a.sequences[s] == b.sequences.get(s) and s not in b.unlogged}
        return tables, seqs


def backup_with_snapshots(node: Any, host: LocalCluster, name: str = "base", **kw: Any) -> SourceBackup:
    before = source_snapshots(node)
    backup = take_base_backup(node, host, name, **kw)
    after = source_snapshots(node, list(before))
    return SourceBackup(backup, before, after)


@dataclass
class PhysicalResult:
    backup: BaseBackup
    verified: bool = False
    verify_output: list[str] = field(default_factory=list)
    restore_seconds: float = 0.0
    start_error: str | None = None
    amcheck: Amcheck | None = None
    differences: list[Difference] = field(default_factory=list)
    compared: dict[str, int] = field(default_factory=dict)  # database → tables compared
    changing: list[str] = field(default_factory=list)  # tables that changed while the backup ran
    notes: list[str] = field(default_factory=list)

    @property
    def restore_mb_s(self) -> float:
        return self.backup.bytes / MB / self.restore_seconds if self.restore_seconds > 0 else 0.0

    def problems(self) -> list[str]:
        out = []
        if not self.verified:
            out.append("pg_verifybackup failed: " + " | ".join(self.verify_output))
        if self.start_error:
            out.append(f"the restored copy did not start: {self.start_error}")
        if self.amcheck is not None:
            out += [f"{obj}: amcheck: {msg}" for obj, msg in self.amcheck.findings]
        out += [str(d) for d in self.differences]
        return out

    def objects(self) -> list[str]:
        return (([] if self.verified else ["pg_verifybackup"]) + (["restored copy"] if self.start_error else []) +
                [obj for obj, _ in (self.amcheck.findings if self.amcheck else [])] +
                [d.object for d in self.differences])


def physical_round_trip(sb: SourceBackup, host: LocalCluster, name: str = "restored") -> PhysicalResult:
    """Verify the backup, start a copy of it, amcheck it and compare its content with the source's."""
    res = PhysicalResult(sb.backup)
    res.verified, res.verify_output = verify_backup(host, sb.backup.path)
    try:
        node, res.restore_seconds = start_copy_of(host, sb.backup.path, name, sb.backup.user)
    except RuntimeError as e:
        res.start_error = str(e)[:500]
        return res
    try:
        dbs = list(sb.after)
        res.amcheck = amcheck(node, dbs)
        for db in dbs:
            tables, seqs = sb.stable(db)
            res.changing += sorted(f"{db}: {t}" for t in set(sb.after[db].tables) - tables - sb.after[db].unlogged)
            if sb.after[db].unlogged:
                res.notes.append(f"{db}: {len(sb.after[db].unlogged)} UNLOGGED relations not compared: a physical "
                                 f"backup never contains their data (see SCH010)")
            copy = snapshot_database(node, db)
            src = sb.after[db]
            res.differences += [Difference(d.kind, f"{db}: {d.object}", d.detail) for d in
                                compare(_only(src, tables, seqs), _only(copy, tables, seqs))]
            res.compared[db] = len(tables)
        if res.changing:
            res.notes.append(f"{len(res.changing)} tables changed while the backup ran and were not compared")
    finally:
        discard(node)
    return res


def _only(s: Snapshot, tables: set[str], seqs: set[str]) -> Snapshot:
    return Snapshot(s.database, {k: v for k, v in s.tables.items() if k in tables},
                    {k: v for k, v in s.sequences.items() if k in seqs}, s.large_objects, None)


INCREMENTAL_SEED = """
CREATE TABLE pgready_incr (id bigint PRIMARY KEY, v text NOT NULL);
INSERT INTO pgready_incr SELECT g, md5(g::text) FROM generate_series(1, 20000) g;
"""
INCREMENTAL_CHANGE = """
UPDATE pgready_incr SET v = v || 'x' WHERE id % 7 = 0;
DELETE FROM pgready_incr WHERE id % 11 = 0;
INSERT INTO pgready_incr SELECT g, md5(g::text) FROM generate_series(20001, 25000) g;
"""


def incremental_round_trip(cluster: LocalCluster, host: LocalCluster) -> PhysicalResult:
    """PostgreSQL 17+: full backup, changes, incremental backup, pg_combinebackup, then the BKP002 checks.
    `cluster` must run with summarize_wal = on and have no other writers."""
    with cluster.primary.connect() as c:
        c.execute(INCREMENTAL_SEED)
    full = take_base_backup(cluster.primary, host, "incr-full")
    with cluster.primary.connect() as c:
        c.execute(INCREMENTAL_CHANGE)
    sb_before = source_snapshots(cluster.primary)
    incr = take_base_backup(cluster.primary, host, "incr-1", incremental_of=full)
    combined = host.workdir / "incr-combined"
    r, seconds = _run(host, [str(host.bin.tool("pg_combinebackup")), "--no-sync", "-o", str(combined),
                             str(full.path), str(incr.path)], as_owner=True, timeout=3600)
    if r.returncode != 0:
        raise DrillError(f"pg_combinebackup failed: {' | '.join(_tail(r.stderr, 3))}")
    start, end, tli, wal = _read_backup_facts(combined)
    cb = BaseBackup(combined, incr.seconds + seconds, tree_bytes(combined), start, end, tli, wal, "CRC32C",
                    full.user, True)
    res = physical_round_trip(SourceBackup(cb, sb_before, sb_before), host, "incr-restored")
    res.notes.append(f"incremental backup {incr.bytes // 1024} kB of a {full.bytes // 1024} kB full backup, "
                     f"combined in {seconds:.2f}s")
    return res
