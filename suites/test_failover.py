"""failover suite (and the drills of replication and pooling that need a failover or a broken replica):
FO001–FO009, REP005, REP006, POOL005. The category of each check comes from the catalogue.

Every drill builds its own cluster with `pgready_cluster_factory` (the same binaries and your
postgresql.conf / pgbouncer.ini), never touching the session cluster. The clients are the oracle's
writers (drills/writers.py) on the path your application uses; what they were told is compared with
what the new primary holds (drills/oracle.py). Toxiproxy drills are `na` with the install hint when
toxiproxy-server is missing; the process-fault drills still run.
"""

from __future__ import annotations

from typing import Any

import pytest

_REMEDY_SYNC = ("use synchronous replication for data you cannot lose: synchronous_standby_names = "
                "'FIRST 1 (standby)' (or ANY 1 (a, b)) and synchronous_commit = on/remote_apply for the "
                "application's role — not local or off")


def _cluster(factory: Any, **kw: Any) -> Any:
    kw.setdefault("replicas", 1)
    kw.setdefault("pgbouncer", False)
    kw.setdefault("toxiproxy", False)
    return factory(**kw)


def _toxiproxy_cluster(factory: Any, rec: Any, **kw: Any) -> Any:
    from pytest_pgready import faults


    cluster = _cluster(factory, toxiproxy=True, **kw)
    if cluster.toxiproxy is None:
        rec.na(faults.toxiproxy_reason(cluster))
    return cluster


def _durability(rec: Any, run: Any) -> None:
    d = run.durability or {}
    if d.get("relaxed"):
        rec.add(durability_relaxed=d["relaxed"])


# ------------------------------------------------------------------------------------------------ FO001
@pytest.mark.pgready(id="FO001")
def test_fo001_kill_promote_resume(pgready_cluster_factory, pgready_settings, pgready_record) -> None:
    """The primary is killed (SIGKILL) K times; each time a standby is promoted and writes through the
    multi-host DSN resume. The write gap — the larger of the server's (consecutive committed_at on the new
    primary) and the client's (last acknowledgement before → first after) — p95 over K trials ≤ RTO.
    Between trials the old primary rejoins with pg_rewind (pg_basebackup if that fails)."""
    from pytest_pgready.drills.failover_crash import crash_drill
    from pytest_pgready.drills.oracle import percentile
    from pytest_pgready.drills.rejoin import rejoin


    rec, s = pgready_record, pgready_settings
    rto = float(s.rto_seconds)
    if rto <= 0:
        rec.na("rto_seconds is 0: declare your recovery time objective (rto_seconds) to judge failover against")
    cluster = _cluster(pgready_cluster_factory)
    gaps: list[float] = []
    trials: list[dict[str, Any]] = []
    problems: list[str] = []
    for i in range(s.failover_trials):
        run = crash_drill(cluster, s, paths=("multihost",), first_id=1 + 100 * i)
        v = run.verdict
        gap = v.write_gap_s
        trials.append({"trial": i + 1, "write_gap_s": _r(gap), "server_gap_s": _r(v.server_gap_s),
                       "client_gap_s": _r(v.client_gap_s), "resolution_s": _r(v.resolution_s),
                       "detect_s": _r(run.failover.detect_s), "promote_s": _r(run.failover.promote_s),
                       "promoted": run.failover.new.name, "lost": len(v.lost), "unknown": v.unknown,
                       "problems": run.problems})
        problems += [f"trial {i + 1}: {p}" for p in run.problems]
        if gap is None or run.resumed_s.get("multihost") is None:
            problems.append(f"trial {i + 1}: writes did not resume within {s.resume_timeout_seconds:.0f}s")
            break
        gaps.append(gap)
        _durability(rec, run)
        if i + 1 < s.failover_trials:
            rj = rejoin(cluster, run.failover.old, run.failover.new, method="rewind", fallback=True)
            trials[-1]["rejoin"] = {k: rj.get(k) for k in ("method", "seconds", "error")}
            if rj.get("error"):
                problems.append(f"trial {i + 1}: the old primary could not rejoin: {rj['error']}")
                break
    rec.add(trials=trials, client_path="multihost (target_session_attrs=read-write)")
    if gaps:
        metric = {"p50": _r(percentile(gaps, 50)), "p95": _r(percentile(gaps, 95)), "max": _r(max(gaps)),
                  "trials": [_r(g) for g in gaps]}
        rec.metric("failover_write_gap_seconds", metric, report=True)
        rec.slo("write_gap_p95_seconds", metric["p95"], target=rto / 2, limit=rto)
    if problems:
        rec.fail(f"failover did not complete in every trial: {problems[0]}", objects=problems[:20],
                 remedy="check that a standby streams and that clients list every node with "
                        "target_session_attrs=read-write (or go through a repointed pooler)")
    p95 = percentile(gaps, 95)
    if p95 > rto:
        rec.fail(f"write gap p95 {p95:.2f}s over {len(gaps)} trials exceeds the declared RTO {rto:g}s",
                 objects=[f"trial {t['trial']}: {t['write_gap_s']}s" for t in trials],
                 remedy="shorten detection/promotion (HA tool timings), or declare the RTO you can meet")
    rec.summary(f"writes resumed after every kill: write gap p50 {percentile(gaps, 50):.2f}s, "
                f"p95 {p95:.2f}s, max {max(gaps):.2f}s over {len(gaps)} trials (RTO {rto:g}s)")


