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


def test_under_xdist_the_controller_writes_one_report_with_every_check(pg_cluster, run_pgready) -> None:
    """Results come back from the workers; only the controller writes, and the verdicts match a serial run."""
    suites = "schema,indexes,config,security"
    serial = run_pgready("--pgready-dsn", pg_cluster.primary.dsn(), "--pgready-suite", suites)
    parallel = run_pgready("--pgready-dsn", pg_cluster.primary.dsn(), "--pgready-suite", suites, "-n", "2")
    assert serial.report is not None and parallel.report is not None, parallel.output[-2000:]
    by_id = {c["id"]: c["status"] for c in parallel.report["checks"]}
    assert by_id == {c["id"]: c["status"] for c in serial.report["checks"]}
    assert len(by_id) >= 40 and "error" not in by_id.values()
    assert parallel.output.count("pgready: score") == 1  # one summary line, from the controller
    assert sorted(p.name for p in parallel.report_dir.iterdir()) == ["readiness.html", "readiness.json",
                                                                      "readiness.md"]


def test_deselected_check_under_xdist_says_why(pg_cluster, run_pgready) -> None:
    run = run_pgready("--pgready-dsn", pg_cluster.primary.dsn(), "--pgready-suite", "schema", "-n", "2",
                      "-k", "not test_sch001_tables_have_primary_key")
    assert run.report is not None, run.output[-2000:]
    assert "left out of this run" in run.check("SCH001")["summary"]
