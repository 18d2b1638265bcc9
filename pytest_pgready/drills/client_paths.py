"""The oracle writers of a failover drill: the client paths they write through and a pool sized by the settings."""

from __future__ import annotations

from typing import Any, Sequence

from ..cluster.model import Unsupported
from .writers import WriterPool


def writer_paths(cluster: Any, names: Sequence[str]) -> list[tuple[str, str]]:
    out = []
    for n in names:
        try:
            out.append((n, cluster.client_path(n)))
        except Unsupported:
            continue
    if not out:
        raise Unsupported(f"none of the client paths {list(names)} exists in this cluster")
    return out


def _pool(cluster: Any, settings: Any, paths: Sequence[str], first_id: int) -> WriterPool:
    return WriterPool(writer_paths(cluster, paths), settings.failover_writers, first_id=first_id,
                      deadline_s=settings.client_query_timeout_s, conninfo=settings.client_conninfo)
