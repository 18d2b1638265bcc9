"""replication suite, static part: standbys stream, lag is small, slots do not hoard WAL, RPO 0 is backed by a
synchronous standby (REP001–REP004). Judged on the primary's pg_stat_replication / pg_replication_slots.

The expected topology is `expected_replicas` when declared, else the replicas pgready knows of (the
embedded cluster's, or --pgready-replica-dsn). Logical walsenders (subscriptions) are not standbys.
"""

from __future__ import annotations

from typing import Any

import pytest

STANDBYS_SQL = """
SELECT r.pid, r.application_name, host(r.client_addr), r.state, r.sync_state,
       extract(epoch FROM r.replay_lag), pg_wal_lsn_diff(pg_current_wal_lsn(), r.replay_lsn)::bigint,
       r.backend_start IS NULL AND r.state IS NULL
FROM pg_stat_replication r
LEFT JOIN pg_replication_slots s ON s.active_pid = r.pid
WHERE s.slot_type IS DISTINCT FROM 'logical' AND r.application_name IS DISTINCT FROM 'pg_basebackup'
ORDER BY r.application_name
"""


def _primary_only(conn: Any, record: Any) -> None:
    if conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
        record.na("connected to a standby: point --pgready-dsn at the primary")


def _standbys(conn: Any, record: Any) -> list[dict[str, Any]]:
    _primary_only(conn, record)
    cols = ("pid", "name", "addr", "state", "sync_state", "replay_lag_s", "lag_bytes", "hidden")
    rows = [dict(zip(cols, r)) for r in conn.execute(STANDBYS_SQL).fetchall()]
    if any(r["hidden"] for r in rows):
        record.na("walsender details are hidden from this role: GRANT pg_read_all_stats (or pg_monitor) TO it")
    return rows


def _label(r: dict[str, Any]) -> str:
    return f"{r['name'] or r['addr'] or 'pid ' + str(r['pid'])}"


# --------------------------------------------------------------------------------------------- REP001
@pytest.mark.pgready(id="REP001")
def test_standbys_streaming(pgready_conn, pgready_cluster, pgready_record, pgready_settings):
    """A standby that does not stream is no failover target and no copy of recent data."""
    rows = _standbys(pgready_conn, pgready_record)
    declared = pgready_settings.expected_replicas
    expected = declared if declared is not None else len(pgready_cluster.replicas)
    streaming = [_label(r) for r in rows if r["state"] == "streaming"]
    other = [f"{_label(r)}: {r['state']}" for r in rows if r["state"] != "streaming"]
    pgready_record.add(expected=expected, expected_from="expected_replicas" if declared is not None else "topology",
                       streaming=streaming, not_streaming=other)
    pgready_record.metric("standbys_streaming", len(streaming))
    if expected == 0 and not rows:
        pgready_record.na("no standby is expected or connected: declare expected_replicas = N (or give "
                          "--pgready-replica-dsn) to require standbys")
    if len(streaming) < expected:
        missing = expected - len(streaming) - len(other)
        objects = other + ([f"{missing} expected standbys are not connected"] if missing > 0 else [])
        pgready_record.fail(f"{len(streaming)} of {expected} expected standbys stream", objects=objects,
                            remedy="check the standbys' logs and primary_conninfo; pg_stat_wal_receiver on each")
    pgready_record.summary(f"{len(streaming)} standbys stream (expected {expected})")


# --------------------------------------------------------------------------------------------- REP002
@pytest.mark.pgready(id="REP002")
def test_replay_lag(pgready_conn, pgready_record, pgready_settings):
    """Replay lag is the data a failover to that standby loses or waits for, and how stale its reads are."""
    rows = [r for r in _standbys(pgready_conn, pgready_record) if r["state"] == "streaming"]
    if not rows:
        pgready_record.na("no standby streams: nothing to measure (REP001 judges whether one should)")
    max_s, max_b = pgready_settings.max_replay_lag_seconds, pgready_settings.max_replay_lag_bytes
    per, bad = {}, []
    for r in rows:
        # replay_lag is NULL once a standby has caught up and no WAL flows: no lag when no bytes are pending
        secs = r["replay_lag_s"] if r["replay_lag_s"] is not None else (0.0 if not r["lag_bytes"] else None)
        secs = float(secs) if secs is not None else None
        per[_label(r)] = {"replay_lag_s": secs, "lag_bytes": int(r["lag_bytes"] or 0)}
        if (secs is not None and secs > max_s) or (r["lag_bytes"] or 0) > max_b:
            bad.append(f"{_label(r)}: replay lag {('%.2fs' % secs) if secs is not None else 'unknown'}, "
                       f"{int(r['lag_bytes'] or 0)} bytes behind")
    worst_s = max((v["replay_lag_s"] or 0.0 for v in per.values()), default=0.0)
    worst_b = max((v["lag_bytes"] for v in per.values()), default=0)
    pgready_record.add(standbys=per, limits={"seconds": max_s, "bytes": max_b})
    pgready_record.metric("replay_lag_seconds", round(worst_s, 3))
    pgready_record.metric("replay_lag_bytes", worst_b)
    if bad:
        pgready_record.fail(f"{len(bad)} standbys lag beyond {max_s:g}s or {max_b} bytes", objects=bad,
                            remedy="check the standby's I/O and long queries (replay conflicts), and the network")
    pgready_record.summary(f"worst replay lag {worst_s:.2f}s, {worst_b} bytes over {len(rows)} standbys")


