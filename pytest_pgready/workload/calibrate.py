"""PERF006: how fast can this harness go at all? Measured before any load is judged.

`SELECT 1` costs the server next to nothing, so the rate the harness reaches with it (same users,
processes and protocol as the real run) is the harness's ceiling. pgbench on the same query, same
clients and protocol, is the yardstick beside it. A target above `headroom` (70 %) of the ceiling would
measure the load generator, not the database: PERF001/PERF002 are then na("harness-bound").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .locustfiles import builtin
from .pgbench import SELECT1, PgbenchUnavailable, run_pgbench
from .runner import LoadSpec, run_load


@dataclass
class Calibration:
    harness_rps: float
    pgbench_rps: float | None
    pgbench_note: str | None
    users: int
    processes: int
    protocol: str
    seconds: float
    headroom: float

    @property
    def usable_rps(self) -> float:
        return self.harness_rps * self.headroom

    def harness_bound(self, target_rps: float) -> bool:
        return target_rps > self.usable_rps

    def evidence(self) -> dict[str, Any]:
        ev: dict[str, Any] = {"harness_ceiling_rps": self.harness_rps, "headroom": self.headroom,
                              "usable_rps": round(self.usable_rps, 1), "calibration_users": self.users,
                              "calibration_processes": self.processes, "protocol": self.protocol,
                              "calibration_seconds": self.seconds}
        if self.pgbench_rps is not None:
            ev["pgbench_select1_tps"] = self.pgbench_rps
            ev["harness_vs_pgbench"] = round(self.harness_rps / self.pgbench_rps, 3) if self.pgbench_rps else None
        else:
            ev["pgbench"] = self.pgbench_note
        return ev


def calibrate(cluster: Any, dsn: str, *, users: int, processes: int, protocol: str, seconds: float,
              headroom: float = 0.7, allow_remote: bool = False,
              progress: Callable[[str], None] | None = None) -> Calibration:
    spec = LoadSpec(builtin("select1"), users=users, duration_s=seconds, warmup_s=min(1.0, seconds / 3),
                    processes=processes, protocol=protocol)
    harness = run_load(spec, dsn, allow_remote=allow_remote, progress=progress)
    pg_rps, note = None, None
    try:
        pg_rps = run_pgbench(cluster, SELECT1, clients=users, threads=processes, seconds=seconds,
                             protocol=protocol).tps
    except PgbenchUnavailable as e:
        note = str(e)
    return Calibration(harness.throughput_rps, round(pg_rps, 1) if pg_rps else None, note, users, processes,
                       protocol, seconds, headroom)
