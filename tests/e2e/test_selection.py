"""A check the user leaves out with -k is reported as left out, not as missing from the tool."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


def test_deselected_check_is_na_and_says_why(pg_cluster, run_pgready) -> None:
    run = run_pgready("--pgready-dsn", pg_cluster.primary.dsn(), "--pgready-suite", "schema",
                      "-k", "not test_sch001_tables_have_primary_key")
    assert run.report is not None, run.output[-2000:]
    sch001 = run.check("SCH001")
    assert sch001["status"] == "na" and "left out of this run" in sch001["summary"], sch001
    assert run.status("SCH002") in ("pass", "fail", "na")
    assert "left out" not in run.check("SCH002")["summary"]
