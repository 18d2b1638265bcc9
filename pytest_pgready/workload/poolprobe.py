"""POOL003/POOL004 probes: run against a throw-away PgBouncer built from the target's pooler config.

max_client_conn: hold exactly N clients, the next one must be refused with PgBouncer's own error.
Session state: client A leaves state behind (SET, a temp table, an advisory lock, a prepared
statement) and disconnects; client B lands on the same server connection (pool size 1 makes it
deterministic) and looks for it. Whatever B can see leaks between an application's clients.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_CLIENT_CONN_ERROR = "max_client_conn"
LEAK_LOCK_KEY = 424242
LEAK_WORK_MEM = "4242kB"
LEAK_TABLE = "pgready_pool004_leak"
# What client B sees of client A's session, in one statement.
PEEK_SQL = """
SELECT /* pgready */ pg_backend_pid(), current_setting('work_mem'),
       to_regclass('pg_temp.pgready_pool004_leak') IS NOT NULL,
       EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()
               AND objid = %s AND granted)
"""


@dataclass
class ClientLimitProbe:
    limit: int
    held: int = 0
    held_errors: list[str] = field(default_factory=list)
    extra_error: str | None = None  # what the client beyond the limit got (None: it was let in)
    extra_seconds: float = 0.0

    @property
    def enforced(self) -> bool:
        return (self.held == self.limit and self.extra_error is not None
                and MAX_CLIENT_CONN_ERROR in self.extra_error)


def probe_client_limit(pooler: Any, limit: int, timeout: int = 5) -> ClientLimitProbe:
    """Hold `limit` clients on a pooler whose max_client_conn is `limit`; try one more."""
    import psycopg

    res = ClientLimitProbe(limit)
    held: list[Any] = []
    try:
        for _ in range(limit):
            try:
                held.append(pooler.connect(connect_timeout=timeout))
            except psycopg.Error as e:
                res.held_errors.append(server_words(e))
        res.held = len(held)
        t = time.monotonic()
        try:
            extra = pooler.connect(connect_timeout=timeout)
            extra.execute("SELECT 1")
            extra.close()
        except psycopg.Error as e:
            res.extra_error = server_words(e)
        res.extra_seconds = round(time.monotonic() - t, 3)
    finally:
        for c in held:
            c.close()
    return res


def nofile_limit(pid: int) -> int | None:
    """The soft open-file limit of a local process (/proc/<pid>/limits), or None when not visible."""
    try:
        text = Path(f"/proc/{pid}/limits").read_text()
    except OSError:
        return None
    m = re.search(r"^Max open files\s+(\S+)", text, re.M)
    if not m:
        return None
    return None if m.group(1) == "unlimited" else int(m.group(1))


def expected_fds(config: dict[str, str], databases: list[dict[str, Any]]) -> int:
    """PgBouncer's own estimate: every client, every server a pool may open, and a few of its own."""
    pools = [int(d.get("pool_size") or 0) + int(d.get("reserve_pool") or 0) for d in databases
             if d.get("name") != "pgbouncer"]
    default = int(config.get("default_pool_size", 20)) + int(config.get("reserve_pool_size", 0))
    return int(config.get("max_client_conn", 100)) + max(sum(pools), default) + 10


@dataclass
class LeakProbe:
    pool_mode: str
    same_server: bool = False
    pid_a: int | None = None
    pid_b: int | None = None
    leaks: list[str] = field(default_factory=list)
    prepared: str = "not tried"


def probe_session_leaks(pooler: Any, pool_mode: str) -> LeakProbe:
    """Client A leaves session state and disconnects; client B, on the same server, reports what it sees."""
    import psycopg

    from psycopg import sql

    res = LeakProbe(pool_mode)
    with _connect(pooler) as a:
        a.execute(sql.SQL("SET work_mem = {}").format(sql.Literal(LEAK_WORK_MEM)))
        a.execute(sql.SQL("CREATE TEMP TABLE {} (x int)").format(sql.Identifier(LEAK_TABLE)))
        a.execute("SELECT pg_advisory_lock(%s)", (LEAK_LOCK_KEY,))
        res.pid_a = a.execute("SELECT pg_backend_pid()").fetchone()[0]
        a.execute("SELECT %s::int", (1,), prepare=True)  # a named server-side statement (_pg3_0)
    with _connect(pooler) as b:
        pid, work_mem, table, lock = b.execute(PEEK_SQL, (LEAK_LOCK_KEY,), prepare=False).fetchone()
        res.pid_b = pid
        res.same_server = pid == res.pid_a
        if work_mem == LEAK_WORK_MEM:
            res.leaks.append(f"SET without LOCAL: work_mem = {LEAK_WORK_MEM} set by another client is in effect")
        if table:
            res.leaks.append(f"temporary table pg_temp.{LEAK_TABLE} of another client is visible")
        if lock:
            res.leaks.append(f"advisory lock {LEAK_LOCK_KEY} taken by another client is still held")
        try:
            for _ in range(2):
                b.execute("SELECT %s::int", (2,), prepare=True)
            res.prepared = "work"
        except psycopg.Error as e:
            res.prepared = f"fail: {server_words(e)}"
            res.leaks.append(f"prepared statements break: {server_words(e)}")
        try:
            b.execute("SELECT pg_advisory_unlock_all()")
        except psycopg.Error:
            pass
    return res


def _connect(pooler: Any, timeout: int = 10) -> Any:
    """A client of the pooler that prepares statements on first use when asked (prepare=True)."""
    import psycopg

    return psycopg.connect(pooler.dsn(connect_timeout=timeout), autocommit=True, prepare_threshold=1000)


def server_words(e: BaseException) -> str:
    """The server's own words: libpq's 'connection to server at … failed: FATAL: x' becomes 'FATAL: x'."""
    text = " ".join(str(e).split())
    cut = max(text.rfind("FATAL:"), text.rfind("ERROR:"))
    return (text[cut:] if cut >= 0 else text)[:200] or e.__class__.__name__
