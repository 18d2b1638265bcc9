"""The provider-agnostic cluster: nodes, the pooler, the fault proxy, and what a check may do to them.

Suites and drills only ever see this interface; local.py, docker.py and external.py fill it in.
Process control raises `Unsupported` where a provider cannot do it (an external target), and
checks turn that into `na`.
"""

from __future__ import annotations

import os
import signal
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg


class Unsupported(Exception):
    """This provider cannot do that (e.g. kill an external primary); the check becomes `na`."""


class TargetDown(Exception):
    """The target stopped answering earlier in this run; later checks error at once instead of waiting."""


# Every connection pgready opens, so a watchdog can break the ones a frozen server leaves hanging:
# a SIGSTOPped server still ACKs TCP, so keepalives never fire and a query would wait forever.
_open_connections: "weakref.WeakSet[Any]" = weakref.WeakSet()


def track(conn: Any) -> Any:
    _open_connections.add(conn)
    return conn


def abort_open_connections() -> int:
    """Shut down the sockets of every open pgready connection; blocked calls then fail at once."""
    import socket

    n = 0
    for conn in list(_open_connections):
        try:
            if conn.closed:
                continue
            fd = conn.pgconn.socket
            sock = socket.socket(fileno=os.dup(fd))
            try:
                sock.shutdown(socket.SHUT_RDWR)
            finally:
                sock.close()
            n += 1
        except Exception:  # already gone: nothing to break
            continue
    return n


@dataclass
class Endpoint:
    host: str
    port: int
    user: str
    password: str | None = field(repr=False)
    dbname: str = ""
    params: dict[str, Any] = field(default_factory=dict)  # extra conninfo (sslmode, options …)

    def conninfo(self, dbname: str | None = None, user: str | None = None, **extra: Any) -> str:
        from ..dsn import make_dsn

        params = {"host": self.host, "port": self.port, "user": user or self.user,
                  "dbname": dbname or self.dbname, "password": self.password if user in (None, self.user) else None}
        params.update(self.params)
        params.update(extra)
        return make_dsn(**params)


