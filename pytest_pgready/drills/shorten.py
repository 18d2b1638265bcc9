"""One-line forms of numbers, exceptions and server logs, for drill evidence and problem messages."""

from __future__ import annotations

from typing import Any


def _r(v: float | None, nd: int = 3) -> float | None:
    return None if v is None else round(v, nd)


def _line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [e.__class__.__name__])[0][:300]


def _log_tail(node: Any) -> str:
    return node.log_tail(3) if hasattr(node, "log_tail") else ""
