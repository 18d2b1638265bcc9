"""SIGINT/SIGTERM mid-run stop every child and remove the sandbox within 10 s."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pytest_pgready.cluster import sandbox

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_during_a_check_tears_everything_down(sig: int, tmp_path: Path, pg_bins):
    (tmp_path / "test_slow.py").write_text(textwrap.dedent("""
        import time, pytest

        @pytest.mark.pgready(id="ACME100", severity="low", category="schema")
        def test_slow(pgready_cluster):
            print("READY", pgready_cluster.workdir, flush=True)
            time.sleep(120)
    """))
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "--pgready", "-p", "no:cacheprovider", "-s", "-q",
                             "--pgready-suite", "schema", "--pgready-pg-bin", str(pg_bins.bindir),
                             "--pgready-report-dir", str(tmp_path / "r"), str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    workdir = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if "READY" in line:
            workdir = Path(line.split("READY", 1)[1].strip())
            break
    assert workdir is not None and workdir.exists()
    assert sandbox.processes_under(workdir)
    t0 = time.monotonic()
    proc.send_signal(sig)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("pytest did not stop within 15 s of the signal")
    elapsed = time.monotonic() - t0
    assert elapsed < 10, f"took {elapsed:.1f}s"
    assert not workdir.exists()
    assert sandbox.processes_under(workdir) == []
