"""Exit status through the real plugin (DESIGN §4): the gate decides with --pgready-fail-under, pytest without.

User checks that never touch a database are enough: the rest of the schema suite is `na`
(not implemented / not collected), so min_coverage is set to 0 through --pgready-config.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

CHECKS = '''
import pytest

@pytest.mark.pgready(id="ACME001", severity="low", category="schema")
def test_acme_holds(pgready_record):
    pgready_record.summary("acme holds")

@pytest.mark.pgready(id="ACME002", severity="low", category="schema")
def test_acme_broken(pgready_record):
    pgready_record.fail("acme is broken", objects=["public.<img src=x onerror=alert(1)>"],
                        remedy="DROP TABLE nothing;")
'''

CRITICAL = '''
import pytest

@pytest.mark.pgready(id="ACME010", severity="critical", category="schema")
def test_critical_broken(pgready_record):
    pgready_record.fail("critical thing is broken", objects=["public.t"])
'''

ERROR = '''
import pytest

@pytest.mark.pgready(id="ACME020", severity="low", category="schema")
def test_crashes(pgready_record):
    raise RuntimeError("lost connection")
'''


@pytest.fixture(scope="module", autouse=True)
def _needs_postgres_binaries():
    """`pytest --pgready` preflights the local provider's binaries even when no check opens the cluster."""
    from pytest_pgready.cluster.binaries import find_postgres
    from pytest_pgready.errors import PgReadyUsageError

    try:
        find_postgres(None, None)
    except PgReadyUsageError as e:
        pytest.skip(f"no PostgreSQL binaries for the local provider's preflight: {e.line()}")


def run(tmp_path: Path, *args: str, files: dict[str, str] | None = None, env: dict[str, str] | None = None,
        min_coverage: float = 0.0) -> tuple[int, dict | None, str]:
    checks = tmp_path / "checks"
    checks.mkdir(exist_ok=True)
    for name, body in (files or {"test_acme.py": CHECKS}).items():
        (checks / name).write_text(body)
    cfg = tmp_path / "pgready.toml"
    cfg.write_text(f"min_coverage = {min_coverage}\n")
    e = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "PYTEST_"))}
    e.update(env or {})
    r = subprocess.run([sys.executable, "-m", "pytest", "--pgready", "-p", "no:cacheprovider", "--pgready-suite",
                        "schema", "--pgready-config", str(cfg), "--pgready-report-dir", str(tmp_path / "report"),
                        *args, str(checks)], cwd=tmp_path, capture_output=True, text=True, env=e, timeout=300)
    rj = tmp_path / "report" / "readiness.json"
    return r.returncode, json.loads(rj.read_text()) if rj.exists() else None, r.stdout + r.stderr


def test_gate_pass_exits_0_despite_a_low_severity_failure(tmp_path):
    code, doc, out = run(tmp_path, "--pgready-fail-under", "50")
    assert code == 0, out
    assert doc["score"] == 50.0 and doc["gate"]["passed"] is True and doc["gate"]["fail_under"] == 50
    by_id = {c["id"]: c for c in doc["checks"]}
    assert by_id["ACME001"]["status"] == "pass" and by_id["ACME002"]["status"] == "fail"
    assert by_id["ACME002"]["evidence"]["objects"] == ["public.<img src=x onerror=alert(1)>"]
    assert all(by_id[c]["status"] == "na" for c in by_id if c.startswith("SCH"))  # the rest of the suite
    assert "pgready: score 50 (F) · coverage" in out and "gate PASSED (fail-under 50)" in out
    assert "1 failed, 1 passed" in out
    html = (tmp_path / "report" / "readiness.html").read_text()
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


def test_gate_fail_exits_1(tmp_path):
    code, doc, out = run(tmp_path, "--pgready-fail-under", "80")
    assert code == 1, out
    assert doc["gate"]["passed"] is False and "score 50 is below fail-under 80" in doc["gate"]["reasons"]
    assert "gate FAILED (fail-under 80)" in out


def test_without_fail_under_pytest_decides(tmp_path):
    code, doc, out = run(tmp_path)
    assert code == 1, out  # a failed check is a failed test
    assert doc["gate"]["fail_under"] is None and doc["gate"]["passed"] is True
    code, doc, out = run(tmp_path, files={"test_acme.py": CHECKS.split("@pytest.mark.pgready(id=\"ACME002\"")[0]})
    assert code == 0, out


def test_a_critical_fail_fails_the_gate_even_with_a_low_bar(tmp_path):
    many_ok = "import pytest\n" + "\n".join(
        f"@pytest.mark.pgready(id='ACME1{i:02d}', severity='critical', category='schema')\n"
        f"def test_ok_{i}(pgready_record):\n    pass\n" for i in range(20))
    files = {"test_ok.py": many_ok, "test_crit.py": CRITICAL}
    code, doc, out = run(tmp_path, "--pgready-fail-under", "10", files=files,
                         env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md")})
    assert code == 1, out
    assert doc["grade"] == "not ready" and doc["score"] > 90
    assert any(r.startswith("critical check ACME010 failed") for r in doc["gate"]["reasons"])
    assert "::error title=pgready ACME010 (critical fail)::critical thing is broken" in out
    summary = (tmp_path / "summary.md").read_text()
    assert "NOT READY" in summary and "ACME010" in summary


def test_an_error_fails_the_gate(tmp_path):
    code, doc, out = run(tmp_path, "--pgready-fail-under", "0",
                         files={"test_acme.py": CHECKS, "test_err.py": ERROR})
    assert code == 1, out
    err = next(c for c in doc["checks"] if c["id"] == "ACME020")
    assert err["status"] == "error" and "lost connection" in err["summary"]


def test_min_coverage_counts_the_unimplemented_catalogue(tmp_path):
    code, doc, out = run(tmp_path, "--pgready-fail-under", "10", min_coverage=0.8)
    assert code == 1, out
    assert any(r.startswith("coverage") for r in doc["gate"]["reasons"])


def test_junit_gets_global_properties(tmp_path):
    code, doc, out = run(tmp_path, "--pgready-fail-under", "50", "--junitxml", str(tmp_path / "junit.xml"))
    assert code == 0, out
    root = ET.parse(tmp_path / "junit.xml").getroot()
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["pgready.score"] == "50" and props["pgready.grade"] == "F" and props["pgready.gate"] == "passed"


def test_pytest_html_banner_and_evidence(tmp_path):
    pytest.importorskip("pytest_html")
    code, doc, out = run(tmp_path, "--pgready-fail-under", "50", "--html", str(tmp_path / "pytest.html"))
    assert code == 0, out
    page = (tmp_path / "pytest.html").read_text()
    assert "pgready-banner" in page and "PostgreSQL READY" in page
    assert "pgready-evidence" in page and "acme is broken" in page
    assert "<img src=x onerror" not in page


def test_an_unwritable_report_dir_is_one_line(tmp_path):
    (tmp_path / "blocker").write_text("x")
    code, doc, out = run(tmp_path, "--pgready-report-dir", str(tmp_path / "blocker" / "sub"))
    assert code == 4, out
    line = next(x for x in out.splitlines() if "pgready:" in x)  # preflight or the writer: one line either way
    assert "report" in line and "blocker" in line and "Traceback" not in out
