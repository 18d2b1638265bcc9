"""FO004, the partition drill: writers commit while the replication link is a blackhole, synchronous
then asynchronous; what was acknowledged meanwhile, and whether the standby catches up once it heals."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .. import faults
from .client_paths import _pool
from .oracle import ACK, Attempt, create_table
from .replication import _slot_status, current_lsn, quiesce, server_settings, slot_name, wait_caught_up
from .shorten import _log_tail, _r


@dataclass
class PartitionPhase:
    mode: str
    partition_s: float
    acked_during: list[Attempt]
    unknown_sync_cancel: int
    catchup_s: float | None
    stats: dict[str, Any]
    settings: dict[str, str]
    wal_written_mb: float = 0.0
    slot_status: str | None = None
    problems: list[str] = field(default_factory=list)

    def evidence(self, limit: int = 10) -> dict[str, Any]:
        return {"mode": self.mode, "partition_s": round(self.partition_s, 3),
                "acknowledged_during_partition": len(self.acked_during),
                "examples": [f"writer {a.writer} seq {a.seq} acknowledged {a.done - a.sent:.3f}s after sending"
                             for a in self.acked_during[:limit]],
                "cancelled_sync_commits_unknown": self.unknown_sync_cancel,
                "standby_caught_up_s": _r(self.catchup_s), "wal_written_during_partition_mb": self.wal_written_mb,
                "slot_wal_status": self.slot_status, "server_settings": self.settings, "clients": self.stats,
                "problems": self.problems}


def partition_phase(cluster: Any, settings: Any, *, mode: str, first_id: int, wal_mb: float = 0,
                    margin_s: float = 0.05) -> PartitionPhase:
    """Writers commit on the primary while the replication link is a blackhole for `partition_seconds`,
    then the link heals and the standby must catch up (bounded)."""
    from .oracle import SYNC_CANCEL_NOTE, UNKNOWN

    primary, standby = cluster.primary, cluster.replicas[0]
    quiesce(primary, standby)
    names = ("synchronous_standby_names", "synchronous_commit")
    pool = _pool(cluster, settings, ("primary",), first_id)
    problems: list[str] = []
    wal = 0
    with pool:
        if pool.wait_ack(time.time() - 60, settings.resume_timeout_seconds) is None:
            raise RuntimeError(f"oracle writers could not write before the partition: {pool.stats()}")
        time.sleep(0.3)
        with faults.blackhole(cluster, "replication", streams=("downstream",)):
            t_part = time.time()
            if wal_mb:
                wal = faults.generate_wal(primary, wal_mb, timeout=max(60.0, settings.partition_seconds * 4))
            time.sleep(max(0.0, settings.partition_seconds - (time.time() - t_part)))
            t_heal = time.time()
            target = current_lsn(primary)
        catchup = wait_caught_up(primary, standby.name, settings.replica_catchup_timeout_s, target)
        time.sleep(0.2)
        attempts = pool.stop()
    if catchup is None:
        problems.append(f"{standby.name} did not catch up within {settings.replica_catchup_timeout_s:.0f}s "
                        f"after the partition healed: {_log_tail(standby)}")
    during = [a for a in attempts if a.outcome == ACK and a.sent >= t_part + margin_s and a.done < t_heal]
    cancelled = sum(1 for a in attempts if a.outcome == UNKNOWN and a.note.startswith(SYNC_CANCEL_NOTE))
    return PartitionPhase(mode, t_heal - t_part, during, cancelled, catchup, pool.stats(),
                          server_settings(primary, names), round(wal / 1048576, 1),
                          _slot_status(primary, slot_name(standby)), problems)


def partition_drill(cluster: Any, settings: Any, *, first_id: int = 1) -> list[PartitionPhase]:
    """FO004 on one cluster built synchronous: the sync phase, then the same partition with replication
    made asynchronous (synchronous_standby_names = '') and `outage_wal_mb` of WAL written meanwhile."""
    faults.require_toxiproxy(cluster, "replication")
    primary = cluster.primary
    with primary.connect(dbname=None, connect_timeout=5, options="") as c:
        create_table(c)
    phases = [partition_phase(cluster, settings, mode="sync", first_id=first_id)]
    primary.set_conf(synchronous_standby_names="")
    phases.append(partition_phase(cluster, settings, mode="async", first_id=first_id + 50,
                                  wal_mb=settings.outage_wal_mb))
    return phases
