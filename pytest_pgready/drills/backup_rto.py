"""BKP005, the RTO projection: measured restore throughput times the size of the database."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .toolrun import MB


@dataclass
class RtoProjection:
    db_bytes: int
    rates: dict[str, float]  # restore method → measured MB/s
    method: str = ""
    mb_s: float = 0.0
    projected_seconds: float = 0.0


def project_restore(db_bytes: int, rates: dict[str, float]) -> RtoProjection:
    """The restore time of the whole database at the fastest verified restore method's measured rate."""
    p = RtoProjection(db_bytes, {k: round(v, 2) for k, v in rates.items() if v > 0})
    if p.rates:
        p.method, p.mb_s = max(p.rates.items(), key=lambda kv: kv[1])
        p.projected_seconds = db_bytes / MB / p.mb_s
    return p


def cluster_size(node: Any) -> int:
    with node.connect(dbname="postgres") as c:
        return int(c.execute("SELECT sum(pg_database_size(oid)) FROM pg_database WHERE datallowconn").fetchone()[0])
