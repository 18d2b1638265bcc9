"""The comment that marks pgready's own statements, so PERF005 can leave them out of pg_stat_statements.

The harness's checksums and samplers are heavy on purpose and must not be reported as the application's
slow queries. The comment sits after the statement's first keyword, not before it: PostgreSQL 18 stores
a statement's text from its first token, so a leading comment is cut off (15 keeps it).
"""

from __future__ import annotations

import re

COMMENT = "/* pgready */"
_FIRST_WORD = re.compile(r"^(\s*[A-Za-z]+)")


def mark(statement: str) -> str:
    """`SELECT …` → `SELECT /* pgready */ …` (a statement without a leading keyword is returned as is)."""
    return _FIRST_WORD.sub(lambda m: f"{m.group(1)} {COMMENT}", statement, count=1)
