"""Backup drills: prove that a backup restores, not that a backup command exited 0.

- logical_round_trip (BKP001): pg_dump from the target in an exported snapshot, checksums of the
  source taken in that same snapshot while the dump runs, pg_restore -j into a scratch instance,
  then schema, counts, checksums, sequences and large objects compared.
- take_base_backup / physical_round_trip (BKP002): pg_basebackup with a manifest, pg_verifybackup,
  the copy started as its own server, amcheck, checksums against the source; incremental_round_trip
  does the same for an incremental backup combined with pg_combinebackup (PostgreSQL 17+).
- corruption_drill (BKP003): flipped bytes and a missing WAL segment must be noticed.
- user_tools_round_trip (BKP004): the user's own backup/restore commands, run as a black box.
- project_restore (BKP005): measured restore throughput x database size.

Nothing here decides pass/fail: each result lists its `problems()`, the suite records them.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cluster.local import LocalCluster, LocalNode
from ..cluster.template import SUPERUSER
from ..dsn import make_dsn
from .content import Difference, Snapshot, compare, normalise_schema, read_content, snapshot_database
from .scratch import add_copy, copy_tree, discard, log_lines, tree_bytes, write_pgpass

MB = 1024 * 1024
RESTORE_DB = "pgready_restore"

FACTS_SQL = """
SELECT pg_export_snapshot(), pg_database_size(current_database()), pg_encoding_to_char(d.encoding),
       d.datcollate, d.datctype, current_setting('server_version_num')::int
  FROM pg_database d WHERE d.datname = current_database()
"""
DATABASES_SQL = "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1"

# amcheck over a whole database in one statement: every valid btree index of a relation that holds data
# (relkind 'i'; the 'I' parent of a partitioned index has none and bt_index_check refuses it), with
# heapallindexed so a heap tuple missing from its index is found too, and, where amcheck has it (14+),
# verify_heapam on every table. Each finding is a WARNING so one bad index does not hide the next.
AMCHECK_DO = """
DO $pgready$
DECLARE r record; v record; n_idx int := 0; n_tab int := 0;
        heapam boolean := EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'verify_heapam');
BEGIN
  FOR r IN SELECT c.oid, c.oid::regclass::text AS name FROM pg_index i
             JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam
            WHERE c.relkind = 'i' AND a.amname = 'btree' AND i.indisvalid AND i.indisready AND c.relpersistence <> 't' LOOP
    n_idx := n_idx + 1;
    BEGIN
      PERFORM bt_index_check(r.oid, true);
    EXCEPTION WHEN OTHERS THEN
      RAISE WARNING 'pgready-amcheck: index %: %', r.name, SQLERRM;
    END;
  END LOOP;
  IF heapam THEN
    FOR r IN SELECT c.oid, c.oid::regclass::text AS name FROM pg_class c
              WHERE c.relkind IN ('r', 'm') AND c.relpersistence <> 't' LOOP
      n_tab := n_tab + 1;
      BEGIN
        FOR v IN EXECUTE 'SELECT blkno, offnum, msg FROM verify_heapam($1)' USING r.oid LOOP
          RAISE WARNING 'pgready-amcheck: table % block % offset %: %', r.name, v.blkno, v.offnum, v.msg;
        END LOOP;
      EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'pgready-amcheck: table %: %', r.name, SQLERRM;
      END;
    END LOOP;
  END IF;
  RAISE NOTICE 'pgready-amcheck-done % % %', n_idx, n_tab, heapam;
