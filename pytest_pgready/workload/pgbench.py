"""pgbench as an independent yardstick: the same query, clients and protocol as the Locust harness.

Used by PERF006 (is the harness the bottleneck?) and by benchmarks/bench_load.py (harness vs pgbench
throughput, and latency percentiles at a fixed rate). It runs through `cluster.run_tool`, so the
password travels in the cluster's passfile, never on a command line.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cluster.sandbox import new_run_dir, remove_dir

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
    # With -R: the same transactions timed by the harness's open-model rule (see started_latencies)
    latency_started_us: list[int] = field(default_factory=list)
    ends_us: list[int] = field(default_factory=list)  # epoch µs at which each logged transaction ended

    def percentile_ms(self, p: float, *, started: bool = False) -> float | None:
        """Nearest-rank percentile of the logged latencies, in ms (`started`: by the harness's rule)."""
        return _percentile_ms(self.latency_started_us if started else self.latency_us, p)

    def within(self, start_epoch: float, end_epoch: float) -> "PgbenchResult":
        """The transactions that ended inside [start, end] (epoch seconds): a window shared with a harness run."""
        lo, hi = start_epoch * 1e6, end_epoch * 1e6
        keep = [i for i, e in enumerate(self.ends_us) if lo <= e <= hi]
        n = len(keep)
        return PgbenchResult(n / max(1e-9, end_epoch - start_epoch), self.clients, end_epoch - start_epoch,
                             self.protocol, self.rate, [self.latency_us[i] for i in keep], self.skipped,
                             [self.latency_started_us[i] for i in keep], [self.ends_us[i] for i in keep])


def _percentile_ms(values: list[int], p: float) -> float | None:
    if not values:
        return None
    xs = sorted(values)
    k = max(0, min(len(xs) - 1, math.ceil(p / 100.0 * len(xs)) - 1))
    return round(xs[k] / 1000.0, 3)


class PgbenchUnavailable(Exception):
    pass


def run_pgbench(cluster: Any, script: str, *, clients: int, seconds: float, threads: int | None = None,
                protocol: str = "prepared", rate: float | None = None, log: bool = False,
                sampling_rate: float | None = None, dbname: str | None = None,
                timeout: float | None = None) -> PgbenchResult:
    """Run pgbench -n with a custom script against the primary; `log` keeps every transaction's latency
    (`sampling_rate`: only that share of them, so that a saturation run does not pay for its log)."""
    ep = cluster.primary.endpoint
    # a run dir, not a temporary one: if this process is SIGKILLed, the next run's reaper kills the
    # pgbench still running in it and removes it (a TemporaryDirectory stayed, its pgbench ran on)
    d = new_run_dir(private=True)
    try:
        (d / "script.sql").write_text(script)
        argv = ["pgbench", "-n", "-h", ep.host, "-p", str(ep.port), "-U", ep.user, "-f", str(d / "script.sql"),
                "-c", str(clients), "-j", str(max(1, min(clients, threads or clients))), "-T", str(max(1, round(seconds))),
                "-M", protocol]
        if rate:
            argv += ["-R", str(rate)]
        if log:
            argv += ["-l", f"--log-prefix={d / 'lat'}"]
            if sampling_rate is not None:
                argv.append(f"--sampling-rate={sampling_rate:g}")
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
        txns = _transactions(_read_log_entries(d)) if log else []
        return PgbenchResult(float(m.group(1)), clients, seconds, protocol, rate, [t[1] for t in txns],
                             int(skipped.group(1)) if skipped else 0, [t[2] for t in txns], [t[0] for t in txns])
    finally:
        remove_dir(d)


def _read_log_entries(d: Path) -> list[tuple[int, ...]]:
    """Per-transaction log lines: client_id xact_no time_us script_no epoch epoch_us [schedule_lag_us]
    (the epoch pair is when the transaction ended; the lag is only there with -R)."""
    out: list[tuple[int, ...]] = []
    for f in sorted(d.glob("lat.*")):
        for line in f.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 6 and all(p.isdigit() for p in parts[:7]):
                out.append(tuple(int(p) for p in parts[:7]))
    return out


def _read_logs(d: Path) -> list[int]:
    """The logged latency of every transaction, µs."""
    return [e[2] for e in _read_log_entries(d)]


def started_latencies(entries: list[tuple[int, ...]]) -> list[int]:
    """pgbench -R transactions timed by the harness's open-model rule, µs (see `_transactions`)."""
    return [t[2] for t in _transactions(entries)]


def _transactions(entries: list[tuple[int, ...]]) -> list[tuple[int, int, int]]:
    """(end epoch µs, latency as logged, latency by the harness's rule) per transaction, by client and time.

    pgbench -R times a transaction from its *scheduled* start, so its latency includes `schedule_lag`:
    the time pgbench itself took to wake up and start it (timer slack, its thread being descheduled on a
    busy machine), plus any queueing when the client was still busy with its previous transaction. The
    harness counts from the scheduled start only in the second case (the system's queue) and otherwise
    from the actual start (docs/load.md). Same rule here: from the scheduled start when the client's
    previous transaction ended after it, else from the actual start (scheduled start + lag).
    """
    out: list[tuple[int, int, int]] = []
    prev_end: dict[int, int] = {}
    for e in sorted(entries, key=lambda e: (e[0], e[4] * 1_000_000 + e[5])):
        client, time_us, epoch, epoch_us = e[0], e[2], e[4], e[5]
        lag = e[6] if len(e) >= 7 else 0  # without -R there is no schedule: both figures are the same
        end = epoch * 1_000_000 + epoch_us
        scheduled = end - time_us
        behind = prev_end.get(client, scheduled) > scheduled
        out.append((end, time_us, time_us if behind else max(0, time_us - lag)))
        prev_end[client] = end
    return out
