"""Point-in-time recovery drills: the archive is complete, and recovery stops exactly where asked.

- archive_continuity (PITR001): switch WAL, wait for the archiver, then prove there is no missing
  segment between the latest base backup and now, following timeline history files.
- build_lab + recover (PITR002/003/004/006): a drill cluster with a base backup and marker rows
  committed one by one (each with its commit time, LSN, xid, and a named restore point); copies of
  the base backup recovered to each kind of target and the marker rows counted.
- measure_archive_rpo (PITR005): how long committed data waits until its WAL is in the archive.

Results list their problems; the suites turn them into verdicts.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
import shlex
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cluster import config as conf
from ..cluster.local import LocalCluster, LocalNode
from .backup_physical import BaseBackup, take_base_backup
from .scratch import add_copy, copy_tree, discard, log_lines, wait_ready
from .toolrun import lsn_int

MARKER_TABLE = "pgready_pitr_marker"
RESTORE_POINT = "pgready_after_marker_3"
_LONG_PAGE_HEADER = 40  # SizeOfXLogLongPHD: a segment holding only its header holds no WAL record
_SEG = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})(\.partial)?$")
_HIST = re.compile(r"^([0-9A-F]{8})\.history$")
_BACKUP = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})\.[0-9A-F]{8}\.backup$")


# ------------------------------------------------------------------------------------------ WAL names
def segs_per_id(seg_size: int) -> int:
    return 0x100000000 // seg_size


def parse_wal_name(name: str, seg_size: int) -> tuple[int, int] | None:
    """(timeline, segment number) of a WAL segment file name (also of a .partial or .backup name)."""
    m = _SEG.match(name) or _BACKUP.match(name)
    if not m:
        return None
    return int(m.group(1), 16), int(m.group(2), 16) * segs_per_id(seg_size) + int(m.group(3), 16)


def wal_name(tli: int, segno: int, seg_size: int) -> str:
    per = segs_per_id(seg_size)
    return f"{tli:08X}{segno // per:08X}{segno % per:08X}"


def parse_history(text: str) -> list[tuple[int, int]]:
    """(parent timeline, switch LSN) entries of a timeline history file, oldest first."""
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].isdigit() and "/" in parts[1]:
            out.append((int(parts[0]), lsn_int(parts[1])))
    return out


def timeline_ranges(tli: int, history: list[tuple[int, int]], seg_size: int) -> list[tuple[int, int, int | None]]:
    """[(timeline, first segment, last segment or None)] of the chain leading to `tli`: a segment that
    holds a switch point belongs to both the parent and the child timeline."""
    out, begin = [], 0
    for parent, switch in history:
        end = switch // seg_size
        out.append((parent, begin, end))
        begin = end
    out.append((tli, begin, None))
    return out


@dataclass
class ArchiveGaps:
    start: str
    end: str
    checked: int
    missing: list[str]
    start_reason: str


def find_gaps(names: list[str], histories: dict[int, str], tli: int, end_segno: int, seg_size: int) -> ArchiveGaps:
    """Pure: which segments between the latest base backup (.backup file) on this timeline chain, or the
    oldest archived segment, and `end_segno` are absent from the archive listing `names`."""
    ranges = timeline_ranges(tli, parse_history(histories.get(tli, "")), seg_size)
    chain = {t for t, _, _ in ranges}

    def covering(segno: int) -> list[int]:
        return [t for t, b, e in ranges if segno >= b and (e is None or segno <= e)]

    have: set[tuple[int, int]] = set()
    backups: list[int] = []
    for n in names:
        p = parse_wal_name(n, seg_size)
        if p is None or p[0] not in chain:
            continue
        if n.endswith(".backup"):
            backups.append(p[1])
        elif not n.endswith(".partial"):
            have.add(p)
    if backups and max(backups) <= end_segno:
        start, why = max(backups), "the latest base backup (.backup file in the archive)"
    elif have:
        start, why = min(s for _, s in have), "the oldest archived segment (no .backup file in the archive)"
    else:
        start, why = end_segno, "nothing is archived"
    missing = []
    for segno in range(start, end_segno + 1):
        tlis = covering(segno)
        if not any((t, segno) in have for t in tlis):
            missing.append(wal_name(max(tlis), segno, seg_size))
    if tli > 1 and f"{tli:08X}.history" not in names:  # recovery cannot follow onto this timeline without it
        missing.append(f"{tli:08X}.history")
    return ArchiveGaps(wal_name(max(covering(start)), start, seg_size), wal_name(tli, end_segno, seg_size),
                       end_segno - start + 1, missing, why)


# ------------------------------------------------------------------------------------------ PITR001
ARCHIVER_SQL = """
SELECT archived_count, last_archived_wal, failed_count, last_failed_wal, current_setting('archive_mode'),
       (SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size')
  FROM pg_stat_archiver
"""


@dataclass
class Continuity:
    archive_dir: str
    archive_mode: str = ""
    switched: str = ""
    archiver: dict[str, Any] = field(default_factory=dict)
    gaps: ArchiveGaps | None = None
    error: str | None = None

    def problems(self) -> list[str]:
        out = []
        if self.archive_mode not in ("on", "always"):
            out.append(f"archive_mode = {self.archive_mode}: no WAL is archived, point-in-time recovery is impossible")
        if self.error:
            out.append(self.error)
        if self.gaps and self.gaps.missing:
            out.append(f"{len(self.gaps.missing)} WAL files missing from the archive between {self.gaps.start} and "
                       f"{self.gaps.end}: {', '.join(self.gaps.missing[:10])}")
        return out

    def objects(self) -> list[str]:
        missing = list(self.gaps.missing) if self.gaps else []
        return missing or (["archive_mode"] if self.archive_mode not in ("on", "always") else ["archiver"])


def switch_and_wait(node: Any, timeout: float = 60) -> tuple[str, dict[str, Any], str | None]:
    """pg_switch_wal(), then wait until the archiver reports that segment done (or failing).
    Returns (segment name, archiver stats, error)."""
    with node.connect(dbname="postgres") as c:
        seg_size = int(c.execute("SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size'"
                                 ).fetchone()[0])
        lsn, name = c.execute("SELECT s::text, pg_walfile_name(s) FROM pg_switch_wal() s").fetchone()
        # An empty current segment is not switched (PostgreSQL 16+ then return a position just past its page
        # header): the segment that must reach the archive is the previous one.
        pos, tli = lsn_int(lsn), int(name[:8], 16)
        segno = pos // seg_size - (1 if pos % seg_size <= _LONG_PAGE_HEADER else 0)
        switched = wal_name(tli, segno, seg_size)
        target = (tli, segno)
        deadline = time.monotonic() + timeout
        while True:
            ac, last, fc, last_failed, *_ = c.execute(ARCHIVER_SQL).fetchone()
            stats = {"archived_count": ac, "last_archived_wal": last, "failed_count": fc,
                     "last_failed_wal": last_failed}
            got = parse_wal_name((last or "")[:24], seg_size) if last else None
            if got is not None and got[0] == target[0] and got[1] >= target[1]:
                return switched, stats, None
            if time.monotonic() > deadline:
                why = f"; the archive command keeps failing (last failure: {last_failed})" if fc and last_failed else ""
                return switched, stats, f"the archiver did not report {switched} archived within {timeout:.0f}s{why}"
            time.sleep(0.05)


def archive_continuity(node: Any, archive_dir: Path, timeout: float = 60) -> Continuity:
    res = Continuity(str(archive_dir))
    with node.connect(dbname="postgres") as c:
        *_, res.archive_mode, seg_size = c.execute(ARCHIVER_SQL).fetchone()
    if res.archive_mode not in ("on", "always"):
        return res
    res.switched, res.archiver, res.error = switch_and_wait(node, timeout)
    try:
        names = os.listdir(archive_dir)
    except OSError as e:
        res.error = f"cannot list the archive {archive_dir}: {e.strerror}"
        return res
    tli, end = parse_wal_name(res.switched, int(seg_size))
    histories = {}
    for n in names:
        m = _HIST.match(n)
        if m:
            try:
                histories[int(m.group(1), 16)] = (archive_dir / n).read_text(errors="replace")
            except OSError:
                pass
    res.gaps = find_gaps(names, histories, tli, end, int(seg_size))
    return res


# ------------------------------------------------------------------------------------------ the lab
@dataclass
class Marker:
    n: int
    xid: str
    lsn: str
    at: dt.datetime  # server clock, read after the commit returned
    restore_point: str | None = None


@dataclass
class Lab:
    """A drill cluster with a base backup taken before marker rows 1..N (row 0 is in the backup)."""

    cluster: LocalCluster
    host: LocalCluster
    backup: BaseBackup
    markers: list[Marker]
    archive_dir: Path
    seg_size: int
    segment_of: dict[int, str] = field(default_factory=dict)  # marker → WAL segment holding its commit

    def marker(self, n: int) -> Marker:
        return next(m for m in self.markers if m.n == n)

    def rows_through(self, n: int) -> list[int]:
        return [0] + [m.n for m in self.markers if m.n <= n]


def build_lab(cluster: LocalCluster, host: LocalCluster, markers: int = 6, switch_after: tuple[int, ...] = (2, 4),
              gap: float = 0.02) -> Lab:
    """Base backup, then markers committed one by one; WAL switched after some markers so that they live
    in different segments (PITR004 removes one); everything archived before returning."""
    from psycopg import sql

    table = sql.Identifier(MARKER_TABLE)
    with cluster.primary.connect() as c:
        c.execute(sql.SQL("CREATE TABLE {} (n int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())"
                          ).format(table))
        c.execute(sql.SQL("INSERT INTO {} (n) VALUES (0)").format(table))
        seg_size = int(c.execute("SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size'"
                                 ).fetchone()[0])
    backup = take_base_backup(cluster.primary, host, "pitr-base")
    out: list[Marker] = []
    segment_of: dict[int, str] = {}
    with cluster.primary.connect(autocommit=False) as tx, cluster.primary.connect() as c:
        for n in range(1, markers + 1):
            time.sleep(gap)  # commit times strictly apart from the previous marker's read-back time
            tx.execute(sql.SQL("INSERT INTO {} (n) VALUES (%s)").format(table), (n,))
            xid = tx.execute("SELECT pg_current_xact_id()::text").fetchone()[0]
            tx.commit()
            at, lsn, seg = c.execute("SELECT clock_timestamp(), pg_current_wal_insert_lsn(), "
                                     "pg_walfile_name(pg_current_wal_insert_lsn())").fetchone()
            rp = None
            if n == 3:
                c.execute("SELECT pg_create_restore_point(%s)", (RESTORE_POINT,))
                rp = RESTORE_POINT
            out.append(Marker(n, str(xid), str(lsn), at, rp))
            segment_of[n] = seg
            time.sleep(gap)
            if n in switch_after:
                c.execute("SELECT pg_switch_wal()")
    _, _, err = switch_and_wait(cluster.primary)
    if err:
        raise RuntimeError(f"PITR lab: {err}")
    return Lab(cluster, host, backup, out, cluster.archive_dir, seg_size, segment_of)


@dataclass
class Recovery:
    label: str
    target: dict[str, str]
    expected: list[int] | None = None  # None: must not promote
    outcome: str = ""  # primary | exited | timeout | failed
    rows: list[int] | None = None
    seconds: float = 0.0
    timeline: int | None = None
    replayed_bytes: int | None = None
    log: list[str] = field(default_factory=list)

    def problem(self) -> str | None:
        if self.expected is None:
            if self.outcome == "primary":
                return (f"{self.label}: promoted past an unreachable target (rows {_rows(self.rows)}) instead of "
                        f"refusing")
            return None
        if self.outcome != "primary":
            why = " | ".join(self.log[-2:]) or self.outcome
            return f"{self.label}: recovery did not reach the target ({why})"
        if self.rows != self.expected:
            extra = sorted(set(self.rows or []) - set(self.expected))
            lost = sorted(set(self.expected) - set(self.rows or []))
            return (f"{self.label}: recovered rows {_rows(self.rows)}, expected {_rows(self.expected)}"
                    + (f"; committed after the target but present: {extra}" if extra else "")
                    + (f"; committed before the target but missing: {lost}" if lost else ""))
        return None

    def evidence(self) -> dict[str, Any]:
        return {"label": self.label, "target": self.target, "outcome": self.outcome, "rows": self.rows,
                "expected": self.expected if self.expected is not None else "no promotion",
                "seconds": round(self.seconds, 3), "timeline": self.timeline,
                **({"log": self.log[-3:]} if self.log else {})}


def _rows(rows: list[int] | None) -> str:
    return "none" if rows is None else "[" + ", ".join(map(str, rows)) + "]"


def restore_command(dirs: list[Path]) -> str:
    """Try each archive directory in turn (a branch's own archive first)."""
    return " || ".join(f"cp {shlex.quote(str(d))}/%f %p" for d in dirs) if len(dirs) > 1 else \
        conf.restore_command(dirs[0])


def recover(lab: Lab, label: str, target: dict[str, str], expected: list[int] | None, *,
            archive_dirs: list[Path] | None = None, archive_to: Path | None = None,
            archive_command: str | None = None, keep: bool = False, timeout: float = 90) -> tuple[Recovery, LocalNode | None]:
    """Recover a copy of the lab's base backup to `target` (recovery_* settings) with the archive's WAL and
    recovery_target_action = promote. With `keep` the promoted node is returned running, else discarded."""
    rec = Recovery(label, dict(target), expected)
    name = "pitr-" + re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")[:32] + "-" + secrets.token_hex(2)
    settings = {"restore_command": conf.quote(restore_command(archive_dirs or [lab.archive_dir])),
                "recovery_target_action": "'promote'"}
    settings.update({k: conf.quote(v) for k, v in target.items()})
    if archive_to is not None:
        settings["archive_mode"] = "on"
        settings["archive_command"] = conf.quote(archive_command or conf.archive_command(archive_to))
    dst = lab.host.workdir / name
    copy_tree(lab.backup.path, dst)
    node = add_copy(lab.host, dst, name, user=lab.backup.user, dbname="app", settings=settings, signal="recovery")
    t0 = time.perf_counter()
    try:
        node.start(wait=False)
    except RuntimeError as e:
        rec.outcome, rec.log = "failed", [str(e)[:300]]
        discard(node)
        return rec, None
    rec.outcome = wait_ready(node, timeout)
    rec.seconds = time.perf_counter() - t0
    rec.log = log_lines(node, r"FATAL|PANIC|redo done at|recovery stopping|consistent recovery state", 6)
    if rec.outcome == "primary":
        from psycopg import sql

        with node.connect(dbname="app") as c:
            rec.rows = [r[0] for r in c.execute(sql.SQL("SELECT n FROM {} ORDER BY n").format(
                sql.Identifier(MARKER_TABLE))).fetchall()]
            rec.timeline = int(c.execute("SELECT pg_walfile_name(pg_current_wal_lsn())").fetchone()[0][:8], 16)
        done = next((ln for ln in rec.log if "redo done at" in ln), None)
        m = re.search(r"redo done at ([0-9A-F]+/[0-9A-F]+)", done or "")
        if m:
            rec.replayed_bytes = max(0, lsn_int(m.group(1)) - lsn_int(lab.backup.start_lsn))
    if keep and rec.outcome == "primary":
        return rec, node
    discard(node)
    return rec, None


def recover_many(lab: Lab, cases: list[tuple[str, dict[str, str], list[int] | None, list[Path] | None]],
                 parallel: int = 2) -> list[Recovery]:
    """Independent recoveries, `parallel` at a time (each is its own copy and server); results in order."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max(1, parallel)) as ex:
        futures = [ex.submit(recover, lab, label, target, expected, archive_dirs=dirs)
                   for label, target, expected, dirs in cases]
        return [f.result()[0] for f in futures]


# ------------------------------------------------------------------------------------------ targets
def time_cases(lab: Lab, n: int = 3) -> list[tuple[str, dict[str, str], list[int]]]:
    m = lab.marker(n)
    return [(f"recovery_target_time after marker {n}", {"recovery_target_time": m.at.isoformat()},
             lab.rows_through(n))]


def exact_cases(lab: Lab) -> list[tuple[str, dict[str, str], list[int]]]:
    m2, m4 = lab.marker(2), lab.marker(4)
    return [
        ("recovery_target_lsn after marker 2", {"recovery_target_lsn": m2.lsn}, lab.rows_through(2)),
        ("recovery_target_xid of marker 4, inclusive", {"recovery_target_xid": m4.xid,
                                                        "recovery_target_inclusive": "true"}, lab.rows_through(4)),
        ("recovery_target_xid of marker 4, exclusive", {"recovery_target_xid": m4.xid,
                                                        "recovery_target_inclusive": "false"}, lab.rows_through(3)),
        (f"recovery_target_name {RESTORE_POINT}", {"recovery_target_name": RESTORE_POINT}, lab.rows_through(3)),
        ("recovery_target immediate", {"recovery_target": "immediate"}, [0]),
    ]


def gapped_archive(lab: Lab, marker: int = 3) -> tuple[Path, str]:
    """A copy of the archive without the segment that holds `marker`'s commit."""
    d = lab.host.workdir / "archive-gap"
    if not d.exists():
        copy_tree(lab.archive_dir, d)
    seg = lab.segment_of[marker]
    (d / seg).unlink(missing_ok=True)
    return d, seg


def unreachable_cases(lab: Lab) -> list[tuple[str, dict[str, str], list[Path] | None]]:
    """Targets recovery cannot reach. "Before the backup's end" is given as an LSN: a *time* target is only
    compared with commit records, so one earlier than the backup is noticed only when a commit lies inside
    the backup window; otherwise PostgreSQL promotes at the backup's end (not a property of the target)."""
    last = lab.markers[-1]
    gap_dir, seg = gapped_archive(lab, 3)
    return [
        ("a time beyond the archived WAL", {"recovery_target_time": (last.at + dt.timedelta(days=1)).isoformat()},
         None),
        (f"marker {last.n} with segment {seg} missing from the archive", {"recovery_target_xid": last.xid}, [gap_dir]),
        ("an unknown restore point name", {"recovery_target_name": "pgready_no_such_restore_point"}, None),
        ("an LSN before the backup's end", {"recovery_target_lsn": lab.backup.start_lsn}, None),
    ]


# ------------------------------------------------------------------------------------------ PITR006
@dataclass
class TimelineFollow:
    branch: Recovery
    follow: Recovery | None = None
    new_rows: list[int] = field(default_factory=list)
    branch_timeline: int | None = None
    error: str | None = None

    def problems(self) -> list[str]:
        if self.error:
            return [self.error]
        p = self.branch.problem()
        if p:
            return [f"the branch could not be made: {p}"]
        if self.follow is None:
            return ["no follow-up recovery ran"]
        p = self.follow.problem()
        if p:
            return [p + f" (the branch is timeline {self.branch_timeline}; it was not followed)"
                    if self.follow.rows and not set(self.new_rows) <= set(self.follow.rows) else p]
        return []


def timeline_follow(lab: Lab, *, branch_after: int = 3, new_rows: tuple[int, ...] = (101, 102),
                    archive_command: str | None = None, timeout: float = 60) -> TimelineFollow:
    """Make a new timeline like a failover or a PITR does (recover to marker `branch_after`, promote,
    write rows, archive), then recover the base backup again with recovery_target_timeline = 'latest':
    it must end with the branch's rows and none of the old timeline's later rows.
    `archive_command` replaces the branch's archive command (to prove the check fails when it drops
    timeline history files)."""
    from psycopg import sql

    tl_archive = lab.host.workdir / f"archive-branch-{secrets.token_hex(3)}"
    tl_archive.mkdir(mode=0o700)
    lab.host.user.chown(tl_archive)
    cmd = archive_command.replace("{archive}", shlex.quote(str(tl_archive))) if archive_command else None
    branch, node = recover(lab, f"branch at marker {branch_after}", {
        "recovery_target_xid": lab.marker(branch_after).xid, "recovery_target_inclusive": "true"},
        lab.rows_through(branch_after), archive_to=tl_archive, archive_command=cmd, keep=True)
    res = TimelineFollow(branch, new_rows=list(new_rows), branch_timeline=branch.timeline)
    if node is None:
        return res
    try:
        with node.connect(dbname="app") as c:
            for n in new_rows:
                c.execute(sql.SQL("INSERT INTO {} (n) VALUES (%s)").format(sql.Identifier(MARKER_TABLE)), (n,))
        _, _, err = switch_and_wait(node, timeout)
        if err:
            res.error = f"the branch's WAL was not archived: {err}"
            return res
    finally:
        discard(node)
    expected = sorted(lab.rows_through(branch_after) + list(new_rows))
    res.follow, _ = recover(lab, "recovery_target_timeline latest", {"recovery_target_timeline": "latest"},
                            expected, archive_dirs=[tl_archive, lab.archive_dir])
    return res


# ------------------------------------------------------------------------------------------ PITR005
RPO_TABLE = "pgready_rpo_probe"


@dataclass
class ArchiveRpo:
    archive_timeout: float
    write_seconds: float = 0.0
    commits: int = 0
    wal_bytes: int = 0
    segments_filled: int = 0
    observed_max: float | None = None  # worst commit → archived delay among segments that filled under load
    tail_seconds: float | None = None  # the last, unfilled segment: measured (natural switch) or projected
    tail_measured: bool = False
    switch_latency: float | None = None  # pg_switch_wal → file in the archive
    notes: list[str] = field(default_factory=list)

    @property
    def rpo_seconds(self) -> float | None:
        """Data at risk if the primary is lost: the longest a committed row waits for its WAL to be archived."""
        parts = [x for x in (self.observed_max, self.tail_seconds) if x is not None]
        if self.tail_seconds is None and not self.tail_measured:
            return None  # archive_timeout = 0: a quiet primary's last segment waits until it fills
        return max(parts) if parts else None


def measure_archive_rpo(cluster: LocalCluster, *, seconds: float = 3.0, max_segments: int = 3,
                        natural_wait_cap: float = 12.0, timeout: float = 60) -> ArchiveRpo:
    """A bounded writer commits rows for `seconds` (stopping early after `max_segments` full segments)
    while a watcher notes when each WAL segment appears in the archive. A commit's delay is the time from
    its acknowledgement to its segment's arrival. The last segment only leaves when archive_timeout
    forces a switch: waited for when archive_timeout <= natural_wait_cap, else projected as
    archive_timeout + the measured latency of a forced switch."""
    from psycopg import sql

    node, archive = cluster.primary, cluster.archive_dir
    with node.connect() as c:
        timeout_s = float(c.execute("SELECT setting::float FROM pg_settings WHERE name = 'archive_timeout'"
                                    ).fetchone()[0])
        seg_size = int(c.execute("SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size'"
                                 ).fetchone()[0])
        c.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} (id bigserial PRIMARY KEY, pad text)").format(
            sql.Identifier(RPO_TABLE)))
        # A checkpointer that first slept while the server was still starting up computed its nap without
        # archive_timeout (up to checkpoint_timeout); wake it so the drill sees the steady state.
        c.execute("CHECKPOINT")
    switch_and_wait(node, timeout)  # start from an empty current segment
    res = ArchiveRpo(timeout_s)
    seen: dict[str, float] = {}
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            now = time.monotonic()
            try:
                for n in os.listdir(archive):
                    if _SEG.match(n) and n not in seen:
                        seen[n] = now
            except OSError:
                pass
            stop.wait(0.05)

    for n in os.listdir(archive):
        seen[n] = 0.0
    watcher = threading.Thread(target=watch, name="pgready-archive-watch", daemon=True)
    watcher.start()
    commits: list[tuple[float, str]] = []
    try:
        with node.connect() as c:
            start_lsn = lsn_int(c.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()[0])
            first_seg = c.execute("SELECT pg_walfile_name(pg_current_wal_insert_lsn())").fetchone()[0]
            ins = sql.SQL("INSERT INTO {} (pad) SELECT repeat(md5(random()::text), 32) FROM generate_series(1, 20)"
                          ).format(sql.Identifier(RPO_TABLE))
            t0 = time.monotonic()
            while time.monotonic() - t0 < seconds:
                c.execute(ins)
                lsn, seg = c.execute("SELECT pg_current_wal_insert_lsn()::text, "
                                     "pg_walfile_name(pg_current_wal_insert_lsn())").fetchone()
                commits.append((time.monotonic(), seg))
                if (lsn_int(lsn) - start_lsn) // seg_size >= max_segments:
                    break
            res.write_seconds = time.monotonic() - t0
            res.wal_bytes = lsn_int(lsn) - start_lsn
        res.commits = len(commits)
        last_seg = commits[-1][1] if commits else first_seg
        filled = {s for _, s in commits if s != last_seg}
        res.segments_filled = len(filled)
        # wait for the filled segments (archiver backlog), then for the tail
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not filled <= set(seen):
            time.sleep(0.05)
        late = sorted(filled - set(seen))
        if late:
            res.notes.append(f"{len(late)} filled segments not archived within {timeout:.0f}s: {', '.join(late[:5])}")
            res.observed_max = max(time.monotonic() - t for t, s in commits if s in late)
        delays = [seen[s] - t for t, s in commits if s in filled and s in seen]
        if delays:
            res.observed_max = max(res.observed_max or 0.0, max(delays))
        if 0 < timeout_s <= natural_wait_cap:
            deadline = time.monotonic() + timeout_s + 5
            while time.monotonic() < deadline and last_seg not in seen:
                time.sleep(0.05)
            if last_seg in seen:
                first = min((t for t, s in commits if s == last_seg), default=seen[last_seg])
                res.tail_seconds, res.tail_measured = max(0.0, seen[last_seg] - first), True
        if not res.tail_measured:
            t_switch = time.monotonic()
            _, _, err = switch_and_wait(node, timeout)
            while time.monotonic() < t_switch + timeout and last_seg not in seen:
                time.sleep(0.05)
            if last_seg in seen:
                res.switch_latency = max(0.0, seen[last_seg] - t_switch)
            elif err:
                res.notes.append(err)
            if timeout_s > 0 and res.switch_latency is not None:
                res.tail_seconds = timeout_s + res.switch_latency
                res.notes.append(f"the last segment leaves only when archive_timeout ({timeout_s:.0f}s) forces a "
                                 f"switch: projected as archive_timeout + the measured switch latency")
            elif timeout_s == 0:
                res.notes.append("archive_timeout = 0: on a quiet primary the current segment is archived only "
                                 "when 16 MB of WAL fill it; the data at risk is unbounded")
    finally:
        stop.set()
        watcher.join(5)
    return res