END
$pgready$
"""

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


class DrillError(RuntimeError):
    """A step of the drill failed in a way that is itself the finding (the message says which step)."""


# ------------------------------------------------------------------------------------------ helpers
def lsn_int(lsn: str) -> int:
    hi, lo = lsn.split("/")
    return (int(hi, 16) << 32) + int(lo, 16)


def dsn_of(node: Any, dbname: str | None = None) -> str:
    """A conninfo for tools without the password (it travels through PGPASSFILE)."""
    ep = node.endpoint
    return make_dsn(host=ep.host, port=ep.port, user=ep.user, dbname=dbname, **ep.params)


def source_pgpass(host: LocalCluster, node: Any) -> Path:
    """A password file the tools (some run as the cluster owner) can read: the DSN's password, else
    PGPASSWORD, else the caller's own PGPASSFILE / ~/.pgpass entries copied over."""
    ep = node.endpoint
    path = host.workdir / f"pgpass-{secrets.token_hex(3)}"
    password = ep.password or os.environ.get("PGPASSWORD")
    write_pgpass(path, [(ep.host, ep.port, ep.user, password)], host.user)
    if not password:
        own = Path(os.environ.get("PGPASSFILE") or Path.home() / ".pgpass")
        try:
            with open(path, "w") as f:  # already 0600 and owned by the tools' user
                f.write(own.read_text())
        except OSError:
            pass
    return path


def socket_dsn(cluster: LocalCluster, dbname: str, node: LocalNode | None = None) -> str:
    """Local (trust) connection to a server of a LocalCluster: no password needed."""
    n = node or cluster.primary
    return make_dsn(host=str(cluster.workdir), port=n.port, user=n.endpoint.user if node else SUPERUSER,
                    dbname=dbname)


def _tail(text: str, n: int = 6) -> list[str]:
    return [ln.strip()[:300] for ln in (text or "").strip().splitlines() if ln.strip()][-n:]


def _errors(stderr: str, limit: int = 20) -> list[str]:
    """pg_restore/psql error lines with the first line of the command that failed."""
    out: list[str] = []
    lines = (stderr or "").splitlines()
    for i, ln in enumerate(lines):
        if "error:" in ln or ln.startswith("ERROR:"):
            msg = re.sub(r"^(pg_restore|psql|pg_dump): ", "", ln.strip())
            if i + 1 < len(lines) and lines[i + 1].strip().startswith("Command was:"):
                msg += " — " + lines[i + 1].strip()[:160]
            out.append(msg[:400])
    return out[:limit]


def _run(host: LocalCluster, argv: list[str], *, env: dict[str, str] | None = None, as_owner: bool = False,
         timeout: float = 3600) -> tuple[subprocess.CompletedProcess[str], float]:
    t0 = time.perf_counter()
    r = host.run_tool(argv, as_owner=as_owner, env=env, timeout=timeout)
    return r, time.perf_counter() - t0


def schema_of(host: LocalCluster, dsn: str, env: dict[str, str] | None = None) -> dict[str, str]:
    r, _ = _run(host, [str(host.bin.tool("pg_dump")), "--schema-only", "-d", dsn], env=env, timeout=600)
    if r.returncode != 0:
        raise DrillError(f"pg_dump --schema-only failed: {' | '.join(_tail(r.stderr, 2))}")
    return normalise_schema(r.stdout)


def create_restore_db(scratch: LocalCluster, name: str, encoding: str = "UTF8", collate: str | None = None,
                      ctype: str | None = None) -> list[str]:
    """An empty database like the source's (its locale when this host has it, else C: noted)."""
    from psycopg import errors, sql

    notes = []
    with scratch.primary.connect(dbname="postgres") as c:
        c.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        base = sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING {}").format(sql.Identifier(name),
                                                                                   sql.Literal(encoding))
        try:
            if collate and ctype:
                c.execute(base + sql.SQL(" LC_COLLATE {} LC_CTYPE {}").format(sql.Literal(collate), sql.Literal(ctype)))
            else:
                c.execute(base)
        except errors.Error:  # e.g. "invalid LC_COLLATE locale name": this host lacks the source's locale
            c.execute(base + sql.SQL(" LOCALE 'C'"))
            notes.append(f"locale {collate} is not available on this host: restored with locale C "
                         f"(checksums are order-independent)")
    return notes


