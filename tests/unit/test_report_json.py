"""readiness.json: DESIGN §5 shape, the shipped JSON Schema, redaction, atomic writes, usage errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

jsonschema = pytest.importorskip("jsonschema")

from pytest_pgready.errors import PgReadyUsageError  # noqa: E402
from pytest_pgready.redact import remember_secret  # noqa: E402
from pytest_pgready.report import build_report, load_report, write_reports  # noqa: E402
from pytest_pgready.report.json_report import load_schema, write_atomic  # noqa: E402
from pytest_pgready.report.sample import HOSTILE, sample_doc, sample_results, sample_settings  # noqa: E402
from pytest_pgready.results import CheckResult  # noqa: E402

DESIGN_KEYS = ("schema_version", "tool", "generated_at", "target", "score", "coverage", "grade", "gate",
               "categories", "checks", "metrics")


def validate(doc: dict) -> None:
    cls = jsonschema.Draft202012Validator
    cls.check_schema(load_schema())
    cls(load_schema(), format_checker=cls.FORMAT_CHECKER).validate(json.loads(json.dumps(doc)))


def test_sample_run_has_every_status_and_validates():
    doc = sample_doc()
    assert {c["status"] for c in doc["checks"]} == {"pass", "fail", "error", "na", "waived"}
    validate(doc)
    for k in DESIGN_KEYS:
        assert k in doc
    assert doc["schema_version"] == 1 and doc["tool"]["name"] == "pytest-pgready"
    assert isinstance(doc["algorithm_version"], int)
    assert set(doc["gate"]) >= {"fail_under", "passed", "reasons"}
    c = doc["checks"][0]
    assert set(c) >= {"id", "title", "category", "severity", "weight", "status", "summary", "evidence", "metrics",
                      "duration_s"}


def test_every_selected_check_appears_in_catalogue_order():
    results = sample_results()
    doc = sample_doc()
    assert sorted(c["id"] for c in doc["checks"]) == sorted(r.id for r in results)
    cats = [c["category"] for c in doc["checks"]]
    assert cats == sorted(cats, key=[x["id"] for x in doc["categories"]].index)


@pytest.mark.parametrize("target", [{}, None])
def test_no_target_and_all_na_still_validate(target):
    rs = [CheckResult("SCH001", "t", "schema", "high", 7.5, "na", summary="not implemented")]
    doc = build_report(rs, target, sample_settings(fail_under=None))
    validate(doc)
    assert doc["score"] is None and doc["grade"] == "n/a" and doc["gate"]["passed"] is False
    assert doc["target"]["provider"] is None and doc["target"]["topology"] == {}


def test_empty_run_validates():
    doc = build_report([], {}, sample_settings())
    validate(doc)
    assert doc["checks"] == [] and doc["categories"] == [] and doc["coverage"] == 0.0


def test_metrics_merge_first_writer_wins_and_non_finite_becomes_null():
    a = CheckResult("PERF001", "t", "performance", "critical", 10, "pass",
                    report_metrics={"throughput_rps": 10.0, "latency_ms": {"p95": float("nan")}})
    b = CheckResult("PERF002", "t", "performance", "high", 7.5, "pass", report_metrics={"throughput_rps": 99.0,
                                                                                         "error_rate": 0.01})
    doc = build_report([a, b], {}, sample_settings())
    assert doc["metrics"] == {"throughput_rps": 10.0, "latency_ms": {"p95": None}, "error_rate": 0.01}
    json.dumps(doc, allow_nan=False)


def test_no_secret_reaches_any_file(tmp_path, monkeypatch):
    remember_secret("s3cr3t-Pa55")
    monkeypatch.setenv("PGPASSWORD", "envpass-123")
    rs = [CheckResult("SEC009", "secrets", "security", "medium", 5, "fail",
                      summary="primary_conninfo has password=s3cr3t-Pa55",
                      evidence={"objects": ["postgresql://repl:hunter22@db/x", "host=a password=envpass-123"],
                                "setting": "archive_command = 'PGPASSWORD=s3cr3t-Pa55 pg_receivewal'"})]
    doc = build_report(rs, {"dsn": "postgresql://app:s3cr3t-Pa55@db/shop"}, sample_settings())
    paths = write_reports(doc, tmp_path / "r", step_summary=False)
    for p in paths.values():
        text = p.read_text()
        for secret in ("s3cr3t-Pa55", "hunter22", "envpass-123"):
            assert secret not in text, (p.name, secret)


def test_write_reports_creates_the_directory_and_leaves_no_temp_files(tmp_path):
    out = tmp_path / "a" / "b"
    paths = write_reports(sample_doc(), out, step_summary=False)
    assert set(paths) == {"json", "html", "md"}
    assert sorted(p.name for p in out.iterdir()) == ["readiness.html", "readiness.json", "readiness.md"]
    assert load_report(paths["json"])["score"] == sample_doc()["score"]


def test_a_crash_while_writing_keeps_the_previous_file(tmp_path, monkeypatch):
    target = tmp_path / "readiness.json"
    target.write_text("OLD")

    def boom(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        write_atomic(target, "NEW" * 1000)
    assert target.read_text() == "OLD"
    assert [p.name for p in tmp_path.iterdir()] == ["readiness.json"]


def test_a_report_dir_that_cannot_be_created_is_a_usage_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(PgReadyUsageError) as e:
        write_reports(sample_doc(), blocker / "sub", step_summary=False)
    line = e.value.line()
    assert "\n" not in line and "report directory" in line and "--pgready-report-dir" in line


def test_a_broken_renderer_still_writes_the_json(tmp_path, monkeypatch, capsys):
    import pytest_pgready.report.html as html

    monkeypatch.setattr(html, "render_html", lambda doc: 1 / 0)
    paths = write_reports(sample_doc(), tmp_path, step_summary=False)
    assert set(paths) == {"json", "md"}
    assert "could not render readiness.html" in capsys.readouterr().err


def test_hostile_object_names_survive_as_data():
    doc = sample_doc()
    idx = next(c for c in doc["checks"] if c["id"] == "IDX001")
    assert any(HOSTILE in o for o in idx["evidence"]["objects"])


@pytest.mark.parametrize("content,needle", [
    (None, "does not exist"), ("{not json", "is not JSON"), ("[1, 2]", "no schema_version"),
    ('{"schema_version": 2}', "schema_version 2"), ('{"schema_version": 1, "checks": 3}', "malformed")])
def test_load_report_errors_are_one_line(tmp_path, content, needle):
    p = tmp_path / "r.json"
    if content is not None:
        p.write_text(content)
    with pytest.raises(PgReadyUsageError) as e:
        load_report(p)
    assert needle in e.value.line() and "\n" not in e.value.line()


def test_schema_ships_inside_the_package():
    import pytest_pgready.report as rep

    assert (Path(rep.__file__).parent / "readiness.schema.json").is_file()