# ------------------------------------------------------------------------------------------------ FO002
@pytest.mark.pgready(id="FO002")
def test_fo002_sync_loses_no_acknowledged_write(pgready_cluster_factory, pgready_settings, pgready_record) -> None:
    """On a cluster declared synchronous, the standby stops receiving WAL for failover_stall_seconds, the
    primary is killed, the standby promoted: no acknowledged write may be missing. Commits cancelled while
    waiting for the standby, and commits whose connection broke, are 'unknown', never acknowledged."""
    from pytest_pgready.drills.failover_crash import crash_drill
    from pytest_pgready.drills.replication import server_settings


    rec, s = pgready_record, pgready_settings
    cluster = _cluster(pgready_cluster_factory, sync=True)
    declared = server_settings(cluster.primary, ("synchronous_standby_names", "synchronous_commit"))
    run = crash_drill(cluster, s, paths=("multihost",), stall_s=s.failover_stall_seconds)
    v = run.verdict
    rec.add(declared=declared, **run.evidence())
    _durability(rec, run)
    rec.metric("lost_acknowledged_writes", len(v.lost))
    rec.metric("unknown_outcomes", v.unknown)
    if v.lost or v.unexpected or v.duplicates:
        rec.fail(f"{len(v.lost)} acknowledged writes lost with synchronous replication declared "
                 f"(synchronous_commit = {declared['synchronous_commit']})",
                 objects=[f"pgready_oracle(writer={w}, seq={q})" for w, q in v.lost[:50]]
                 + [f"unexpected row writer={w} seq={q}" for w, q in v.unexpected[:10]],
                 remedy=_REMEDY_SYNC)
    if run.problems:
        rec.fail(f"the failover did not complete: {run.problems[0]}", objects=run.problems)
    rec.summary(f"0 of {v.acknowledged} acknowledged writes lost across a {s.failover_stall_seconds:g}s stall "
                f"and a crash ({v.unknown} unknown, {len(v.recovered)} of them landed)")


