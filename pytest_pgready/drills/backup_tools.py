"""BKP004, the user's own backup tools: their backup and restore commands, run as a black box.

Command templates with shell-quoted placeholders, run as the cluster's file owner in their own
process group (bounded), and the restored database (or started data directory) compared as in BKP001.
"""

from __future__ import annotations

import os
import secrets
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..cluster.local import LocalCluster
from .content import Difference, Snapshot, compare, snapshot_database
from .scratch import add_copy, discard, write_pgpass
from .toolrun import RESTORE_DB, _tail, create_restore_db, dsn_of, schema_of, socket_dsn

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
