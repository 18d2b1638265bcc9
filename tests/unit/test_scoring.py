"""Scoring (DESIGN §4): properties over generated runs, and the anchors of the SLO curve."""

from __future__ import annotations

import math

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from pytest_pgready.results import CheckResult
from pytest_pgready.scoring import (ALGORITHM_VERSION, check_score, grade_for, score_run, slo_score, worklist)

STATUSES = ("pass", "fail", "error", "na", "waived")
SEVERITIES = {"critical": 10.0, "high": 7.5, "medium": 5.0, "low": 2.5}
CATS = ("schema", "indexes", "config", "security", "health", "backup")


def r(cid: str, status: str, severity: str = "medium", category: str = "schema", weight: float | None = None,
      score: float | None = None) -> CheckResult:
    return CheckResult(cid, f"title {cid}", category, severity, SEVERITIES[severity] if weight is None else weight,
                       status, summary=f"{cid} {status}", score=score)


@st.composite
def results(draw, min_size: int = 0, statuses=STATUSES) -> list[CheckResult]:
    n = draw(st.integers(min_size, 25))
    out = []
    for i in range(n):
        status = draw(st.sampled_from(statuses))
        sev = draw(st.sampled_from(sorted(SEVERITIES)))
        w = draw(st.one_of(st.none(), st.floats(0.1, 100)))
        s = draw(st.one_of(st.none(), st.floats(0, 1))) if status in ("pass", "fail") else None
        out.append(r(f"C{i:03d}", status, sev, draw(st.sampled_from(CATS)), w, s))
    return out


fail_unders = st.one_of(st.none(), st.floats(0, 100))
coverages = st.floats(0, 1)


# ------------------------------------------------------------------------------------------ properties
@given(results(), fail_unders, coverages)
def test_score_within_bounds_and_coverage_in_unit_interval(rs, fu, mc):
    v = score_run(rs, fu, mc)
    assert v["score"] is None or 0.0 <= v["score"] <= 100.0
    assert 0.0 <= v["coverage"] <= 1.0
    for c in v["categories"]:
        assert c["score"] is None or 0.0 <= c["score"] <= 100.0


@given(results(), st.sampled_from(sorted(SEVERITIES)), fail_unders, coverages)
def test_adding_a_passing_check_never_lowers_the_score(rs, sev, fu, mc):
    before = score_run(rs, fu, mc)["score"]
    after = score_run(rs + [r("NEW", "pass", sev)], fu, mc)["score"]
    assert after is not None
    assert before is None or after >= before


@given(results(), st.sampled_from(sorted(SEVERITIES)), fail_unders, coverages)
def test_an_na_check_changes_coverage_not_score(rs, sev, fu, mc):
    before = score_run(rs, fu, mc)
    after = score_run(rs + [r("NEW", "na", sev)], fu, mc)
    assert after["score"] == before["score"]
    assert after["coverage"] <= before["coverage"] or before["coverage"] == 0


@given(results(), fail_unders, coverages)
def test_a_critical_fail_always_fails_the_gate_and_caps_the_grade(rs, fu, mc):
    v = score_run(rs + [r("CRIT", "fail", "critical")], fu, mc)
    assert v["gate"]["passed"] is False
    assert v["grade"] == "not ready"
    assert any("CRIT" in reason for reason in v["gate"]["reasons"])


@given(results(), st.sampled_from(sorted(SEVERITIES)), fail_unders, coverages)
def test_an_error_always_fails_the_gate(rs, sev, fu, mc):
    v = score_run(rs + [r("ERR", "error", sev)], fu, mc)
    assert v["gate"]["passed"] is False
    assert any("ERR" in reason for reason in v["gate"]["reasons"])


@given(results(statuses=("pass", "waived", "na", "fail")), fail_unders, coverages)
def test_gate_passes_exactly_when_every_condition_holds(rs, fu, mc):
    v = score_run(rs, fu, mc)
    crit = any(x.status == "fail" and x.severity == "critical" for x in rs)
    evaluated = any(x.status != "na" for x in rs)
    expect = (evaluated and not crit and v["coverage"] >= mc
              and (fu is None or (v["score"] is not None and v["score"] >= fu)))
    assert v["gate"]["passed"] is expect
    assert v["gate"]["fail_under"] == fu
    assert (v["gate"]["reasons"] == []) is expect


@given(results(min_size=1))
def test_counts_and_categories_add_up(rs):
    v = score_run(rs, None, 0.0)
    assert sum(v["counts"].values()) == len(rs)
    assert sum(c["checks"] for c in v["categories"]) == len(rs)
    order = [c["id"] for c in v["categories"]]
    assert order == [c for c in CATS if c in order]  # catalogue order


# --------------------------------------------------------------------------------------------- examples
def test_design_example_weights_and_na_excluded():
    rs = [r("A", "pass", "critical"), r("B", "fail", "high"), r("C", "waived", "low"), r("D", "na", "medium"),
          r("E", "error", "low")]
    v = score_run(rs, 50, 0.5)
    # (10 + 0 + 2.5 + 0) / (10 + 7.5 + 2.5 + 2.5)
    assert v["score"] == round(100 * 12.5 / 22.5, 1)
    assert v["coverage"] == round(22.5 / 27.5, 4)
    assert v["grade"] == "F"
    assert v["gate"]["passed"] is False  # the error
    assert v["counts"] == {"pass": 1, "fail": 1, "error": 1, "na": 1, "waived": 1}