# ------------------------------------------------------------------------------------------------ FO003
@pytest.mark.pgready(id="FO003")
def test_fo003_async_loss_within_rpo(pgready_cluster_factory, pgready_settings, pgready_record) -> None:
    """On an asynchronous cluster the standby stops receiving WAL for failover_stall_seconds (the lag the RPO
    must cover), the primary is killed: the acknowledged writes missing on the new primary are counted,
    their span in seconds and the WAL between the fork point and the last lost write (a lower bound)."""
    from pytest_pgready.drills.failover_crash import crash_drill


    rec, s = pgready_record, pgready_settings
    cluster = _cluster(pgready_cluster_factory)
    run = crash_drill(cluster, s, paths=("multihost",), stall_s=s.failover_stall_seconds)
    v = run.verdict
    rec.add(**run.evidence())
    _durability(rec, run)
    rec.metric("lost_acknowledged_writes", len(v.lost), report=True)
    rec.metric("lost_seconds", round(v.lost_seconds, 4))
    rec.metric("lost_wal_bytes", v.lost_wal_bytes)
    if run.problems:
        rec.fail(f"the failover did not complete: {run.problems[0]}", objects=run.problems)
    if v.lost_seconds > s.rpo_seconds or (s.rpo_seconds == 0 and v.lost):
        rec.fail(f"{len(v.lost)} acknowledged writes ({v.lost_seconds:.3f}s, ≥{v.lost_wal_bytes or 0} WAL bytes) "
                 f"lost: more than the declared RPO {s.rpo_seconds:g}s",
                 objects=[f"pgready_oracle(writer={w}, seq={q})" for w, q in v.lost[:50]],
                 remedy=_REMEDY_SYNC + "; or declare the RPO asynchronous replication can meet")
    rec.summary(f"{len(v.lost)} acknowledged writes lost ({v.lost_seconds:.3f}s, ≥{v.lost_wal_bytes or 0} WAL "
                f"bytes) after a {s.failover_stall_seconds:g}s stall and a crash: within the RPO "
                f"{s.rpo_seconds:g}s")


# ------------------------------------------------------------------------------------------------ FO004
@pytest.mark.pgready(id="FO004")
def test_fo004_partition(pgready_cluster_factory, pgready_settings, pgready_record) -> None:
    """Toxiproxy blackholes the primary→standby link for partition_seconds. Synchronous phase: no commit sent
    during the partition is acknowledged before it heals. The writers' wait is bounded by their client
    deadline (a cancel request): statement_timeout cannot bound it, PostgreSQL disables it before the
    commit's wait for the standby. A cancelled wait returns success with a warning — committed locally,
    maybe not on the standby — and is counted unknown, never acknowledged.
    Asynchronous phase (synchronous_standby_names = ''), with outage_wal_mb of WAL written meanwhile:
    the standby catches up after the heal within replica_catchup_timeout_s."""
    from pytest_pgready.drills.failover_partition import partition_drill
    from pytest_pgready.drills.replication import slot_name


    rec, s = pgready_record, pgready_settings
    cluster = _toxiproxy_cluster(pgready_cluster_factory, rec, sync=True, archive=False)
    phases = partition_drill(cluster, s)
    rec.add(phases=[p.evidence() for p in phases],
            note="archive recovery is off in this drill: it measures what streaming retention covers")
    problems, objects = [], []
    sync, asyn = phases
    if sync.acked_during:
        problems.append(f"sync: {len(sync.acked_during)} commits acknowledged while the standby was cut off "
                        f"(synchronous_commit = {sync.settings['synchronous_commit']})")
        objects += [f"pgready_oracle(writer={a.writer}, seq={a.seq})" for a in sync.acked_during[:20]]
    problems += [f"sync: {p}" for p in sync.problems]
    if asyn.catchup_s is None:
        problems.append(f"async: the standby did not catch up after the partition (slot {asyn.slot_status})")
        objects.append(f"replication slot {slot_name(cluster.replicas[0])}: wal_status {asyn.slot_status}")
    if asyn.catchup_s is not None:
        rec.metric("partition_catchup_seconds", round(asyn.catchup_s, 3))
    if problems:
        rec.fail(problems[0], objects=objects, problems=problems,
                 remedy=_REMEDY_SYNC + "; size max_slot_wal_keep_size / wal_keep_size (or archive) for the "
                                       "longest partition you must survive")
    rec.summary(f"sync: 0 commits acknowledged during a {sync.partition_s:.1f}s partition "
                f"({sync.unknown_sync_cancel} cancelled waits kept unknown); async: standby caught up "
                f"{asyn.catchup_s:.2f}s after the heal ({asyn.wal_written_mb:g} MB of WAL written meanwhile)")


