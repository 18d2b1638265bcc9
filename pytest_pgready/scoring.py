"""Pure scoring: check results → score, coverage, grade, category scores and the CI gate (DESIGN §4).

No I/O here: the report writers, the CLI and the tests all call the same functions, so the
number CI gates on is the number the HTML shows.

Decisions beyond DESIGN §4 (documented in docs/report.md):
- nothing evaluated (every check `na`, or no check selected): `score` is null and `grade` is
  "n/a" — a zero would read as "everything failed", a hundred as "everything holds"; the gate
  fails with the reason "no check was evaluated" (a check never passes on absence of data).
- `score` is rounded to one decimal and the gate compares the rounded figure, so what CI
  prints and what it decides never disagree; `coverage` likewise at four decimals.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

from .catalog import CATEGORIES

ALGORITHM_VERSION = 1
EVALUATED = ("pass", "fail", "error", "waived")
_Z90 = 1.2815515655446004  # Φ⁻¹(0.9): the target sits this many σ on the good side of the limit
GRADES = ((90.0, "A"), (80.0, "B"), (70.0, "C"), (60.0, "D"))
NOT_READY = "not ready"
NO_GRADE = "n/a"


def _phi(z: float) -> float:
    """Standard normal CDF."""
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def slo_score(measured: float, target: float, limit: float, higher_is_better: bool = False) -> float:
    """Score a measured figure in [0, 1] on a log-normal curve: target → 0.9, limit → 0.5.

    Like Lighthouse: score = 1 - Φ((ln m - ln limit) / σ), σ chosen so the target scores 0.9;
    mirrored when higher is better. A log scale because "twice as slow" should cost the same at
    10 ms as at 1 s. Edge cases: a measured 0 (or less) is perfect when lower is better and worthless
    when higher is better; NaN scores 0; target == limit degenerates to a step (better than the
    limit → 1, at it → 0.5, worse → 0). A target on the wrong side of the limit, or a non-positive
    target/limit, is a programming error in the check (ValueError), not a silent mis-score.
    """
    target, limit, measured = float(target), float(limit), float(measured)
    if not (target > 0 and limit > 0) or math.isinf(target) or math.isinf(limit):
        raise ValueError(f"slo_score: target ({target}) and limit ({limit}) must be finite and > 0")
    if higher_is_better and target < limit or not higher_is_better and target > limit:
        better = "above" if higher_is_better else "below"
        raise ValueError(f"slo_score: target {target} must be {better} limit {limit}")
    if math.isnan(measured):
        return 0.0
    if measured <= 0:
        return 0.0 if higher_is_better else 1.0
    if math.isinf(measured):
        return 1.0 if higher_is_better else 0.0
    if target == limit:
        if measured == limit:
            return 0.5
        good = measured > limit if higher_is_better else measured < limit
        return 1.0 if good else 0.0
    sigma = abs(math.log(limit) - math.log(target)) / _Z90
    z = (math.log(measured) - math.log(limit)) / sigma
    s = _phi(z) if higher_is_better else _phi(-z)  # 1 - Φ(z) == Φ(-z), without cancellation
    return min(1.0, max(0.0, s))


def _get(r: Any, name: str, default: Any = None) -> Any:
    return r.get(name, default) if isinstance(r, Mapping) else getattr(r, name, default)


def check_score(r: Any) -> float | None:
    """The [0, 1] score one check contributes, or None when it does not count (`na`)."""
    status = _get(r, "status")
    if status not in EVALUATED:
        return None
    own = _get(r, "score")
    if own is not None and status in ("pass", "fail"):
        try:
            v = float(own)
        except (TypeError, ValueError):
            v = float("nan")
        if not math.isnan(v):
            return min(1.0, max(0.0, v))
    return 1.0 if status in ("pass", "waived") else 0.0


def grade_for(score: float | None, critical_fail: bool) -> str:
    """A ≥ 90, B ≥ 80, C ≥ 70, D ≥ 60, else F; a critical fail caps it at "not ready"."""
    if critical_fail:
        return NOT_READY
    if score is None:
        return NO_GRADE
    for floor, letter in GRADES:
        if score >= floor:
            return letter
    return "F"


def _weight(r: Any) -> float:
    try:
        w = float(_get(r, "weight", 0.0) or 0.0)
    except (TypeError, ValueError):
        return 0.0
    return w if w > 0 and math.isfinite(w) else 0.0


def _aggregate(results: list[Any]) -> tuple[float | None, float]:
    """(score 0-100 or None, coverage 0-1) of a group of results."""
    num = den = selected = 0.0
    evaluated_n = 0
    for r in results:
        w = _weight(r)
        selected += w
        s = check_score(r)
        if s is None:
            continue
        evaluated_n += 1
        num += w * s
        den += w
    score = round(100.0 * num / den, 1) if den > 0 else None
    if selected > 0:
        coverage = den / selected
    else:  # every weight overridden to 0: fall back to a plain count
        coverage = evaluated_n / len(results) if results else 0.0
    return score, round(min(1.0, coverage), 4)


def _fmt(x: float) -> str:
    return f"{x:g}"


def score_run(results: Iterable[Any], fail_under: float | None, min_coverage: float) -> dict[str, Any]:
    """Score a run. `results` are CheckResult objects (or their dicts); returns the verdict part of readiness.json:
    {score, coverage, grade, gate{fail_under, min_coverage, passed, reasons}, categories[], counts{}}."""
    results = list(results)
    score, coverage = _aggregate(results)
    critical_fails = [r for r in results if _get(r, "status") == "fail" and _get(r, "severity") == "critical"]
    errors = [r for r in results if _get(r, "status") == "error"]
    evaluated = [r for r in results if _get(r, "status") in EVALUATED]

    reasons: list[str] = []
    if not evaluated:
        reasons.append("no check was evaluated: nothing is proven (every selected check is na)")
    if fail_under is not None and score is not None and score < fail_under:
        reasons.append(f"score {_fmt(score)} is below fail-under {_fmt(fail_under)}")
    elif fail_under is not None and score is None and evaluated:
        reasons.append(f"no weighted check was evaluated, so the score cannot reach fail-under {_fmt(fail_under)}")
    for r in critical_fails:
        reasons.append(f"critical check {_get(r, 'id')} failed: {_get(r, 'summary') or _get(r, 'title')}")
    for r in errors:
        reasons.append(f"check {_get(r, 'id')} could not complete: {_get(r, 'summary') or 'error'}")
    if coverage < min_coverage:
        reasons.append(f"coverage {coverage:.0%} is below min_coverage {min_coverage:.0%}"
                       " (too many checks were na)")

    counts = {s: 0 for s in ("pass", "fail", "error", "na", "waived")}
    for r in results:
        st = _get(r, "status")
        counts[st] = counts.get(st, 0) + 1
    return {
        "score": score,
        "coverage": coverage,
        "grade": grade_for(score, bool(critical_fails)),
        "gate": {"fail_under": fail_under, "min_coverage": min_coverage, "passed": not reasons, "reasons": reasons},
        "categories": category_scores(results),
        "counts": counts,
    }


def category_scores(results: list[Any]) -> list[dict[str, Any]]:
    """Per-category figures in catalogue order; categories only user checks bring follow, in first-seen order."""
    groups: dict[str, list[Any]] = {}
    for r in results:
        groups.setdefault(str(_get(r, "category") or "other"), []).append(r)
    order = [c for c in CATEGORIES if c in groups] + [c for c in groups if c not in CATEGORIES]
    out = []
    for cat in order:
        rs = groups[cat]
        score, coverage = _aggregate(rs)
        statuses = [_get(r, "status") for r in rs]
        out.append({"id": cat, "score": score, "checks": len(rs), "coverage": coverage,
                    "passed": statuses.count("pass"), "failed": statuses.count("fail"),
                    "errors": statuses.count("error"), "na": statuses.count("na"),
                    "waived": statuses.count("waived"),
                    "weight": round(sum(_weight(r) for r in rs), 4)})
    return out


SEVERITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3}


def worklist(checks: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Failures and errors, most important first: weight (severity) desc, errors before fails, then id."""
    bad = [c for c in checks if c.get("status") in ("fail", "error")]
    return sorted(bad, key=lambda c: (-_weight(c), SEVERITY_RANK.get(str(c.get("severity")), 9),
                                      0 if c.get("status") == "error" else 1, str(c.get("id"))))
