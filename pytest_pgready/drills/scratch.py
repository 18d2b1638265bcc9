"""Scratch PostgreSQL instances to restore into, and copies of data directories started as their own servers.

Built on cluster.local: a scratch instance is a LocalCluster with one primary (no replica, pooler
or proxy); a copy (a base backup, a recovered PITR target) runs as an extra LocalNode of such a
cluster, so `cluster.close()` stops and removes everything. A copy listens on a Unix socket in
the cluster's run dir only, authenticates local connections by trust (it is ours, and the source's
passwords are not needed), never archives into the source's archive, and has every setting that
points at the source (ports, primary_conninfo, archive/restore commands) overridden in
postgresql.auto.conf, the last file PostgreSQL reads.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from ..cluster import config as conf
from ..cluster.binaries import PgBinaries, all_postgres
from ..cluster.local import LocalCluster, LocalNode
from ..cluster.model import Endpoint, Unsupported
from ..cluster.osuser import service_user
from ..cluster.sandbox import free_port

COPY_HBA = "pgready.copy.hba"
# Settings of a copied data dir that would point it at the source or make it act on the source's behalf.
_FOREIGN_KEYS = {"port", "listen_addresses", "unix_socket_directories", "cluster_name", "hba_file", "ident_file",
                 "archive_mode", "archive_command", "archive_library", "restore_command", "primary_conninfo",
                 "primary_slot_name", "synchronous_standby_names", "ssl", "logging_collector", "log_destination",
                 "recovery_target", "recovery_target_time", "recovery_target_lsn", "recovery_target_xid",
                 "recovery_target_name", "recovery_target_inclusive", "recovery_target_action",
                 "recovery_target_timeline", "data_directory", "external_pid_file", "summarize_wal"}


# ------------------------------------------------------------------------------------------ binaries
def server_major(node: Any) -> int:
    with node.connect(dbname=None) as conn:
        return int(conn.execute("SHOW server_version_num").fetchone()[0]) // 10000


def pick_binaries(target_major: int, prefer: PgBinaries | None = None, *, exact: bool = False) -> PgBinaries:
    """Local binaries able to hold the target's data: the same major (a physical copy needs exactly that)
    or, for a logical restore, the smallest newer one. Unsupported (→ na) when none is installed."""
    if prefer is not None and prefer.major == target_major:
        return prefer
    found = sorted({b.major: b for b in reversed(all_postgres())}.values(), key=lambda b: b.major)
    ok = [b for b in found if (b.major == target_major if exact else b.major >= target_major)]
    if not ok:
        have = ", ".join(str(b.major) for b in found) or "none"
        need = f"PostgreSQL {target_major}" if exact else f"PostgreSQL {target_major} or newer"
        raise Unsupported(f"no local {need} binaries to restore into (installed: {have}): install "
                          f"postgresql-{target_major} or point --pgready-pg-bin at that version's bin directory")
    return ok[0]


def scratch_instance(settings: Any, bins: PgBinaries) -> LocalCluster:
    """A fresh, empty local server to restore into (the caller closes it)."""
    from ..cluster.local import provision_local

    return provision_local(settings, bins=bins, replicas=0, sync=False, pgbouncer=False, toxiproxy=False,
                           archive=False, init_sql=False, byo=False)


def bare_host(bins: PgBinaries) -> LocalCluster:
    """A LocalCluster with no server of its own: a run dir to hold backups and start copies in."""
    return LocalCluster(bins, service_user())


# ------------------------------------------------------------------------------------------ files
def write_pgpass(path: Path, entries: list[tuple[str, int | str, str, str | None]], owner: Any = None) -> Path:
    """A libpq password file (mode 0600): secrets reach tools through PGPASSFILE, never argv or logs."""
    def esc(v: Any) -> str:
        return str(v).replace("\\", "\\\\").replace(":", "\\:")

    lines = [f"{esc(h)}:{esc(p)}:*:{esc(u)}:{esc(pw)}" for h, p, u, pw in entries if pw]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # never readable by others, not even briefly
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines) + "\n")
    (owner or service_user()).chown(path)
    return path


def copy_tree(src: Path, dst: Path, timeout: float = 600) -> float:
    """cp -a (keeps the owner and modes a data dir needs); returns the seconds it took."""
    if dst.exists():  # cp -a would copy *into* it
        raise FileExistsError(f"{dst} already exists")
    t0 = time.perf_counter()
    r = subprocess.run(["cp", "-a", str(src), str(dst)], capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"copying {src.name} failed: {r.stderr.strip()[:300]}")
    return time.perf_counter() - t0


def tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def rewrite_auto_conf(datadir: Path, overrides: dict[str, str], keep: frozenset[str] = frozenset()) -> None:
    """Drop every setting of the copy that points at the source, then append ours (auto.conf is read last)."""
    auto = datadir / "postgresql.auto.conf"
    kept = []
    if auto.exists():
        for line in auto.read_text(errors="replace").splitlines():
            m = re.match(r"\s*([A-Za-z_][\w.]*)\s*=", line)
            key = m.group(1).lower() if m else ""
            if key in keep and key not in overrides:
                pass
            elif m and (key in _FOREIGN_KEYS or key in overrides):
                continue
            kept.append(line)
    kept.append("# pytest-pgready: this is a restored copy; settings below are owned by the drill")
    kept += [f"{k} = {v}" for k, v in overrides.items()]
    auto.write_text("\n".join(kept) + "\n")


# ------------------------------------------------------------------------------------------ copies
def copy_settings(host: LocalCluster, datadir: Path, name: str, port: int, extra: dict[str, str] | None) -> dict[str, str]:
    s = {"port": str(port), "listen_addresses": "''", "unix_socket_directories": conf.quote(str(host.workdir)),
         "cluster_name": conf.quote(name), "hba_file": conf.quote(str(datadir / COPY_HBA)),
         "archive_mode": "off", "archive_command": "''", "restore_command": "''", "primary_conninfo": "''",
         "primary_slot_name": "''", "synchronous_standby_names": "''", "ssl": "off", "logging_collector": "off",
         "log_destination": "'stderr'", "hot_standby": "on"}
    s.update(extra or {})
    return s


_RECOVERY_KEYS = frozenset(k for k in _FOREIGN_KEYS if k.startswith("recovery_")) | {"restore_command"}


def add_copy(host: LocalCluster, datadir: Path, name: str, *, user: str, dbname: str = "postgres",
             settings: dict[str, str] | None = None, signal: str | None = None,
             keep_recovery: bool = False) -> LocalNode:
    """Make `datadir` (a base backup or a copy of one, inside host.workdir) startable as its own server.

    `settings` add to/override the copy's settings (e.g. restore_command and recovery targets);
    `signal` is None, "recovery" or "standby". `keep_recovery` keeps the signal files, restore_command
    and recovery targets a user's restore tool wrote. The node is registered with the host for cleanup."""
    junk = ["postmaster.pid", "postmaster.opts"] + ([] if keep_recovery else ["standby.signal", "recovery.signal"])
    for j in junk:
        (datadir / j).unlink(missing_ok=True)
    (datadir / COPY_HBA).write_text("local all all trust\nlocal replication all trust\n")
    if not (datadir / "postgresql.conf").exists():  # the source kept its config outside the data dir
        (datadir / "postgresql.conf").write_text("# written by pytest-pgready for a restored copy\n")
    port = free_port()
    s = copy_settings(host, datadir, name, port, settings)
    if keep_recovery:
        s = {k: v for k, v in s.items() if k not in _RECOVERY_KEYS or (settings and k in settings)}
    rewrite_auto_conf(datadir, s, _RECOVERY_KEYS if keep_recovery else frozenset())
    if signal:
        (datadir / f"{signal}.signal").write_text("")
    datadir.chmod(0o700)
    host.user.chown_tree(datadir)
    node = LocalNode(name, "copy", Endpoint(str(host.workdir), port, user, None, dbname), datadir, host)
    host.nodes.append(node)
    return node