# ------------------------------------------------------------------------------------------------ FO005
@pytest.mark.pgready(id="FO005")
def test_fo005_frozen_primary_is_fenced(pgready_cluster_factory, pgready_settings, pgready_record) -> None:
    """The primary is frozen (SIGSTOP); it is detected, fenced (fence_command, else pgready SIGKILLs it),
    a standby is promoted, the old primary thawed. Through every client path (direct, multi-host,
    pooler) the old primary must acknowledge no write executed after the promotion began."""
    from pytest_pgready.drills.failover_fence import fence_drill


    rec, s = pgready_record, pgready_settings
    cluster = _cluster(pgready_cluster_factory, pgbouncer=True)
    run = fence_drill(cluster, s)
    rec.add(**run.evidence())
    rec.metric("split_brain_acknowledged_writes", len(run.violations))
    if run.violations:
        paths = sorted({a.path for a in run.violations})
        rec.fail(f"the old primary acknowledged {len(run.violations)} writes after the standby's promotion "
                 f"(split brain through {', '.join(paths)})",
                 objects=[f"pgready_oracle(writer={a.writer}, seq={a.seq}) via {a.path}" for a in run.violations[:50]],
                 remedy="fence before promoting: fence_command must stop the old primary (or cut it off every "
                        "client path) — STONITH, not a no-op")
    rec.summary(f"no write acknowledged by the frozen old primary after promotion "
                f"(fence: {run.failover.fence['method'] if run.failover.fence else 'none'})")


# ------------------------------------------------------------------------------------------------ FO006
@pytest.mark.pgready(id="FO006")
def test_fo006_old_primary_rejoins(pgready_cluster_factory, pgready_settings, pgready_record) -> None:
    """After a crash with a stalled standby (so the old primary holds writes the new timeline does not),
    the old primary is rewound with pg_rewind, rejoins as a standby and streams; its content then equals
    the new primary's (row counts and checksums of every table, sequences)."""
    from pytest_pgready.drills.failover_crash import crash_drill
    from pytest_pgready.drills.rejoin import convergence, rejoin


    rec, s = pgready_record, pgready_settings
    cluster = _cluster(pgready_cluster_factory)
    run = crash_drill(cluster, s, paths=("multihost",), stall_s=max(0.2, s.failover_stall_seconds))
    rj = rejoin(cluster, run.failover.old, run.failover.new, method="rewind", fallback=False)
    rec.add(failover=run.failover.evidence(), rejoin=rj,
            diverged_writes_discarded=len(run.verdict.lost))
    if rj.get("error"):
        rec.fail(f"the old primary could not rejoin: {rj['error']}", objects=[run.failover.old.name],
                 remedy="pg_rewind needs wal_log_hints = on (or data checksums), full_page_writes = on, and the "
                        "WAL since the fork on both sides")
    rec.metric("rejoin_seconds", rj.get("seconds"))
    diffs = convergence(run.failover.new, run.failover.old, timeout=s.replica_catchup_timeout_s)
    if diffs:
        rec.fail(f"the rejoined node's data differs from the new primary's: {diffs[0]}", objects=diffs[:50])
    rec.summary(f"{run.failover.old.name} rewound and streaming in {rj['seconds']:.2f}s; content identical "
                f"({len(run.verdict.lost)} diverged writes discarded)")


# ------------------------------------------------------------------------------------------------ FO007
@pytest.mark.pgready(id="FO007")
def test_fo007_client_faults_surface_as_errors(pgready_cluster_factory, pgready_settings, pgready_record) -> None:
    """Through Toxiproxy in front of the primary: latency beyond the bound, a TCP reset and a blackhole.
    An open connection and a new one (client_conninfo, client_query_timeout_s as the client deadline) must
    each get an answer or an error within max_time_to_error_seconds. TCP keepalives and tcp_user_timeout
    do not fire while a proxy or a hung server keeps the socket alive, and statement_timeout counts server
    time only: connect_timeout and a client-side deadline are what bound these faults."""
    from pytest_pgready.drills.failover_clients import client_fault_drill


    rec, s = pgready_record, pgready_settings
    cluster = _toxiproxy_cluster(pgready_cluster_factory, rec, replicas=0)
    probes = client_fault_drill(cluster, s)
    bound = s.max_time_to_error_seconds
    rec.add(probes=[p.evidence() for p in probes], bound_s=bound, client_conninfo=s.client_conninfo,
            client_query_timeout_s=s.client_query_timeout_s)
    rec.metric("max_time_to_error_seconds", max(p.seconds for p in probes))
    bad = [p for p in probes if p.seconds > bound or p.outcome == "hung"]
    if bad:
        rec.fail(f"{len(bad)} client(s) waited past {bound:g}s under a network fault: {bad[0].evidence()}",
                 objects=[p.evidence() for p in bad],
                 remedy="set connect_timeout in the connection string and a client-side query deadline "
                        "(client_query_timeout_s: JDBC socketTimeout, asyncpg command_timeout, a driver timeout)")
    rec.summary(f"every fault surfaced within {bound:g}s (slowest {max(p.seconds for p in probes):.2f}s)")


