"""What a check produces, and the recorder a check uses to say it.

A check passes by returning. It ends otherwise through the recorder:
`record.na(reason)` (not applicable), `record.fail(summary, objects=…, remedy=…)`.
Any other exception is an `error`. Waivers are applied here, at the point of failure,
so a waived object never reaches the worklist.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from dataclasses import asdict, dataclass, field
from typing import Any, NoReturn

import pytest

from .redact import redact_obj, redact_text
from .report.fmt import printable

STATUSES = ("pass", "fail", "error", "na", "waived")


class CheckNA(pytest.skip.Exception):  # type: ignore[misc,name-defined]
    """Not applicable: pytest shows it as skipped, the report as `na` with the reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(msg=printable(reason), allow_module_level=False)  # pytest prints it: no raw ESC
        self.reason = reason


class CheckFailed(AssertionError):
    """Measured and does not hold."""


class CheckWaived(pytest.skip.Exception):  # type: ignore[misc,name-defined]
    """Failed, but every failing object is waived: pytest shows it as skipped."""

    def __init__(self, reason: str) -> None:
        super().__init__(msg=printable(f"waived: {reason}"), allow_module_level=False)
        self.reason = reason


@dataclass
class CheckResult:
    id: str
    title: str
    category: str
    severity: str
    weight: float
    status: str
    summary: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0
    score: float | None = None  # None → 1 for pass/waived, 0 for fail/error; metric checks set [0,1]
    nodeid: str = ""
    report_metrics: dict[str, Any] = field(default_factory=dict)  # merged into readiness.json "metrics"

    def to_dict(self) -> dict[str, Any]:
        return redact_obj(asdict(self))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CheckResult":
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})


class Record:
    """Evidence, metrics and the verdict of the running check (the `pgready_record` fixture)."""

    def __init__(self, check_id: str, waivers: list | None = None, today: dt.date | None = None) -> None:
        self.check_id = check_id
        self.evidence: dict[str, Any] = {}
        self.metrics: dict[str, Any] = {}
        self.report_metrics: dict[str, Any] = {}
        self.summary_text = ""
        self.score: float | None = None
        self._waivers = [w for w in (waivers or []) if w.check == check_id]
        self._today = today or dt.date.today()

    # --- evidence ---------------------------------------------------------------------------
    def summary(self, text: str) -> None:
        self.summary_text = text

    def add(self, **evidence: Any) -> None:
        self.evidence.update(evidence)

    def metric(self, name: str, value: Any, *, report: bool = False) -> None:
        """A measured figure of this check; `report=True` also puts it in readiness.json's top-level metrics."""
        self.metrics[name] = value
        if report:
            self.report_metrics[name] = value

    def slo(self, name: str, measured: float, target: float, limit: float, *, higher_is_better: bool = False,
            report: bool = False) -> float:
        """Score a figure against its SLO on the log-normal curve and keep the lowest score of the check."""
        from .scoring import slo_score

        s = slo_score(measured, target, limit, higher_is_better=higher_is_better)
        self.metric(name, measured, report=report)
        self.metrics.setdefault("slo", {})[name] = {"measured": measured, "target": target, "limit": limit,
                                                    "higher_is_better": higher_is_better, "score": round(s, 4)}
        self.score = s if self.score is None else min(self.score, s)
        return s

    # --- verdicts -----------------------------------------------------------------------------
    def na(self, reason: str) -> NoReturn:
        raise CheckNA(reason)

    def fail(self, summary: str, *, objects: list[str] | None = None, remedy: str | list[str] | None = None,
             **evidence: Any) -> NoReturn:
        """Fail with evidence. Objects matched by a live waiver are moved aside; all waived → `waived`."""
        self.evidence.update(evidence)
        if remedy is not None:
            self.evidence["remedy"] = remedy
        expired = [w for w in self._waivers if w.expired(self._today)]
        live = [w for w in self._waivers if not w.expired(self._today)]
        if expired:
            self.evidence["expired_waivers"] = [
                f"{w.check}{':' + w.object if w.object else ''} expired {w.expires.isoformat()} ({w.reason})"
                for w in expired]
        whole = next((w for w in live if w.object is None), None)
        if objects is not None:
            kept, waived = [], []
            for o in objects:
                w = next((w for w in live if w.object and fnmatch.fnmatchcase(o, w.object)), None)
                (waived if w else kept).append(o if not w else f"{o} — waived: {w.reason}")
            if waived:
                self.evidence["waived_objects"] = waived
            self.evidence["objects"] = kept
            if not kept and waived:
                self.summary_text = summary
                raise CheckWaived(f"all {len(waived)} failing objects are waived")
        if whole is not None:
            self.summary_text = summary
            self.evidence["waiver"] = whole.reason
            raise CheckWaived(whole.reason)
        self.summary_text = summary
        # the exception's message is printed by pytest (terminal, JUnit): control characters shown as \xNN
        raise CheckFailed(printable(redact_text(summary)))
