"""readiness.html without a browser: self-contained, escaped, charts only when their metrics exist."""

from __future__ import annotations

import copy
import re

import pytest

from pytest_pgready.report import build_report
from pytest_pgready.report.charts import metric_charts, nice_ticks
from pytest_pgready.report.html import build_view, render_html
from pytest_pgready.report.sample import HOSTILE, sample_doc, sample_settings

ALL_CHARTS = {"latency", "histogram", "throughput", "failover", "lag", "backup-seconds", "backup-rate"}


@pytest.fixture(scope="module")
def doc():
    return sample_doc()


@pytest.fixture(scope="module")
def page(doc):
    return render_html(doc)


def test_page_is_self_contained(page):
    assert not re.search(r"https?://", page)
    for bad in ("<script", "<link", "@import", "url(", "<iframe", "<img", "@font-face", "<object", "<embed"):
        assert bad not in page.lower(), bad
    assert not re.search(r"<[^>]*\s(src|href)=(?![\"']?#)", page)  # only in-page anchors
    assert "<style>" in page and "@media print" in page
    assert "Content-Security-Policy" in page


def test_database_strings_are_escaped(page):
    assert HOSTILE not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_escaping_reaches_attributes_and_charts():
    d = copy.deepcopy(sample_doc())
    d["categories"][0]["id"] = '"><svg onload=alert(1)>'
    d["checks"][0]["id"] = '" onmouseover="alert(1)'
    page = render_html(d)
    assert "<svg onload" not in page and 'onmouseover="alert' not in page


def test_verdict_score_and_worklist_are_on_the_page(doc, page):
    assert "NOT READY" in page and f">{doc['score']:g}<" in page
    assert page.index('href="#check-CFG006"') < page.index('href="#check-IDX001"') < page.index('href="#check-SCH003"')
    for c in doc["checks"]:
        assert f'id="check-{c["id"]}"' in page


def test_every_chart_is_drawn_from_the_sample(page):
    for cid in ALL_CHARTS | {"categories"}:
        assert f'id="chart-{cid}"' in page, cid


def test_missing_metrics_omit_their_charts():
    d = copy.deepcopy(sample_doc())
    d["metrics"] = {}
    page = render_html(d)
    assert 'id="chart-categories"' in page
    for cid in ALL_CHARTS:
        assert f'id="chart-{cid}"' not in page
    assert "Measured, not claimed" not in page


@pytest.mark.parametrize("metrics", [
    {"latency_ms": "fast"}, {"latency_histogram_us": [[1, 0], [2, 0]]}, {"latency_histogram_us": [["a"]]},
    {"replication_lag_series": [[0, 1]]}, {"failover_write_gap_seconds": {"trials": []}},
    {"throughput_rps": None}, {"restore_seconds": "n/a"}])
def test_degenerate_metrics_render_without_a_chart(metrics):
    d = copy.deepcopy(sample_doc())
    d["metrics"] = metrics
    assert metric_charts(d) == []
    render_html(d)


def test_ready_run_reads_ready():
    d = build_report([], {}, sample_settings())
    d["gate"] = {"fail_under": 85, "min_coverage": 0.8, "passed": True, "reasons": []}
    page = render_html(d)
    assert "READY" in page and "NOT READY" not in page


def test_empty_target_renders():
    d = build_report([], {}, sample_settings(fail_under=None))
    v = build_view(d)
    assert v["verdict"] == "NOT READY" and "No check reached a database" in " ".join(v["caveats"])
    page = render_html(d)
    assert "n/a" in page and "Nothing to fix" in page


def test_slo_lines_and_off_scale_notes(doc):
    charts = {c["id"]: c for c in metric_charts(doc)}
    lat_labels = [e["text"] for e in charts["latency"]["els"] if e["k"] == "text"]
    assert "SLO p95 100 ms" in lat_labels and "SLO p99 250 ms" in lat_labels
    assert any("RTO 60 s is far above" in n for n in charts["failover"]["notes"])


@pytest.mark.parametrize("vmax", [0.001, 0.7, 3, 99, 100, 101, 2500, 1e7])
def test_nice_ticks_cover_the_range(vmax):
    t = nice_ticks(vmax)
    assert t[0] == 0 and t[-1] >= vmax and 2 <= len(t) <= 7
