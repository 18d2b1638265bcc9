"""Asking nodes what they are: role probes, loss detection and the WAL positions a promotion is chosen by.

The detection half of the HA procedure in `failover`: bounded probes (a frozen node is abandoned, not
waited on), which standby holds the most WAL, and the timeline and switch point after a promotion.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Sequence

from .oracle import lsn_int

TLI_SQL = "SELECT ('x' || left(pg_walfile_name(pg_current_wal_lsn()), 8))::bit(32)::int"
POSITION_SQL = ("SELECT pg_is_in_recovery(), pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text, "
                "current_setting('primary_slot_name')")


def probe(node: Any, timeout: float = 1.0) -> str | None:
    """'primary', 'standby', or None when the node does not answer within `timeout` (a frozen node
    accepts TCP connections and says nothing: the probe runs in a thread and is abandoned)."""
    out: list[str | None] = []

    def run() -> None:
        try:
            with node.connect(dbname="postgres", connect_timeout=2, options="") as c:
                out.append("standby" if c.execute("SELECT pg_is_in_recovery()").fetchone()[0] else "primary")
        except Exception:
            out.append(None)

    t = threading.Thread(target=run, daemon=True, name=f"pgready-probe-{node.name}")
    t.start()
    t.join(timeout)
    return out[0] if out else None


def detect_loss(node: Any, timeout: float, *, probe_timeout: float = 1.0, interval: float = 0.05,
                failures: int = 2) -> float | None:
    """Seconds until `failures` consecutive probes found no primary on `node`; None if it kept answering."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    misses = 0
    while time.monotonic() < deadline:
        if probe(node, probe_timeout) != "primary":
            misses += 1
            if misses >= failures:
                return time.monotonic() - t0
        else:
            misses = 0
        time.sleep(interval)
    return None


def positions(nodes: Sequence[Any]) -> list[dict[str, Any]]:
    """Where each standby is: received and replayed LSN (a node that does not answer is listed as such)."""
    out = []
    for n in nodes:
        row: dict[str, Any] = {"node": n.name}
        try:
            with n.connect(dbname="postgres", connect_timeout=2, options="") as c:
                rec, recv, replay, slot = c.execute(POSITION_SQL).fetchone()
            row.update(in_recovery=rec, receive_lsn=recv, replay_lsn=replay, slot=slot or None,
                       position=max(lsn_int(recv) or 0, lsn_int(replay) or 0))
        except Exception as e:
            row.update(unreachable=e.__class__.__name__, position=-1)
        out.append(row)
    return out


def most_advanced(nodes: Sequence[Any]) -> tuple[Any, list[dict[str, Any]]]:
    """The standby with the most WAL (received or replayed): promoting it loses the least."""
    pos = positions(nodes)
    best = max(range(len(nodes)), key=lambda i: pos[i]["position"])
    if pos[best]["position"] < 0:
        raise RuntimeError("no standby answers: nothing to promote")
    return nodes[best], pos


def timeline(node: Any) -> int | None:
    try:
        with node.connect(dbname="postgres", connect_timeout=2, options="") as c:
            return int(c.execute(TLI_SQL).fetchone()[0])
    except Exception:
        return None


def switch_point(node: Any, tli: int) -> int | None:
    """Where timeline `tli` forked from its parent (last line of its history file), on the new primary."""
    try:
        with node.connect(dbname="postgres", connect_timeout=2, options="") as c:
            text = c.execute("SELECT pg_read_file(%s)", (f"pg_wal/{tli:08X}.history",)).fetchone()[0]
    except Exception:
        return None
    lines = [ln.split() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    return lsn_int(lines[-1][1]) if lines else None


def wait_writable(nodes: Sequence[Any], timeout: float) -> Any | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for n in nodes:
            if probe(n, 1.0) == "primary":
                return n
        time.sleep(0.05)
    return None
