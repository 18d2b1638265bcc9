"""health suite: what the running server looks like right now (HLT001–HLT010).

Session views show other roles' sessions only to superusers and pg_read_all_stats (pg_monitor) members;
when sessions are hidden and nothing visible fails, the check is `na` with that grant, never a pass.
Query texts in evidence have every string literal masked, so no password typed in SQL reaches a report.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

WRAPAROUND_HORIZON = 2 ** 31  # XIDs and MultiXact IDs wrap at 2^31 in the past/future window


def mask_query(query: str | None, limit: int = 160) -> str | None:
    """A query for evidence: string literals (passwords, personal data) replaced by '…', shortened."""
    if query is None:
        return None
    q = re.sub(r"'(?:[^']|'')*'", "'…'", query)
    q = re.sub(r"\$([A-Za-z_]*)\$.*?\$\1\$", "$$…$$", q, flags=re.S)
    q = " ".join(q.split())
    return q if len(q) <= limit else q[:limit] + "…"


HIDDEN_SQL = """
SELECT count(*) FROM pg_stat_activity
WHERE pid <> pg_backend_pid() AND usesysid IS NOT NULL AND query = '<insufficient privilege>'
"""


def _na_if_hidden(conn: Any, record: Any, what: str) -> None:
    hidden = conn.execute(HIDDEN_SQL).fetchone()[0]
    if hidden:
        record.add(invisible_sessions=hidden)
        record.na(f"{hidden} sessions of other roles are invisible to this role, so {what} cannot be ruled out: "
                  f"GRANT pg_read_all_stats (or pg_monitor) TO it")


# --------------------------------------------------------------------------------------------- HLT001
WRAP_SQL = """
SELECT 'database ' || quote_ident(datname), age(datfrozenxid), mxid_age(datminmxid)
FROM pg_database
UNION ALL
SELECT CASE WHEN c.relkind = 't' AND o.oid IS NOT NULL
            THEN format('%I.%I (TOAST pg_toast.%I)', (SELECT nspname FROM pg_namespace WHERE oid = o.relnamespace),
                        o.relname, c.relname)
            ELSE format('%I.%I', (SELECT nspname FROM pg_namespace WHERE oid = c.relnamespace), c.relname) END,
       age(c.relfrozenxid), mxid_age(c.relminmxid)
