"""The `pgready` section of pytest's terminal summary: one line per check, failures last, then the verdict."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Mapping

from .fmt import STATUS_LABEL, STATUS_ORDER, one_line, verdict_line
from .markdown import github_annotations

_MARKUP = {"pass": {"green": True}, "waived": {"yellow": True}, "na": {}, "fail": {"red": True},
           "error": {"red": True, "bold": True}}


def _cut(text: str, width: int) -> str:
    limit = max(20, width - 1)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def summary_lines(doc: Mapping[str, Any], paths: Mapping[str, Path] | None = None,
                  width: int | None = None) -> list[tuple[str, dict[str, bool]]]:
    """(text, terminalreporter markup) lines. Failures come last so they are what stays on screen."""
    width = width or shutil.get_terminal_size((120, 24)).columns
    rank = {s: i for i, s in enumerate(STATUS_ORDER)}
    checks = sorted(doc.get("checks") or [],
                    key=lambda c: (rank.get(c.get("status"), 99), -float(c.get("weight") or 0), str(c.get("id"))))
    out: list[tuple[str, dict[str, bool]]] = []
    for c in checks:
        st = c.get("status")
        text = f"{STATUS_LABEL.get(st, str(st)):<6} {str(c.get('id', '?')):<8} {one_line(c.get('summary'))}"
        out.append((_cut(text, width), dict(_MARKUP.get(st, {}))))
    passed = bool((doc.get("gate") or {}).get("passed"))
    out.append((verdict_line(doc), {"green": passed, "red": not passed, "bold": True}))
    for reason in (doc.get("gate") or {}).get("reasons") or []:
        out.append((_cut(f"  why: {one_line(reason)}", width), {"red": True}))
    for key in ("html", "json", "md"):
        if paths and key in paths:
            out.append((f"pgready: report {paths[key]}", {}))
    out += [(line, {}) for line in github_annotations(doc)]
    return out