def test_metric_scores_count_for_pass_and_fail_only():
    assert check_score(r("A", "pass", score=0.25)) == 0.25
    assert check_score(r("A", "fail", score=0.4)) == 0.4
    assert check_score(r("A", "waived", score=0.1)) == 1.0
    assert check_score(r("A", "error", score=0.9)) == 0.0
    assert check_score(r("A", "na", score=0.9)) is None
    assert check_score({"status": "pass", "score": None}) == 1.0


@pytest.mark.parametrize("score,grade", [(100, "A"), (90, "A"), (89.9, "B"), (80, "B"), (70, "C"), (60, "D"),
                                         (59.9, "F"), (0, "F"), (None, "n/a")])
def test_grades(score, grade):
    assert grade_for(score, False) == grade
    assert grade_for(score, True) == "not ready"


@pytest.mark.parametrize("rs", [[], [r("A", "na"), r("B", "na", "critical")]])
def test_nothing_evaluated_scores_null_and_fails_the_gate(rs):
    v = score_run(rs, None, 0.0)
    assert v["score"] is None and v["grade"] == "n/a" and v["coverage"] == 0.0
    assert v["gate"]["passed"] is False
    assert "no check was evaluated" in v["gate"]["reasons"][0]


def test_zero_weights_fall_back_to_counting_for_coverage():
    v = score_run([r("A", "pass", weight=0), r("B", "na", weight=0)], None, 0.0)
    assert v["coverage"] == 0.5 and v["score"] is None


def test_gate_reasons_are_readable():
    v = score_run([r("A", "pass"), r("B", "fail"), r("C", "na", "critical")], 85, 0.8)
    assert v["gate"]["passed"] is False
    assert "score 50 is below fail-under 85" in v["gate"]["reasons"]
    assert any(x.startswith("coverage 50% is below min_coverage 80%") for x in v["gate"]["reasons"])


def test_gate_with_fail_under_none_still_checks_the_rest():
    v = score_run([r("A", "pass"), r("B", "fail", "low")], None, 0.8)
    assert v["gate"] == {"fail_under": None, "min_coverage": 0.8, "passed": True, "reasons": []}


def test_score_at_fail_under_passes():
    v = score_run([r("A", "pass", weight=17), r("B", "fail", "low", weight=3)], 85, 0.0)
    assert v["score"] == 85.0 and v["gate"]["passed"] is True


def test_worklist_orders_by_weight_then_errors_first():
    checks = [{"id": "L", "status": "fail", "severity": "low", "weight": 2.5},
              {"id": "H", "status": "fail", "severity": "high", "weight": 7.5},
              {"id": "HE", "status": "error", "severity": "high", "weight": 7.5},
              {"id": "C", "status": "fail", "severity": "critical", "weight": 10},
              {"id": "P", "status": "pass", "severity": "critical", "weight": 10}]
    assert [c["id"] for c in worklist(checks)] == ["C", "HE", "H", "L"]


def test_algorithm_version_is_an_int():
    assert isinstance(ALGORITHM_VERSION, int) and ALGORITHM_VERSION >= 1


# ----------------------------------------------------------------------------------------------- SLO curve
positive = st.floats(1e-6, 1e9, allow_nan=False, allow_infinity=False)


@given(positive, positive)
def test_slo_anchors(a, b):
    assume(abs(math.log(a) - math.log(b)) > 1e-6)
    target, limit = min(a, b), max(a, b)
    assert slo_score(target, target, limit) == pytest.approx(0.9, abs=1e-9)
    assert slo_score(limit, target, limit) == pytest.approx(0.5, abs=1e-9)
    assert slo_score(limit, limit, target, higher_is_better=True) == pytest.approx(0.9, abs=1e-9)
    assert slo_score(target, limit, target, higher_is_better=True) == pytest.approx(0.5, abs=1e-9)


@given(positive, positive, positive, positive)
def test_slo_monotone(a, b, m1, m2):
    assume(abs(math.log(a) - math.log(b)) > 1e-6)
    target, limit = min(a, b), max(a, b)
    lo, hi = min(m1, m2), max(m1, m2)
    s_lo, s_hi = slo_score(lo, target, limit), slo_score(hi, target, limit)
    assert 0.0 <= s_hi <= s_lo <= 1.0  # lower is better: more latency never scores higher
    h_lo, h_hi = slo_score(lo, limit, target, True), slo_score(hi, limit, target, True)
    assert 0.0 <= h_lo <= h_hi <= 1.0


def test_slo_edges():
    assert slo_score(0, 100, 250) == 1.0
    assert slo_score(-3, 100, 250) == 1.0
    assert slo_score(0, 400, 100, higher_is_better=True) == 0.0
    assert slo_score(float("nan"), 100, 250) == 0.0
    assert slo_score(float("inf"), 100, 250) == 0.0
    assert slo_score(float("inf"), 400, 100, higher_is_better=True) == 1.0
    assert slo_score(50, 100, 100) == 1.0 and slo_score(100, 100, 100) == 0.5 and slo_score(101, 100, 100) == 0.0
    assert slo_score(1e6, 100, 250) < 1e-6
    assert 0.9 < slo_score(80, 100, 250) < 1.0


@pytest.mark.parametrize("args", [(1, 0, 5), (1, 5, 0), (1, 250, 100), (1, 100, 250, True), (1, float("inf"), 5)])
def test_slo_misconfiguration_is_an_error(args):
    with pytest.raises(ValueError):
        slo_score(*args)


def test_record_slo_uses_the_curve():
    from pytest_pgready.results import Record

    rec = Record("PERF001")
    assert rec.slo("p95", 100, 100, 250) == pytest.approx(0.9)
    rec.slo("p99", 600, 250, 600)
    assert rec.score == pytest.approx(0.5)