# ------------------------------------------------------------------------------------------ BKP001
@dataclass
class LogicalResult:
    database: str
    source: Snapshot | None = None
    restored: Snapshot | None = None
    differences: list[Difference] = field(default_factory=list)
    restore_errors: list[str] = field(default_factory=list)
    dump_error: str | None = None
    dump_seconds: float = 0.0
    restore_seconds: float = 0.0
    checksum_seconds: float = 0.0
    db_bytes: int = 0
    dump_bytes: int = 0
    fmt: str = "custom"
    jobs: int = 1
    source_major: int = 0
    scratch_major: int = 0
    notes: list[str] = field(default_factory=list)
    dump_path: Path | None = None

    @property
    def dump_mb_s(self) -> float:
        return self.db_bytes / MB / self.dump_seconds if self.dump_seconds > 0 else 0.0

    @property
    def restore_mb_s(self) -> float:
        return self.db_bytes / MB / self.restore_seconds if self.restore_seconds > 0 else 0.0

    def problems(self) -> list[str]:
        out = []
        if self.dump_error:
            out.append(f"pg_dump failed: {self.dump_error}")
        out += [f"pg_restore: {e}" for e in self.restore_errors]
        out += [str(d) for d in self.differences]
        return out

    def objects(self) -> list[str]:
        return (["pg_dump"] if self.dump_error else []) + (["pg_restore"] if self.restore_errors else []) + \
            [d.object for d in self.differences]

    def missing_extensions(self) -> list[str]:
        """Extensions the scratch binaries lack: the restore then fails for a reason that is not the backup's."""
        found = set()
        for e in self.restore_errors:
            m = re.search(r'extension "([^"]+)" is not available|extension control file "[^"]*/([^"/]+)\.control"', e)
            if m:
                found.add(m.group(1) or m.group(2))
        return sorted(found)


