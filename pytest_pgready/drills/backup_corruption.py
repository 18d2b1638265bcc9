"""BKP003, the corruption drill: break copies of a backup on purpose and see who notices.

Flipped bytes in a table's data file and a missing WAL segment must each be caught by at least one
layer (pg_verifybackup, the restore, reading the page); `disable_data_checksums` proves it can fail.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cluster.local import LocalCluster
from .backup_physical import BaseBackup, start_copy_of, verify_backup
from .scratch import add_copy, copy_tree, discard, log_lines
from .toolrun import DrillError, _tail

# The largest user table with at least one page, else pg_description: the file BKP003 corrupts.
VICTIM_SQL = """
SELECT * FROM (
  SELECT n.nspname, c.relname, pg_relation_filepath(c.oid), pg_relation_size(c.oid) AS size,
         format('%I.%I', n.nspname, c.relname)
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind = 'r' AND c.relpersistence = 'p' AND pg_relation_size(c.oid) >= 8192
     AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
   ORDER BY 4 DESC LIMIT 1) u
UNION ALL
SELECT 'pg_catalog', 'pg_description', pg_relation_filepath('pg_catalog.pg_description'),
       pg_relation_size('pg_catalog.pg_description'), 'pg_catalog.pg_description'
LIMIT 1
"""


@dataclass
class Probe:
    fault: str
    caught_by: list[str] = field(default_factory=list)
    missed_by: list[str] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)


@dataclass
class CorruptionResult:
    probes: list[Probe] = field(default_factory=list)
    data_checksums: bool = False
    manifest_checksums: str = ""
    victim: str = ""

    def problems(self) -> list[str]:
        return [f"{p.fault} went unnoticed ({', '.join(p.missed_by)} did not fail)" for p in self.probes
                if not p.caught_by]

    def objects(self) -> list[str]:
        return [p.fault for p in self.probes if not p.caught_by]


def flip_bytes(path: Path, offset: int, n: int = 16) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        data = f.read(n)
        f.seek(offset)
        f.write(bytes(b ^ 0xFF for b in data))


def corruption_drill(node: Any, host: LocalCluster, backup: BaseBackup) -> CorruptionResult:
    """Break copies of a backup on purpose and see who notices.

    1. bytes flipped in the middle of a table's data file: pg_verifybackup (manifest checksums) and,
       separately, reading the page in a restored copy (data checksums) should each fail;
    2. the backup's first WAL segment deleted: pg_verifybackup and the restore (start) should fail.
    A fault counts as detected when at least one layer failed loudly."""
    with node.connect() as c:
        schema, table, relpath, size, qname = c.execute(VICTIM_SQL).fetchone()
        checksums = c.execute("SHOW data_checksums").fetchone()[0] == "on"
    res = CorruptionResult(data_checksums=checksums, manifest_checksums=backup.manifest_checksums,
                           victim=f"{qname} ({relpath})")
    block = max(0, (int(size) // 8192) // 2)
    offset = block * 8192 + 4096
    # 1a. the backup verification
    flip = Probe(f"16 bytes flipped in {relpath} (table {qname}, block {block})")
    v1 = host.workdir / "corrupt-flip"
    copy_tree(backup.path, v1)
    try:
        flip_bytes(v1 / relpath, offset)
        ok, out = verify_backup(host, v1)
        (flip.missed_by if ok else flip.caught_by).append("pg_verifybackup")
        flip.evidence.append("pg_verifybackup: " + (" | ".join(out) or "ok"))
    finally:
        import shutil

        shutil.rmtree(v1, ignore_errors=True)
    # 1b. reading the page in a restored copy: start, stop cleanly, flip on disk, start, read
    try:
        rnode, _ = start_copy_of(host, backup.path, "corrupt-read", backup.user)
    except RuntimeError as e:
        flip.evidence.append(f"restored copy did not start before corruption: {str(e)[:200]}")
    else:
        try:
            rnode.stop(mode="fast")
            flip_bytes(rnode.datadir / relpath, offset)
            rnode.start(timeout=60)
            import psycopg
            from psycopg import sql

            with rnode.connect(dbname=node.endpoint.dbname) as c:  # connecting must work: only the read may fail
                try:
                    n = c.execute(sql.SQL("SELECT count(*) FROM ONLY {}").format(sql.Identifier(schema, table))
                                  ).fetchone()[0]
                    flip.missed_by.append("reading the page")
                    flip.evidence.append(f"SELECT count(*) read {n} rows without an error"
                                         + ("" if checksums else " (data checksums are off)"))
                except psycopg.Error as e:  # expected: "invalid page in block …" (SQLSTATE XX001)
                    flip.caught_by.append("reading the page")
                    flip.evidence.append(f"read failed ({e.sqlstate}): {str(e).strip().splitlines()[0][:200]}")
        finally:
            discard(rnode)
    res.probes.append(flip)
    # 2. a missing WAL segment
    wal = Probe(f"WAL segment {backup.start_wal} deleted from the backup")
    v2 = host.workdir / "corrupt-wal"
    copy_tree(backup.path, v2)
    (v2 / "pg_wal" / backup.start_wal).unlink(missing_ok=True)
    ok, out = verify_backup(host, v2)
    (wal.missed_by if ok else wal.caught_by).append("pg_verifybackup")
    wal.evidence.append("pg_verifybackup: " + (" | ".join(out) or "ok"))
    wnode = add_copy(host, v2, "corrupt-wal", user=backup.user)
    try:
        wnode.start(timeout=60)
        wal.missed_by.append("the restore")
        wal.evidence.append("the copy started without the segment")
    except RuntimeError:
        wal.caught_by.append("the restore")
        wal.evidence.append("start refused: " + " | ".join(log_lines(wnode, r"FATAL|PANIC", 2)))
    finally:
        discard(wnode)
    res.probes.append(wal)
    return res


def disable_data_checksums(cluster: LocalCluster) -> None:
    """Stop the primary, pg_checksums --disable, start it again (to prove BKP003 can fail)."""
    cluster.primary.stop()
    r = cluster.run_tool(["pg_checksums", "--disable", "-D", str(cluster.primary.datadir)], as_owner=True)
    if r.returncode != 0:
        raise DrillError(f"pg_checksums --disable failed: {' | '.join(_tail(r.stderr, 2))}")
    cluster.primary.start()
