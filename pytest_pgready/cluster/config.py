"""Render PostgreSQL and PgBouncer configuration, and rewrite a user's own files for the sandbox.

Shared by every provider that starts servers (local processes, Docker containers): one place
decides what the embedded cluster runs with and what bring-your-own config may keep.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# What the embedded cluster runs with when the user brings no config: a sane production baseline,
# so the config suite judges something realistic (and says the source is "embedded defaults").
BASE_SETTINGS: dict[str, str] = {
    "listen_addresses": "'127.0.0.1'",
    "max_connections": "100",
    "superuser_reserved_connections": "3",
    "shared_buffers": "128MB",
    "wal_level": "replica",
    "max_wal_senders": "10",
    "max_replication_slots": "10",
    "max_slot_wal_keep_size": "1GB",
    "wal_keep_size": "64MB",
    "hot_standby": "on",
    "hot_standby_feedback": "on",
    "fsync": "on",
    "full_page_writes": "on",
    "synchronous_commit": "on",
    "wal_log_hints": "on",  # pg_rewind needs it (data checksums also enable it)
    "archive_timeout": "60",
    "password_encryption": "'scram-sha-256'",
    "shared_preload_libraries": "'pg_stat_statements'",
    "pg_stat_statements.track": "'top'",
    "idle_in_transaction_session_timeout": "'60s'",
    "log_min_duration_statement": "'500ms'",
    "log_lock_waits": "on",
    "log_temp_files": "0",
    "log_checkpoints": "on",
    "log_line_prefix": "'%m [%p] %q%u@%d '",
    "track_io_timing": "on",
}

# Settings a sandbox must own: they are always rewritten, whatever the user's file says.
SANDBOX_OWNED = {"port", "listen_addresses", "unix_socket_directories", "data_directory", "hba_file",
                 "ident_file", "external_pid_file", "cluster_name", "archive_command", "archive_library",
                 "restore_command", "primary_conninfo", "primary_slot_name", "unix_socket_group",
                 "ssl_cert_file", "ssl_key_file", "ssl_ca_file", "ssl_crl_file", "ssl_crl_dir",
                 "synchronous_standby_names"}
_MEMORY_CAP = {"shared_buffers": 256 * 1024 * 1024, "effective_cache_size": None, "huge_pages": None}


def archive_command(archive_dir: Path) -> str:
    """A real archive command: never overwrite a segment, copy then rename so a half copy is never seen."""
    d = shlex.quote(str(archive_dir))
    return f"test ! -f {d}/%f && cp %p {d}/%f.tmp && mv {d}/%f.tmp {d}/%f"


def restore_command(archive_dir: Path) -> str:
    return f"cp {shlex.quote(str(archive_dir))}/%f %p"


def render(settings: dict[str, str], header: str = "") -> str:
    lines = [f"# {header}"] if header else []
    lines += [f"{k} = {v}" for k, v in settings.items()]
    return "\n".join(lines) + "\n"


def quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


_LINE = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(?:=\s*)?(.*?)\s*$")


def parse_conf(text: str) -> list[tuple[int, str, str]]:
    """(line number, name, raw value) for each setting; comments and blank lines dropped, quotes kept."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        stripped = _strip_comment(line).strip()
        if not stripped:
            continue
        m = _LINE.match(stripped)
        if m:
            out.append((n, m.group(1).lower(), m.group(2)))
        else:
            out.append((n, "", stripped))
    return out


def _strip_comment(line: str) -> str:
    in_q = False
    for i, ch in enumerate(line):
        if ch == "'":
            in_q = not in_q
        elif ch == "#" and not in_q:
            return line[:i]
    return line


def unquote(raw: str) -> str:
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] == "'":
        return raw[1:-1].replace("''", "'")
    return raw