FROM pg_class c LEFT JOIN pg_class o ON o.reltoastrelid = c.oid
WHERE c.relkind IN ('r', 'm', 't') AND c.relfrozenxid <> '0'::xid
ORDER BY 2 DESC
"""


@pytest.mark.pgready(id="HLT001")
def test_wraparound(pgready_conn, pgready_record, pgready_settings):
    """Past the wraparound horizon PostgreSQL stops accepting writes until a (long) manual VACUUM."""
    rows = pgready_conn.execute(WRAP_SQL).fetchall()
    limit = int(WRAPAROUND_HORIZON * pgready_settings.wraparound_ratio)
    freeze = pgready_conn.execute("SELECT current_setting('autovacuum_freeze_max_age')::bigint").fetchone()[0]
    dbs = [r for r in rows if r[0].startswith("database ")]
    max_xid = max((r[1] for r in rows), default=0)
    max_mxid = max((r[2] for r in rows), default=0)
    pgready_record.add(limit=limit, horizon="2^31", wraparound_ratio=pgready_settings.wraparound_ratio,
                       max_xid_age=max_xid, max_mxid_age=max_mxid, databases=len(dbs),
                       oldest=[f"{n}: xid age {x}, mxid age {m}" for n, x, m in rows[:5]],
                       past_autovacuum_freeze_max_age=[n for n, x, _ in rows if x > freeze][:20])
    pgready_record.metric("max_xid_age", max_xid)
    pgready_record.metric("max_mxid_age", max_mxid)
    if not dbs:
        pgready_record.na("pg_database returned no rows: cannot judge transaction-ID age")
    bad = [f"{n}: xid age {x}" for n, x, _ in rows if x > limit] + \
          [f"{n}: multixact age {m}" for n, _, m in rows if m > limit]
    if bad:
        pgready_record.fail(f"{len(bad)} objects are past {pgready_settings.wraparound_ratio:.0%} of the wraparound "
                            f"horizon (age > {limit})", objects=bad,
                            remedy="VACUUM (FREEZE, VERBOSE) the listed tables (all tables of the listed databases); "
                                   "find what blocks autovacuum (HLT010, long transactions, prepared xacts)")
    pgready_record.summary(f"oldest XID age {max_xid}, MultiXact age {max_mxid}, limit {limit}")


# --------------------------------------------------------------------------------------------- HLT002
CACHE_SQL = """
SELECT blks_hit, blks_read, clock_timestamp() FROM pg_stat_database WHERE datname = current_database()
"""


@pytest.mark.pgready(id="HLT002")
def test_cache_hit_ratio(pgready_conn, pgready_record, pgready_settings):
    """A low hit ratio means the working set does not fit in shared_buffers: latency follows the disk.
    PostgreSQL 15+ publishes a busy session's counters at most once a second, at the end of a transaction:
    a window of about a second can catch none of them, hence the default of 5 s."""
    h1, r1, t1 = pgready_conn.execute(CACHE_SQL).fetchone()
    time.sleep(pgready_settings.cache_sample_seconds)
    h2, r2, t2 = pgready_conn.execute(CACHE_SQL).fetchone()
    hits, reads = h2 - h1, r2 - r1
    total = hits + reads
    since_reset = h2 / (h2 + r2) if h2 + r2 else None
    pgready_record.add(window_s=round((t2 - t1).total_seconds(), 2), blocks_hit=hits, blocks_read=reads,
                       since_stats_reset=round(since_reset, 4) if since_reset is not None else None,
                       min_block_requests=pgready_settings.cache_min_reads)
    if total < pgready_settings.cache_min_reads:
        pgready_record.na(f"only {total} block requests in {pgready_settings.cache_sample_seconds}s (need "
                          f"{pgready_settings.cache_min_reads}): run under representative load, or raise "
                          f"cache_sample_seconds (sessions publish their counters about once a second)")
    ratio = hits / total
    pgready_record.metric("cache_hit_ratio", round(ratio, 4))
    if ratio < pgready_settings.cache_hit_ratio:
        pgready_record.fail(f"cache hit ratio {ratio:.1%} < {pgready_settings.cache_hit_ratio:.0%} over "
                            f"{total} block requests", objects=[f"{reads} of {total} blocks read from outside "
                                                                f"shared_buffers"],
                            remedy="raise shared_buffers (CFG010) or find the scans that read the most "
                                   "(pg_stat_statements shared_blks_read)")
    pgready_record.summary(f"cache hit ratio {ratio:.2%} over {total} block requests")


# --------------------------------------------------------------------------------------------- HLT003
LONG_XACT_SQL = """
SELECT pid, usename, application_name, backend_type, state, extract(epoch FROM now() - xact_start), query
FROM pg_stat_activity
WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid() AND now() - xact_start > make_interval(secs => %s)
ORDER BY xact_start
"""


def _session(pid: int, user: str | None, app: str | None, backend: str | None) -> str:
    return f"pid {pid} {user or backend or '?'}{f' ({app})' if app else ''}"


@pytest.mark.pgready(id="HLT003")
def test_no_long_transactions(pgready_conn, pgready_record, pgready_settings):
    """A long transaction holds locks and the xmin horizon: bloat grows everywhere while it runs."""
    limit = pgready_settings.max_xact_age_seconds
    rows = pgready_conn.execute(LONG_XACT_SQL, (limit,)).fetchall()
    autovac = [f"{_session(r[0], r[1], r[2], r[3])}: {r[5]:.0f}s" for r in rows if r[3] == "autovacuum worker"]
    bad = [f"{_session(r[0], r[1], r[2], r[3])}: {r[5]:.0f}s {r[4]}" for r in rows if r[3] != "autovacuum worker"]
    pgready_record.add(limit_s=limit, autovacuum_workers_running_long=autovac,
                       queries={f"pid {r[0]}": mask_query(r[6]) for r in rows if r[3] != "autovacuum worker"})
    if bad:
        pgready_record.fail(f"{len(bad)} transactions older than {limit:.0f}s (oldest {rows[0][5]:.0f}s)",
                            objects=bad, remedy="find and fix the client (or SELECT pg_cancel_backend(pid)); "
                                                "set statement_timeout/idle_in_transaction_session_timeout")
    _na_if_hidden(pgready_conn, pgready_record, "a long transaction")
    pgready_record.summary(f"no transaction older than {limit:.0f}s"
                           f"{f' ({len(autovac)} autovacuum workers run long, listed)' if autovac else ''}")


# --------------------------------------------------------------------------------------------- HLT004
IDLE_XACT_SQL = """
SELECT pid, usename, application_name, backend_type, state, extract(epoch FROM now() - state_change), query
FROM pg_stat_activity
WHERE state IN ('idle in transaction', 'idle in transaction (aborted)') AND pid <> pg_backend_pid()
  AND now() - state_change > make_interval(secs => %s)
