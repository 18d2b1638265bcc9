"""The lost-write oracle proven on planted losses, on every installed PostgreSQL major.

Replication to the standby is blocked (a Toxiproxy blackhole on the replication link, or the
standby's walreceiver stopped), exactly N writes are committed on the primary, the primary is
SIGKILLed and the standby promoted: the oracle must report exactly N lost on an asynchronous
cluster, and zero on a synchronous one (where the N commits are cancelled while waiting for the
standby: committed locally, yet 'unknown', never 'acknowledged').
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from pytest_pgready import faults
from pytest_pgready.drills.oracle import ACK, SYNC_CANCEL_NOTE, UNKNOWN, analyze, create_table, read_rows
from pytest_pgready.drills.replication import quiesce, stop_walreceiver
from pytest_pgready.drills.writers import write_sequence

pytestmark = pytest.mark.integration

N = 25


def _prepare(cluster: Any) -> tuple[Any, Any]:
    primary, standby = cluster.primary, cluster.replicas[0]
    with primary.connect() as c:
        create_table(c)
    quiesce(primary, standby)
    return primary, standby


def _crash_and_promote(cluster: Any, primary: Any, standby: Any) -> None:
    faults.kill_postmaster(primary)
    faults.wait_gone(primary)
    standby.promote(timeout=30)


def _verdict(standby: Any, attempts: list, writer: int) -> Any:
    with standby.connect() as c:
        rows = read_rows(c, [writer])
    return analyze(attempts, rows)


def test_planted_loss_async_toxiproxy(cluster_factory) -> None:
    cluster = cluster_factory(replicas=1, pgbouncer=False, toxiproxy=True, archive=False)
    if cluster.toxiproxy is None:
        pytest.skip(cluster.toxiproxy_missing)
    primary, standby = _prepare(cluster)
    with faults.blackhole(cluster, "replication", streams=("downstream",)):
        attempts = write_sequence(primary.dsn(), 7, N, deadline_s=5)
        assert [a.outcome for a in attempts] == [ACK] * N  # async: the primary acknowledges without the standby
        _crash_and_promote(cluster, primary, standby)  # promoted while the held WAL is still in the proxy
    v = _verdict(standby, attempts, 7)
    assert len(v.lost) == N, v.evidence()
    assert v.lost == [(7, s) for s in range(1, N + 1)]
    assert not v.unexpected and not v.recovered and not v.duplicates and not v.phantom
    assert v.lost_seconds > 0


def test_planted_loss_async_walreceiver_stopped(cluster_factory) -> None:
    """The process-fault variant the FO002/FO003 drills use when Toxiproxy is absent."""
    cluster = cluster_factory(replicas=1, pgbouncer=False, toxiproxy=False, archive=False)
    primary, standby = _prepare(cluster)
    stop_walreceiver(standby)
    attempts = write_sequence(primary.dsn(), 3, N, deadline_s=5)
    _crash_and_promote(cluster, primary, standby)
    v = _verdict(standby, attempts, 3)
    assert v.acknowledged == N and len(v.lost) == N, v.evidence()


def test_planted_drill_sync_reports_zero(cluster_factory) -> None:
    cluster = cluster_factory(replicas=1, sync=True, pgbouncer=False, toxiproxy=True, archive=False)
    if cluster.toxiproxy is None:
        pytest.skip(cluster.toxiproxy_missing)
    primary, standby = _prepare(cluster)
    n = 4
    with faults.blackhole(cluster, "replication", streams=("downstream",)):
        t = time.monotonic()
        attempts = write_sequence(primary.dsn(), 9, n, deadline_s=0.5)
        assert time.monotonic() - t < n * 3  # every commit wait was bounded by the client deadline
        # PostgreSQL's documented behaviour: a cancelled sync commit returns success with a warning and is
        # committed locally. The oracle calls it unknown, never acknowledged.
        assert [a.outcome for a in attempts] == [UNKNOWN] * n
        assert all(a.note == SYNC_CANCEL_NOTE for a in attempts)
        with primary.connect() as c:
            assert c.execute("SELECT count(*) FROM pgready_oracle WHERE writer = 9").fetchone()[0] == n
        _crash_and_promote(cluster, primary, standby)
    v = _verdict(standby, attempts, 9)
    assert v.acknowledged == 0 and v.lost == [], v.evidence()
    assert v.unknown == n and v.recovered == []  # the locally committed rows never reached the standby
