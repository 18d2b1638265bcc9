"""The oracle's pure parts: outcome classification, the verdict, gaps, RPO figures, percentiles."""

from __future__ import annotations

import socket
import threading

import pytest

from pytest_pgready.drills.oracle import (ACK, FAILED, SYNC_CANCEL_NOTE, UNKNOWN, Attempt, Row, acks_from, analyze,
                                         classify, lsn_int, percentile, resolution)
from pytest_pgready.drills.writers import client_params, shutdown_fd


def att(w: int, s: int, outcome: str = ACK, sent: float = 0.0, done: float | None = None, **kw) -> Attempt:
    return Attempt(w, s, "primary", sent, sent + 0.001 if done is None else done, outcome, **kw)


def row(w: int, s: int, t: float = 0.0) -> Row:
    return Row(w, s, t, 1, None)


# --- classification ---------------------------------------------------------------------------------
def test_returned_commit_is_acknowledged() -> None:
    assert classify(returned=True, broken=False) == (ACK, "")


def test_cancelled_sync_commit_is_unknown_not_acknowledged() -> None:
    warning = "canceling wait for synchronous replication due to user request"
    assert classify(returned=True, broken=False, notices=[warning]) == (UNKNOWN, SYNC_CANCEL_NOTE)
    # the termination variant (the connection then closes) carries the same phrase
    term = "canceling the wait for synchronous replication and terminating connection due to administrator command"
    assert classify(returned=False, broken=True, notices=[term])[0] == UNKNOWN


def test_broken_connection_after_send_is_unknown() -> None:
    assert classify(returned=False, broken=True)[0] == UNKNOWN


def test_error_on_live_connection_is_failed() -> None:
    assert classify(returned=False, broken=False)[0] == FAILED


# --- verdict ------------------------------------------------------------------------------------------
def test_lost_unexpected_recovered_phantom_duplicates() -> None:
    attempts = [att(1, 1), att(1, 2), att(1, 3, UNKNOWN), att(1, 4, UNKNOWN), att(1, 5, FAILED), att(2, 1)]
    rows = [row(1, 1), row(1, 3), row(1, 5), row(2, 1), row(2, 1), row(3, 9)]
    v = analyze(attempts, rows)
    assert v.lost == [(1, 2)]
    assert v.recovered == [(1, 3)]
    assert v.phantom == [(1, 5)]
    assert v.duplicates == [(2, 1)]
    assert v.unexpected == [(3, 9)]
    assert (v.acknowledged, v.unknown, v.failed) == (3, 2, 1)


def test_nothing_lost_when_every_ack_is_present() -> None:
    v = analyze([att(1, s) for s in range(1, 4)], [row(1, s) for s in range(1, 4)])
    assert v.lost == [] and v.lost_seconds == 0.0 and v.lost_wal_bytes is None


def test_rpo_seconds_and_wal_bytes_of_the_lost_writes() -> None:
    a = [att(1, 1, sent=10.0, tli=1, lsn=1000), att(1, 2, sent=10.5, done=10.6, tli=1, lsn=5000),
         att(1, 3, sent=11.0, done=11.2, tli=1, lsn=9000)]
    v = analyze(a, [row(1, 1)], promotion_lsn=4000, old_tli=1)
    assert v.lost == [(1, 2), (1, 3)]
    assert v.lost_seconds == pytest.approx(0.7)  # first lost sent → last lost acknowledged
    assert v.lost_wal_bytes == 5000


def test_lost_wal_bytes_ignores_writes_of_another_timeline() -> None:
    v = analyze([att(1, 1, tli=2, lsn=9000)], [], promotion_lsn=4000, old_tli=1)
    assert v.lost_wal_bytes is None


def test_server_and_client_gaps_around_the_fault() -> None:
    old, new = 5001, 5002
    acks = [att(1, s, sent=t, done=t + 0.002, server_port=old) for s, t in enumerate([9.0, 9.5, 9.99], 1)]
    acks += [att(1, s, sent=t, done=t + 0.002, server_port=new) for s, t in enumerate([11.2, 11.3], 4)]
    rows = [row(1, s, a.sent) for s, a in enumerate(acks, 1)]
    v = analyze(acks, rows, fault_at=10.0, new_port=new)
    assert v.server_gap_s == pytest.approx(11.2 - 9.99)
    assert v.client_gap_s == pytest.approx(11.202 - 9.992)
    assert v.write_gap_s == pytest.approx(max(v.server_gap_s, v.client_gap_s))
    assert v.resolution_s == pytest.approx(0.5)  # largest interval between acks in the second before the fault


def test_client_gap_counts_old_primary_acks_after_the_fault() -> None:
    """A clean shutdown keeps acknowledging for a moment: the gap starts at the old primary's last ack."""
    acks = [att(1, 1, sent=9.9, done=9.91, server_port=1), att(1, 2, sent=10.1, done=10.2, server_port=1),
            att(1, 3, sent=10.8, done=10.9, server_port=2)]
    v = analyze(acks, [row(1, s, a.sent) for s, a in enumerate(acks, 1)], fault_at=10.0, new_port=2)
    assert v.client_gap_s == pytest.approx(0.7)


def test_evidence_lists_objects_and_counts() -> None:
    v = analyze([att(1, s) for s in range(1, 30)], [])
    ev = v.evidence(limit=5)
    assert ev["lost_count"] == 29 and ev["lost"][0] == "writer 1 seq 1" and len(ev["lost"]) == 5
    assert "unexpected" not in ev and ev["unexpected_count"] == 0


def test_acks_from_the_old_primary_after_promotion() -> None:
    a = [att(1, 1, server_port=1, committed_at=9.0), att(1, 2, server_port=1, committed_at=10.5),
         att(1, 3, server_port=2, committed_at=10.6), att(1, 4, UNKNOWN, server_port=1, committed_at=11.0)]
    assert [x.seq for x in acks_from(a, 1, since=10.0)] == [2]


def test_resolution_needs_two_samples() -> None:
    assert resolution([att(1, 1, sent=1.0)], 0, 2) is None
    assert resolution([att(1, 1, sent=1.0), att(1, 2, sent=1.05)], 0, 2) == pytest.approx(0.05)


def test_lsn_and_percentile() -> None:
    assert lsn_int("16/B374D848") == (0x16 << 32) | 0xB374D848
    assert lsn_int(None) is None
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([1.0, 2.0], 95) == 2.0
    assert percentile([5.0], 50) == 5.0
    with pytest.raises(ValueError):
        percentile([], 50)


# --- writers' plumbing ----------------------------------------------------------------------------------
def test_writer_connect_timeout_is_bounded() -> None:
    assert client_params("")["connect_timeout"] == 5
    assert client_params("connect_timeout=0")["connect_timeout"] == 5  # 0 = forever: not for a harness
    assert client_params("connect_timeout=1 keepalives=1") == {"connect_timeout": 2, "keepalives": "1"}
    assert client_params("connect_timeout=60")["connect_timeout"] == 5


def test_shutdown_fd_unblocks_a_reader_without_closing_its_fd() -> None:
    a, b = socket.socketpair()
    got: list[bytes] = []
    t = threading.Thread(target=lambda: got.append(a.recv(10)))
    t.start()
    shutdown_fd(a.fileno())
    t.join(5)
    assert not t.is_alive() and got == [b""]
    assert a.fileno() >= 0  # still owned by its user
    a.close()
    b.close()
