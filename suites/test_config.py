"""config suite: the server settings that decide durability, recoverability and operability (CFG001–CFG014).

Which value is judged: the running server's, except on an embedded cluster started from the user's own
postgresql.conf (bring-your-own config). There the sandbox adds its own baseline and owns a few
settings (archive_command, a capped shared_buffers), so a check judges what the user's file declares and,
for what it does not set, PostgreSQL's compiled-in default (pg_settings.boot_val) — the value the
deployed server will really run with. Settings a role cannot read are `na`, never assumed.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

# --------------------------------------------------------------------------------------------- helpers
SETTINGS_SQL = """
SELECT name, setting, unit, source, sourcefile, boot_val
FROM pg_settings WHERE name = ANY(%s)
"""

_UNIT_BYTES = {"B": 1, "kB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3, "TB": 1024 ** 4}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")
# archive commands that "succeed" without storing anything: WAL would be recycled unarchived
NOOP_ARCHIVE = {"", "/bin/true", "true", "/usr/bin/true", "exit 0", ":", "exit"}


def unit_bytes(unit: str | None) -> int | None:
    """pg_settings.unit ('8kB', 'kB', 'MB', 'B') → bytes per unit; None when not a memory unit."""
    if not unit:
        return None
    m = re.fullmatch(r"(\d*)\s*(B|kB|MB|GB|TB)", unit)
    if not m:
        return None
    return int(m.group(1) or 1) * _UNIT_BYTES[m.group(2)]


def parse_size(raw: str | None, default_unit: int = 1) -> int | None:
    """A PostgreSQL memory value ('4GB', '512 MB', '1.5GB', '16384' in the setting's unit) → bytes.

    Units are PostgreSQL's (case-sensitive kB/MB/GB/TB/B); a bare number is in `default_unit` bytes.
    Lower-case 'gb'/'mb' are accepted too for the human-written `declared_ram`. None when unparseable.
    """
    if raw is None:
        return None
    s = str(raw).strip().strip("'")
    m = _SIZE_RE.match(s)
    if not m:
        return None
    num, unit = float(m.group(1)), m.group(2)
    if not unit:
        return int(num * default_unit)
    mult = _UNIT_BYTES.get(unit) or {"b": 1, "kb": 1024, "mb": 1024 ** 2, "gb": 1024 ** 3,
                                     "tb": 1024 ** 4}.get(unit.lower())
    return int(num * mult) if mult else None


def is_noop_archive(command: str | None) -> bool:
    """True when an archive_command stores nothing (`/bin/true`, `exit 0`, `:` …)."""
    c = (command or "").strip().rstrip(";").strip()
    return c in NOOP_ARCHIVE or re.fullmatch(r"(/usr)?(/bin/)?true(\s.*)?|exit\s+0|:", c) is not None


def byo(cluster: Any) -> bool:
    """Is this an embedded cluster running the user's own postgresql.conf?"""
    return bool(getattr(cluster, "declared_settings", None)) or \
        str(getattr(cluster, "config_source", "")).startswith("your ")


def read_settings(conn: Any, names: list[str]) -> dict[str, dict[str, Any]]:
    cur = conn.execute(SETTINGS_SQL, (names,))
    cols = [d.name for d in cur.description]
    return {r[0]: dict(zip(cols, r)) for r in cur.fetchall()}


def judged(rows: dict[str, dict[str, Any]], name: str, cluster: Any) -> tuple[str | None, str]:
    """(value, origin) of a setting as the deployed server will run it. value None: hidden from this role."""
    declared = getattr(cluster, "declared_settings", {}) or {}
    row = rows.get(name)
    if byo(cluster):
        if name in ("archive_command", "archive_library"):
            return declared.get("archive_command", "") if name == "archive_command" else "", "your config"
        if name in declared and name in ("shared_buffers",):
            return declared[name], "your config (the sandbox capped it)"
        if row is not None and str(row.get("sourcefile") or "").endswith("pgready.base.conf"):
            return row["boot_val"], "PostgreSQL default (your config does not set it)"
    if row is None:
        return None, "hidden"
    return row["setting"], "server"


def _hidden_na(record: Any, names: list[str]) -> None:
    record.na(f"this role cannot read {', '.join(names)}: GRANT pg_read_all_settings (or pg_monitor) TO it, "
              f"or run as a superuser")


def _values(conn: Any, cluster: Any, record: Any, names: list[str]) -> dict[str, str]:
    rows = read_settings(conn, names)
    out, origins = {}, {}
    for n in names:
        v, origin = judged(rows, n, cluster)
        if v is None:
            _hidden_na(record, [x for x in names if judged(rows, x, cluster)[0] is None])
        out[n] = v
        if origin != "server":
            origins[n] = origin
    record.add(settings=dict(out))
    if origins:
        record.add(value_origin=origins)
    return out


def _on(v: str | None) -> bool:
    return str(v).lower() in ("on", "true", "yes", "1")


# --------------------------------------------------------------------------------------------- CFG001
@pytest.mark.pgready(id="CFG001")
def test_fsync_and_full_page_writes(pgready_conn, pgready_cluster, pgready_record):
    """fsync=off or full_page_writes=off lose or tear data on a crash."""
    v = _values(pgready_conn, pgready_cluster, pgready_record, ["fsync", "full_page_writes"])
    off = [f"{k}={val}" for k, val in v.items() if not _on(val)]
    if off:
        pgready_record.fail(f"crash safety disabled: {', '.join(off)}", objects=off,
                            remedy=[f"ALTER SYSTEM SET {o.split('=')[0]} = on; SELECT pg_reload_conf();" for o in off])
    pgready_record.summary("fsync = on and full_page_writes = on")


# --------------------------------------------------------------------------------------------- CFG002
@pytest.mark.pgready(id="CFG002")
def test_synchronous_commit(pgready_conn, pgready_cluster, pgready_record):
    """synchronous_commit=off acknowledges commits that a crash can still lose."""
    v = _values(pgready_conn, pgready_cluster, pgready_record, ["synchronous_commit"])
    if v["synchronous_commit"] == "off":
        pgready_record.fail("synchronous_commit = off: acknowledged commits can be lost on a crash",
                            objects=["synchronous_commit=off"],
                            remedy="ALTER SYSTEM SET synchronous_commit = on; SELECT pg_reload_conf(); "
                                   "(turn it off per transaction where losing the last commits is acceptable)")
    pgready_record.summary(f"synchronous_commit = {v['synchronous_commit']}")


# --------------------------------------------------------------------------------------------- CFG003
@pytest.mark.pgready(id="CFG003")
def test_data_checksums(pgready_conn, pgready_record):
    """Without data checksums silent storage corruption is never detected."""
    row = pgready_conn.execute("SELECT setting FROM pg_settings WHERE name = 'data_checksums'").fetchone()
    if row is None:
        _hidden_na(pgready_record, ["data_checksums"])
    pgready_record.add(data_checksums=row[0])
    if row[0] != "on":
        pgready_record.fail("data checksums are disabled: corruption goes undetected", objects=["data_checksums=off"],
                            remedy="pg_checksums --enable -D $PGDATA on the stopped cluster "
                                   "(or initdb --data-checksums)")
    pgready_record.summary("data checksums are enabled")


# --------------------------------------------------------------------------------------------- CFG004
@pytest.mark.pgready(id="CFG004")
def test_wal_level(pgready_conn, pgready_cluster, pgready_record):
    """wal_level=minimal allows neither standbys nor point-in-time recovery."""
    v = _values(pgready_conn, pgready_cluster, pgready_record, ["wal_level"])
    if v["wal_level"] not in ("replica", "logical"):
        pgready_record.fail(f"wal_level = {v['wal_level']}: no replication, no PITR from base backups",
                            objects=[f"wal_level={v['wal_level']}"],
                            remedy="ALTER SYSTEM SET wal_level = replica; -- then restart")
    pgready_record.summary(f"wal_level = {v['wal_level']}")


# --------------------------------------------------------------------------------------------- CFG005
@pytest.mark.pgready(id="CFG005")
def test_archiving_configured(pgready_conn, pgready_cluster, pgready_record):
    """No archive (or a no-op command) means no PITR and an RPO of the last base backup."""
    rows = read_settings(pgready_conn, ["archive_mode", "archive_command", "archive_library"])
    mode, mode_origin = judged(rows, "archive_mode", pgready_cluster)
    cmd, origin = judged(rows, "archive_command", pgready_cluster)
    lib, _ = judged(rows, "archive_library", pgready_cluster)  # absent before PG15: None is fine there
    if mode is None or cmd is None:
        _hidden_na(pgready_record, ["archive_mode", "archive_command"])
    pgready_record.add(archive_mode=mode, archive_command_origin=origin,
                       archive_library=lib or "", archive_command=_describe_command(cmd))
    problems = []
    if mode not in ("on", "always"):
        problems.append(f"archive_mode={mode}")
    if not lib and is_noop_archive(cmd):  # with an archive module (PG15+) the library does the work
        problems.append("archive_command is empty" if not cmd.strip()
                        else f"archive_command {cmd.strip()!r} is a no-op")
    if problems:
        pgready_record.fail(f"WAL archiving is not configured: {'; '.join(problems)}", objects=problems,
                            remedy="archive_mode = on and an archive_command/archive_library that stores WAL durably "
                                   "(pgBackRest, WAL-G, barman-cloud …)")
    pgready_record.summary(f"archive_mode = {mode}, archiving with {'library ' + lib if lib else 'a command'}")


def _server_major(conn: Any) -> int:
    return int(conn.info.server_version) // 10000


def _describe_command(cmd: str | None) -> str | None:
    """The command for evidence, shortened; never one that carries a password (PGPASSWORD=… escapes redaction)."""
    if cmd is None:
        return None
    if re.search(r"(?i)(password|passphrase|secret|token)\s*=|://[^:/@\s]+:[^@/\s]+@", cmd):
        return "(not shown: it carries a secret — see SEC009)"
    return cmd if len(cmd) <= 200 else cmd[:200] + "…"


# --------------------------------------------------------------------------------------------- CFG006
ARCHIVER_SQL = """
SELECT archived_count, last_archived_wal, last_archived_time, failed_count, last_failed_wal, last_failed_time,
       stats_reset, now(), pg_is_in_recovery(),
       CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_walfile_name(pg_current_wal_lsn()) END,
       (SELECT setting::int FROM pg_settings WHERE name = 'archive_timeout'), current_setting('archive_mode'),
       current_setting('wal_segment_size'), extract(epoch FROM now() - pg_postmaster_start_time())
FROM pg_stat_archiver
"""


def _segno(walfile: str | None, seg_bytes: int) -> int | None:
    """A WAL file name (timeline, log, seg) → absolute segment number; None for .history files and junk."""
    if not walfile or len(walfile) < 24 or not re.fullmatch(r"[0-9A-F]{24}", walfile[:24]):
        return None
    per_log = 0x100000000 // seg_bytes
    return int(walfile[8:16], 16) * per_log + int(walfile[16:24], 16)


@pytest.mark.pgready(id="CFG006")
def test_archiver_works(pgready_conn, pgready_cluster, pgready_record, pgready_settings):
    """A configured but failing archiver silently breaks PITR and fills pg_wal until the disk is full."""
    if byo(pgready_cluster):
        pgready_record.na("bring-your-own config: the embedded cluster archives with its own command, so whether "
                          "yours works can only be measured on your server (run with --pgready-dsn against it)")
    (archived, last_wal, last_time, failed, failed_wal, failed_time, reset, now, recovery, cur_wal, timeout,
     mode, seg_size, uptime) = pgready_conn.execute(ARCHIVER_SQL).fetchone()
    if mode == "off":
        pgready_record.na("archive_mode = off: there is no archiver to judge (CFG005 judges that archiving is off)")
    if recovery and mode != "always":
        pgready_record.na("connected to a standby with archive_mode = on: its archiver is idle; "
                          "run against the primary")
    seg_bytes = parse_size(seg_size, 1) or 16 * 1024 * 1024
    limit = (timeout or 0) + pgready_settings.archive_grace_seconds
    ev: dict[str, Any] = {"archived_count": archived, "last_archived_wal": last_wal, "failed_count": failed,
                          "last_failed_wal": failed_wal, "current_wal": cur_wal, "archive_timeout_s": timeout,
                          "limit_s": limit,
                          "stats_reset": reset.isoformat() if reset else None}
    if last_time is not None:
        ev["last_archived_age_s"] = round((now - last_time).total_seconds(), 1)
        pgready_record.metric("last_archived_age_s", ev["last_archived_age_s"])
    if failed_time is not None:
        ev["last_failed_age_s"] = round((now - failed_time).total_seconds(), 1)
    pgready_record.add(**ev)
    if failed_time is not None and (last_time is None or failed_time > last_time):
        pgready_record.fail(f"the archiver is failing: {failed} failures, last on {failed_wal} "
                            f"{ev['last_failed_age_s']:.0f}s ago, no success since",
                            objects=[f"{failed_wal}"], remedy="read the server log for the archive_command error and "
                                                             "fix it; pg_wal keeps growing meanwhile")
    cur_no, last_no = _segno(cur_wal, seg_bytes), _segno(last_wal, seg_bytes)
    if archived == 0 and last_time is None:
        pgready_record.na(f"nothing archived since the stats reset ({ev['stats_reset']}): no figure to judge yet; "
                          f"run after the first WAL segment is archived (SELECT pg_switch_wal() forces one)")
    pending = max(cur_no - last_no - 1, 0) if cur_no is not None and last_no is not None else None
    ev["completed_segments_not_archived"] = pending
    pgready_record.add(completed_segments_not_archived=pending)
    age = ev.get("last_archived_age_s", 0.0)
    if pending and age > limit:
        pgready_record.fail(f"archiving is {pending} segments behind; the last WAL was archived {age:.0f}s ago "
                            f"(limit archive_timeout + grace = {limit:.0f}s)", objects=[f"{last_wal}"],
                            remedy="check the archive destination's throughput and the archive_command's errors")
    pgready_record.summary(f"archiver healthy: {archived} segments archived, last {age:.0f}s ago, "
                           f"{pending or 0} completed segments waiting")


# --------------------------------------------------------------------------------------------- CFG007
@pytest.mark.pgready(id="CFG007")
def test_version_supported(pgready_conn, pgready_record, pgready_settings):
    """An end-of-life major or an old minor misses security and data-corruption fixes."""
    from pytest_pgready.versions import judge, split_version_num

    num = int(pgready_conn.execute("SELECT current_setting('server_version_num')").fetchone()[0])
    major, minor = split_version_num(num)
    v = judge(major, minor, pgready_settings.minor_releases_behind)
    pgready_record.add(**v.evidence)
    if v.status == "na":
        pgready_record.na(v.summary)
    if v.status == "fail":
        pgready_record.fail(v.summary, objects=[f"PostgreSQL {major}.{minor}"])
    pgready_record.summary(v.summary)


# --------------------------------------------------------------------------------------------- CFG008
PGSS_SQL = """
SELECT (SELECT extversion FROM pg_extension WHERE extname = 'pg_stat_statements'), current_database()
"""


@pytest.mark.pgready(id="CFG008")
def test_pg_stat_statements(pgready_conn, pgready_cluster, pgready_record):
    """Without pg_stat_statements nobody can tell which queries cost the most in an incident."""
    v = _values(pgready_conn, pgready_cluster, pgready_record, ["shared_preload_libraries"])
    libs = [x.strip().strip('"') for x in (v["shared_preload_libraries"] or "").split(",") if x.strip()]
    extversion, db = pgready_conn.execute(PGSS_SQL).fetchone()
    pgready_record.add(shared_preload_libraries=libs, extension_version=extversion, database=db)
    problems = []
    if "pg_stat_statements" not in libs:
        problems.append("pg_stat_statements is not in shared_preload_libraries")
    if extversion is None:
        problems.append(f"extension pg_stat_statements is not created in database {db}")
    if problems:
        pgready_record.fail("; ".join(problems), objects=problems,
                            remedy="shared_preload_libraries = 'pg_stat_statements' (restart), then "
                                   "CREATE EXTENSION pg_stat_statements; in the application database")
    pgready_record.summary(f"pg_stat_statements {extversion} preloaded and created in {db}")


# --------------------------------------------------------------------------------------------- CFG009
TIMEOUTS = ("idle_in_transaction_session_timeout", "statement_timeout", "lock_timeout")
ROLE_TIMEOUTS_SQL = """
SELECT s.reset_val AS value, s.name, s.sourcefile, s.boot_val,
       (SELECT array_agg(ARRAY[coalesce(r.rolname, ''), coalesce(d.datname, ''), cfg,
                               coalesce(quote_ident(r.rolname), ''), coalesce(quote_ident(d.datname), '')])
          FROM pg_db_role_setting rs
          LEFT JOIN pg_roles r ON r.oid = rs.setrole
          LEFT JOIN pg_database d ON d.oid = rs.setdatabase
          CROSS JOIN LATERAL unnest(rs.setconfig) cfg
         WHERE (rs.setrole = 0 OR r.rolname IN (%(app)s, session_user))
           AND (rs.setdatabase = 0 OR d.datname = current_database())
           AND split_part(cfg, '=', 1) = s.name) AS overrides,
       session_user::text
FROM pg_settings s WHERE s.name = ANY(%(names)s)
"""


def effective_timeouts(rows: list[tuple], app: str, db_scope: str = "") -> dict[str, tuple[str | None, str]]:
    """Pure: each timeout's value for the app role and where it comes from.

    rows: (reset_val, name, overrides [[role, db, 'name=value', quote_ident(role), quote_ident(db)], …],
    session_user); role and db are '' when the setting applies to all. Names are compared raw (a role may
    hold '|', '=' or quotes) and shown quoted by the server. Precedence as in PostgreSQL:
    role in this database > role > this database (all roles) > server. reset_val is the connected session's
    startup value (server + database + connected role), so it speaks for the server only when the connected
    role has no override of its own (or is the app role).
    """
    out: dict[str, tuple[str | None, str]] = {}
    for reset_val, name, overrides, session_user in rows:
        parsed = []
        for role, db, cfg, *shown in overrides or []:
            role_q, db_q = shown if len(shown) == 2 else (role, db)
            parsed.append((role, db, cfg.split("=", 1)[1] if "=" in cfg else "", role_q, db_q))
        pick = None
        for want_role, want_db in ((app, True), (app, False), ("", True)):
            for role, db, val, role_q, db_q in parsed:
                if role == want_role and bool(db) == want_db:
                    pick = (val, f"ALTER ROLE {role_q or 'ALL'}{' IN DATABASE ' + db_q if db else ''}")
                    break
            if pick:
                break
        if pick is None:
            own = [p for p in parsed if p[0] == session_user and session_user != app]
            if own:
                pick = (None, f"unknown: the connected role {session_user} overrides it, hiding the server value")
            else:
                pick = (reset_val, "server")
        out[name] = pick
    return out


def _timeout_set(v: str | None) -> bool:
    return v is not None and v.strip() not in ("0", "", "0ms", "0s")


@pytest.mark.pgready(id="CFG009")
def test_timeouts(pgready_conn, pgready_cluster, pgready_record, pgready_settings):
    """Without timeouts one stuck client holds locks and the xmin horizon until someone notices."""
    app = pgready_settings.app_role or pgready_conn.info.user
    params = {"app": app, "names": list(TIMEOUTS)}
    node = pgready_cluster.primary
    if getattr(node, "statement_timeout_ms", 0) or getattr(node, "lock_timeout_ms", 0):
        # our read-only sessions set their own timeouts, which would mask the server's: read reset_val from
        # a session without them, protected by SET LOCAL timeouts (DESIGN safety rule)
        with node.connect(autocommit=False, options="-c default_transaction_read_only=on") as side:
            side.execute("SET LOCAL statement_timeout = %s" % int(node.statement_timeout_ms or 30000))
            side.execute("SET LOCAL lock_timeout = %s" % int(node.lock_timeout_ms or 2000))
            rows = side.execute(ROLE_TIMEOUTS_SQL, params).fetchall()
            side.rollback()
    else:
        rows = pgready_conn.execute(ROLE_TIMEOUTS_SQL, params).fetchall()
    if byo(pgready_cluster):  # the sandbox baseline is not the user's: judge PostgreSQL's default instead
        rows = [(boot if str(src or "").endswith("pgready.base.conf") else val, name, ov, su)
                for val, name, src, boot, ov, su in rows]
    else:
        rows = [(val, name, ov, su) for val, name, _, _, ov, su in rows]
    eff = effective_timeouts(rows, app)
    app_q = pgready_conn.execute("SELECT quote_ident(%s)", (app,)).fetchone()[0]  # shown as the server quotes it
    pgready_record.add(app_role=app, timeouts={k: {"value": v, "from": src} for k, (v, src) in eff.items()})
    idle_v = eff.get("idle_in_transaction_session_timeout", (None, ""))[0]
    stmt_v, lock_v = eff.get("statement_timeout", (None, ""))[0], eff.get("lock_timeout", (None, ""))[0]
    problems, unknown = [], []
    if idle_v is None:
        unknown.append("idle_in_transaction_session_timeout")
    elif not _timeout_set(idle_v):
        problems.append(f"idle_in_transaction_session_timeout is not set for {app_q}")
    if not (_timeout_set(stmt_v) or _timeout_set(lock_v)):
        if stmt_v is None or lock_v is None:
            unknown.append("statement_timeout/lock_timeout")
        else:
            problems.append(f"neither statement_timeout nor lock_timeout is set for {app_q}")
    if problems:
        pgready_record.fail("; ".join(problems), objects=problems,
                            remedy=[f"ALTER ROLE {app_q} SET idle_in_transaction_session_timeout = '60s';",
                                    f"ALTER ROLE {app_q} SET statement_timeout = '30s'; -- or lock_timeout"])
    if unknown:
        pgready_record.na(f"cannot tell {', '.join(unknown)} for {app_q}: the connected role overrides them, hiding "
                          f"the server value; connect as {app_q} or as a role without its own timeout settings")
    pgready_record.summary(f"{app_q}: idle_in_transaction_session_timeout={idle_v}, statement_timeout={stmt_v}, "
                           f"lock_timeout={lock_v}")


# --------------------------------------------------------------------------------------------- CFG010
@pytest.mark.pgready(id="CFG010")
def test_memory_sizing(pgready_conn, pgready_cluster, pgready_record, pgready_settings):
    """shared_buffers far from a sane share of RAM wastes memory or starves the OS cache; work_mem × connections
    above RAM invites the OOM killer."""
    if not pgready_settings.declared_ram:
        pgready_record.na("the production host's RAM is not declared: declare declared_ram = '16GB' in [tool.pgready]")
    ram = parse_size(pgready_settings.declared_ram, 1)
    if not ram:
        pgready_record.na(f"declared_ram = {pgready_settings.declared_ram!r} is not a size: write it like '16GB'")
    rows = read_settings(pgready_conn, ["shared_buffers", "work_mem", "max_connections"])
    vals = {}
    for n in ("shared_buffers", "work_mem", "max_connections"):
        v, origin = judged(rows, n, pgready_cluster)
        if v is None:
            _hidden_na(pgready_record, [n])
        vals[n] = (v, origin)
    sb_unit = unit_bytes(rows["shared_buffers"]["unit"]) or 8192
    wm_unit = unit_bytes(rows["work_mem"]["unit"]) or 1024
    sb = parse_size(vals["shared_buffers"][0], sb_unit)
    wm = parse_size(vals["work_mem"][0], wm_unit)
    conns = int(vals["max_connections"][0])
    s = pgready_settings
    ratio = sb / ram
    wm_total = wm * conns
    pgready_record.add(declared_ram_bytes=ram, shared_buffers_bytes=sb, shared_buffers_ratio=round(ratio, 4),
                       shared_buffers_origin=vals["shared_buffers"][1], work_mem_bytes=wm, max_connections=conns,
                       work_mem_x_connections_bytes=wm_total,
                       bounds={"shared_buffers": [s.shared_buffers_min_ratio, s.shared_buffers_max_ratio],
                               "work_mem_x_connections_max_ram_share": s.work_mem_ram_ratio})
    pgready_record.metric("shared_buffers_ratio", round(ratio, 4))
    problems = []
    if not s.shared_buffers_min_ratio <= ratio <= s.shared_buffers_max_ratio:
        problems.append(f"shared_buffers is {ratio:.1%} of RAM (want {s.shared_buffers_min_ratio:.0%}–"
                        f"{s.shared_buffers_max_ratio:.0%})")
    if wm_total > s.work_mem_ram_ratio * ram:
        problems.append(f"work_mem × max_connections = {_human(wm_total)} exceeds {s.work_mem_ram_ratio:.0%} of "
                        f"RAM ({_human(ram)})")
    if problems:
        pgready_record.fail("; ".join(problems), objects=problems,
                            remedy=f"shared_buffers ≈ 25 % of RAM = {_human(int(ram * 0.25))}; lower work_mem or "
                                   f"max_connections (use a pooler)")
    pgready_record.summary(f"shared_buffers {ratio:.1%} of {_human(ram)}; "
                           f"work_mem × max_connections = {_human(wm_total)}")


def _human(n: int) -> str:
    for unit in ("TB", "GB", "MB", "kB"):
        if n >= _UNIT_BYTES[unit]:
            return f"{n / _UNIT_BYTES[unit]:.1f}{unit}"
    return f"{n}B"


# --------------------------------------------------------------------------------------------- CFG011
@pytest.mark.pgready(id="CFG011")
def test_connection_limits(pgready_conn, pgready_cluster, pgready_record, pgready_settings):
    """Thousands of backends thrash the server without a pooler; no reserved slots lock the DBA out when full."""
    v = _values(pgready_conn, pgready_cluster, pgready_record, ["max_connections", "superuser_reserved_connections"])
    maxc, reserved = int(v["max_connections"]), int(v["superuser_reserved_connections"])
    pooled = pgready_cluster.pooler is not None or bool(pgready_settings.pgbouncer_dsn)
    pgready_record.add(pooler=pooled, max_connections_limit=pgready_settings.max_connections_limit)
    problems = []
    if maxc > pgready_settings.max_connections_limit and not pooled:
        problems.append(f"max_connections = {maxc} > {pgready_settings.max_connections_limit} without a pooler")
    if reserved < pgready_settings.min_reserved_connections:
        problems.append(f"superuser_reserved_connections = {reserved} < {pgready_settings.min_reserved_connections}")
    if problems:
        pgready_record.fail("; ".join(problems), objects=problems,
                            remedy="put PgBouncer in front and lower max_connections; "
                                   f"superuser_reserved_connections = {pgready_settings.min_reserved_connections}")
    pgready_record.summary(f"max_connections = {maxc} ({'pooled' if pooled else 'no pooler'}), "
                           f"{reserved} superuser slots reserved")


# --------------------------------------------------------------------------------------------- CFG012
AUTOVAC_OFF_SQL = """
SELECT CASE WHEN c.relkind = 't' AND o.oid IS NOT NULL
            THEN format('%I.%I', (SELECT nspname FROM pg_namespace WHERE oid = o.relnamespace), o.relname) || ' (TOAST)'
            ELSE format('%I.%I', (SELECT nspname FROM pg_namespace WHERE oid = c.relnamespace), c.relname) END
FROM pg_class c
LEFT JOIN pg_class o ON o.reltoastrelid = c.oid
CROSS JOIN LATERAL pg_options_to_table(c.reloptions) opt
WHERE c.relkind IN ('r', 'm', 't', 'p') AND opt.option_name = 'autovacuum_enabled'
  AND NOT opt.option_value::boolean
ORDER BY 1
"""


@pytest.mark.pgready(id="CFG012")
def test_autovacuum(pgready_conn, pgready_cluster, pgready_record):
    """Without autovacuum, bloat and transaction-ID wraparound arrive on their own schedule."""
    v = _values(pgready_conn, pgready_cluster, pgready_record, ["autovacuum", "track_counts"])
    tables = [r[0] for r in pgready_conn.execute(AUTOVAC_OFF_SQL).fetchall()]
    problems = [f"{k}=off" for k in ("autovacuum", "track_counts") if not _on(v[k])]
    objects = problems + tables
    if objects:
        pgready_record.fail(f"autovacuum is disabled: {', '.join(problems) or 'on'}"
                            f"{f'; {len(tables)} tables opt out' if tables else ''}", objects=objects,
                            remedy=["ALTER SYSTEM SET autovacuum = on; SELECT pg_reload_conf();"] +
                                   [f"ALTER TABLE {t.removesuffix(' (TOAST)')} RESET "
                                    f"({'toast.' if t.endswith('(TOAST)') else ''}autovacuum_enabled);"
                                    for t in tables])
    pgready_record.summary("autovacuum on and no table opts out")


# --------------------------------------------------------------------------------------------- CFG013
CHECKPOINTS_SQL = {
    "checkpointer": "SELECT num_timed, num_requested, stats_reset FROM pg_stat_checkpointer",
    "bgwriter": "SELECT checkpoints_timed, checkpoints_req, stats_reset FROM pg_stat_bgwriter",
}


@pytest.mark.pgready(id="CFG013")
def test_checkpoints_timed(pgready_conn, pgready_record, pgready_settings):
    """Mostly requested checkpoints mean max_wal_size is too small: write bursts and full-page-write storms."""
    view = "checkpointer" if _server_major(pgready_conn) >= 17 else "bgwriter"
    timed, req, reset = pgready_conn.execute(CHECKPOINTS_SQL[view]).fetchone()
    total = timed + req
    pgready_record.add(view=f"pg_stat_{view}", timed=timed, requested=req,
                       stats_reset=reset.isoformat() if reset else None)
    if total < pgready_settings.min_checkpoints:
        pgready_record.na(f"only {total} checkpoints since the stats reset (need {pgready_settings.min_checkpoints}): "
                          f"judge again after the server has run its normal load for a while")
    ratio = req / total
    pgready_record.metric("requested_checkpoint_ratio", round(ratio, 4))
    if ratio >= pgready_settings.requested_checkpoint_ratio:
        pgready_record.fail(f"{ratio:.0%} of checkpoints were requested ({req} of {total}), limit "
                            f"{pgready_settings.requested_checkpoint_ratio:.0%}",
                            objects=[f"requested {req}/{total}"],
                            remedy="raise max_wal_size so checkpoints are driven by checkpoint_timeout")
    pgready_record.summary(f"{ratio:.0%} of {total} checkpoints were requested")


# --------------------------------------------------------------------------------------------- CFG014
@pytest.mark.pgready(id="CFG014")
def test_incident_logging(pgready_conn, pgready_cluster, pgready_record):
    """Slow queries, lock waits, temp files and checkpoints are what an incident review needs in the log."""
    names = ["log_min_duration_statement", "log_lock_waits", "log_temp_files", "log_checkpoints"]
    v = _values(pgready_conn, pgready_cluster, pgready_record, names)
    problems = []
    if int(v["log_min_duration_statement"]) < 0:
        problems.append("log_min_duration_statement = -1 (slow statements are not logged)")
    if not _on(v["log_lock_waits"]):
        problems.append("log_lock_waits = off")
    if int(v["log_temp_files"]) < 0:
        problems.append("log_temp_files = -1 (temp file spills are not logged)")
    if not _on(v["log_checkpoints"]):
        problems.append("log_checkpoints = off")
    if problems:
        pgready_record.fail(f"{len(problems)} incident logging settings are off", objects=problems,
                            remedy="log_min_duration_statement = '500ms', log_lock_waits = on, log_temp_files = 0, "
                                   "log_checkpoints = on")
    pgready_record.summary("slow statements, lock waits, temp files and checkpoints are logged")
