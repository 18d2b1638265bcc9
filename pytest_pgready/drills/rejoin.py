"""Bringing the old primary back as a standby after a failover, and proving it converged (FO006).

pg_rewind (or pg_basebackup), the node's own configuration as a standby, start, wait until it streams;
`convergence` then compares the two databases once the standby has caught up.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .. import faults
from ..cluster.model import Unsupported
from .replication import conninfo_to, ensure_slot, slot_name, wait_caught_up
from .shorten import _line, _log_tail


def rejoin(cluster: Any, old: Any, new: Any, *, method: str = "rewind", fallback: bool = False,
           timeout: float = 120) -> dict[str, Any]:
    """Bring the old primary back as a standby of `new`: pg_rewind (or pg_basebackup), standby.signal,
    primary_conninfo + slot, start, wait until it streams. Local nodes only."""
    if old.datadir is None or not hasattr(cluster, "run_tool") or not hasattr(old, "write_node_conf"):
        raise Unsupported(f"{old.name}: pgready cannot rebuild this node (not a local node)")
    out: dict[str, Any] = {"node": old.name, "method": method}
    t0 = time.monotonic()
    if old.is_running():
        old.thaw()
        old.stop(mode="immediate", timeout=30)
    faults.wait_gone(old)
    slot = slot_name(old)
    ensure_slot(new, slot)
    conninfo = conninfo_to(new, new)
    src = new.endpoint.conninfo(dbname="postgres", user=new.endpoint.user)
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    src_params = {k: v for k, v in conninfo_to_dict(src).items() if k != "password"}  # pgpass: no secret in argv
    if method == "rewind":
        # pg_rewind reads the source's timeline from its control file, which a freshly promoted server
        # updates only at its first checkpoint: without one it sees "the same timeline, no rewind required"
        with new.connect(dbname="postgres", connect_timeout=5, options="") as c:
            c.execute("CHECKPOINT")
        r = cluster.run_tool(["pg_rewind", "-D", str(old.datadir), "--source-server", make_conninfo(**src_params),
                              "--no-sync"], as_owner=True, timeout=timeout)
        out["pg_rewind_output"] = _tail_lines(r.stderr + r.stdout)
        if r.returncode != 0:
            out["pg_rewind_error"] = _error_line(r.stderr + r.stdout) or f"exit code {r.returncode}"
            if not fallback:
                return _done(out, t0, f"pg_rewind failed: {out['pg_rewind_error']}")
            method = out["method"] = "pg_basebackup (after pg_rewind failed)"
    if method != "rewind":
        import shutil

        from ..cluster.template import REPLICATION_USER

        shutil.rmtree(old.datadir, ignore_errors=True)
        r = cluster.run_tool(["pg_basebackup", "-h", new.host, "-p", str(new.port), "-U", REPLICATION_USER,
                              "-D", str(old.datadir), "-X", "stream", "-S", slot, "-c", "fast", "--no-sync"],
                             as_owner=True, timeout=timeout)
        if r.returncode != 0:
            return _done(out, t0, f"pg_basebackup failed: {_error_line(r.stderr) or r.returncode}")
    _standby_config(cluster, old, conninfo, slot)
    try:
        old.start(timeout=timeout)
    except RuntimeError as e:
        return _done(out, t0, f"{old.name} did not start as a standby: {_line(e)}")
    old.role = "replica"
    if old not in cluster.replicas:
        cluster.replicas.append(old)
    lag = wait_caught_up(new, old.name, timeout=timeout)
    out["streaming"] = lag is not None
    return _done(out, t0, None if lag is not None else
                 f"{old.name} did not stream from {new.name} within {timeout:.0f}s: {_log_tail(old)}")


def _done(out: dict[str, Any], t0: float, error: str | None) -> dict[str, Any]:
    out["seconds"] = round(time.monotonic() - t0, 3)
    if error:
        out["error"] = error
    return out


def _error_line(text: str) -> str:
    """The line of a tool's output that says what went wrong."""
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    for ln in lines:
        if "error:" in ln or "FATAL" in ln:
            return ln[:300]
    return lines[-1][:300] if lines else ""


def _standby_config(cluster: Any, node: Any, conninfo: str, slot: str) -> None:
    """pg_rewind copied the source's config files: give the node back its own, as a standby."""
    import re

    node.write_node_conf()
    auto = Path(node.datadir) / "postgresql.auto.conf"
    keep = []
    if auto.exists():
        for line in auto.read_text(errors="replace").splitlines():
            m = re.match(r"\s*([A-Za-z_][\w.]*)\s*=", line)
            if m and m.group(1).lower() in ("primary_conninfo", "primary_slot_name", "synchronous_standby_names"):
                continue
            keep.append(line)
    q = lambda v: "'" + v.replace("'", "''") + "'"
    keep += [f"primary_conninfo = {q(conninfo)}", f"primary_slot_name = {q(slot)}"]
    auto.write_text("\n".join(keep) + "\n")
    sig = Path(node.datadir) / "standby.signal"
    sig.write_text("")
    for p in (auto, sig):
        cluster.user.chown(p)
    (Path(node.datadir) / "postmaster.pid").unlink(missing_ok=True)


def _tail_lines(text: str, n: int = 4) -> list[str]:
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return [ln[:300] for ln in lines[-n:]] or [""]


def convergence(new: Any, standby: Any, timeout: float = 60) -> list[str]:
    """After a rejoin: the standby replays up to the primary's position, then both databases are compared
    (row counts and content checksums of every table, sequences). Returns the differences."""
    from .content import compare, snapshot_database

    if wait_caught_up(new, standby.name, timeout) is None:
        return [f"{standby.name} did not catch up with {new.name} within {timeout:.0f}s"]
    db = new.endpoint.dbname
    return [str(d) for d in compare(snapshot_database(new, db), snapshot_database(standby, db))]