# --------------------------------------------------------------------------------------------- REP003
SLOTS_SQL = """
SELECT slot_name, slot_type, active, wal_status,
       pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END,
                       restart_lsn)::bigint,
       current_setting('max_slot_wal_keep_size'), current_setting('max_replication_slots')::int
FROM pg_replication_slots
RIGHT JOIN (SELECT 1) one ON true
ORDER BY 1
"""


@pytest.mark.pgready(id="REP003")
def test_slots_bounded(pgready_conn, pgready_record):
    """An abandoned slot keeps every WAL segment since it stopped: the primary's disk fills, then it stops."""
    rows = pgready_conn.execute(SLOTS_SQL).fetchall()
    keep, max_slots = rows[0][5], rows[0][6]
    slots = [r for r in rows if r[0] is not None]
    inactive = [f"slot {name} ({stype}, inactive) retains {retained} bytes of WAL"
                for name, stype, active, status, retained, _, _ in slots
                if not active and retained is not None and status != "lost"]
    lost = [name for name, _, _, status, _, _, _ in slots if status == "lost"]
    pgready_record.add(slots=len(slots), max_slot_wal_keep_size=keep, lost_slots=lost)
    problems = list(inactive)
    if keep in ("-1", "-1MB") and max_slots > 0:
        problems.append("max_slot_wal_keep_size = -1: a slot may retain WAL without bound")
    if problems:
        pgready_record.fail(f"{len(inactive)} inactive slots retain WAL"
                            f"{'; max_slot_wal_keep_size is unbounded' if len(problems) > len(inactive) else ''}",
                            objects=problems,
                            remedy=["SELECT pg_drop_replication_slot('…'); for slots nobody uses",
                                    "ALTER SYSTEM SET max_slot_wal_keep_size = '50GB'; -- below the free pg_wal space"])
    pgready_record.summary(f"{len(slots)} slots, none inactive and retaining WAL; max_slot_wal_keep_size = {keep}")


# --------------------------------------------------------------------------------------------- REP004
SYNC_SQL = """
SELECT current_setting('synchronous_standby_names'), current_setting('synchronous_commit')
"""


@pytest.mark.pgready(id="REP004")
def test_sync_standby_for_rpo_zero(pgready_conn, pgready_record, pgready_settings):
    """RPO 0 needs every commit on a second server before it is acknowledged: a connected synchronous standby."""
    if pgready_settings.rpo_seconds > 0:
        pgready_record.na(f"declared RPO is {pgready_settings.rpo_seconds:g}s: synchronous replication is not "
                          f"required (declare rpo_seconds = 0 to require it)")
    rows = _standbys(pgready_conn, pgready_record)
    names, commit = pgready_conn.execute(SYNC_SQL).fetchone()
    sync = [_label(r) for r in rows if r["state"] == "streaming" and r["sync_state"] in ("sync", "quorum")]
    pgready_record.add(synchronous_standby_names=names, synchronous_commit=commit, sync_standbys=sync,
                       standbys={_label(r): r["sync_state"] for r in rows})
    problems = []
    if not names.strip():
        problems.append("synchronous_standby_names is empty")
    elif not sync:
        problems.append(f"no standby named by synchronous_standby_names ({names}) is connected and in sync")
    if commit in ("off", "local"):
        problems.append(f"synchronous_commit = {commit}: commits do not wait for the standby")
    if problems:
        pgready_record.fail("RPO 0 is declared but " + "; ".join(problems), objects=problems,
                            remedy="synchronous_standby_names = 'FIRST 1 (standby1, standby2)' with at least two "
                                   "candidates, synchronous_commit = on")
    pgready_record.summary(f"synchronous standby {', '.join(sync)} connected ({names})")
