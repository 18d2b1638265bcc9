"""`pgready report` / `pgready compare`: re-rendering, regressions, and bad input as one line + exit 2."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_pgready.__main__ import compare, main, metric_deltas
from pytest_pgready.report import write_reports
from pytest_pgready.report.sample import sample_doc


@pytest.fixture
def base(tmp_path) -> Path:
    paths = write_reports(sample_doc(), tmp_path / "old", step_summary=False)
    return paths["json"]


def _write(tmp_path: Path, doc: dict, name: str = "new.json") -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(doc))
    return p


def test_report_rerenders_html_and_md(base, tmp_path, capsys):
    out = tmp_path / "rendered"
    assert main(["report", str(base), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["readiness.html", "readiness.md"]
    assert "NOT READY" in (out / "readiness.html").read_text()
    assert "wrote" in capsys.readouterr().out


def test_report_defaults_to_the_json_directory(base):
    (base.parent / "readiness.html").unlink()
    assert main(["report", str(base)]) == 0
    assert (base.parent / "readiness.html").is_file()


def test_identical_reports_exit_0(base, capsys):
    assert main(["compare", str(base), str(base)]) == 0
    assert "no regression" in capsys.readouterr().out


def test_compare_finds_a_planted_regression(base, tmp_path, capsys):
    new = copy.deepcopy(json.loads(base.read_text()))
    chk = next(c for c in new["checks"] if c["id"] == "SEC001")
    chk["status"], chk["summary"] = "fail", "trust rule for 0.0.0.0/0"
    new["score"] = new["score"] - 4.5
    new["metrics"]["latency_ms"]["p95"] = 76.4
    assert main(["compare", str(base), str(_write(tmp_path, new))]) == 1
    out = capsys.readouterr().out
    assert "SEC001: pass → fail" in out and "REGRESSION" in out
    assert "latency_ms.p95: 38.2 → 76.4 (+100.0%)" in out
    assert "(-4.5)" in out


def test_compare_improvement_is_not_a_regression(base, tmp_path, capsys):
    new = copy.deepcopy(json.loads(base.read_text()))
    chk = next(c for c in new["checks"] if c["id"] == "IDX001")
    chk["status"] = "pass"
    new["score"] += 2
    assert main(["compare", str(base), str(_write(tmp_path, new))]) == 0
    assert "IDX001: fail → pass" in capsys.readouterr().out


def test_gate_turning_red_is_a_regression():
    old = {"score": 90.0, "gate": {"passed": True}, "checks": [], "metrics": {}}
    new = {"score": 90.0, "gate": {"passed": False}, "checks": [], "metrics": {}}
    assert compare(old, new)["regressions"] == ["gate went from PASSED to FAILED"]


def test_status_ranking_and_new_checks():
    old = {"checks": [{"id": "A", "status": "pass"}, {"id": "B", "status": "fail"}, {"id": "GONE", "status": "pass"}]}
    new = {"checks": [{"id": "A", "status": "na"}, {"id": "B", "status": "error"}, {"id": "N", "status": "fail"}]}
    d = compare(old, new)
    assert [w[0] for w in d["worse"]] == ["A", "B"]
    assert d["added"] == [("N", "fail")] and d["removed"] == [("GONE", "pass")]
    assert "N is new and fail" in d["regressions"]


def test_metric_deltas_numbers_and_percentiles_only():
    old = {"a": 1, "b": {"p50": 1.0, "x": "s"}, "c": [1, 2], "d": True, "only_old": 3}
    new = {"a": 2, "b": {"p50": 1.5, "x": "t"}, "c": [3], "d": False}
    assert metric_deltas(old, new) == [("a", 1.0, 2.0), ("b.p50", 1.0, 1.5)]


@pytest.mark.parametrize("content,needle", [
    (None, "does not exist"), ("not json at all", "is not JSON"), ('{"schema_version": 99}', "schema_version 99"),
    ("[]", "no schema_version"), ('{"schema_version": 1}', "malformed")])
def test_bad_input_is_one_line_and_exit_2(tmp_path, base, capsys, content, needle):
    bad = tmp_path / "bad.json"
    if content is not None:
        bad.write_text(content)
    for argv in (["compare", str(base), str(bad)], ["compare", str(bad), str(base)], ["report", str(bad)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert needle in err and err.count("\n") == 1 and "Traceback" not in err


def test_unrenderable_content_is_a_usage_error(tmp_path, base, capsys):
    doc = json.loads(base.read_text())
    doc["checks"] = [{"id": "X", "status": "fail", "weight": "heavy", "evidence": 5}]
    assert main(["report", str(_write(tmp_path, doc))]) == 2
    assert "cannot be rendered" in capsys.readouterr().err


def test_usage_errors_exit_2(capsys):
    assert main([]) == 2
    with pytest.raises(SystemExit) as e:
        main(["compare", "only-one.json"])
    assert e.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_module_entry_point_runs_in_a_subprocess(tmp_path, base):
    r = subprocess.run([sys.executable, "-m", "pytest_pgready", "compare", str(base), str(tmp_path / "missing.json")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip().startswith("pgready: ") and "Traceback" not in r.stderr and r.stdout == ""
    r = subprocess.run([sys.executable, "-m", "pytest_pgready", "compare", str(base), str(base)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "no regression" in r.stdout


def test_demo_writes_a_report(tmp_path):
    assert main(["demo", "--out", str(tmp_path / "demo")]) == 0
    assert (tmp_path / "demo" / "readiness.html").is_file()


def test_settings_reference_is_generated_and_complete(capsys) -> None:
    """docs/settings.md is `pgready settings`: every key of the spec, none undocumented."""
    from pathlib import Path

    from pytest_pgready.__main__ import main
    from pytest_pgready.settings import SPEC

    assert main(["settings"]) == 0
    out = capsys.readouterr().out
    for k in SPEC:
        assert f"| `{k.name}`" in out, k.name
    doc = Path(__file__).resolve().parents[2] / "docs" / "settings.md"
    assert doc.read_text() == out, "docs/settings.md is stale: regenerate with `pgready settings > docs/settings.md`"
