"""REP005 and REP006, a replica down while the primary writes: how long a restarted replica takes to
catch up, and whether a replication slot is bounded by max_slot_wal_keep_size."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .. import faults
from .client_paths import writer_paths
from .oracle import create_table
from .replication import _slot_status, current_lsn, quiesce, slot_name, wait_caught_up
from .shorten import _line, _log_tail
from .writers import WriterPool


@dataclass
class ReplicaRun:
    down_s: float
    wal_written_mb: float
    catchup_s: float | None
    slot_status: str | None
    problems: list[str] = field(default_factory=list)


def replica_restart_drill(cluster: Any, settings: Any, *, first_id: int = 1) -> ReplicaRun:
    """REP005: SIGKILL a replica while writers commit, write `outage_wal_mb` of WAL while it is down,
    restart it and time how long it takes to replay what the primary had written by then."""
    primary, replica = cluster.primary, cluster.replicas[0]
    with primary.connect(dbname=None, connect_timeout=5, options="") as c:
        create_table(c)
    quiesce(primary, replica)
    problems: list[str] = []
    pool = WriterPool(writer_paths(cluster, ("primary",)), 2, first_id=first_id,
                      deadline_s=settings.client_query_timeout_s, conninfo=settings.client_conninfo)
    with pool:
        t0 = time.monotonic()
        faults.kill_postmaster(replica)
        faults.wait_gone(replica)
        wal = faults.generate_wal(primary, settings.outage_wal_mb) if settings.outage_wal_mb else 0
        time.sleep(max(0.0, 0.5 - (time.monotonic() - t0)))
        target = current_lsn(primary)
        down = time.monotonic() - t0
        t1 = time.monotonic()
        try:
            replica.start(timeout=settings.replica_catchup_timeout_s)
        except Exception as e:
            problems.append(f"{replica.name} did not start: {_line(e)}")
        left = max(1.0, settings.replica_catchup_timeout_s - (time.monotonic() - t1))
        lag = wait_caught_up(primary, replica.name, left, target) if not problems else None
        catchup = None if lag is None else time.monotonic() - t1
        pool.stop()
    if catchup is None and not problems:
        problems.append(f"{replica.name} did not catch up within {settings.replica_catchup_timeout_s:.0f}s: "
                        f"{_log_tail(replica)}")
    return ReplicaRun(round(down, 3), round(wal / 1048576, 1), catchup, _slot_status(primary, slot_name(replica)),
                      problems)


SLOT_DRILL_CAP_MB = 256  # a declared limit above this is scaled down to SLOT_DRILL_SCALED for the drill
SLOT_DRILL_SCALED = "32MB"
SLOT_DRILL_UNBOUNDED_MB = 96  # WAL written to show that an unbounded slot keeps growing


@dataclass
class SlotRun:
    declared_mb: int | None  # None: -1 (unbounded)
    drill_limit: str
    scaled: bool
    statuses: list[tuple[float, str]]
    invalidated_after_mb: float | None
    writable: bool
    write_error: str = ""
    wal_written_mb: float = 0.0


def _limit_mb(node: Any) -> int | None:
    with node.connect(dbname="postgres", connect_timeout=5, options="") as c:
        setting, unit = c.execute("SELECT setting::bigint, unit FROM pg_settings "
                                  "WHERE name = 'max_slot_wal_keep_size'").fetchone()
    if setting < 0:
        return None
    return int(setting) if unit == "MB" else int(setting) // 1024 if unit == "kB" else int(setting)


def slot_limit_drill(cluster: Any, settings: Any) -> SlotRun:
    """REP006: stop a replica cleanly, then write WAL (segment switches + checkpoints) until its slot is
    invalidated ('lost') or clearly past the limit; the primary must accept writes throughout."""
    primary, replica = cluster.primary, cluster.replicas[0]
    declared = _limit_mb(primary)
    scaled = declared is not None and declared > SLOT_DRILL_CAP_MB
    if scaled:
        primary.set_conf(max_slot_wal_keep_size=SLOT_DRILL_SCALED)
    limit = _limit_mb(primary)
    slot = slot_name(replica)
    replica.stop(mode="fast")
    budget = SLOT_DRILL_UNBOUNDED_MB if limit is None else limit + 96
    written = 0.0
    statuses: list[tuple[float, str]] = [(0.0, _slot_status(primary, slot) or "")]
    invalidated = None
    while written < budget:
        written += faults.generate_wal(primary, 16) / 1048576
        st = _slot_status(primary, slot) or ""
        statuses.append((round(written, 1), st))
        if st == "lost":
            invalidated = written
            break
    run = SlotRun(declared, "unbounded (-1)" if limit is None else f"{limit}MB", scaled, statuses, invalidated,
                  False, wal_written_mb=round(written, 1))
    try:
        with primary.connect(dbname=None, connect_timeout=5, options="") as c:
            create_table(c)
            c.execute("INSERT INTO pgready_oracle (writer, seq) VALUES (0, "
                      "(SELECT coalesce(max(seq), 0) + 1 FROM pgready_oracle WHERE writer = 0))")
        run.writable = True
    except Exception as e:
        run.write_error = _line(e)
    return run