ORDER BY state_change
"""


@pytest.mark.pgready(id="HLT004")
def test_no_idle_in_transaction(pgready_conn, pgready_record, pgready_settings):
    """A session idle in a transaction holds its locks and snapshot while doing nothing."""
    limit = pgready_settings.max_idle_in_xact_seconds
    rows = pgready_conn.execute(IDLE_XACT_SQL, (limit,)).fetchall()
    bad = [f"{_session(r[0], r[1], r[2], r[3])}: {r[4]} for {r[5]:.0f}s" for r in rows]
    pgready_record.add(limit_s=limit, last_queries={f"pid {r[0]}": mask_query(r[6]) for r in rows})
    if bad:
        pgready_record.fail(f"{len(bad)} sessions idle in transaction longer than {limit:.0f}s", objects=bad,
                            remedy="fix the client's transaction handling; idle_in_transaction_session_timeout")
    _na_if_hidden(pgready_conn, pgready_record, "a session idle in transaction")
    pgready_record.summary(f"no session idle in transaction longer than {limit:.0f}s")


# --------------------------------------------------------------------------------------------- HLT005
LOCK_WAIT_SQL = """
SELECT a.pid, a.usename, a.application_name, a.backend_type, l.locktype, l.mode,
       (SELECT format('%%I.%%I', n.nspname, c.relname)
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.oid = l.relation AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())),
       pg_blocking_pids(a.pid), extract(epoch FROM now() - coalesce(l.waitstart, a.state_change))
FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid AND NOT l.granted
WHERE a.wait_event_type = 'Lock' AND a.pid <> pg_backend_pid()
  AND now() - coalesce(l.waitstart, a.state_change) > make_interval(secs => %s)
ORDER BY 9 DESC
"""


@pytest.mark.pgready(id="HLT005")
def test_no_long_lock_waits(pgready_conn, pgready_record, pgready_settings):
    """Long lock waits pile up connections behind one blocker until the pool is exhausted."""
    limit = pgready_settings.max_lock_wait_seconds
    rows = pgready_conn.execute(LOCK_WAIT_SQL, (limit,)).fetchall()
    bad = [f"{_session(r[0], r[1], r[2], r[3])} waits {r[8]:.1f}s for {r[5]} on {r[6] or r[4]}, "
           f"blocked by {', '.join(map(str, r[7])) or '?'}" for r in rows]
    pgready_record.add(limit_s=limit)
    if bad:
        pgready_record.fail(f"{len(bad)} lock waits longer than {limit:g}s (longest {rows[0][8]:.1f}s)",
                            objects=bad, remedy="find the blocker (pg_blocking_pids) and its transaction; "
                                                "lock_timeout for DDL and batch jobs")
    _na_if_hidden(pgready_conn, pgready_record, "a long lock wait")
    pgready_record.summary(f"no lock wait longer than {limit:g}s")


# --------------------------------------------------------------------------------------------- HLT006
CONNECTIONS_SQL = """
SELECT count(*) FILTER (WHERE backend_type = 'client backend'),
       count(*) FILTER (WHERE backend_type IS NULL AND usesysid IS NOT NULL AND query = '<insufficient privilege>'),
       current_setting('max_connections')::int, current_setting('superuser_reserved_connections')::int,
       coalesce(current_setting('reserved_connections', true), '0')::int
FROM pg_stat_activity
"""


@pytest.mark.pgready(id="HLT006")
def test_connection_headroom(pgready_conn, pgready_record, pgready_settings):
    """Near max_connections the next burst is refused: "sorry, too many clients already"."""
    used, hidden, maxc, su_res, res = pgready_conn.execute(CONNECTIONS_SQL).fetchone()
    ratio = used / maxc
    limit = pgready_settings.max_connection_ratio
    pgready_record.add(client_connections=used, invisible_sessions=hidden, max_connections=maxc,
                       superuser_reserved=su_res, reserved=res, free_for_ordinary_roles=maxc - su_res - res - used)
    pgready_record.metric("connection_ratio", round(ratio, 4))
    if ratio >= limit:
        pgready_record.fail(f"{used} of {maxc} connections in use ({ratio:.0%} ≥ {limit:.0%})",
                            objects=[f"{used}/{maxc} connections"],
                            remedy="put a pooler in front (PgBouncer transaction mode) or raise max_connections")
    if (used + hidden) / maxc >= limit:  # hidden sessions (type unknown to this role) could tip it over
        pgready_record.na(f"{hidden} sessions are invisible to this role and could be clients: GRANT "
                          f"pg_read_all_stats (or pg_monitor) TO it")
    pgready_record.summary(f"{used} of {maxc} connections in use ({ratio:.0%})")


# --------------------------------------------------------------------------------------------- HLT007
DEAD_SQL = """
SELECT format('%%I.%%I', s.schemaname, s.relname), s.n_live_tup, s.n_dead_tup, c.reltuples::bigint,
       greatest(s.last_vacuum, s.last_autovacuum), s.n_live_tup + s.n_dead_tup = 0
FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
WHERE greatest(s.n_live_tup + s.n_dead_tup, c.reltuples::bigint) >= %s
ORDER BY s.n_dead_tup DESC
"""


@pytest.mark.pgready(id="HLT007")
def test_dead_tuples(pgready_conn, pgready_record, pgready_settings):
    """Dead tuples that vacuum does not reclaim bloat tables and slow every scan."""
    floor, limit = pgready_settings.bloat_min_rows, pgready_settings.dead_tuple_ratio
    rows = pgready_conn.execute(DEAD_SQL, (floor,)).fetchall()
    measured = [r for r in rows if not r[5]]
    unmeasured = [r[0] for r in rows if r[5]]
    pgready_record.add(tables_judged=len(measured), min_rows=floor, limit=limit,
                       no_statistics=unmeasured[:20])
    bad = []
    worst = 0.0
    for t, live, dead, _, last_vac, _ in measured:
        ratio = dead / (live + dead)
        worst = max(worst, ratio)
        if ratio > limit:
            bad.append(f"{t}: {dead} dead of {live + dead} ({ratio:.0%}), last vacuum "
                       f"{last_vac.isoformat(timespec='seconds') if last_vac else 'never'}")
    pgready_record.metric("max_dead_tuple_ratio", round(worst, 4))
    if bad:
        pgready_record.fail(f"{len(bad)} tables have more than {limit:.0%} dead tuples", objects=bad,
                            remedy="VACUUM the tables; lower autovacuum_vacuum_scale_factor for them; look for "
                                   "what holds the xmin horizon (HLT010)")
    if unmeasured and not measured:
        pgready_record.na(f"{len(unmeasured)} large tables have no statistics yet (stats reset or never "
                          f"accessed): judge again after some traffic")
    pgready_record.summary(f"{len(measured)} tables above {floor} rows, worst dead share {worst:.1%}")


# --------------------------------------------------------------------------------------------- HLT008
STALE_SQL = """
SELECT format('%%I.%%I', s.schemaname, s.relname), s.n_live_tup, c.reltuples::bigint, s.n_mod_since_analyze,
       greatest(s.last_analyze, s.last_autoanalyze),
       coalesce((SELECT o.option_value::float FROM pg_options_to_table(c.reloptions) o
                  WHERE o.option_name = 'autovacuum_analyze_threshold'),
                current_setting('autovacuum_analyze_threshold')::float),
       coalesce((SELECT o.option_value::float FROM pg_options_to_table(c.reloptions) o
                  WHERE o.option_name = 'autovacuum_analyze_scale_factor'),
                current_setting('autovacuum_analyze_scale_factor')::float)
FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
WHERE c.relkind IN ('r', 'm') AND greatest(s.n_live_tup, c.reltuples::bigint) >= %s
ORDER BY 1
"""


def analyze_threshold(reltuples: float, threshold: float, scale: float) -> float:
    """autovacuum's analyze trigger: threshold + scale_factor × reltuples (reltuples -1 = never analyzed → 0)."""
    return threshold + scale * max(reltuples, 0)


@pytest.mark.pgready(id="HLT008")
def test_fresh_statistics(pgready_conn, pgready_record, pgready_settings):
    """Stale or missing statistics make the planner guess: nested loops over millions of rows."""
    floor, factor = pgready_settings.bloat_min_rows, pgready_settings.stale_stats_factor
    rows = pgready_conn.execute(STALE_SQL, (floor,)).fetchall()
    bad = []
    for t, live, reltuples, mods, last, thr, scale in rows:
        trigger = analyze_threshold(reltuples, thr, scale)
        if last is None:
            bad.append(f"{t}: never analyzed ({max(live, reltuples)} rows)")
        elif mods > factor * trigger:
            bad.append(f"{t}: {mods} rows modified since the last analyze "
                       f"({last.isoformat(timespec='seconds')}), > {factor:g} × {trigger:.0f}")
    pgready_record.add(tables_judged=len(rows), min_rows=floor, factor=factor)
    if bad:
        pgready_record.fail(f"{len(bad)} large tables have stale or no statistics", objects=bad,
                            remedy="ANALYZE the tables; check that autovacuum runs (CFG012) and is not starved")
    pgready_record.summary(f"statistics fresh on {len(rows)} tables above {floor} rows")


