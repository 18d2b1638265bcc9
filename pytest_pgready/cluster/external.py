"""The external provider: an existing primary (and replicas, pgbouncer) given as DSNs.

Every session is read-only with statement and lock timeouts unless --pgready-allow-destructive.
"""

from __future__ import annotations

from typing import Any

from ..dsn import parse_dsn
from .model import Cluster, Endpoint, Node, Pooler


def endpoint_from_dsn(dsn: str, origin: str) -> Endpoint:
    p = parse_dsn(dsn, origin)
    host = p.pop("host", None) or "localhost"
    port = int(str(p.pop("port", None) or 5432).split(",")[0])
    user = p.pop("user", None)
    if not user:
        import getpass

        user = getpass.getuser()
    password = p.pop("password", None)
    dbname = p.pop("dbname", None) or user
    p.pop("application_name", None)
    return Endpoint(host, port, user, password, dbname, p)


class ExternalCluster(Cluster):
    provider = "external"

    def __init__(self, settings: Any) -> None:
        ro = not settings.allow_destructive
        kw = dict(read_only_sessions=ro, statement_timeout_ms=settings.statement_timeout_ms,
                  lock_timeout_ms=settings.lock_timeout_ms, connect_timeout=settings.connect_timeout)
        primary = Node("primary", "primary", endpoint_from_dsn(settings.dsn, "--pgready-dsn"), **kw)
        replicas = [Node(f"replica{i + 1}", "replica", endpoint_from_dsn(d, "--pgready-replica-dsn"), **kw)
                    for i, d in enumerate(settings.replica_dsn)]
        pooler = Pooler(endpoint_from_dsn(settings.pgbouncer_dsn, "--pgready-pgbouncer-dsn")) \
            if settings.pgbouncer_dsn else None
        super().__init__(primary, replicas, pooler)
        for node in [primary, *replicas]:
            node.circuit_breaker = True
        self.read_only = ro
        self.toxiproxy_missing = "external target: pgready runs no Toxiproxy in front of it"
        self.config_source = "the target's running configuration"
        try:
            from .binaries import find_postgres

            self.bin = find_postgres(settings.pg_bin, None)
        except Exception:
            self.bin = None