def _bytes(raw: str) -> int | None:
    m = re.fullmatch(r"(\d+)\s*(kB|MB|GB|TB|B)?", unquote(raw))
    if not m:
        return None
    mult = {"B": 1, "kB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3, "TB": 1024 ** 4, None: 8192}[m.group(2)]
    return int(m.group(1)) * mult


@dataclass
class Rewrite:
    settings: dict[str, str] = field(default_factory=dict)  # what the sandbox runs with (from the user's file)
    notes: list[str] = field(default_factory=list)  # every change, for the report
    user_archive_command: str | None = None
    capped: dict[str, str] = field(default_factory=dict)  # the user's value of a setting the sandbox capped


def rewrite_postgresql_conf(text: str, source: str, available_libs: set[str] | None = None,
                            ssl_available: bool = True) -> Rewrite:
    """Keep the user's settings, rewrite what only works on their host, and name every change."""
    rw = Rewrite()
    for n, name, raw in parse_conf(text):
        where = f"{source}:{n}"
        if not name:
            rw.notes.append(f"{where}: unparseable line {raw[:60]!r} ignored")
            continue
        if name in ("include", "include_if_exists", "include_dir"):
            rw.notes.append(f"{where}: {name} {raw} not followed (give the merged file)")
            continue
        if name in ("archive_command", "archive_library"):
            rw.user_archive_command = unquote(raw)
            rw.notes.append(f"{where}: {name} {unquote(raw)!r} replaced by the sandbox archive "
                            f"(the check CFG005 still judges yours)")
            continue
        if name in SANDBOX_OWNED:
            rw.notes.append(f"{where}: {name} rewritten for the sandbox")
            continue
        if name == "shared_preload_libraries" and available_libs is not None:
            libs = [x.strip() for x in unquote(raw).split(",") if x.strip()]
            keep = [x for x in libs if x in available_libs]
            for x in libs:
                if x not in keep:
                    rw.notes.append(f"{where}: shared_preload_libraries {x!r} is not installed here: dropped")
            rw.settings[name] = quote(",".join(keep))
            continue
        if name in _MEMORY_CAP and _MEMORY_CAP[name] is not None:
            b = _bytes(raw)
            if b is not None and b > _MEMORY_CAP[name]:
                rw.notes.append(f"{where}: {name} {unquote(raw)} capped to 256MB in the sandbox "
                                f"(CFG010 judges the declared value)")
                rw.settings[name] = "'256MB'"
                rw.capped[name] = unquote(raw)
                continue
        if name == "huge_pages" and unquote(raw) == "on":
            rw.notes.append(f"{where}: huge_pages on → try (no huge pages reserved here)")
            rw.settings[name] = "try"
            continue
        if name in ("ssl",) and unquote(raw) in ("on", "true", "1"):
            if not ssl_available:
                rw.notes.append(f"{where}: ssl = on cannot work here (this PostgreSQL build has no TLS): "
                                f"off in the sandbox (SEC003 judges the declared value)")
                rw.settings[name] = "off"
                continue
            rw.notes.append(f"{where}: ssl kept on with the sandbox's own self-signed certificate")
        rw.settings[name] = raw
    return rw


def rewrite_pgbouncer_ini(text: str, source: str, primary_host: str, primary_port: int, listen_port: int,
                          rundir: Path, auth_file: Path, admin_user: str,
                          sandbox_dbname: str | None = None,
                          listen_addr: str = "127.0.0.1") -> tuple[str, list[str], dict[str, str]]:
    """The user's pgbouncer.ini with databases pointed at the sandbox primary and paths moved into it.

    `listen_addr`: loopback for native processes; the docker provider listens on every interface of
    its container (the container's port is published on the host's loopback)."""
    notes: list[str] = []
    section = ""
    out: dict[str, dict[str, str]] = {"databases": {}, "pgbouncer": {}, "users": {}}
    owned = {"listen_addr": listen_addr, "listen_port": str(listen_port), "unix_socket_dir": str(rundir),
             "auth_file": str(auth_file), "logfile": str(rundir / "pgbouncer.log"),
             "pidfile": str(rundir / "pgbouncer.pid")}
    drop = {"user", "client_tls_key_file", "client_tls_cert_file", "client_tls_ca_file", "server_tls_key_file",
            "server_tls_cert_file", "server_tls_ca_file", "auth_hba_file", "syslog", "so_reuseport"}
    for n, line in enumerate(text.splitlines(), 1):
        s = line.split(";", 1)[0].split("#", 1)[0].strip()
        if not s:
            continue
        if s.startswith("[") and s.endswith("]"):
            section = s[1:-1].strip().lower()
            out.setdefault(section, {})
            continue
        if "=" not in s:
            notes.append(f"{source}:{n}: unparseable line ignored")
            continue
        k, v = (x.strip() for x in s.split("=", 1))
        if section == "databases":
            params = dict(re.findall(r"(\w+)\s*=\s*('[^']*'|\S+)", v))
            old = f"{params.get('host', 'localhost')}:{params.get('port', '5432')}"
            params["host"], params["port"] = primary_host, str(primary_port)
            params.pop("password", None)
            if sandbox_dbname and params.get("dbname", k) != sandbox_dbname and k != "*":
                notes.append(f"{source}:{n}: database {k!r} now serves the sandbox database {sandbox_dbname!r}")
                params["dbname"] = sandbox_dbname
            out["databases"][k] = " ".join(f"{a}={b}" for a, b in params.items())
            notes.append(f"{source}:{n}: database {k!r} pointed from {old} to the sandbox primary")
        elif section == "pgbouncer":
            kl = k.lower()
            if kl in owned:
                notes.append(f"{source}:{n}: {kl} rewritten for the sandbox")
            elif kl in drop:
                notes.append(f"{source}:{n}: {kl} dropped (host-specific)")
            elif kl == "auth_type" and v in ("pam", "hba", "cert"):
                notes.append(f"{source}:{n}: auth_type {v} cannot work in the sandbox: scram-sha-256 used instead")
                out["pgbouncer"][kl] = "scram-sha-256"
            else:
                out["pgbouncer"][kl] = v
        else:
            out[section][k] = v
    out["pgbouncer"].update(owned)
    out["pgbouncer"].setdefault("admin_users", admin_user)
    out["pgbouncer"].setdefault("auth_type", "scram-sha-256")
    if "server_tls_sslmode" not in out["pgbouncer"]:
        out["pgbouncer"]["server_tls_sslmode"] = "prefer"  # the sandbox server accepts TLS only
        notes.append(f"{source}: server_tls_sslmode unset: prefer used (the sandbox primary requires TLS)")
    if not out["databases"]:
        out["databases"]["*"] = f"host={primary_host} port={primary_port}"
        notes.append(f"{source}: no [databases] entry: '*' pointed at the sandbox primary")
    text_out = ""
    for sec, kv in out.items():
        if not kv and sec != "databases":
            continue
        text_out += f"[{sec}]\n" + "".join(f"{a} = {b}\n" for a, b in kv.items()) + "\n"
    return text_out, notes, out["pgbouncer"]


def default_pgbouncer_ini(primary_host: str, primary_port: int, listen_port: int, rundir: Path, auth_file: Path,
                          admin_user: str, listen_addr: str = "127.0.0.1") -> str:
    return (f"[databases]\n* = host={primary_host} port={primary_port}\n\n[pgbouncer]\n"
            f"listen_addr = {listen_addr}\nlisten_port = {listen_port}\nunix_socket_dir = {rundir}\n"
            f"auth_type = scram-sha-256\nauth_file = {auth_file}\nadmin_users = {admin_user}\n"
            f"stats_users = {admin_user}\npool_mode = transaction\nmax_client_conn = 2000\n"
            f"default_pool_size = 20\nreserve_pool_size = 0\nserver_tls_sslmode = prefer\n"
            f"ignore_startup_parameters = extra_float_digits,options\n"
            f"logfile = {rundir / 'pgbouncer.log'}\npidfile = {rundir / 'pgbouncer.pid'}\n")


def pgbouncer_aliases(ini_text: str) -> list[str]:
    """Database names clients may ask PgBouncer for, in file order ('*' last)."""
    out, section = [], ""
    for line in ini_text.splitlines():
        s = line.split(";", 1)[0].strip()
        if s.startswith("["):
            section = s.strip("[]").strip().lower()
        elif section == "databases" and "=" in s:
            out.append(s.split("=", 1)[0].strip())
    return sorted(out, key=lambda a: a == "*")


# --- the layering every provider that starts servers applies (local processes, Docker containers) ---------
@dataclass
class ServerLayers:
    """What a provisioned server runs with, in include order: embedded defaults, then the user's settings.

    The node's own file (port, paths, archive, cluster_name …) comes last and is the provider's.
    """
    base: dict[str, str]
    user: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # every rewrite of the user's file, for the report
    source: str = "embedded defaults"
    declared: dict[str, str] = field(default_factory=dict)  # the user's values as written (checks judge these)
    durability_relaxed: list[str] = field(default_factory=list)

    def base_text(self) -> str:
        return render(self.base, "pytest-pgready embedded defaults")

    def user_text(self) -> str:
        return render(self.user, "bring-your-own settings")


def server_layers(*, archive: bool = True, ssl: bool = False, postgresql_conf: Path | None = None,
                  conf_overrides: dict | None = None, available_libs: set[str] | None = None,
                  ssl_available: bool = True) -> ServerLayers:
    """BASE_SETTINGS (+ archive_mode, ssl), then the user's rewritten postgresql.conf, then overrides."""
    base = dict(BASE_SETTINGS)
    base["archive_mode"] = "on" if archive else "off"
    if ssl:
        base["ssl"] = "on"
    out = ServerLayers(base)
    if postgresql_conf is not None:
        p = Path(postgresql_conf)
        rw = rewrite_postgresql_conf(p.read_text(errors="replace"), p.name, available_libs,
                                     ssl_available=ssl_available)
        out.user.update(rw.settings)
        out.notes += rw.notes
        out.source = f"your {p.name}"
        out.declared = {k: unquote(v) for k, v in rw.settings.items()}
        out.declared.update(rw.capped)
        if rw.user_archive_command is not None:
            out.declared["archive_command"] = rw.user_archive_command
    for k, v in (conf_overrides or {}).items():
        out.user[k] = v if isinstance(v, str) and v.startswith("'") else quote(str(v))
    for name in ("fsync", "synchronous_commit"):
        if unquote(out.user.get(name, "on")) == "off":
            out.durability_relaxed.append(f"{name}=off (from your config)")
    return out


def pgbouncer_config(user_ini: Path | None, primary_host: str, primary_port: int, listen_port: int, rundir: Path,
                     auth_file: Path, admin_user: str, *, listen_addr: str = "127.0.0.1",
                     sandbox_dbname: str | None = None,
                     overrides: dict[str, Any] | None = None) -> tuple[str, list[str]]:
    """The pgbouncer.ini a provisioned PgBouncer runs with (the user's, rewritten, or the default) and the notes.
    `overrides`: [pgbouncer] keys a drill sets over it (POOL003/POOL004 probe poolers)."""
    if user_ini is not None:
        text, notes, _ = rewrite_pgbouncer_ini(Path(user_ini).read_text(errors="replace"), Path(user_ini).name,
                                               primary_host, primary_port, listen_port, rundir, auth_file,
                                               admin_user, sandbox_dbname=sandbox_dbname, listen_addr=listen_addr)
    else:
        text, notes = default_pgbouncer_ini(primary_host, primary_port, listen_port, rundir, auth_file, admin_user,
                                            listen_addr=listen_addr), []
    if "auth_user" not in text:
        text = text.replace("[pgbouncer]\n", f"[pgbouncer]\nauth_user = {admin_user}\n", 1)
    for k, v in (overrides or {}).items():
        text, hits = re.subn(rf"(?m)^{re.escape(k)}\s*=.*$", f"{k} = {v}", text)
        if not hits:
            text = text.replace("[pgbouncer]\n", f"[pgbouncer]\n{k} = {v}\n", 1)
    return text, notes