class Node:
    """One PostgreSQL server. `name` is also its application_name / cluster_name."""

    def __init__(self, name: str, role: str, endpoint: Endpoint, datadir: Path | None = None,
                 read_only_sessions: bool = False, statement_timeout_ms: int = 0, lock_timeout_ms: int = 0,
                 connect_timeout: int = 10) -> None:
        self.name = name
        self.role = role  # "primary" | "replica" (what it was provisioned as; ask the server for now)
        self.endpoint = endpoint
        self.datadir = datadir
        self.read_only_sessions = read_only_sessions
        self.statement_timeout_ms = statement_timeout_ms
        self.lock_timeout_ms = lock_timeout_ms
        self.connect_timeout = connect_timeout
        self.circuit_breaker = False  # external targets: after a connect timeout, stop waiting on every check
        self.down_since: str | None = None
        self.down_reason = ""

    def __repr__(self) -> str:
        return f"<Node {self.name} {self.role} {self.endpoint.host}:{self.endpoint.port}>"

    @property
    def host(self) -> str:
        return self.endpoint.host

    @property
    def port(self) -> int:
        return self.endpoint.port

    def dsn(self, dbname: str | None = None, **extra: Any) -> str:
        """A conninfo string (with the password: never print it; use redact_dsn)."""
        return self.endpoint.conninfo(dbname=dbname, **extra)

    def session_options(self) -> str:
        opts = []
        if self.read_only_sessions:
            opts.append("-c default_transaction_read_only=on")
        if self.statement_timeout_ms:
            opts.append(f"-c statement_timeout={self.statement_timeout_ms}")
        if self.lock_timeout_ms:
            opts.append(f"-c lock_timeout={self.lock_timeout_ms}")
        return " ".join(opts)

    def connect(self, dbname: str | None = None, *, autocommit: bool = True, user: str | None = None,
                connect_timeout: int | None = None, **extra: Any) -> "psycopg.Connection":
        """A psycopg 3 connection; on an external target it is read-only with timeouts (DESIGN safety rule)."""
        import psycopg

        params: dict[str, Any] = {"application_name": "pytest-pgready",
                                  "connect_timeout": connect_timeout or self.connect_timeout}
        opts = self.session_options()
        if opts:
            params["options"] = opts
        params.update(extra)
        if self.down_since is not None:
            raise TargetDown(f"{self.name} stopped answering at {self.down_since} ({self.down_reason}); not retried")
        try:
            conn = psycopg.connect(self.endpoint.conninfo(dbname=dbname, user=user, **params), autocommit=autocommit)
        except psycopg.OperationalError as e:
            if self.circuit_breaker and "timeout" in str(e).lower():
                import datetime as _dt

                self.down_since = _dt.datetime.now().strftime("%H:%M:%S")
                self.down_reason = "connection timed out"
            raise
        return track(conn)

    # --- process control: providers that can, override these -----------------------------------------
    @property
    def pid(self) -> int | None:
        return None

    def is_running(self) -> bool:
        raise Unsupported(f"{self.name}: process state is not visible to this provider")

    def start(self, wait: bool = True, timeout: float = 60) -> None:
        raise Unsupported(f"{self.name}: cannot start a server of this provider")

    def stop(self, mode: str = "fast", timeout: float = 60) -> None:
        raise Unsupported(f"{self.name}: cannot stop a server of this provider")

    def restart(self, timeout: float = 60) -> None:
        self.stop(timeout=timeout)
        self.start(timeout=timeout)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        raise Unsupported(f"{self.name}: cannot signal a server of this provider")

    def freeze(self) -> None:
        self.kill(signal.SIGSTOP)

    def thaw(self) -> None:
        self.kill(signal.SIGCONT)

    def promote(self, wait: bool = True, timeout: float = 60) -> None:
        """Promote a standby (pg_promote) and wait until it accepts writes."""

        with self.connect(dbname="postgres", options="") as conn:
            conn.execute("SELECT pg_promote(true, %s)", (int(timeout),))
        deadline = time.monotonic() + timeout
        while wait and time.monotonic() < deadline:
            with self.connect(dbname="postgres", options="") as conn:
                if not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
                    return
            time.sleep(0.05)
        if wait:
            raise TimeoutError(f"{self.name} still in recovery {timeout}s after pg_promote")

    def set_conf(self, **settings: Any) -> None:
        """Write node settings (ALTER SYSTEM) and reload. Restart-only settings need restart()."""
        from psycopg import sql

        with self.connect(dbname="postgres", options="") as conn:
            for k, v in settings.items():
                conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(k), sql.Literal(str(v))))
            conn.execute("SELECT pg_reload_conf()")


class Pooler:
    """A PgBouncer in front of the primary."""

    def __init__(self, endpoint: Endpoint, admin_user: str | None = None, ini_path: Path | None = None) -> None:
        self.endpoint = endpoint
        self.admin_user = admin_user or endpoint.user
        self.ini_path = ini_path

    def dsn(self, dbname: str | None = None, **extra: Any) -> str:
        return self.endpoint.conninfo(dbname=dbname, **extra)

    def connect(self, dbname: str | None = None, *, autocommit: bool = True, **extra: Any) -> "psycopg.Connection":
        import psycopg

        extra.setdefault("connect_timeout", 10)
        return track(psycopg.connect(self.endpoint.conninfo(dbname=dbname, **extra), autocommit=autocommit))

    def admin(self) -> "psycopg.Connection":
        """The pgbouncer admin console (SHOW POOLS, SHOW CONFIG …): simple protocol only."""
        import psycopg

        conn = psycopg.connect(self.endpoint.conninfo(dbname="pgbouncer", user=self.admin_user, connect_timeout=10),
                               autocommit=True, prepare_threshold=None)
        return conn

    def show(self, what: str) -> list[dict[str, Any]]:
        from psycopg.rows import dict_row

        with self.admin() as conn:
            cur = conn.cursor(row_factory=dict_row)
            cur.execute(f"SHOW {what}")  # admin console: fixed keywords, no parameters
            return cur.fetchall()

    def repoint(self, node: Node) -> None:
        raise Unsupported("this pooler cannot be repointed by pgready")

    def stop(self) -> None:
        raise Unsupported("this pooler cannot be stopped by pgready")


