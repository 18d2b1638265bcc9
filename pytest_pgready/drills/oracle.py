"""The lost-write oracle: what the clients were told, compared with what the new primary holds.

Writers (drills/writers.py) insert unique ids (writer, seq) into `pgready_oracle` and keep, per
attempt, what the client learnt:

- acknowledged: the commit returned, with no warning;
- failed: the server clearly rejected it (an error on a live connection: read-only, cancelled
  before commit …) or it was never sent;
- unknown: the connection broke after the commit was sent, or the commit returned with PostgreSQL's
  "canceling wait for synchronous replication" warning — documented behaviour: such a transaction is
  already committed locally but maybe not on the standby, so it is not an acknowledgement.

After the heal, one query reads the rows of the drill's writers on the new primary, and `analyze`
(pure) says: lost (acknowledged, absent), unexpected (present, never attempted), recovered (unknown,
landed), phantom (reported failed, yet present), duplicates; the write gap as the server saw it
(largest gap between consecutive committed_at around the fault) and as the client saw it (last
acknowledgement before the fault → first after), and the RPO as a count, seconds and WAL bytes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Sequence

ACK, FAILED, UNKNOWN = "acknowledged", "failed", "unknown"
SYNC_CANCEL_MARK = "synchronous replication"  # in both cancel warnings of SyncRepWaitForLSN
SYNC_CANCEL_NOTE = "sync-rep wait cancelled: committed locally, maybe not on the standby"

CREATE_SQL = """
CREATE TABLE IF NOT EXISTS pgready_oracle (
    writer int NOT NULL,
    seq bigint NOT NULL,
    committed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    tli int,
    lsn pg_lsn,
    PRIMARY KEY (writer, seq)
)"""

# One statement = one transaction (autocommit): sending it is sending the commit. The timeline comes
# from the name of the WAL file being written (it changes at promotion, unlike pg_control_checkpoint's).
INSERT_SQL = """
INSERT INTO pgready_oracle (writer, seq, tli, lsn)
VALUES (%s, %s, ('x' || left(pg_walfile_name(pg_current_wal_insert_lsn()), 8))::bit(32)::int,
        pg_current_wal_insert_lsn())
RETURNING extract(epoch FROM committed_at)::float8, tli, lsn::text, inet_server_port()"""

READ_SQL = """
SELECT writer, seq, extract(epoch FROM committed_at)::float8, tli, lsn::text
  FROM pgready_oracle WHERE writer = ANY(%s)"""


def lsn_int(lsn: str | None) -> int | None:
    """'16/B374D848' → integer byte position."""
    if not lsn:
        return None
    hi, _, lo = str(lsn).partition("/")
    return (int(hi, 16) << 32) | int(lo, 16)


@dataclass(slots=True)
class Attempt:
    writer: int
    seq: int
    path: str
    sent: float  # wall clock (time.time()) just before the statement was sent
    done: float  # when the outcome was known
    outcome: str
    server_port: int | None = None  # inet_server_port() of the server that acknowledged
    committed_at: float | None = None
    tli: int | None = None
    lsn: int | None = None
    note: str = ""


@dataclass(frozen=True, slots=True)
class Row:
    writer: int
    seq: int
    committed_at: float
    tli: int | None
    lsn: int | None


def classify(*, returned: bool, broken: bool, notices: Sequence[str] = ()) -> tuple[str, str]:
    """The outcome of one autocommit INSERT from what the client saw. Pure."""
    if returned:
        if any(SYNC_CANCEL_MARK in n for n in notices):
            return UNKNOWN, SYNC_CANCEL_NOTE
        return ACK, ""
    if broken:
        return UNKNOWN, "connection lost after the commit was sent"
    return FAILED, "rejected by the server"


def create_table(conn: Any) -> None:
    conn.execute(CREATE_SQL)


def read_rows(conn: Any, writers: Iterable[int]) -> list[Row]:
    """The rows of these writers on one server: the oracle's one verification query."""
    rows = conn.execute(READ_SQL, (sorted(set(writers)),)).fetchall()
    return [Row(int(w), int(s), float(t), tli, lsn_int(lsn)) for w, s, t, tli, lsn in rows]


