"""Streaming replication plumbing shared by the failover and replica drills.

Slots, standby conninfo aimed at a new primary, waiting (bounded) for a standby to catch up, cutting a
standby off its primary, and reading server settings and slot status for the evidence.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

from .oracle import lsn_int

ENSURE_SLOT_SQL = ("SELECT pg_create_physical_replication_slot(%s) "
                   "WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = %s)")
STREAMING_SQL = ("SELECT application_name, replay_lsn::text FROM pg_stat_replication WHERE state = 'streaming'")


def slot_name(node: Any) -> str:
    return node.name.replace("-", "_").lower()


def ensure_slot(primary: Any, slot: str) -> None:
    with primary.connect(dbname="postgres", connect_timeout=5, options="") as c:
        c.execute(ENSURE_SLOT_SQL, (slot, slot))


def conninfo_to(source: Any, target: Any) -> str:
    """The standby conninfo of `source` (its primary_conninfo, or the cluster's replication user) aimed at
    `target` directly (not through Toxiproxy)."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    ci = ""
    try:
        with source.connect(dbname="postgres", connect_timeout=2, options="") as c:
            ci = c.execute("SELECT current_setting('primary_conninfo')").fetchone()[0] or ""
    except Exception:
        pass
    params = dict(conninfo_to_dict(ci)) if ci else {}
    if not params:
        from ..cluster.template import REPLICATION_USER

        wd = getattr(getattr(target, "cluster", None), "workdir", None)
        params = {"user": REPLICATION_USER, **({"passfile": str(wd / "pgpass")} if wd else {})}
    params.pop("application_name", None)
    params.update(host=target.host, port=str(target.port))
    return make_conninfo(**params)


def current_lsn(node: Any) -> int:
    with node.connect(dbname="postgres", connect_timeout=5, options="") as c:
        return lsn_int(c.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0])


def wait_caught_up(primary: Any, name: str, timeout: float, target: int | None = None) -> float | None:
    """Seconds until standby `name` streams from `primary` with replay ≥ target (default: the primary's
    position now); None when it did not within `timeout`."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    while time.monotonic() < deadline:
        try:
            with primary.connect(dbname="postgres", connect_timeout=2, options="") as c:
                if target is None:
                    target = lsn_int(c.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0])
                rows = dict(c.execute(STREAMING_SQL).fetchall())
            replay = lsn_int(rows.get(name))
            if replay is not None and replay >= target:
                return time.monotonic() - t0
        except Exception:
            pass
        time.sleep(0.05)
    return None


def stop_walreceiver(standby: Any, timeout: float = 15) -> int | None:
    """Cut a standby off its primary with its own knobs (primary_conninfo = '' + reload): nothing in flight
    can reach it afterwards. Returns the LSN it had received when the walreceiver was gone."""
    standby.set_conf(primary_conninfo="")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with standby.connect(dbname="postgres", connect_timeout=2, options="") as c:
            if c.execute("SELECT count(*) FROM pg_stat_wal_receiver").fetchone()[0] == 0:
                return lsn_int(c.execute("SELECT pg_last_wal_receive_lsn()::text").fetchone()[0])
        time.sleep(0.02)
    raise TimeoutError(f"{standby.name}: walreceiver still running {timeout:.0f}s after primary_conninfo=''")


def quiesce(primary: Any, standby: Any, timeout: float = 30) -> None:
    """Wait until the standby has replayed everything the primary wrote so far."""
    if wait_caught_up(primary, standby.name, timeout) is None:
        raise TimeoutError(f"{standby.name} did not catch up with {primary.name} within {timeout:.0f}s")


def server_settings(node: Any, names: Sequence[str]) -> dict[str, str]:
    with node.connect(dbname="postgres", connect_timeout=5, options="") as c:
        return {n: c.execute("SELECT current_setting(%s)", (n,)).fetchone()[0] for n in names}


def _slot_status(primary: Any, slot: str) -> str | None:
    try:
        with primary.connect(dbname="postgres", connect_timeout=5, options="") as c:
            r = c.execute("SELECT wal_status FROM pg_replication_slots WHERE slot_name = %s", (slot,)).fetchone()
        return r[0] if r else "no slot"
    except Exception as e:
        return f"unreadable ({e.__class__.__name__})"