def logical_round_trip(node: Any, dbname: str, scratch: LocalCluster, *, jobs: int = 2, fmt: str = "auto",
                       timeout: float = 3600) -> LogicalResult:
    """Dump `dbname` from `node` and restore it into `scratch` (newer-or-equal major), then compare.

    The source checksums run in the transaction whose snapshot pg_dump uses (--snapshot), at the same
    time as the dump: they describe exactly the data that was dumped, even with writers active, and
    cost no extra wall time. Read-only on the source."""
    res = LogicalResult(dbname, jobs=jobs, scratch_major=scratch.bin.major)
    work = scratch.workdir / f"logical-{secrets.token_hex(3)}"
    work.mkdir()
    env = {"PGPASSFILE": str(source_pgpass(scratch, node))}
    src = dsn_of(node, dbname)
    dump_tool, bindir = str(scratch.bin.tool("pg_dump")), scratch.bin
    conn = node.connect(dbname=dbname, autocommit=True)
    try:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        conn.execute("SET LOCAL statement_timeout = 0")  # like pg_dump itself: a full read takes what it takes
        snap_id, res.db_bytes, encoding, collate, ctype, vnum = conn.execute(FACTS_SQL).fetchone()
        res.source_major = int(vnum) // 10000
        if fmt == "auto":
            fmt = "directory" if jobs > 1 and res.db_bytes >= 64 * MB else "custom"
        res.fmt = fmt
        out = work / ("dump.d" if fmt == "directory" else "dump.pgc")
        data_argv = [dump_tool, "-d", src, f"--snapshot={snap_id}", "-f", str(out)]
        data_argv += ["-Fd", "-j", str(jobs)] if fmt == "directory" else ["-Fc"]
        with ThreadPoolExecutor(3) as ex:
            f_data = ex.submit(_run, scratch, data_argv, env=env, timeout=timeout)
            f_schema = ex.submit(_run, scratch, [dump_tool, "-d", src, f"--snapshot={snap_id}", "--schema-only"],
                                 env=env, timeout=600)
            f_roles = ex.submit(_run, scratch, [str(bindir.tool("pg_dumpall")), "-d", src, "-l", dbname,
                                                "--roles-only", "--no-role-passwords", "-f", str(work / "roles.sql")],
                                env=env, timeout=600)
            t0 = time.perf_counter()
            try:
                res.source = read_content(conn, dbname)
            finally:
                res.checksum_seconds = time.perf_counter() - t0
                r_data, res.dump_seconds = f_data.result()
                r_schema, _ = f_schema.result()
                r_roles, _ = f_roles.result()
    finally:
        try:
            conn.execute("ROLLBACK")
        finally:
            conn.close()
    if r_data.returncode != 0:
        res.dump_error = " | ".join(_tail(r_data.stderr, 3))
        return res
    if r_schema.returncode != 0:
        res.dump_error = "schema: " + " | ".join(_tail(r_schema.stderr, 3))
        return res
    res.source.schema = normalise_schema(r_schema.stdout)
    res.dump_path = out
    res.dump_bytes = tree_bytes(out) if out.is_dir() else out.stat().st_size
    # --- restore -------------------------------------------------------------------------------------
    res.notes += create_restore_db(scratch, RESTORE_DB, encoding, collate, ctype)
    if r_roles.returncode == 0:  # owners and grants need the roles; "already exists" errors are expected
        _run(scratch, [str(bindir.tool("psql")), "-X", "-q", "-d", socket_dsn(scratch, "postgres"),
                       "-f", str(work / "roles.sql")], timeout=600)
    else:
        res.notes.append("roles could not be dumped (" + " | ".join(_tail(r_roles.stderr, 1)) +
                         "): owners and grants may differ")
    r, res.restore_seconds = _run(scratch, [str(bindir.tool("pg_restore")), "-d", socket_dsn(scratch, RESTORE_DB),
                                            "-j", str(jobs), str(out)], timeout=timeout)
    res.restore_errors = _errors(r.stderr)
    if r.returncode != 0 and not res.restore_errors:
        res.restore_errors = _tail(r.stderr, 3) or [f"pg_restore exited with {r.returncode}"]
    # --- verify ----------------------------------------------------------------------------------------
    t0 = time.perf_counter()
    res.restored = snapshot_database(scratch.primary, RESTORE_DB)
    res.restored.schema = schema_of(scratch, socket_dsn(scratch, RESTORE_DB))
    res.checksum_seconds += time.perf_counter() - t0
    res.differences = compare(res.source, res.restored)
    if res.source_major != res.scratch_major:  # pg_dump output of two majors differs in form, not in data
        schema = [d for d in res.differences if d.kind == "schema"]
        res.differences = [d for d in res.differences if d.kind != "schema"]
        res.notes.append(f"restored PostgreSQL {res.source_major} into {res.scratch_major}: {len(schema)} schema "
                         f"differences reported, not judged (version artefacts possible): "
                         + "; ".join(str(d) for d in schema[:5]))
    return res


def restore_dump(scratch: LocalCluster, dump: Path, dbname: str, *, jobs: int = 2) -> list[str]:
    """Load an existing dump into `dbname` of a local cluster (seeding a drill cluster with the target's data)."""
    r, _ = _run(scratch, [str(scratch.bin.tool("pg_restore")), "-d", socket_dsn(scratch, dbname), "-j", str(jobs),
                          str(dump)], timeout=3600)
    return _errors(r.stderr) if r.returncode != 0 else []


# ------------------------------------------------------------------------------------------ BKP002
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
class Amcheck:
    indexes: int = 0
    tables: int = 0
    heapam: bool = False
    findings: list[tuple[str, str]] = field(default_factory=list)  # (database: relation, message)
    unavailable: str | None = None  # amcheck is not installed with these binaries


