"""A target that stops answering mid-run: checks error within their timeout, the run completes,
and the report is written and says what happened."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_frozen_target_mid_run_errors_in_bounded_time(cluster_factory, run_pgready, tmp_path: Path):
    c = cluster_factory(replicas=0, pgbouncer=False, toxiproxy=False)
    (tmp_path / "freezer.py").write_text(textwrap.dedent(f"""
        # freezes every process of the target (SIGSTOP) when the 4th check starts
        import os, signal
        from pytest_pgready.cluster.sandbox import processes_under
        from pathlib import Path
        _seen = [0]

        def pytest_runtest_setup(item):
            _seen[0] += 1
            if _seen[0] == 4:
                for pid in processes_under(Path({str(c.primary.datadir)!r})):
                    os.kill(pid, signal.SIGSTOP)
    """))
    t0 = time.monotonic()
    try:
        run = run_pgready("--pgready-dsn", c.primary.dsn(), "--pgready-suite", "schema,config", "-p", "freezer",
                          config="check_timeout_s = 4\nconnect_timeout = 2\n",
                          env={"PYTHONPATH": str(tmp_path)}, timeout=300)
    finally:
        c.primary.thaw()
    elapsed = time.monotonic() - t0
    assert run.report is not None, run.output[-3000:]
    statuses = [ch["status"] for ch in run.report["checks"]]
    errors = [ch for ch in run.report["checks"] if ch["status"] == "error"]
    assert errors, statuses
    assert any("no answer within 4s" in e["summary"] for e in errors), [e["summary"] for e in errors]
    assert any("stopped answering" in e["summary"] for e in errors), [e["summary"] for e in errors]
    assert statuses.count("pass") + statuses.count("fail") >= 2  # checks before the freeze completed
    assert not run.report["gate"]["passed"]
    assert run.exit_code != 0
    # one timed-out check (4 s) and one connect timeout (2 s); the rest fail fast
    assert elapsed < 90, f"the run took {elapsed:.0f}s"