def discard(node: LocalNode) -> None:
    """Stop a copy and delete its data dir (copies are big; a drill keeps only what it still needs)."""
    try:
        if node.is_running():
            node.stop(mode="immediate", timeout=30)
    finally:
        shutil.rmtree(node.datadir, ignore_errors=True)
        if node in node.cluster.nodes:
            node.cluster.nodes.remove(node)


def wait_ready(node: LocalNode, timeout: float = 60) -> str:
    """After a start without waiting: 'primary' (accepts writes), 'exited' (the server stopped itself,
    e.g. FATAL during recovery) or 'timeout' (still in recovery when time ran out)."""
    start = time.monotonic()
    deadline, seen = start + timeout, False
    while time.monotonic() < deadline:
        if node.is_running():
            seen = True
        elif seen or time.monotonic() - start > 10 or log_lines(node, r"FATAL|PANIC", 1):
            return "exited"  # (before its pid file appears, a postmaster is starting, not gone)
        else:
            time.sleep(0.05)
            continue
        try:
            with node.connect(dbname="postgres", connect_timeout=2) as c:
                if not c.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
                    return "primary"
        except Exception:
            pass
        time.sleep(0.05)
    return "timeout"


# FATALs our own connection attempts cause while a copy starts up: not why it stopped.
_NOISE = re.compile(r"not yet accepting connections|database system is (in recovery mode|starting up|shutting down)"
                    r"|the database system is not accepting connections")


def log_lines(node: LocalNode, pattern: str = r"FATAL|PANIC|ERROR", limit: int = 8) -> list[str]:
    """The server log lines of a copy that say why it stopped."""
    try:
        text = node.logfile.read_text(errors="replace")
    except OSError:
        return []
    rx = re.compile(pattern)
    out = []
    for ln in text.splitlines():
        m = rx.search(ln)
        if m and not _NOISE.search(ln):  # from the severity on: the timestamp/pid prefix is noise in evidence
            out.append(ln[m.start():].strip()[:300])
    return out[-limit:]
