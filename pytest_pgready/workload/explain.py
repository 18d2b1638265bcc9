"""PERF003 helpers: EXPLAIN a declared query without running it, and find its sequential scans.

Queries with $n placeholders get their generic plan: EXPLAIN (GENERIC_PLAN) on PostgreSQL 16+, and on
older servers PREPARE + EXPLAIN EXECUTE with NULL arguments under plan_cache_mode = force_generic_plan
(the generic plan does not depend on the values, so the NULLs never reach a condition).
"""

from __future__ import annotations

import re
from typing import Any, Iterator

from psycopg import sql

_PLACEHOLDER = re.compile(r"\$(\d+)")
STMT_NAME = "pgready_perf003"


def placeholders(query: str) -> int:
    """Highest $n in the query (0 when it has none). Dollar-quoted bodies are rare in critical queries."""
    return max((int(m) for m in _PLACEHOLDER.findall(_strip_literals(query))), default=0)


def _strip_literals(query: str) -> str:
    return re.sub(r"'(?:[^']|'')*'", "''", query)


def explain(conn: Any, query: str, server_version: int) -> list[dict[str, Any]]:
    """The JSON plan of `query`; nothing is executed (no ANALYZE), inside a transaction rolled back."""
    n = placeholders(query)
    body = sql.SQL(query.strip().rstrip(";"))
    with conn.transaction(force_rollback=True):
        if n == 0:
            return conn.execute(sql.SQL("EXPLAIN (VERBOSE, FORMAT JSON) {}").format(body)).fetchone()[0]
        if server_version >= 160000:
            return conn.execute(sql.SQL("EXPLAIN (VERBOSE, GENERIC_PLAN, FORMAT JSON) {}").format(body)).fetchone()[0]
        conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        conn.execute(sql.SQL("PREPARE {} AS {}").format(sql.Identifier(STMT_NAME), body))
        try:
            args = sql.SQL(", ").join([sql.NULL] * n)
            return conn.execute(sql.SQL("EXPLAIN (VERBOSE, FORMAT JSON) EXECUTE {} ({})").format(
                sql.Identifier(STMT_NAME), args)).fetchone()[0]
        finally:
            conn.execute(sql.SQL("DEALLOCATE {}").format(sql.Identifier(STMT_NAME)))


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []) or []:
        yield from _nodes(child)


def seq_scans(doc: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(schema, table) of every Seq Scan (parallel ones included) anywhere in the plan, in plan order."""
    out: list[tuple[str, str]] = []
    for top in doc:
        for node in _nodes(top["Plan"]):
            if node.get("Node Type") == "Seq Scan" and node.get("Relation Name"):
                key = (node.get("Schema") or "", node["Relation Name"])
                if key not in out:
                    out.append(key)
    return out
