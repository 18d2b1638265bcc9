"""Failover: pgready acts as a small HA manager (or hands over to yours) and measures.

The HA procedure (`fail_over`): detect the loss of the primary (bounded probes), fence it
(`fence_command`, or pgready's own: SIGKILL every process of the old primary), promote the most
advanced standby (by received/replayed LSN) — or run `promote_command` and wait (bounded) for a
writable primary among the other nodes — then repoint the remaining standbys (primary_conninfo +
slot + reload) and PgBouncer. The cluster model follows: `cluster.primary` is the new primary afterwards.

Around it, one module each: `probes` (detection, candidates, timelines), `replication` (slots,
conninfo, catch-up waits, stalls), `rejoin` (the old primary back as a standby, and FO006's
convergence), and the scenarios — `failover_crash` (kill, or a planned clean stop, with an optional
replication stall), `failover_fence`, `failover_partition`, `failover_clients` (client faults),
`replica_outage` (replica restart, slot limit) and `failover_pooler`. They return what they measured
and the problems they saw; the suites turn those into verdicts. Every wait is bounded; load targets
127.0.0.1 only and stops by itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .. import faults
from ..cluster.model import Unsupported
from .probes import detect_loss, most_advanced, switch_point, timeline, wait_writable
from .replication import conninfo_to, ensure_slot, slot_name
from .shorten import _line, _r


def fence(cluster: Any, settings: Any, old: Any, new: Any | None = None) -> dict[str, Any]:
    """fence_command when configured, else pgready's own fence: SIGKILL every process of the old primary."""
    if settings.fence_command:
        cmd = faults.render_command(settings.fence_command, old, new)
        return {"method": "fence_command", **faults.run_command(cluster, cmd)}
    t = time.monotonic()
    faults.stonith(old)
    return {"method": "pgready: SIGKILL every process of the old primary", "seconds": round(time.monotonic() - t, 3)}


def repoint_standby(standby: Any, new: Any) -> str:
    slot = slot_name(standby)
    ensure_slot(new, slot)
    standby.set_conf(primary_conninfo=conninfo_to(standby, new), primary_slot_name=slot)
    return standby.name


def set_primary(cluster: Any, new: Any, old: Any | None) -> None:
    """The cluster model follows the promotion: clients asking for 'primary' get the new one."""
    others = [n for n in [cluster.primary, *cluster.replicas] if n is not new and n is not old]
    cluster.primary = new
    cluster.replicas = others
    new.role = "primary"
    if old is not None:
        old.role = "old-primary"


@dataclass
class Failover:
    old: Any
    new: Any
    method: str = "pgready"
    detect_s: float | None = None
    promote_s: float | None = None
    fence: dict[str, Any] | None = None
    command: dict[str, Any] | None = None
    candidates: list[dict[str, Any]] = field(default_factory=list)
    old_tli: int | None = None
    new_tli: int | None = None
    promotion_lsn: int | None = None
    promote_started: float = 0.0  # wall clock
    promoted_at: float = 0.0
    repointed: list[str] = field(default_factory=list)
    pooler: str | None = None
    problems: list[str] = field(default_factory=list)

    def evidence(self) -> dict[str, Any]:
        return {"old_primary": self.old.name, "new_primary": self.new.name if self.new else None,
                "method": self.method, "detect_s": _r(self.detect_s), "promote_s": _r(self.promote_s),
                "fence": self.fence, "promote_command": self.command, "candidates": self.candidates,
                "old_timeline": self.old_tli, "new_timeline": self.new_tli,
                "promotion_lsn": _lsn_text(self.promotion_lsn), "repointed_standbys": self.repointed,
                "pooler": self.pooler, "problems": self.problems}


def fail_over(cluster: Any, settings: Any, old: Any, *, detect_timeout: float = 30, do_fence: bool = False,
              repoint_pooler: bool = True, old_tli: int | None = None) -> Failover:
    """Detect, (fence), promote, repoint. Raises when no primary appears within resume_timeout_seconds."""
    fo = Failover(old, None, old_tli=old_tli)
    fo.detect_s = detect_loss(old, detect_timeout)
    if fo.detect_s is None:
        fo.problems.append(f"the old primary still answered {detect_timeout:.0f}s after the fault")
    standbys = [n for n in cluster.replicas if n is not old]
    if not standbys:
        raise Unsupported("failover drill: the cluster has no standby to promote")
    candidate, fo.candidates = most_advanced(standbys)
    if do_fence:
        fo.fence = fence(cluster, settings, old, candidate)
    fo.promote_started = time.time()
    t = time.monotonic()
    if settings.promote_command:
        fo.method = "promote_command"
        fo.command = faults.run_command(cluster, faults.render_command(settings.promote_command, old, candidate),
                                        timeout=settings.resume_timeout_seconds)
        new = wait_writable(standbys, settings.resume_timeout_seconds)
        if new is None:
            raise RuntimeError(f"promote_command ran (exit {fo.command['exit_code']}) but no standby became "
                               f"writable within {settings.resume_timeout_seconds:.0f}s")
    else:
        new = candidate
        new.promote(timeout=settings.resume_timeout_seconds)
    fo.promote_s = time.monotonic() - t
    fo.promoted_at = time.time()
    fo.new = new
    fo.new_tli = timeline(new)
    if fo.new_tli:
        fo.promotion_lsn = switch_point(new, fo.new_tli)
    set_primary(cluster, new, old)
    if fo.method == "pgready":  # your HA tool repoints on its own; pgready checks that it did
        for s in standbys:
            if s is not new:
                try:
                    fo.repointed.append(repoint_standby(s, new))
                except Exception as e:
                    fo.problems.append(f"repointing {s.name} failed: {e.__class__.__name__}: {_line(e)}")
        if repoint_pooler and cluster.pooler is not None:
            try:
                cluster.pooler.repoint(new)
                fo.pooler = f"repointed to {new.name}"
            except Unsupported as e:
                fo.pooler = f"not repointed: {e}"
            except Exception as e:  # PgBouncer itself is gone or hung: the clients through it will say so
                fo.pooler = f"repointing failed: {e.__class__.__name__}: {_line(e)}"
                fo.problems.append(f"PgBouncer did not take the new primary ({_line(e)}): is it still running?")
    elif cluster.pooler is not None:
        fo.pooler = "left to promote_command"
    return fo


def _lsn_text(v: int | None) -> str | None:
    return None if v is None else f"{v >> 32:X}/{v & 0xFFFFFFFF:X}"
