"""Running PostgreSQL client tools for the backup drills, and what they share.

Every backup drill (BKP001–BKP005) runs pg_dump, pg_basebackup and friends as a LocalCluster's tools,
connects to the target without putting the password in argv and reports failures as DrillError; the
helpers for that live here so each drill module holds only its own procedure.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import time
from pathlib import Path
from typing import Any

from ..cluster.local import LocalCluster, LocalNode
from ..cluster.template import SUPERUSER
from ..dsn import make_dsn
from .content import normalise_schema
from .scratch import write_pgpass

MB = 1024 * 1024
RESTORE_DB = "pgready_restore"


class DrillError(RuntimeError):
    """A step of the drill failed in a way that is itself the finding (the message says which step)."""


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