def amcheck(node: Any, dbs: list[str]) -> Amcheck:
    """amcheck every database of a (restored, writable) copy: CREATE EXTENSION, then one DO block each."""
    import psycopg

    out = Amcheck()
    for db in dbs:
        with node.connect(dbname=db) as c:
            msgs: list[str] = []
            c.add_notice_handler(lambda d: msgs.append(d.message_primary or ""))
            try:
                c.execute("CREATE EXTENSION IF NOT EXISTS amcheck")
            except (psycopg.errors.UndefinedFile, psycopg.errors.FeatureNotSupported) as e:
                out.unavailable = str(e).strip().splitlines()[0][:200]
                return out
            c.execute(AMCHECK_DO)
        for m in msgs:
            if m.startswith("pgready-amcheck-done"):
                _, i, t, h = m.split()
                out.indexes += int(i)
                out.tables += int(t)
                out.heapam = h == "t" or h == "true"
            elif m.startswith("pgready-amcheck:"):
                what, _, msg = m.split(":", 1)[1].strip().partition(": ")
                out.findings.append((f"{db}: {what}", msg[:400]))
    return out


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


# ------------------------------------------------------------------------------------------ BKP003
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


# ------------------------------------------------------------------------------------------ BKP004
PLACEHOLDERS = ("pgdata", "dsn", "target_dir", "port", "host", "user", "dbname", "backup_dir", "bindir")


class _Values(dict):
    def __missing__(self, key: str) -> str:
        raise KeyError(key)


def render_command(template: str, values: dict[str, str]) -> str:
    """Fill the documented placeholders, each shell-quoted ({{ and }} are literal braces)."""
    try:
        return template.format_map(_Values({k: shlex.quote(str(v)) for k, v in values.items()}))
    except KeyError as e:
        raise ValueError(f"unknown placeholder {{{e.args[0]}}} (known: "
                         f"{', '.join('{' + p + '}' for p in PLACEHOLDERS)})") from None
    except (IndexError, ValueError) as e:
        raise ValueError(f"malformed command template ({e}); write literal braces as {{{{ and }}}}") from None


@dataclass
class CommandRun:
    command: str  # the template, never the rendered line (it holds paths only, but stay minimal)
    returncode: int | None
    seconds: float
    output: list[str]


def run_user_command(template: str, values: dict[str, str], host: LocalCluster, pgpass: Path, cwd: Path,
                     timeout: float) -> CommandRun:
    """Run a user's command as a black box: bash -c, as the cluster's file owner, PGPASSFILE for the
    password, its own process group (killed entirely on timeout)."""
    line = render_command(template, values)
    env = {"PATH": f"{values['bindir']}:/usr/local/bin:/usr/bin:/bin", "PGPASSFILE": str(pgpass),
           "PGSSLMODE": "prefer", "HOME": str(cwd), "LC_ALL": "C", "LANG": "C", "PGCONNECT_TIMEOUT": "10"}
    t0 = time.perf_counter()
    proc = subprocess.Popen(["/bin/bash", "-c", line], cwd=str(cwd), env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            **host.user.popen_kwargs())
    try:
        out, _ = proc.communicate(timeout=timeout)
        rc: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=10)
        rc = None
    return CommandRun(template, rc, time.perf_counter() - t0, _tail(out, 8))


@dataclass
class ToolsResult:
    backup: CommandRun | None = None
    restore: CommandRun | None = None
    mode: str = "database"  # database (logical restore into {dbname}) | datadir (a data dir in {target_dir})
    source: Snapshot | None = None
    restored: Snapshot | None = None
    differences: list[Difference] = field(default_factory=list)
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        out = []
        if self.error:
            out.append(self.error)
        for what, run in (("backup", self.backup), ("restore", self.restore)):
            if run is not None and run.returncode != 0:
                out.append(f"the {what} command " + ("timed out" if run.returncode is None else
                                                     f"exited with {run.returncode}") +
                           (": " + " | ".join(run.output[-2:]) if run.output else ""))
        out += [str(d) for d in self.differences]
        return out

    def objects(self) -> list[str]:
        failed = [f"{w} command" for w, run in (("backup", self.backup), ("restore", self.restore))
                  if run is not None and run.returncode != 0]
        return (["command template"] if self.error else []) + failed + [d.object for d in self.differences]


