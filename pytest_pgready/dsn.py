"""DSN parsing and validation with one-line errors (psycopg imported lazily)."""

from __future__ import annotations

from typing import Any

from .errors import PgReadyUsageError
from .redact import redact_dsn


def parse_dsn(dsn: str, origin: str = "DSN") -> dict[str, Any]:
    from psycopg import conninfo

    if not isinstance(dsn, str) or not dsn.strip():
        raise PgReadyUsageError(f"{origin} is empty", "give postgresql://user@host:5432/dbname")
    s = dsn.strip()
    if "://" in s and not s.startswith(("postgresql://", "postgres://")):
        raise PgReadyUsageError(f"{origin} {redact_dsn(s)!r} is not a PostgreSQL URI",
                                "start it with postgresql:// (or use key=value form: host=… dbname=…)")
    if "://" not in s and "=" not in s:
        raise PgReadyUsageError(f"{origin} {redact_dsn(s)!r} is neither a URI nor key=value conninfo",
                                "give postgresql://user@host:5432/dbname")
    try:
        params = conninfo.conninfo_to_dict(s)
    except Exception as e:  # psycopg.ProgrammingError and friends: the message is libpq's
        msg = str(e).strip().splitlines()[0] if str(e).strip() else e.__class__.__name__
        raise PgReadyUsageError(f"{origin} {redact_dsn(s)!r} is malformed ({msg})",
                                "check quoting, the port number and key names") from None
    port = params.get("port")
    if port is not None:
        for p in str(port).split(","):
            if p and (not p.isdigit() or not 0 < int(p) < 65536):
                raise PgReadyUsageError(f"{origin} {redact_dsn(s)!r} has an invalid port {p!r}",
                                        "use a port from 1 to 65535")
    return params


def make_dsn(**params: Any) -> str:
    from psycopg import conninfo

    return conninfo.make_conninfo(**{k: v for k, v in params.items() if v is not None})