@dataclass
class Verdict:
    attempts: int
    acknowledged: int
    failed: int
    unknown: int
    present: int
    lost: list[tuple[int, int]] = field(default_factory=list)
    unexpected: list[tuple[int, int]] = field(default_factory=list)
    recovered: list[tuple[int, int]] = field(default_factory=list)
    phantom: list[tuple[int, int]] = field(default_factory=list)
    duplicates: list[tuple[int, int]] = field(default_factory=list)
    lost_seconds: float = 0.0
    lost_wal_bytes: int | None = None
    server_gap_s: float | None = None
    server_gap_at: list[float] | None = None
    client_gap_s: float | None = None
    last_ack_before: float | None = None
    first_ack_after: float | None = None
    resolution_s: float | None = None

    @property
    def write_gap_s(self) -> float | None:
        """The conservative write gap: the larger of what the server stored and what the client saw."""
        vals = [v for v in (self.server_gap_s, self.client_gap_s) if v is not None]
        return max(vals) if vals else None

    def evidence(self, limit: int = 20) -> dict[str, Any]:
        d = asdict(self)
        for k in ("lost", "unexpected", "recovered", "phantom", "duplicates"):
            items = d.pop(k)
            d[f"{k}_count"] = len(items)
            if items:
                d[k] = [f"writer {w} seq {s}" for w, s in items[:limit]]
        d["write_gap_s"] = self.write_gap_s
        for k, v in list(d.items()):
            if isinstance(v, float):
                d[k] = round(v, 4)
        return d


def analyze(attempts: Sequence[Attempt], rows: Sequence[Row], *, fault_at: float | None = None,
            promotion_lsn: int | None = None, old_tli: int | None = None, new_port: int | None = None,
            window_s: float = 1.0) -> Verdict:
    """Compare the clients' ledger with the rows found on the new primary. Pure.

    fault_at: when the fault was injected (wall clock): the gaps are measured around it.
    promotion_lsn / old_tli: where the new timeline forked, for the RPO in WAL bytes.
    new_port: the new primary's port; the client's gap then runs from the last acknowledgement by any
    other server to the first by the new primary (a clean shutdown keeps acknowledging for a moment).
    """
    att = {(a.writer, a.seq): a for a in attempts}
    counts = Counter((r.writer, r.seq) for r in rows)
    present = set(counts)
    acked = {k for k, a in att.items() if a.outcome == ACK}
    unknown = {k for k, a in att.items() if a.outcome == UNKNOWN}
    failed = {k for k, a in att.items() if a.outcome == FAILED}
    v = Verdict(attempts=len(att), acknowledged=len(acked), failed=len(failed), unknown=len(unknown),
                present=len(present))
    v.lost = sorted(acked - present)
    v.unexpected = sorted(present - set(att))
    v.recovered = sorted(unknown & present)
    v.phantom = sorted(failed & present)
    v.duplicates = sorted(k for k, c in counts.items() if c > 1)
    if v.lost:
        lost = [att[k] for k in v.lost]
        v.lost_seconds = max(a.done for a in lost) - min(a.sent for a in lost)
        lsns = [a.lsn for a in lost if a.lsn is not None and (old_tli is None or a.tli == old_tli)]
        if promotion_lsn is not None and lsns:
            v.lost_wal_bytes = max(0, max(lsns) - promotion_lsn)
    if fault_at is not None:
        _gaps(v, [att[k] for k in acked], rows, fault_at, window_s, new_port)
    return v


def _gaps(v: Verdict, acks: list[Attempt], rows: Sequence[Row], fault_at: float, window_s: float,
          new_port: int | None) -> None:
    times = sorted(r.committed_at for r in rows if r.committed_at >= fault_at - window_s)
    if len(times) >= 2:
        i = max(range(len(times) - 1), key=lambda j: times[j + 1] - times[j])
        v.server_gap_s = times[i + 1] - times[i]
        v.server_gap_at = [times[i], times[i + 1]]
    after = [a.done for a in acks if a.done > fault_at and (new_port is None or a.server_port == new_port)]
    if after:
        v.first_ack_after = min(after)
    before = [a.done for a in acks if (a.done <= fault_at if new_port is None else
                                        a.server_port != new_port and a.done <= (v.first_ack_after or a.done))]
    if before:
        v.last_ack_before = max(before)
    if before and after:
        v.client_gap_s = max(0.0, v.first_ack_after - v.last_ack_before)
    v.resolution_s = resolution(acks, fault_at - window_s, fault_at)


def resolution(acks: Iterable[Attempt], start: float, end: float) -> float | None:
    """The largest interval between consecutive acknowledgements in [start, end]: how finely the
    writers sample time, i.e. the resolution of a measured write gap."""
    t = sorted(a.done for a in acks if start <= a.done <= end)
    if len(t) < 2:
        return None
    return max(b - a for a, b in zip(t, t[1:]))


def acks_from(attempts: Iterable[Attempt], port: int, since: float) -> list[Attempt]:
    """Acknowledgements by the server on `port` of writes it executed at or after `since` (server clock:
    committed_at; the drills run on one host, so it is the client's clock too)."""
    return [a for a in attempts if a.outcome == ACK and a.server_port == port
            and a.committed_at is not None and a.committed_at >= since]


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a small sample: no interpolation invents a trial."""
    import math

    if not values:
        raise ValueError("no values")
    s = sorted(values)
    k = max(1, math.ceil(p / 100 * len(s)))
    return s[k - 1]
