"""pgbench as an independent yardstick: the same query, clients and protocol as the Locust harness.

Used by PERF006 (is the harness the bottleneck?) and by benchmarks/bench_load.py (harness vs pgbench
throughput, and latency percentiles at a fixed rate). It runs through `cluster.run_tool`, so the
password travels in the cluster's passfile, never on a command line.
"""

from __future__ import annotations

import math
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SELECT1 = "SELECT 1;\n"
POINT = "\\set aid random(1, {accounts})\nSELECT val FROM pgready_load.accounts WHERE aid = :aid;\n"


@dataclass
class PgbenchResult:
    tps: float
    clients: int
    seconds: float
    protocol: str
    rate: float | None = None
    latency_us: list[int] = field(default_factory=list)  # per transaction, from the -l log (when asked)
    skipped: int = 0

    def percentile_ms(self, p: float) -> float | None:
        """Nearest-rank percentile of the logged latencies, in ms."""
        if not self.latency_us:
            return None
        xs = sorted(self.latency_us)
        k = max(0, min(len(xs) - 1, math.ceil(p / 100.0 * len(xs)) - 1))
        return round(xs[k] / 1000.0, 3)


class PgbenchUnavailable(Exception):
    pass


def run_pgbench(cluster: Any, script: str, *, clients: int, seconds: float, threads: int | None = None,
                protocol: str = "prepared", rate: float | None = None, log: bool = False,
                dbname: str | None = None, timeout: float | None = None) -> PgbenchResult:
    """Run pgbench -n with a custom script against the primary; `log` keeps every transaction's latency."""
    ep = cluster.primary.endpoint
    with tempfile.TemporaryDirectory(prefix="pgready-pgbench-") as tmp:
        d = Path(tmp)
        (d / "script.sql").write_text(script)
        argv = ["pgbench", "-n", "-h", ep.host, "-p", str(ep.port), "-U", ep.user, "-f", str(d / "script.sql"),
                "-c", str(clients), "-j", str(max(1, min(clients, threads or clients))), "-T", str(max(1, round(seconds))),
                "-M", protocol]
        if rate:
            argv += ["-R", str(rate)]
        if log:
            argv += ["-l", f"--log-prefix={d / 'lat'}"]
        argv.append(dbname or ep.dbname)
        try:
            r = cluster.run_tool(argv, timeout=timeout or seconds + 60, cwd=d)
        except Exception as e:  # Unsupported (external target), a missing binary, a timeout
            raise PgbenchUnavailable(f"pgbench could not run: {e}") from None
        if r.returncode != 0:
            tail = (r.stderr or r.stdout).strip().splitlines()
            raise PgbenchUnavailable(f"pgbench failed: {tail[-1][:200] if tail else r.returncode}")
        m = re.search(r"tps = ([0-9.]+) \((?:without initial connection time|excluding connections establishing)",
                      r.stdout) or re.search(r"tps = ([0-9.]+)", r.stdout)
        if not m:
            raise PgbenchUnavailable("pgbench printed no tps line")
        skipped = re.search(r"number of transactions skipped: (\d+)", r.stdout)
        lat = _read_logs(d) if log else []
        return PgbenchResult(float(m.group(1)), clients, seconds, protocol, rate, lat,
                             int(skipped.group(1)) if skipped else 0)


def _read_logs(d: Path) -> list[int]:
    """Per-transaction log lines: client_id xact_no time_us script_no epoch epoch_us [schedule_lag_us]."""
    out: list[int] = []
    for f in d.glob("lat.*"):
        for line in f.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[2].isdigit():
                out.append(int(parts[2]))
    return out
