"""readiness.md for CI: verdict, worklist, category table, every check — and GitHub Actions glue.

GitHub renders HTML inside Markdown, so every value from the database is escaped (`<`, `>`, `&`,
`|`): a table named `<img src=x onerror=…>` is shown, never rendered.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Mapping

from ..scoring import worklist
from .fmt import (STATUS_LABEL, gate_text, num, objects_of, one_line, pct, plain_title, remedy_of, topology_text,
                  verdict_word)

STEP_SUMMARY_LIMIT = 1024 * 1024  # GitHub rejects a step summary above 1 MiB
MAX_ANNOTATIONS = 10
_ICON = {"pass": "✅", "fail": "❌", "error": "💥", "na": "➖", "waived": "⚠️"}


def md(text: Any, limit: int | None = 300) -> str:
    """Escape a value for a Markdown table cell (one line, no HTML, no column breaks)."""
    s = one_line(text, limit)
    s = s.replace("\\", "\\\\")  # first: a name's backslash must not undo the escapes below
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")
    return s.replace("`", "\\`").replace("*", "\\*").replace("_", "\\_").replace("[", "\\[")


def _objects_cell(c: Mapping[str, Any], n: int = 3) -> str:
    objs = objects_of(c)
    cell = ", ".join(md(o, 120) for o in objs[:n])
    return cell + (f" (+{len(objs) - n} more)" if len(objs) > n else "")


def _header(doc: Mapping[str, Any]) -> list[str]:
    t = doc.get("target") or {}
    gate = doc.get("gate") or {}
    lines = [f"## PostgreSQL readiness: {'✅' if gate.get('passed') else '❌'} {verdict_word(doc)}", "",
             f"**Score {num(doc.get('score'))} ({md(doc.get('grade'))})** · coverage {pct(doc.get('coverage'))}"
             f" · {gate_text(doc)}", ""]
    if t.get("provider") or t.get("server_version"):
        lines.append(f"Target: PostgreSQL {md(t.get('server_version') or 'unknown')} · {md(t.get('provider') or '?')}"
                     f" · {md(topology_text(t))} · generated {md(doc.get('generated_at'))}")
    else:
        lines.append(f"Target: no check reached a cluster · generated {md(doc.get('generated_at'))}")
    for caveat in t.get("durability_relaxed") or []:
        lines.append(f"> ⚠️ durability relaxed: {md(caveat)}")
    lines.append("")
    if gate.get("reasons"):
        lines.append("**Why not ready:**")
        lines += [f"- {md(r, 400)}" for r in gate["reasons"]]
        lines.append("")
    return lines


def _worklist(doc: Mapping[str, Any], limit: int | None) -> list[str]:
    items = worklist(doc.get("checks") or [])
    if not items:
        return ["### Fix first", "", "Nothing to fix: no check failed.", ""]
    shown = items if limit is None else items[:limit]
    lines = ["### Fix first", "", "| # | Check | Severity | Status | Summary | Objects | Remedy |",
             "|---:|---|---|---|---|---|---|"]
    for i, c in enumerate(shown, 1):
        rem = remedy_of(c)
        lines.append(f"| {i} | **{md(c.get('id'))}** {md(plain_title(c.get('title', '')), 80)} | {md(c.get('severity'))}"
                     f" | {_ICON.get(c.get('status'), '')} {STATUS_LABEL.get(c.get('status'), md(c.get('status')))}"
                     f" | {md(c.get('summary'))} | {_objects_cell(c)} | {md(rem[0], 160) if rem else ''}"
                     f"{f' (+{len(rem) - 1} more)' if len(rem) > 1 else ''} |")
    if len(shown) < len(items):
        lines.append(f"\n_… {len(items) - len(shown)} more failing checks: see readiness.html._")
    return lines + [""]


def _categories(doc: Mapping[str, Any]) -> list[str]:
    lines = ["### Categories", "", "| Category | Score | Checks | Pass | Fail | Error | N/A | Waived |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for c in doc.get("categories") or []:
        lines.append(f"| {md(c.get('id'))} | {num(c.get('score'))} | {c.get('checks', 0)} | {c.get('passed', 0)}"
                     f" | {c.get('failed', 0)} | {c.get('errors', 0)} | {c.get('na', 0)} | {c.get('waived', 0)} |")
    return lines + [""]


def _checks(doc: Mapping[str, Any], limit: int | None) -> list[str]:
    checks = list(doc.get("checks") or [])
    shown = checks if limit is None else checks[:limit]
    lines = ["<details><summary>All checks</summary>", "", "| Check | Category | Severity | Status | Summary |",
             "|---|---|---|---|---|"]
    for c in shown:
        lines.append(f"| **{md(c.get('id'))}** | {md(c.get('category'))} | {md(c.get('severity'))}"
                     f" | {_ICON.get(c.get('status'), '')} {STATUS_LABEL.get(c.get('status'), md(c.get('status')))}"
                     f" | {md(c.get('summary'), 200)} |")
    if len(shown) < len(checks):
        lines.append(f"\n_… {len(checks) - len(shown)} more checks left out to stay under GitHub's size limit:"
                     " see readiness.json / readiness.html._")
    return lines + ["", "</details>", ""]


def _footer(doc: Mapping[str, Any]) -> list[str]:
    tool = doc.get("tool") or {}
    return [f"<sub>{md(tool.get('name'))} {md(tool.get('version'))} · report schema {doc.get('schema_version')}"
            f" · scoring algorithm {doc.get('algorithm_version')}</sub>", ""]


def render_markdown(doc: Mapping[str, Any], max_bytes: int | None = None) -> str:
    """The whole report; with max_bytes, the check list (then the worklist) is cut, with a note, to fit."""
    def build(check_limit: int | None, work_limit: int | None) -> str:
        return "\n".join(_header(doc) + _worklist(doc, work_limit) + _categories(doc)
                         + _checks(doc, check_limit) + _footer(doc))

    text = build(None, None)
    if max_bytes is None or len(text.encode()) <= max_bytes:
        return text
    n = len(doc.get("checks") or [])
    lo, hi = 0, n  # largest check list that fits
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if len(build(mid, None).encode()) <= max_bytes:
            lo = mid
        else:
            hi = mid - 1
    text = build(lo, None)
    if len(text.encode()) <= max_bytes:
        return text
    text = build(0, 20)
    if len(text.encode()) <= max_bytes:
        return text
    short = "\n".join(_header(doc)[:4]) + "\n\n_Report too large for the step summary: see readiness.html._\n"
    return short.encode()[:max_bytes].decode(errors="ignore")


def append_step_summary(doc: Mapping[str, Any], path: Path) -> None:
    """Append the report to $GITHUB_STEP_SUMMARY, staying under GitHub's 1 MiB; never fails the run."""
    try:
        used = path.stat().st_size if path.exists() else 0
        budget = STEP_SUMMARY_LIMIT - used - 1024
        if budget <= 256:
            return
        with open(path, "a", encoding="utf-8") as f:
            f.write(render_markdown(doc, max_bytes=budget) + "\n")
    except OSError as e:
        print(f"pgready: could not append to GITHUB_STEP_SUMMARY ({e.strerror or e})", file=sys.stderr)


def _gh_escape(text: str, prop: bool = False) -> str:
    s = str(text).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return s.replace(":", "%3A").replace(",", "%2C") if prop else s


def github_annotations(doc: Mapping[str, Any], limit: int = MAX_ANNOTATIONS) -> list[str]:
    """`::error title=…::…` lines for what blocks the gate hardest (critical fails/errors, then other errors)."""
    if os.environ.get("GITHUB_ACTIONS") != "true":
        return []
    items = [c for c in worklist(doc.get("checks") or [])
             if c.get("severity") == "critical" or c.get("status") == "error"]
    out = []
    for c in items[:limit]:
        title = f"pgready {c.get('id')} ({c.get('severity')} {c.get('status')})"
        objs = objects_of(c)
        msg = one_line(c.get("summary") or plain_title(c.get("title", "")), 400)
        if objs:
            msg += " — " + one_line(", ".join(objs[:5]), 300)
        out.append(f"::error title={_gh_escape(title, prop=True)}::{_gh_escape(msg)}")
    return out
