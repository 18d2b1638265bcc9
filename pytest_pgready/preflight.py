"""Checks made before any test runs, so bad input ends in one line instead of a traceback per check."""

from __future__ import annotations

from typing import Any

from .errors import PgReadyUsageError
from .redact import redact_dsn, redact_text


def preflight(settings: Any) -> None:
    _report_dir_writable(settings.report_dir)
    provider = settings.effective_provider
    if provider == "local":
        from .cluster.binaries import find_postgres

        find_postgres(settings.pg_bin, settings.pg_version)
    elif provider == "docker":
        from .cluster.docker import check_engine  # stdlib sockets only: no testcontainers import here

        check_engine(settings.docker_engine_timeout)
    elif provider == "external":
        # only the primary: a replica that does not answer is a finding (REP001), not a usage error
        _probe(settings.dsn, "--pgready-dsn", settings.connect_timeout)


def _report_dir_writable(path: Any) -> None:
    """Find out now, not after an hour of drills, that the report cannot be written."""
    import os
    from pathlib import Path

    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
        probe = p / f".pgready-write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise PgReadyUsageError(f"--pgready-report-dir {p} is not writable ({e.strerror})",
                                "choose a directory you can write to") from None


def check_server_version(version_num: int, where: str) -> None:
    if version_num < 130000:
        raise PgReadyUsageError(f"{where} runs PostgreSQL {version_num // 10000}, below the supported range",
                                "pytest-pgready supports PostgreSQL 13 to 18")


def _probe(dsn: str, origin: str, timeout: int) -> None:
    """Connect once: an unreachable host, a wrong password or a silent port become one clear line."""
    import psycopg

    from .cluster.external import endpoint_from_dsn

    ep = endpoint_from_dsn(dsn, origin)
    try:
        with psycopg.connect(ep.conninfo(connect_timeout=timeout, application_name="pytest-pgready"),
                             autocommit=True) as conn:
            ver = conn.info.server_version
    except psycopg.OperationalError as e:
        msg = redact_text(" ".join(str(e).split()))
        low = msg.lower()
        if "password authentication failed" in low or "no password supplied" in low:
            fix = "check the user and password (DSN, PGPASSWORD or ~/.pgpass)"
        elif "timeout" in low:
            fix = f"the server did not answer within {timeout}s: check host, port and firewall"
        elif "connection refused" in low or "could not translate host" in low or "name or service" in low:
            fix = "check the host and port of the DSN"
        elif "does not exist" in low:
            fix = "check the database and role names"
        elif "permission denied" in low or "not permitted to log in" in low:
            fix = "grant the role CONNECT on the database (and LOGIN), or use another role"
        else:
            fix = "check the DSN"
        raise PgReadyUsageError(f"cannot connect to {redact_dsn(dsn)} ({msg[:300]})", fix) from None
    check_server_version(ver, redact_dsn(dsn))
