"""No flakes: identical runs give identical statuses. `make flakes` runs the full default run five
times (figures in docs/reliability.md); here two runs of the static suites keep the property in CI."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _flakes_module():
    spec = importlib.util.spec_from_file_location("pgready_flakes", ROOT / "scripts" / "flakes.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def test_flaky_names_each_check_whose_status_changed() -> None:
    flaky = _flakes_module().flaky
    runs = [{"A": "pass", "B": "fail", "C": "na"}, {"A": "pass", "B": "pass", "C": "na"},
            {"A": "pass", "B": "fail"}]
    assert flaky(runs) == {"B": ["fail", "pass", "fail"], "C": ["na", "na", "absent"]}
    assert flaky([{"A": "pass"}, {"A": "pass"}]) == {}


@pytest.mark.integration
def test_two_identical_static_runs_agree(tmp_path: Path, pg_bins) -> None:
    out = tmp_path / "flakes"
    p = subprocess.run([sys.executable, str(ROOT / "scripts" / "flakes.py"), "--runs", "2", "--out", str(out),
                        "--suite", "schema,indexes,config,security,health,replication", "--timeout", "300",
                        "--", "--pgready-pg-bin", str(pg_bins.bindir)],
                       capture_output=True, text=True, timeout=700, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stdout + p.stderr
    summary = json.loads((out / "flakes.json").read_text())
    assert summary["checks"] >= 50 and summary["flaky"] == {}