# ------------------------------------------------------------------------------------------------ FO008
@pytest.mark.pgready(id="FO008")
def test_fo008_planned_switchover(pgready_cluster_factory, pgready_settings, pgready_record) -> None:
    """K planned switchovers (failover_trials): the primary is stopped cleanly (fast shutdown waits for the
    standby to receive its shutdown checkpoint), the standby promoted, the old primary rejoins for the
    next trial. Nothing acknowledged may be lost, and the write gap p95 must stay within
    switchover_gap_seconds."""
    from pytest_pgready.drills.failover_crash import crash_drill
    from pytest_pgready.drills.oracle import percentile
    from pytest_pgready.drills.rejoin import rejoin


    rec, s = pgready_record, pgready_settings
    cluster = _cluster(pgready_cluster_factory)
    gaps: list[float] = []
    trials: list[dict[str, Any]] = []
    lost: list[str] = []
    problems: list[str] = []
    for i in range(s.failover_trials):
        run = crash_drill(cluster, s, paths=("multihost",), planned=True, first_id=1 + 100 * i)
        v = run.verdict
        trials.append({"trial": i + 1, "write_gap_s": _r(v.write_gap_s), "server_gap_s": _r(v.server_gap_s),
                       "client_gap_s": _r(v.client_gap_s), "acknowledged": v.acknowledged, "lost": len(v.lost),
                       "unknown": v.unknown, "promoted": run.failover.new.name, "problems": run.problems})
        lost += [f"trial {i + 1}: pgready_oracle(writer={w}, seq={q})" for w, q in v.lost[:20]]
        problems += [f"trial {i + 1}: {p}" for p in run.problems]
        if v.write_gap_s is None or run.problems:
            problems.append(f"trial {i + 1}: writes did not resume after the switchover")
            break
        gaps.append(v.write_gap_s)
        if i + 1 < s.failover_trials:
            rj = rejoin(cluster, run.failover.old, run.failover.new, method="rewind", fallback=True)
            trials[-1]["rejoin"] = {k: rj.get(k) for k in ("method", "seconds", "error")}
            if rj.get("error"):
                problems.append(f"trial {i + 1}: the old primary could not rejoin: {rj['error']}")
                break
    rec.add(trials=trials, client_path="multihost (target_session_attrs=read-write)")
    if gaps:
        rec.metric("switchover_write_gap_seconds", {"p50": _r(percentile(gaps, 50)), "p95": _r(percentile(gaps, 95)),
                                                     "max": _r(max(gaps)), "trials": [_r(g) for g in gaps]})
    if lost:
        rec.fail(f"the switchover lost {len(lost)} acknowledged writes", objects=lost[:50],
                 remedy="stop the primary with a clean (fast) shutdown and promote only a standby that received "
                        "its shutdown checkpoint")
    if problems:
        rec.fail(f"the switchover did not complete: {problems[0]}", objects=problems[:20])
    p95 = percentile(gaps, 95)
    if p95 > s.switchover_gap_seconds:
        rec.fail(f"switchover write gap p95 {p95:.3f}s exceeds {s.switchover_gap_seconds:g}s",
                 objects=[f"trial {t['trial']}: write gap {t['write_gap_s']}s (server {t['server_gap_s']}s, "
                          f"client {t['client_gap_s']}s)" for t in trials],
                 remedy="promote as soon as the old primary is down; make clients retry quickly")
    rec.summary(f"{len(gaps)} planned switchovers lost none of {sum(t['acknowledged'] for t in trials)} "
                f"acknowledged writes; write gap p50 {percentile(gaps, 50):.3f}s, p95 {p95:.3f}s")


