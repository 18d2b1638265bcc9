"""Replication lag sampled once per second on the primary while a load runs (REP002 under load).

A thread of the pytest process with its own connection (no gevent here). Lag in seconds is the worse
of two readings: pg_stat_replication.replay_lag (NULL once a standby is idle and caught up), and a
lower bound of our own from the WAL positions we saw: if the standby has not replayed the WAL the
primary had at sample k, it is at least (now - t_k) behind. The second one keeps growing when replay
stalls (a paused or delayed standby), where replay_lag only shows the last measured value.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

SAMPLE_SQL = """
SELECT /* pgready */ pg_current_wal_lsn()::text, r.application_name, r.replay_lsn::text,
       EXTRACT(epoch FROM r.replay_lag)::float8,
       pg_wal_lsn_diff(pg_current_wal_lsn(), r.replay_lsn)::float8
FROM (SELECT 1) AS one
LEFT JOIN pg_stat_replication r ON r.state IN ('streaming', 'catchup')
"""


def _lsn(text: str | None) -> int | None:
    if not text:
        return None
    hi, lo = text.split("/")
    return (int(hi, 16) << 32) + int(lo, 16)


class LagSampler:
    """Start before the load, stop after; `.series` is [[t_s, lag_s, lag_bytes], …] (worst standby)."""

    def __init__(self, connect: Callable[[], Any], interval: float = 1.0, max_samples: int = 86_400) -> None:
        self._connect = connect
        self.interval = interval
        self.max_samples = max_samples
        self.series: list[list[float]] = []
        self.standbys: set[str] = set()
        self.wal_start: int | None = None
        self.wal_end: int | None = None
        self.error: str | None = None
        self._history: list[tuple[float, int]] = []  # (monotonic time, primary LSN) of every sample
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = 0.0

    def __enter__(self) -> "LagSampler":
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="pgready-lag", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    @property
    def wal_bytes(self) -> int:
        return max(0, (self.wal_end or 0) - (self.wal_start or 0))

    def _run(self) -> None:
        try:
            conn = self._connect()
        except Exception as e:
            self.error = f"{e.__class__.__name__}: {str(e).strip()[:200]}"
            return
        try:
            while not self._stop.is_set() and len(self.series) < self.max_samples:
                try:
                    self.sample(conn)
                except Exception as e:  # a lost connection ends sampling; the check says so
                    self.error = f"{e.__class__.__name__}: {str(e).strip()[:200]}"
                    return
                self._stop.wait(self.interval)
            try:  # the last point: WAL written up to the end of the run
                self.sample(conn)
            except Exception:
                pass
        finally:
            conn.close()

    def sample(self, conn: Any) -> None:
        rows = conn.execute(SAMPLE_SQL).fetchall()
        now = time.monotonic()
        current = _lsn(rows[0][0])
        if self.wal_start is None:
            self.wal_start = current
        self.wal_end = current
        worst_s, worst_b, seen = 0.0, 0.0, False
        for _, name, replay, lag_s, lag_b in rows:
            if name is None:
                continue
            seen = True
            self.standbys.add(name)
            replayed = _lsn(replay)
            bound = 0.0
            if replayed is not None:
                behind = [t for t, lsn in self._history if lsn > replayed]
                bound = now - behind[0] if behind else 0.0
            elif current is not None:
                bound = now - self._history[0][0] if self._history else 0.0
            worst_s = max(worst_s, lag_s or 0.0, bound)
            worst_b = max(worst_b, lag_b or 0.0)
        self._history.append((now, current or 0))
        if seen:
            self.series.append([round(now - self._t0, 2), round(worst_s, 3), int(worst_b)])


CAUGHT_UP_SQL = """
SELECT /* pgready */ count(*) FILTER (WHERE replay_lsn IS NULL OR replay_lsn < %s::pg_lsn) FROM pg_stat_replication
WHERE state IN ('streaming', 'catchup')
"""


def wait_replayed(connect: Callable[[], Any], timeout: float = 30.0) -> bool:
    """Wait (bounded) until every streaming standby has replayed the WAL written so far: the lag sampled
    afterwards is the load's, not the set-up's. False when the timeout passed first."""
    with connect() as conn:
        target = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if conn.execute(CAUGHT_UP_SQL, (target,)).fetchone()[0] == 0:
                return True
            time.sleep(0.1)
    return False