def user_tools_round_trip(source: LocalCluster, dbname: str, scratch: LocalCluster, backup_command: str,
                          restore_command: str, timeout: float) -> ToolsResult:
    """Run the user's backup command against `source` (a drill cluster holding the target's data), their
    restore command against the empty scratch instance, and compare exactly as BKP001 does.

    Placeholders — backup: {dsn} {host} {port} {user} {dbname} of the source, {pgdata} its data dir,
    {backup_dir} an empty dir to write to, {bindir}; restore: {dsn} {host} {port} {user} of the scratch
    server, {dbname} an empty database there to restore into, {backup_dir}, {target_dir} an empty dir
    (a physical restore writes a data dir there: pgready then starts it and verifies that instead)."""
    res = ToolsResult()
    work = scratch.workdir / f"tools-{secrets.token_hex(3)}"
    backup_dir, target_dir = work / "backup", work / "target"
    for d in (work, backup_dir, target_dir):
        d.mkdir(mode=0o700)
        scratch.user.chown(d)
    sp, tp = source.primary, scratch.primary
    pgpass = write_pgpass(work / "pgpass", [(sp.host, sp.port, sp.endpoint.user, sp.endpoint.password),
                                            (tp.host, tp.port, tp.endpoint.user, tp.endpoint.password)], scratch.user)
    res.source = snapshot_database(sp, dbname)
    res.source.schema = schema_of(source, socket_dsn(source, dbname))
    bindir = str(scratch.bin.bindir)
    common = {"backup_dir": str(backup_dir), "target_dir": str(target_dir), "bindir": bindir}
    try:
        res.backup = run_user_command(backup_command, {
            **common, "dsn": dsn_of(sp, dbname), "host": sp.host, "port": str(sp.port), "user": sp.endpoint.user,
            "dbname": dbname, "pgdata": str(sp.datadir)}, scratch, pgpass, work, timeout)
        if res.backup.returncode != 0:
            return res
        create_restore_db(scratch, RESTORE_DB)
        res.restore = run_user_command(restore_command, {
            **common, "dsn": dsn_of(tp, RESTORE_DB), "host": tp.host, "port": str(tp.port),
            "user": tp.endpoint.user, "dbname": RESTORE_DB, "pgdata": str(tp.datadir)}, scratch, pgpass, work,
            timeout)
    except ValueError as e:
        res.error = f"command template: {e}"
        return res
    if res.restore.returncode != 0:
        return res
    if (target_dir / "PG_VERSION").exists():  # a physical restore: start it and verify that instance
        res.mode = "datadir"
        node = add_copy(scratch, target_dir, "user-restore", user=sp.endpoint.user, keep_recovery=True)
        try:
            node.start(timeout=300)
            res.restored = snapshot_database(node, dbname)
            res.restored.schema = schema_of(scratch, socket_dsn(scratch, dbname, node))
        except RuntimeError as e:
            res.error = f"the restored data directory did not start: {str(e)[:300]}"
            return res
        finally:
            discard(node)
    else:
        res.restored = snapshot_database(tp, RESTORE_DB)
        res.restored.schema = schema_of(scratch, socket_dsn(scratch, RESTORE_DB))
    src, unlogged = res.source, res.source.unlogged
    if res.mode == "datadir" and unlogged:  # as in BKP002: physical copies never hold UNLOGGED data
        res.notes.append(f"{len(unlogged)} UNLOGGED relations not compared: a physical restore never "
                         f"contains their data (see SCH010)")
        src = Snapshot(src.database, {k: v for k, v in src.tables.items() if k not in unlogged},
                       {k: v for k, v in src.sequences.items() if k not in unlogged}, src.large_objects, src.schema)
        res.restored.tables = {k: v for k, v in res.restored.tables.items() if k not in unlogged}
    res.differences = compare(src, res.restored)
    return res


# ------------------------------------------------------------------------------------------ BKP005
@dataclass
class RtoProjection:
    db_bytes: int
    rates: dict[str, float]  # restore method → measured MB/s
    method: str = ""
    mb_s: float = 0.0
    projected_seconds: float = 0.0