# ------------------------------------------------------------------------------------------------ FO009
@pytest.mark.pgready(id="FO009")
def test_fo009_clients_reach_new_primary(pgready_cluster_factory, pgready_settings, pgready_record) -> None:
    """After the primary is killed and a standby promoted, clients using a multi-host DSN
    (target_session_attrs=read-write) and clients through PgBouncer must write on the new primary within
    resume_timeout_seconds. With promote_command, repointing PgBouncer is your HA tool's job."""
    from pytest_pgready.drills.failover_crash import crash_drill


    rec, s = pgready_record, pgready_settings
    cluster = _cluster(pgready_cluster_factory, pgbouncer=True)
    paths = ("multihost", "pooler") if cluster.pooler is not None else ("multihost",)
    run = crash_drill(cluster, s, paths=paths)
    rec.add(**run.evidence())
    if cluster.pooler is None:
        rec.add(pooler="PgBouncer is not installed here: only the multi-host path was drilled")
    for p, t in run.resumed_s.items():
        if t is not None:
            rec.metric(f"{p}_resumed_seconds", _r(t))
    stuck = [p for p, t in run.resumed_s.items() if t is None]
    if stuck:
        rec.fail(f"clients through {', '.join(stuck)} did not reach the new primary within "
                 f"{s.resume_timeout_seconds:g}s", objects=[f"client path {p}" for p in stuck],
                 remedy="repoint PgBouncer at the new primary in your promotion hook ([databases] host/port, "
                        "RELOAD, RECONNECT), and list every node in multi-host DSNs")
    rec.summary("; ".join(f"{p} clients wrote on {run.failover.new.name} {t:.2f}s after the kill"
                          for p, t in run.resumed_s.items()))


# ------------------------------------------------------------------------------------------------ POOL005
@pytest.mark.pgready(id="POOL005")
def test_pool005_pooler_after_failover(pgready_cluster_factory, pgready_settings, pgready_record) -> None:
    """Pooled clients connect and go idle; the primary is killed, a standby promoted and the old primary
    rejoins as a standby (so its address now answers read-only). Then no client through PgBouncer may get
    'read-only transaction' errors, and every idle client must write again within resume_timeout_seconds."""
    from pytest_pgready.drills.failover_crash import crash_drill
    from pytest_pgready.drills.failover_pooler import idle_clients, pooled_after_failover
    from pytest_pgready.drills.rejoin import rejoin


    rec, s = pgready_record, pgready_settings
    cluster = _cluster(pgready_cluster_factory, pgbouncer=True)
    if cluster.pooler is None:
        rec.na("PgBouncer is not installed (apt-get install -y pgbouncer): nothing to drill")
    idle = idle_clients(cluster, 4)
    try:
        run = crash_drill(cluster, s, paths=("pooler",))
        rj = rejoin(cluster, run.failover.old, run.failover.new, method="rewind", fallback=True)
        after = pooled_after_failover(cluster, s, idle, first_id=500)
    finally:
        for c in idle:
            try:
                c.close()
            except Exception:
                pass
    rec.add(failover=run.failover.evidence(), rejoin={k: rj.get(k) for k in ("method", "seconds", "error")},
            during_failover=run.stats, after_failover=after.stats, idle_clients=after.idle_details,
            read_only_errors=after.read_only_errors, idle_recovered=f"{after.idle_recovered}/{after.idle_total}")
    rec.metric("read_only_errors", after.read_only_errors)
    if after.read_only_errors:
        rec.fail(f"{after.read_only_errors} pooled statements failed with 'read-only transaction' after the "
                 f"failover: PgBouncer still sends clients to {run.failover.old.name}, now a standby",
                 objects=after.read_only_details,
                 remedy="repoint PgBouncer in the promotion hook ([databases] host/port, RELOAD, RECONNECT)")
    if after.idle_recovered < after.idle_total:
        rec.fail(f"{after.idle_total - after.idle_recovered} idle pooled clients could not write again within "
                 f"{s.resume_timeout_seconds:g}s", objects=after.idle_details)
    rec.summary(f"after the failover {after.idle_total} idle pooled clients wrote again and no pooled client "
                f"got a read-only error")


