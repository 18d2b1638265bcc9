"""POOL005, pooled clients after a failover: idle clients and fresh writers through PgBouncer must
reach the new primary, not collect read-only errors from the old one."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from .client_paths import _pool
from .shorten import _line


@dataclass
class PoolerClients:
    read_only_errors: int
    read_only_details: list[str]
    idle_recovered: int
    idle_total: int
    idle_details: list[str]  # one line per idle client: how it ended
    stats: dict[str, Any]


def idle_clients(cluster: Any, n: int) -> list[Any]:
    """Pooled clients that connected (and ran one statement) before the failover, then sat idle."""
    import psycopg

    out = []
    for _ in range(n):
        c = psycopg.connect(cluster.client_path("pooler"), autocommit=True, prepare_threshold=None,
                            connect_timeout=5)
        c.execute("SELECT 1")
        out.append(c)
    return out


def pooled_after_failover(cluster: Any, settings: Any, idle: list[Any], *, first_id: int,
                          run_s: float = 1.0) -> PoolerClients:
    """Idle clients write again (reconnecting after a connection or pooler error, giving up on a read-only
    error, as an application would surface it) and fresh writers run through the pooler: count the
    read-only errors (SQLSTATE 25006)."""
    import psycopg

    from .oracle import INSERT_SQL

    ro_details: list[str] = []
    idle_details: list[str] = []
    recovered = 0
    deadline = time.monotonic() + settings.resume_timeout_seconds
    for i, conn in enumerate(idle):
        tries, last, ok, read_only = 0, "", False, False
        while not ok and not read_only and time.monotonic() < deadline:
            tries += 1
            try:
                if conn is None or conn.closed or conn.broken:
                    conn = psycopg.connect(cluster.client_path("pooler"), autocommit=True, prepare_threshold=None,
                                           connect_timeout=5)
                conn.execute(INSERT_SQL, (first_id + 60 + i, tries)).fetchone()
                ok = True
            except psycopg.Error as e:
                last = _line(e)
                if getattr(e, "sqlstate", None) == "25006":
                    read_only = True
                    ro_details.append(f"idle client {i + 1}, try {tries}: {last}")
                else:
                    time.sleep(0.05)
        recovered += ok
        idle_details.append(f"idle client {i + 1}: " + ("wrote again" if ok else "read-only error" if read_only
                                                         else f"gave up at the deadline ({last})")
                            + f" after {tries} tries")
        try:
            if conn is not None:
                conn.close()
        except Exception:
            pass
    pool = _pool(cluster, settings, ("pooler",), first_id)
    with pool:
        time.sleep(run_s)
        pool.stop()
    stats = pool.stats()
    writer_ro = sum(p["sqlstates"].get("25006", 0) for p in stats.values())
    if writer_ro:
        ro_details.append(f"{writer_ro} statements of {settings.failover_writers} pooled writers: "
                          "cannot execute INSERT in a read-only transaction")
    return PoolerClients(len([d for d in ro_details if d.startswith("idle")]) + writer_ro, ro_details, recovered,
                         len(idle), idle_details, stats)
