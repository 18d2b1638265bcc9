"""POOL002/POOL006: many concurrent clients through PgBouncer, and what the server side saw meanwhile.

One asyncio loop in the pytest process holds every client (psycopg AsyncConnection; no gevent, no
threads): 1000 clients cost 1000 sockets, not 1000 processes. While they query, a sampler reads
pg_stat_activity on the primary (server backends carrying the run's application_name) and the
pooler's SHOW POOLS (server connections, the oldest waiter's age). Everything is bounded: connect
and query timeouts per client, and a deadline for the whole run.
"""

from __future__ import annotations

import asyncio
import random
import resource
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from . import hdr

ACTIVITY_SQL = ("SELECT /* pgready */ count(*) FROM pg_stat_activity "
                "WHERE application_name = %s AND backend_type = 'client backend'")
CLIENT_SQL = "SELECT pg_backend_pid() FROM pg_sleep(%s)"


@dataclass
class FanInResult:
    clients: int
    connected: int = 0
    queries_ok: int = 0
    connect_errors: dict[str, int] = field(default_factory=dict)
    query_errors: dict[str, int] = field(default_factory=dict)
    backend_pids: set[int] = field(default_factory=set)
    max_backends: int = 0  # pg_stat_activity on the primary, sampled
    max_pool_servers: int = 0  # SHOW POOLS sv_* of this database/user, sampled
    max_waiting_clients: int = 0
    maxwait_ms: float = 0.0  # the oldest waiting client's age, sampled (SHOW POOLS maxwait/maxwait_us)
    wait_us_total: float = 0.0  # SHOW STATS total_wait_time delta
    xacts: int = 0  # SHOW STATS total_xact_count delta
    samples: int = 0
    latency: Any = field(default_factory=hdr.new_histogram)
    duration_s: float = 0.0
    sampler_error: str | None = None

    @property
    def errors(self) -> int:
        return sum(self.connect_errors.values()) + sum(self.query_errors.values())

    @property
    def server_connections(self) -> int:
        return max(self.max_backends, self.max_pool_servers)

    @property
    def mean_wait_ms(self) -> float:
        return self.wait_us_total / self.xacts / 1000.0 if self.xacts else 0.0

    @property
    def pool_wait_ms(self) -> float:
        """The worse of the peak sampled wait and the mean wait per transaction."""
        return round(max(self.maxwait_ms, self.mean_wait_ms), 3)


def _count(bag: dict[str, int], e: BaseException) -> None:
    from .poolprobe import server_words

    key = f"{e.__class__.__name__}: {server_words(e)[:160]}"
    if key in bag or len(bag) < 10:
        bag[key] = bag.get(key, 0) + 1
    else:
        bag["(other errors)"] = bag.get("(other errors)", 0) + 1