# --------------------------------------------------------------------------------------------- HLT009
PREPARED_SQL = """
SELECT gid, owner, database, extract(epoch FROM now() - prepared), age(transaction)
FROM pg_prepared_xacts WHERE now() - prepared > make_interval(secs => %s)
ORDER BY prepared
"""


@pytest.mark.pgready(id="HLT009")
def test_no_old_prepared_xacts(pgready_conn, pgready_record, pgready_settings):
    """A forgotten prepared transaction holds locks and the xmin horizon forever, across restarts."""
    limit = pgready_settings.max_prepared_xact_age_seconds
    rows = pgready_conn.execute(PREPARED_SQL, (limit,)).fetchall()
    bad = [f"{gid} (owner {owner}, database {db}): prepared {age:.0f}s ago, xid age {xa}"
           for gid, owner, db, age, xa in rows]
    pgready_record.add(limit_s=limit)
    if bad:
        pgready_record.fail(f"{len(bad)} prepared transactions older than {limit:.0f}s", objects=bad,
                            remedy="COMMIT PREPARED or ROLLBACK PREPARED 'gid' (ask the transaction manager first)")
    pgready_record.summary(f"no prepared transaction older than {limit:.0f}s")


# --------------------------------------------------------------------------------------------- HLT010
XMIN_SQL = """
SELECT 'session pid ' || pid || ' ' || coalesce(usename, backend_type)
       || coalesce(' (' || nullif(application_name, '') || ')', '') || ', ' || coalesce(state, '?'), age(backend_xmin)
FROM pg_stat_activity
WHERE backend_xmin IS NOT NULL AND pid <> pg_backend_pid() AND backend_type <> 'walsender'
UNION ALL
SELECT 'session pid ' || pid || ' ' || coalesce(usename, backend_type) || ' (own xid)', age(backend_xid)
FROM pg_stat_activity
WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()
UNION ALL
SELECT 'replication slot ' || slot_name || CASE WHEN active THEN ' (active)' ELSE ' (inactive)' END || ' xmin',
       age(xmin)
FROM pg_replication_slots WHERE xmin IS NOT NULL
UNION ALL
SELECT 'replication slot ' || slot_name || CASE WHEN active THEN ' (active)' ELSE ' (inactive)' END || ' catalog_xmin',
       age(catalog_xmin)
FROM pg_replication_slots WHERE catalog_xmin IS NOT NULL
UNION ALL
SELECT 'prepared transaction ' || gid, age(transaction) FROM pg_prepared_xacts
UNION ALL
SELECT 'standby feedback from ' || coalesce(nullif(application_name, ''), host(client_addr), 'pid ' || pid),
       age(backend_xmin)
FROM pg_stat_replication WHERE backend_xmin IS NOT NULL
ORDER BY 2 DESC
"""


@pytest.mark.pgready(id="HLT010")
def test_xmin_horizon(pgready_conn, pgready_record, pgready_settings):
    """While something holds the xmin horizon, vacuum can remove no dead row anywhere in the cluster."""
    limit = pgready_settings.max_xmin_horizon_xids
    rows = pgready_conn.execute(XMIN_SQL).fetchall()
    horizon = rows[0][1] if rows else 0
    pgready_record.metric("xmin_horizon_age", horizon)
    pgready_record.add(limit_xids=limit, held_by=[f"{who}: {age} XIDs" for who, age in rows[:10]])
    bad = [f"{who}: {age} XIDs behind" for who, age in rows if age > limit]
    if bad:
        pgready_record.fail(f"the xmin horizon is {horizon} XIDs behind (limit {limit}), held by {rows[0][0]}",
                            objects=bad, remedy="end the session/transaction, drop or advance the slot, "
                                                "resolve the prepared transaction, or check the standby's queries")
    _na_if_hidden(pgready_conn, pgready_record, "a session holding the xmin horizon")
    pgready_record.summary(f"xmin horizon {horizon} XIDs behind (limit {limit})"
                           f"{', oldest: ' + rows[0][0] if rows else ''}")
