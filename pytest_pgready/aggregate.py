"""Merge several results of one check id (parametrized checks, xdist) into one: the worst status wins."""

from __future__ import annotations

from .results import CheckResult

_RANK = {"error": 4, "fail": 3, "waived": 2, "pass": 1, "na": 0}


def merge_results(results: list[CheckResult]) -> CheckResult:
    if len(results) == 1:
        return results[0]
    worst = max(results, key=lambda r: _RANK.get(r.status, 0))
    merged = CheckResult(**{**worst.__dict__})
    merged.duration_s = round(sum(r.duration_s for r in results), 4)
    if len({r.nodeid for r in results}) > 1:
        merged.evidence = {**worst.evidence, "parts": [
            {"nodeid": r.nodeid, "status": r.status, "summary": r.summary} for r in results]}
    scores = [r.score for r in results if r.score is not None]
    merged.score = min(scores) if scores else None
    for r in results:
        for k, v in r.report_metrics.items():
            merged.report_metrics.setdefault(k, v)
    return merged