def project_restore(db_bytes: int, rates: dict[str, float]) -> RtoProjection:
    """The restore time of the whole database at the fastest verified restore method's measured rate."""
    p = RtoProjection(db_bytes, {k: round(v, 2) for k, v in rates.items() if v > 0})
    if p.rates:
        p.method, p.mb_s = max(p.rates.items(), key=lambda kv: kv[1])
        p.projected_seconds = db_bytes / MB / p.mb_s
    return p


def cluster_size(node: Any) -> int:
    with node.connect(dbname="postgres") as c:
        return int(c.execute("SELECT sum(pg_database_size(oid)) FROM pg_database WHERE datallowconn").fetchone()[0])


# ------------------------------------------------------------------------------------------ a session
class BackupLab:
    """What the backup checks share within one run: one scratch instance and one logical round trip
    (BKP001, BKP004's seed, BKP005), one host for copies and one base backup (BKP002, BKP003, BKP005).
    Each piece is made on first use; a failure is remembered and raised again to every check that needs it."""

    def __init__(self, cluster: Any, settings: Any, dbname: str | None = None) -> None:
        self.cluster, self.settings = cluster, settings
        self._dbname = dbname
        self._cache: dict[str, Any] = {}
        self._owned: list[LocalCluster] = []

    def _get(self, key: str, make: Any) -> Any:
        if key not in self._cache:
            try:
                self._cache[key] = (True, make())
            except Exception as e:  # remembered: the next check that needs it gets the same answer
                self._cache[key] = (False, e)
        ok, value = self._cache[key]
        if not ok:
            raise value
        return value

    def _own(self, c: LocalCluster) -> LocalCluster:
        self._owned.append(c)
        return c

    @property
    def dbname(self) -> str:
        return self._dbname or self.cluster.primary.endpoint.dbname

    def target_major(self) -> int:
        from .scratch import server_major

        return self._get("major", lambda: server_major(self.cluster.primary))

    def scratch(self) -> LocalCluster:
        from .scratch import pick_binaries, scratch_instance

        return self._get("scratch", lambda: self._own(scratch_instance(
            self.settings, pick_binaries(self.target_major(), self.cluster.bin))))

    def logical(self) -> LogicalResult:
        return self._get("logical", lambda: logical_round_trip(self.cluster.primary, self.dbname, self.scratch(),
                                                               jobs=self.settings.backup_jobs))

    def host(self) -> LocalCluster:
        from .scratch import bare_host, pick_binaries

        return self._get("host", lambda: self._own(bare_host(
            pick_binaries(self.target_major(), self.cluster.bin, exact=True))))

    def source_backup(self) -> SourceBackup:
        return self._get("base", lambda: backup_with_snapshots(
            self.cluster.primary, self.host(), "base", manifest_checksums=self.settings.backup_manifest_checksums))

    def physical(self) -> PhysicalResult:
        return self._get("physical", lambda: physical_round_trip(self.source_backup(), self.host()))

    def corruption(self) -> CorruptionResult:
        return self._get("corruption", lambda: corruption_drill(self.cluster.primary, self.host(),
                                                                self.source_backup().backup))

    def close(self) -> None:
        for c in reversed(self._owned):
            c.close()
        self._owned.clear()


def seed_from_logical(cluster: LocalCluster, logical: LogicalResult, dbname: str = "app") -> list[str]:
    """Load BKP001's dump (and roles) into a drill cluster: it then holds the target's data."""
    if logical.dump_path is None:
        raise DrillError("no dump of the target to seed the drill cluster with (BKP001's pg_dump failed)")
    roles = logical.dump_path.parent / "roles.sql"
    if roles.exists():
        _run(cluster, [str(cluster.bin.tool("psql")), "-X", "-q", "-d", socket_dsn(cluster, "postgres"),
                       "-f", str(roles)], timeout=600)
    return restore_dump(cluster, logical.dump_path, dbname)
