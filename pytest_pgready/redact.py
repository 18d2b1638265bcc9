"""The one place that removes secrets from DSNs and free text. Every output path goes through it."""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit, urlunsplit

_MASK = "********"
# key=value conninfo and URI query parameters that carry secrets
_SECRET_KEYS = ("password", "sslpassword", "passfile_contents")
_KV_RE = re.compile(r"(?i)\b(password|sslpassword)\s*=\s*('(?:[^'\\]|\\.)*'|[^\s&]+)")
_ENV_RE = re.compile(r"(?i)\b(PGPASSWORD|PASSWORD)\s*=\s*('(?:[^']|'')*'|\"[^\"]*\"|\S+)")
_SQL_RE = re.compile(r"(?i)\b(PASSWORD)\s+('(?:[^']|'')*'|E'(?:[^'\\]|\\.|'')*')")
_URI_RE = re.compile(r"(?i)\b(postgres(?:ql)?://)([^:@/\s]*):([^@/\s]*)@")
_known: set[str] = set()


def remember_secret(secret: str | None) -> None:
    """Register a secret seen in a DSN or PGPASSWORD so free text containing it is masked too."""
    if secret and len(secret) >= 4:
        _known.add(secret)


def redact_dsn(dsn: str | None) -> str:
    if not dsn:
        return ""
    if "://" in dsn:
        try:
            parts = urlsplit(dsn)
        except ValueError:
            return redact_text(dsn)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, host = netloc.rsplit("@", 1)
            if ":" in userinfo:
                userinfo = userinfo.split(":", 1)[0] + ":" + _MASK
            netloc = userinfo + "@" + host
        query = _KV_RE.sub(lambda m: f"{m.group(1)}={_MASK}", parts.query)
        return redact_text(urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)))
    return redact_text(_KV_RE.sub(lambda m: f"{m.group(1)}={_MASK}", dsn))


def redact_text(text: str) -> str:
    """Mask DSN passwords and every registered secret (and PGPASSWORD) in arbitrary text."""
    if not text:
        return text
    text = _URI_RE.sub(lambda m: f"{m.group(1)}{m.group(2)}:{_MASK}@", text)
    text = _KV_RE.sub(lambda m: f"{m.group(1)}={_MASK}", text)
    text = _ENV_RE.sub(lambda m: f"{m.group(1)}={_MASK}", text)
    text = _SQL_RE.sub(lambda m: f"{m.group(1)} '{_MASK}'", text)
    secrets = set(_known)
    env = os.environ.get("PGPASSWORD")
    if env and len(env) >= 4:
        secrets.add(env)
    for s in sorted(secrets, key=len, reverse=True):
        text = text.replace(s, _MASK)
    return text


def redact_obj(obj):
    """Recursively redact strings inside JSON-like data."""
    if isinstance(obj, str):
        return redact_text(obj)
    if isinstance(obj, dict):
        return {redact_text(str(k)): redact_obj(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [redact_obj(v) for v in obj]
    return obj
