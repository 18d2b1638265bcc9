"""FO005, the fence drill: freeze the primary, fail over with fencing, and check that the old primary
acknowledged nothing once promotion began."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Sequence

from .client_paths import _pool
from .failover import Failover, fail_over
from .oracle import ACK, Attempt, acks_from, create_table
from .probes import timeline
from .replication import quiesce


@dataclass
class FenceRun:
    failover: Failover
    violations: list[Attempt]
    thawed_at: float
    stats: dict[str, Any]
    new_acks: dict[str, int]

    def evidence(self, limit: int = 10) -> dict[str, Any]:
        t0 = self.failover.promote_started
        return {"failover": self.failover.evidence(), "clients": self.stats,
                "acknowledged_by_new_primary": self.new_acks,
                "acknowledged_by_old_primary_after_promotion": len(self.violations),
                "violations": [f"writer {a.writer} seq {a.seq} via {a.path}: committed on {self.failover.old.name} "
                               f"(timeline {a.tli}) {a.committed_at - t0:+.3f}s after promotion began"
                               for a in self.violations[:limit]],
                "thawed_s_after_promotion": round(self.thawed_at - t0, 3)}


def fence_drill(cluster: Any, settings: Any, *, paths: Sequence[str] = ("primary", "multihost", "pooler"),
                first_id: int = 1, warmup_s: float = 0.4, observe_s: float = 1.0) -> FenceRun:
    """Freeze the primary (SIGSTOP: sockets open, nothing answers), detect, fence, promote, thaw, and
    watch every client path: the old primary must acknowledge nothing once promotion began."""
    from .writers import CANCEL_GRACE_S

    old = cluster.primary
    with old.connect(dbname=None, connect_timeout=5, options="") as c:
        create_table(c)
    for s in cluster.replicas:
        quiesce(old, s)
    old_tli = timeline(old)
    pool = _pool(cluster, settings, paths, first_id)
    with pool:
        if pool.wait_ack(time.time() - 60, settings.resume_timeout_seconds) is None:
            raise RuntimeError(f"oracle writers could not write before the fault: {pool.stats()}")
        time.sleep(warmup_s)
        old.freeze()
        try:
            fo = fail_over(cluster, settings, old, detect_timeout=settings.resume_timeout_seconds,
                           do_fence=True, old_tli=old_tli)
        finally:
            try:
                old.thaw()  # a fenced (killed) node has nothing left to thaw
            except Exception:
                pass
        thawed = time.time()
        # long enough for every writer stuck on the frozen node to give up and reconnect somewhere
        time.sleep(pool.deadline_s + CANCEL_GRACE_S + observe_s)
        attempts = pool.stop()
    violations = acks_from(attempts, old.port, fo.promote_started)
    new_acks: dict[str, int] = {}
    for a in attempts:
        if a.outcome == ACK and a.server_port == fo.new.port:
            new_acks[a.path] = new_acks.get(a.path, 0) + 1
    return FenceRun(fo, violations, thawed, pool.stats(), new_acks)
