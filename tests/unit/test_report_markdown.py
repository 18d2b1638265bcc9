"""readiness.md, $GITHUB_STEP_SUMMARY and GitHub annotations."""

from __future__ import annotations

import copy

import pytest

from pytest_pgready.report import write_reports
from pytest_pgready.report.markdown import (MAX_ANNOTATIONS, STEP_SUMMARY_LIMIT, append_step_summary,
                                            github_annotations, render_markdown)
from pytest_pgready.report.sample import HOSTILE, sample_doc


@pytest.fixture
def doc():
    return sample_doc()


def test_markdown_has_verdict_worklist_and_categories(doc):
    md = render_markdown(doc)
    assert "NOT READY" in md
    assert f"**Score {doc['score']:g} (not ready)** · coverage 97% · gate FAILED (fail-under 85)" in md
    work = md[md.index("### Fix first"):md.index("### Categories")]
    order = [cid for cid in ("CFG006", "IDX001", "SEC003", "REP005", "SCH003") if cid in work]
    assert order == ["CFG006", "IDX001", "SEC003", "REP005", "SCH003"]
    assert sorted(order, key=work.index) == order
    assert "| indexes | 75 |" in md
    assert "critical check CFG006 failed" in md


def test_markdown_escapes_database_strings(doc):
    md = render_markdown(doc)
    assert HOSTILE not in md
    assert "&lt;img src=x onerror=alert(1)&gt;" in md


def test_markdown_cell_pipes_do_not_break_tables(doc):
    d = copy.deepcopy(doc)
    d["checks"][0]["summary"] = "a | b\nc"
    line = next(x for x in render_markdown(d).splitlines() if d["checks"][0]["id"] in x and "a \\| b c" in x)
    assert line.count(" | ") >= 4


def test_step_summary_is_appended_when_set(tmp_path, monkeypatch, doc):
    summary = tmp_path / "summary.md"
    summary.write_text("# earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    write_reports(doc, tmp_path / "out")
    text = summary.read_text()
    assert text.startswith("# earlier step\n")
    assert "PostgreSQL readiness" in text and "Fix first" in text


def test_no_step_summary_without_the_variable(tmp_path, monkeypatch, doc):
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    write_reports(doc, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["readiness.html", "readiness.json", "readiness.md"]


def _huge(doc):
    d = copy.deepcopy(doc)
    base = d["checks"]
    d["checks"] = []
    for i in range(6000):
        c = copy.deepcopy(base[i % len(base)])
        c["id"] = f"X{i:05d}"
        c["summary"] = "long summary " * 20
        d["checks"].append(c)
    return d


def test_step_summary_stays_under_one_mib_with_a_note(tmp_path, doc):
    big = _huge(doc)
    assert len(render_markdown(big).encode()) > STEP_SUMMARY_LIMIT
    summary = tmp_path / "summary.md"
    summary.write_text("x" * 10_000)
    append_step_summary(big, summary)
    size = summary.stat().st_size
    assert size <= STEP_SUMMARY_LIMIT
    text = summary.read_text()
    assert "more checks left out" in text and "Fix first" in text


def test_render_with_budget_keeps_the_verdict(doc):
    text = render_markdown(_huge(doc), max_bytes=4000)
    assert len(text.encode()) <= 4000
    assert "NOT READY" in text


def test_full_step_summary_is_left_alone(tmp_path, doc):
    summary = tmp_path / "summary.md"
    summary.write_text("x" * STEP_SUMMARY_LIMIT)
    append_step_summary(doc, summary)
    assert summary.stat().st_size == STEP_SUMMARY_LIMIT


def test_annotations_only_on_github_actions(monkeypatch, doc):
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    assert github_annotations(doc) == []
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    lines = github_annotations(doc)
    assert lines[0].startswith("::error title=pgready CFG006 (critical fail)::the archiver is failing")
    assert any("REP005" in x for x in lines)  # errors block the gate too
    assert all(x.startswith("::error title=") and "\n" not in x for x in lines)


def test_at_most_ten_annotations_with_escaping(monkeypatch, doc):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    d = copy.deepcopy(doc)
    for c in d["checks"]:
        if c["severity"] == "critical":
            c["status"], c["summary"] = "fail", "50% used,\nsee: evidence"
    lines = github_annotations(d)
    assert len(lines) == MAX_ANNOTATIONS
    assert lines[0].endswith("::50%25 used, see: evidence")