@dataclass
class Proxy:
    name: str
    listen_port: int
    upstream_port: int


class Cluster:
    """A primary, its replicas, optionally PgBouncer and Toxiproxy: what fixtures hand to checks."""

    provider: str = "external"

    def __init__(self, primary: Node, replicas: list[Node] | None = None, pooler: Pooler | None = None) -> None:
        self.primary = primary
        self.replicas: list[Node] = replicas or []
        self.pooler = pooler
        self.toxiproxy: Any = None  # faults.Toxiproxy client, when the provider runs one
        self.toxiproxy_missing: str | None = "this provider runs no Toxiproxy"
        self.proxies: dict[str, Proxy] = {}  # "primary" (client→primary), "replication" (standby→primary)
        self.archive_dir: Path | None = None
        self.workdir: Path | None = None
        self.read_only = True
        self.durability_relaxed: list[str] = []
        self.config_rewrites: list[str] = []  # what bring-your-own config rewrite changed
        self.config_source = "target"
        self.bin: Any = None  # binaries.PgBinaries for tools (pg_dump …), when found
        self.sync = False

    # --- facts for the report ---------------------------------------------------------------------------
    def topology(self) -> dict[str, Any]:
        return {"primary": 1, "replicas": len(self.replicas), "pgbouncer": self.pooler is not None,
                "toxiproxy": self.toxiproxy is not None, "synchronous": self.sync}

    def server_version(self) -> str:
        with self.primary.connect(dbname=None) as conn:
            return str(conn.execute("SHOW server_version").fetchone()[0]).split()[0]

    def run_tool(self, argv: list[str], **kw: Any) -> Any:
        """Run a PostgreSQL client tool (pg_dump, pgbench …) as the user that owns the cluster files."""
        raise Unsupported("this provider runs no PostgreSQL tools locally")

    def client_path(self, via: str = "primary") -> str:
        """A DSN clients use: 'primary', 'pooler', 'toxiproxy' (client→primary proxy) or 'multihost'."""
        if via == "primary":
            return self.primary.dsn()
        if via == "pooler":
            if self.pooler is None:
                raise Unsupported("no PgBouncer in this cluster")
            return self.pooler.dsn()
        if via == "multihost":
            from ..dsn import make_dsn

            nodes = [self.primary, *self.replicas]
            ep = self.primary.endpoint
            return make_dsn(host=",".join(n.host for n in nodes), port=",".join(str(n.port) for n in nodes),
                            user=ep.user, password=ep.password, dbname=ep.dbname,
                            target_session_attrs="read-write")
        if via == "toxiproxy":
            if "primary" not in self.proxies:
                raise Unsupported(self.toxiproxy_missing or "no Toxiproxy in this cluster")
            return self.primary.endpoint.conninfo(host="127.0.0.1", port=self.proxies["primary"].listen_port)
        raise ValueError(f"unknown client path {via!r}")

    def wait_streaming(self, names: list[str], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.primary.connect(dbname="postgres") as c:
                got = {r[0] for r in c.execute("SELECT application_name FROM pg_stat_replication "
                                               "WHERE state = 'streaming'").fetchall()}
            if set(names) <= got:
                return
            time.sleep(0.05)
        raise TimeoutError(f"replicas {names} not streaming after {timeout:.0f}s")

    def set_sync(self, names: list[str]) -> None:
        """Make these standbys synchronous (FIRST 1) on the primary."""
        value = f"FIRST 1 ({', '.join(names)})" if names else ""
        self.primary.set_conf(synchronous_standby_names=value)
        self.sync = bool(names)

    def close(self) -> None:
        """Release everything the provider started. Idempotent."""