def raise_nofile(needed: int) -> int:
    """Lift the soft open-file limit to what `needed` sockets take (bounded by the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        return want
    return soft


def _pool_row(rows: list[dict[str, Any]], dbname: str, user: str) -> dict[str, Any] | None:
    return next((r for r in rows if r.get("database") == dbname and r.get("user") == user), None)


def _stats_row(rows: list[dict[str, Any]], dbname: str) -> dict[str, Any] | None:
    return next((r for r in rows if r.get("database") == dbname), None)


async def _admin_rows(admin: Any, what: str) -> list[dict[str, Any]]:
    from psycopg.rows import dict_row

    cur = admin.cursor(row_factory=dict_row)
    await cur.execute(f"SHOW {what}")  # admin console: fixed keywords, simple protocol
    return await cur.fetchall()


async def fan_in(pooler_dsn: str, admin_dsn: str, primary_dsn: str, *, dbname: str, user: str, clients: int,
                 duration_s: float, rate: float, xact_ms: float, connect_concurrency: int = 50,
                 op_timeout: float = 10.0, sample_every: float = 0.1) -> FanInResult:
    """Connect `clients` clients through the pooler, hold them all, and have each query at `rate`/s."""
    import psycopg

    tag = f"pgready-pool-{secrets.token_hex(3)}"
    res = FanInResult(clients)
    raise_nofile(clients + 256)
    stop = asyncio.Event()
    conns: list[Any] = []
    sem = asyncio.Semaphore(connect_concurrency)
    admin = await psycopg.AsyncConnection.connect(admin_dsn, autocommit=True, prepare_threshold=None,
                                                  connect_timeout=int(op_timeout))
    primary = await psycopg.AsyncConnection.connect(primary_dsn, autocommit=True, connect_timeout=int(op_timeout))
    try:
        before = _stats_row(await _admin_rows(admin, "STATS"), dbname)

        async def sampler() -> None:
            try:
                while not stop.is_set():
                    n = (await (await primary.execute(ACTIVITY_SQL, (tag,))).fetchone())[0]
                    res.max_backends = max(res.max_backends, int(n))
                    row = _pool_row(await _admin_rows(admin, "POOLS"), dbname, user)
                    if row is not None:
                        sv = sum(int(row.get(k) or 0) for k in ("sv_active", "sv_idle", "sv_used", "sv_tested",
                                                                  "sv_login"))
                        res.max_pool_servers = max(res.max_pool_servers, sv)
                        res.max_waiting_clients = max(res.max_waiting_clients, int(row.get("cl_waiting") or 0))
                        wait = int(row.get("maxwait") or 0) * 1000.0 + int(row.get("maxwait_us") or 0) / 1000.0
                        res.maxwait_ms = max(res.maxwait_ms, wait)
                    res.samples += 1
                    try:
                        await asyncio.wait_for(stop.wait(), sample_every)
                    except asyncio.TimeoutError:
                        pass
            except Exception as e:  # the verdict needs samples: the check reports a sampler failure
                res.sampler_error = f"{e.__class__.__name__}: {' '.join(str(e).split())[:200]}"

        async def connect_one() -> None:
            async with sem:
                try:
                    conns.append(await psycopg.AsyncConnection.connect(
                        pooler_dsn, autocommit=True, prepare_threshold=None, application_name=tag,
                        connect_timeout=int(op_timeout)))
                except (psycopg.Error, OSError) as e:
                    _count(res.connect_errors, e)

        async def client(conn: Any, until: float) -> None:
            interval = 1.0 / rate
            nxt = time.monotonic() + random.random() * interval
            while True:
                await asyncio.sleep(max(0.0, nxt - time.monotonic()))
                if time.monotonic() >= until:
                    return
                t = time.perf_counter()
                try:
                    cur = await asyncio.wait_for(conn.execute(CLIENT_SQL, (xact_ms / 1000.0,)), op_timeout)
                    pid = (await cur.fetchone())[0]
                    hdr.record_us(res.latency, (time.perf_counter() - t) * 1e6)
                    res.backend_pids.add(int(pid))
                    res.queries_ok += 1
                except (psycopg.Error, OSError, asyncio.TimeoutError) as e:
                    _count(res.query_errors, e)
                    if conn.closed or conn.broken:
                        return
                nxt += interval

        sampling = asyncio.create_task(sampler())
        started = time.monotonic()
        await asyncio.gather(*(connect_one() for _ in range(clients)))
        res.connected = len(conns)
        until = time.monotonic() + duration_s
        await asyncio.gather(*(client(c, until) for c in conns))
        res.duration_s = round(time.monotonic() - started, 2)
        stop.set()
        await sampling
        after = _stats_row(await _admin_rows(admin, "STATS"), dbname)
        if after is not None:
            b = before or {}
            res.wait_us_total = float(after.get("total_wait_time") or 0) - float(b.get("total_wait_time") or 0)
            res.xacts = int(after.get("total_xact_count") or 0) - int(b.get("total_xact_count") or 0)
    finally:
        stop.set()
        await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)
        await admin.close()
        await primary.close()
    return res


def run_fan_in(*args: Any, deadline: float, **kw: Any) -> FanInResult:
    """fan_in() with a hard deadline for the whole run."""
    return asyncio.run(asyncio.wait_for(fan_in(*args, **kw), deadline))
