"""The tables the built-in point and tpcb workloads run on (schema pgready_load), made and dropped by the plugin.

pgbench's layout at scale 1 (100 000 accounts, 10 tellers, 1 branch), with two changes so that the
schema and index suites have nothing to say about it while it exists: every table has a primary key,
and no column is named like money (`val`, `delta`). It is dropped after the load suite, and a leftover
from a killed run is dropped before a new one is built.
"""

from __future__ import annotations

from typing import Any

from ..sqlmark import mark  # PERF005 leaves marked statements out: they are the harness's, not the app's

SCHEMA = "pgready_load"
SCALE_ACCOUNTS = 100_000
SCALE_TELLERS = 10

DROP = mark("DROP SCHEMA IF EXISTS pgready_load CASCADE")
CREATE = (
    "CREATE SCHEMA pgready_load",
    "COMMENT ON SCHEMA pgready_load IS 'pytest-pgready load workload (dropped after the run)'",
    "CREATE TABLE pgready_load.branches (bid int PRIMARY KEY, val bigint NOT NULL DEFAULT 0, filler char(88))",
    "CREATE TABLE pgready_load.tellers (tid int PRIMARY KEY, bid int NOT NULL, val bigint NOT NULL DEFAULT 0,"
    " filler char(84))",
    "CREATE TABLE pgready_load.accounts (aid int PRIMARY KEY, bid int NOT NULL, val bigint NOT NULL DEFAULT 0,"
    " filler char(84)) WITH (fillfactor = 90)",
    "CREATE TABLE pgready_load.history (hid bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, tid int, bid int,"
    " aid int, delta int, at timestamptz NOT NULL DEFAULT now(), filler char(22))",
    "INSERT INTO pgready_load.branches (bid) SELECT g FROM generate_series(1, %(branches)s::int) g",
    "INSERT INTO pgready_load.tellers (tid, bid) SELECT g, (g - 1) / %(tellers_per_branch)s::int + 1"
    " FROM generate_series(1, %(tellers)s::int) g",
    "INSERT INTO pgready_load.accounts (aid, bid) SELECT g, (g - 1) / %(accounts_per_branch)s::int + 1"
    " FROM generate_series(1, %(accounts)s::int) g",
    "ANALYZE pgready_load.branches, pgready_load.tellers, pgready_load.accounts, pgready_load.history",
)


def sizes(scale: int = 1) -> dict[str, int]:
    return {"branches": scale, "tellers": SCALE_TELLERS * scale, "accounts": SCALE_ACCOUNTS * scale}


def create(conn: Any, scale: int = 1) -> dict[str, int]:
    """(Re)build the dataset in one transaction; returns the key ranges the locustfiles draw from."""
    s = sizes(scale)
    params = {**s, "tellers_per_branch": SCALE_TELLERS, "accounts_per_branch": SCALE_ACCOUNTS}
    with conn.transaction():
        conn.execute(DROP)
        for stmt in CREATE:
            conn.execute(mark(stmt), params if "%(" in stmt else None)
    return s


def drop(conn: Any) -> None:
    conn.execute(DROP)
