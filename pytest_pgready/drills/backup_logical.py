"""BKP001, the logical round trip: pg_dump of the target, pg_restore into a scratch instance, compared.

The dump runs in an exported snapshot while the source's checksums are taken in that same snapshot,
then pg_restore -j loads it and schema, counts, checksums, sequences and large objects are compared.
The dump is kept: `seed_from_logical` loads it into a drill cluster (BKP004's source).
"""

from __future__ import annotations

import re
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cluster.local import LocalCluster
from .content import Difference, Snapshot, compare, normalise_schema, read_content, snapshot_database
from .scratch import tree_bytes
from .toolrun import (MB, RESTORE_DB, DrillError, _errors, _run, _tail, create_restore_db, dsn_of, schema_of,
                      socket_dsn, source_pgpass)

FACTS_SQL = """
SELECT pg_export_snapshot(), pg_database_size(current_database()), pg_encoding_to_char(d.encoding),
       d.datcollate, d.datctype, current_setting('server_version_num')::int
  FROM pg_database d WHERE d.datname = current_database()
"""


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


def seed_from_logical(cluster: LocalCluster, logical: LogicalResult, dbname: str = "app") -> list[str]:
    """Load BKP001's dump (and roles) into a drill cluster: it then holds the target's data."""
    if logical.dump_path is None:
        raise DrillError("no dump of the target to seed the drill cluster with (BKP001's pg_dump failed)")
    roles = logical.dump_path.parent / "roles.sql"
    if roles.exists():
        _run(cluster, [str(cluster.bin.tool("psql")), "-X", "-q", "-d", socket_dsn(cluster, "postgres"),
                       "-f", str(roles)], timeout=600)
    return restore_dump(cluster, logical.dump_path, dbname)
