"""The crash drill: kill (or cleanly stop) the primary under load, fail over, let the oracle judge the writes.

One trial of it is the fault behind FO001–FO003, FO006, FO008, FO009 and POOL005, and behind the
failover benchmark."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Sequence

from .. import faults
from ..cluster.model import Unsupported
from .client_paths import _pool
from .failover import Failover, fail_over
from .oracle import Attempt, Verdict, analyze, create_table, read_rows
from .probes import timeline
from .replication import quiesce, stop_walreceiver
from .shorten import _r


@dataclass
class CrashRun:
    """One kill (or stop) → promote → resume trial, with the oracle's verdict."""
    failover: Failover
    verdict: Verdict
    fault_at: float
    resumed_s: dict[str, float | None]
    stats: dict[str, Any]
    stall: dict[str, Any] | None = None
    durability: dict[str, Any] | None = None
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        out = list(self.failover.problems)
        for path, s in self.resumed_s.items():
            if s is None:
                out.append(f"writes through {path} did not resume on {self.failover.new.name}")
        return out

    def evidence(self) -> dict[str, Any]:
        return {"failover": self.failover.evidence(), "oracle": self.verdict.evidence(),
                "resumed_after_fault_s": {k: _r(v) for k, v in self.resumed_s.items()},
                "clients": self.stats, "stall": self.stall, "durability": self.durability}


def crash_drill(cluster: Any, settings: Any, *, paths: Sequence[str] = ("multihost",), first_id: int = 1,
                stall_s: float = 0.0, planned: bool = False, warmup_s: float = 0.4, after_s: float = 0.4,
                fence_first: bool = False) -> CrashRun:
    """Writers run; the primary is killed (or, planned, stopped cleanly); a standby is promoted; the
    writers must resume on it; the oracle compares. `stall_s` cuts the promotion candidate off the WAL
    stream that long before the crash (the lag an RPO must cover)."""
    old = cluster.primary
    with old.connect(dbname=None, connect_timeout=5, options="") as c:
        create_table(c)
    standbys = [n for n in cluster.replicas]
    if not standbys:
        raise Unsupported("failover drill: the cluster has no standby")
    for s in standbys:
        quiesce(old, s)
    dur = faults.durability(old, cluster)
    old_tli = timeline(old)
    pool = _pool(cluster, settings, paths, first_id)
    stall = None
    resumed: dict[str, float | None] = {}
    with pool:
        if pool.wait_ack(time.time() - 60, settings.resume_timeout_seconds) is None:
            raise RuntimeError(f"oracle writers could not write before the fault: {pool.stats()}")
        time.sleep(warmup_s)
        if stall_s > 0:
            t = time.time()
            for s in standbys:
                stop_walreceiver(s)
            stall = {"method": "walreceiver stopped (primary_conninfo = '')", "seconds": stall_s,
                     "standbys": [s.name for s in standbys]}
            time.sleep(max(0.0, stall_s - (time.time() - t)))
        if planned:
            fault_at = faults.clean_stop(old, mode="fast")
        else:
            fault_at = faults.kill_postmaster(old)
            faults.wait_gone(old)
        fo = fail_over(cluster, settings, old, detect_timeout=settings.resume_timeout_seconds, old_tli=old_tli,
                       do_fence=fence_first)
        for name in pool.paths:
            t = pool.wait_ack(fault_at, settings.resume_timeout_seconds, port=fo.new.port, path=name)
            resumed[name] = None if t is None else t - fault_at
        time.sleep(after_s)
        attempts = pool.stop()
    with fo.new.connect(dbname=None, connect_timeout=5, options="") as c:
        rows = read_rows(c, pool.ids)
    verdict = analyze(attempts, rows, fault_at=fault_at, promotion_lsn=fo.promotion_lsn, old_tli=old_tli,
                      new_port=fo.new.port)
    return CrashRun(fo, verdict, fault_at, resumed, pool.stats(), stall, dur, attempts)
