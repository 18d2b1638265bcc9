"""Terminal summary lines, JUnit properties and the pytest-html fragments (pure parts)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from pytest_pgready.report.junit import add_junit_properties, junit_properties
from pytest_pgready.report.pytest_html import banner_html, evidence_html
from pytest_pgready.report.sample import HOSTILE, sample_doc
from pytest_pgready.report.terminal import summary_lines


def small_doc(passed=True, fail_under=85):
    return {"score": 87.5, "grade": "B", "coverage": 0.93,
            "gate": {"fail_under": fail_under, "passed": passed, "reasons": [] if passed else ["score low"]},
            "checks": [{"id": "IDX001", "status": "fail", "summary": "3 foreign keys", "weight": 7.5},
                       {"id": "SCH001", "status": "pass", "summary": "ok", "weight": 7.5},
                       {"id": "REP005", "status": "error", "summary": "boom", "weight": 5},
                       {"id": "BKP004", "status": "na", "summary": "none configured", "weight": 10},
                       {"id": "HLT007", "status": "waived", "summary": "w", "weight": 2.5}]}


def test_verdict_line_is_exact():
    lines = [t for t, _ in summary_lines(small_doc(), {})]
    assert "pgready: score 87.5 (B) · coverage 93% · gate PASSED (fail-under 85)" in lines


def test_verdict_without_fail_under_and_failed_gate():
    lines = summary_lines(small_doc(passed=False, fail_under=None), {})
    text = [t for t, _ in lines]
    assert "pgready: score 87.5 (B) · coverage 93% · gate FAILED (no fail-under)" in text
    assert any(t.strip() == "why: score low" for t in text)
    verdict = next(m for t, m in lines if t.startswith("pgready: score"))
    assert verdict == {"green": False, "red": True, "bold": True}


def test_one_line_per_check_failures_last_then_paths():
    lines = summary_lines(small_doc(), {"html": Path("r/readiness.html"), "json": Path("r/readiness.json")}, width=60)
    text = [t for t, _ in lines]
    ids = [t.split()[1] for t in text[:5]]
    assert ids == ["SCH001", "HLT007", "BKP004", "IDX001", "REP005"]
    assert text[0].startswith("PASS   SCH001")
    assert lines[3][1] == {"red": True} and lines[0][1] == {"green": True}
    assert "pgready: report r/readiness.html" in text and "pgready: report r/readiness.json" in text
    assert all(len(t) <= 59 for t in text[:5])


def test_annotations_join_the_summary_on_github(monkeypatch):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    text = [t for t, _ in summary_lines(sample_doc(), {})]
    assert any(t.startswith("::error title=pgready CFG006") for t in text)


def test_junit_properties():
    assert junit_properties(small_doc()) == [("pgready.score", "87.5"), ("pgready.grade", "B"),
                                             ("pgready.gate", "passed"), ("pgready.coverage", "0.93")]
    got = []
    xml = SimpleNamespace(add_global_property=lambda n, v: got.append((n, v)))
    from _pytest.junitxml import xml_key

    class Stash(dict):
        def get(self, k, default=None):
            return super().get(k, default)

    assert add_junit_properties(SimpleNamespace(stash=Stash({xml_key: xml})), small_doc()) is True
    assert got[0] == ("pgready.score", "87.5")
    assert add_junit_properties(SimpleNamespace(stash=Stash()), small_doc()) is False


def test_pytest_html_fragments_escape():
    doc = sample_doc()
    banner = banner_html(doc)
    assert "NOT READY" in banner and "<script" not in banner
    idx = next(c for c in doc["checks"] if c["id"] == "IDX001")
    ev = evidence_html(idx)
    assert HOSTILE not in ev and "&lt;img src=x" in ev and "CREATE INDEX CONCURRENTLY" in ev