# ------------------------------------------------------------------------------------------------ REP005
@pytest.mark.pgready(id="REP005")
def test_rep005_killed_replica_catches_up(pgready_cluster_factory, pgready_settings, pgready_record) -> None:
    """A replica is SIGKILLed while writers commit and outage_wal_mb of WAL is written; after its restart it
    must replay everything the primary had written by then within replica_catchup_timeout_s."""
    from pytest_pgready.drills.replica_outage import replica_restart_drill


    rec, s = pgready_record, pgready_settings
    cluster = _cluster(pgready_cluster_factory, archive=False)
    run = replica_restart_drill(cluster, s)
    rec.add(down_seconds=run.down_s, wal_written_while_down_mb=run.wal_written_mb, slot_wal_status=run.slot_status,
            problems=run.problems, note="archive recovery is off in this drill: it measures streaming retention")
    if run.catchup_s is not None:
        rec.metric("replica_catchup_seconds", round(run.catchup_s, 3))
    if run.problems:
        rec.fail(f"the killed replica did not catch up: {run.problems[0]}",
                 objects=[f"{cluster.replicas[0].name} (slot wal_status {run.slot_status})"],
                 remedy="keep enough WAL for a standby's downtime (max_slot_wal_keep_size, wal_keep_size) or give "
                        "standbys a restore_command on the WAL archive")
    rec.summary(f"the replica caught up {run.catchup_s:.2f}s after its restart "
                f"({run.wal_written_mb:g} MB of WAL written while it was down)")


# ------------------------------------------------------------------------------------------------ REP006
@pytest.mark.pgready(id="REP006")
def test_rep006_stopped_replica_slot_invalidated(pgready_cluster_factory, pgready_settings, pgready_record) -> None:
    """A replica is stopped and WAL written (segment switches + checkpoints): its slot must be invalidated
    (wal_status 'lost') at max_slot_wal_keep_size, and the primary must keep accepting writes. A declared
    limit above 256 MB is scaled down to 32 MB for the drill (said in the evidence); -1 (unbounded) fails."""
    from pytest_pgready.drills.replica_outage import slot_limit_drill
    from pytest_pgready.drills.replication import slot_name


    rec, s = pgready_record, pgready_settings
    cluster = _cluster(pgready_cluster_factory, archive=False)
    run = slot_limit_drill(cluster, s)
    rec.add(declared_max_slot_wal_keep_size=("-1 (unbounded)" if run.declared_mb is None else f"{run.declared_mb}MB"),
            drill_limit=run.drill_limit, scaled_down=run.scaled, wal_status_by_mb_written=run.statuses,
            primary_writable=run.writable, write_error=run.write_error or None)
    if run.invalidated_after_mb is not None:
        rec.metric("slot_invalidated_after_mb", round(run.invalidated_after_mb, 1))
    if not run.writable:
        rec.fail(f"the primary stopped accepting writes: {run.write_error}", objects=[cluster.primary.name])
    if run.invalidated_after_mb is None:
        last = run.statuses[-1][1] if run.statuses else "?"
        rec.fail(f"the stopped replica's slot still retains WAL after {run.wal_written_mb:g} MB "
                 f"(wal_status {last}, limit {run.drill_limit}): a dead standby can fill the primary's disk",
                 objects=[f"replication slot {slot_name(cluster.replicas[0])}"],
                 remedy="set max_slot_wal_keep_size to what the WAL volume can hold (e.g. '50GB'), never -1")
    rec.summary(f"slot invalidated after {run.invalidated_after_mb:.0f} MB of WAL (limit {run.drill_limit}"
                f"{', scaled down from the declared value' if run.scaled else ''}); the primary stayed writable")


def _r(v: float | None, nd: int = 3) -> float | None:
    return None if v is None else round(v, nd)
