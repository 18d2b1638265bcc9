"""pytest-html integration: a score banner in the summary and each check's evidence in its row.

Registered by plugin.pytest_configure only when pytest-html is loaded: the pytest_html_* hooks
below are unknown to pluggy otherwise and would be rejected.
"""

from __future__ import annotations

from html import escape
from typing import Any

from .fmt import STATUS_LABEL, gate_text, num, pct, printable, value_text, verdict_word

_results: dict[str, dict[str, Any]] = {}  # nodeid → pgready result dict (set on the teardown report)


def pytest_runtest_logreport(report: Any) -> None:
    for key, value in getattr(report, "user_properties", ()) or ():
        if key == "pgready_result" and isinstance(value, dict):
            _results[report.nodeid] = value


def banner_html(doc: dict[str, Any]) -> str:
    ok = bool((doc.get("gate") or {}).get("passed"))
    colour = "#0a7d34" if ok else "#b42318"
    reasons = "".join(f"<li>{escape(str(r))}</li>" for r in (doc.get("gate") or {}).get("reasons") or [])
    return (f'<div class="pgready-banner" style="border-left:6px solid {colour};padding:8px 12px;margin:8px 0;'
            f'background:#f7f7f8"><p style="margin:0;font-size:1.3em;font-weight:700;color:{colour}">'
            f"PostgreSQL {escape(verdict_word(doc))} — score {escape(num(doc.get('score')))}"
            f" ({escape(str(doc.get('grade')))})</p><p style=\"margin:4px 0 0\">coverage "
            f"{escape(pct(doc.get('coverage')))} · {escape(gate_text(doc))}</p>"
            + (f'<ul style="margin:4px 0 0">{reasons}</ul>' if reasons else "") + "</div>")


def evidence_html(result: dict[str, Any]) -> str:
    """The check's verdict and evidence as escaped, preformatted text (pytest-html shows it in the row's log)."""
    lines = [f"pgready {result.get('id')} [{result.get('severity')}] {STATUS_LABEL.get(result.get('status'), '?')}:"
             f" {result.get('summary') or ''}"]
    for k, v in (result.get("evidence") or {}).items():
        lines.append(f"{k}: {value_text(v)}")
    for k, v in (result.get("metrics") or {}).items():
        lines.append(f"metric {k}: {value_text(v)}")
    return f'<div class="pgready-evidence">{escape(printable(chr(10).join(lines)))}</div>'


def pytest_html_results_summary(prefix: list[str], summary: list[str], postfix: list[str], session: Any) -> None:
    from ..plugin import state_key

    state = session.config.stash.get(state_key, None)
    doc = getattr(state, "report", None)
    if doc:
        prefix.append(banner_html(doc))


def pytest_html_results_table_html(report: Any, data: list[str]) -> None:
    if report.when == "teardown" and report.outcome == "passed":
        return
    result = _results.get(report.nodeid)
    if result is not None:
        data.append(evidence_html(result))
