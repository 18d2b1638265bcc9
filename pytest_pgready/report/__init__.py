"""The readiness report: readiness.json (the contract), readiness.html (people), readiness.md (CI).

    doc = build_report(results, target, settings, started)   # pure: the readiness.json content
    paths = write_reports(doc, Path(settings.report_dir))    # {"json", "html", "md"} → Path

Writers never query the database; they only read `doc`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from ..errors import PgReadyUsageError
from ..redact import redact_obj
from .json_report import build_report, dumps, ensure_dir, load_report, write_atomic

__all__ = ["build_report", "write_reports", "render_all", "load_report"]


def _renderers() -> dict[str, Any]:
    from .html import render_html
    from .markdown import render_markdown

    return {"json": dumps, "html": render_html, "md": render_markdown}


def render_all(doc: dict[str, Any]) -> dict[str, str]:
    """Every report file's text, keyed like write_reports' result."""
    doc = redact_obj(doc)
    return {fmt: render(doc) for fmt, render in _renderers().items()}


def write_reports(doc: dict[str, Any], report_dir: Path, *, formats: tuple[str, ...] = ("json", "html", "md"),
                  step_summary: bool = True) -> dict[str, Path]:
    """Write readiness.{json,html,md} atomically into report_dir (created); append the GitHub step summary.

    readiness.json is written first: a bug in a renderer must not cost the run its evidence, so a
    renderer that raises is reported on stderr and its file skipped."""
    report_dir = ensure_dir(Path(report_dir))
    doc = redact_obj(doc)
    renderers = _renderers()
    paths: dict[str, Path] = {}
    for fmt in formats:
        try:
            text = renderers[fmt](doc)
        except Exception as e:  # noqa: BLE001 - see docstring
            if fmt == "json":
                raise
            print(f"pgready: could not render readiness.{fmt} ({e.__class__.__name__}: {e}); readiness.json is complete",
                  file=sys.stderr)
            continue
        try:
            paths[fmt] = write_atomic(report_dir / f"readiness.{fmt}", text)
        except OSError as e:
            raise PgReadyUsageError(f"cannot write the report into {report_dir} ({e.strerror or e})",
                                    "pass --pgready-report-dir a writable directory with free space") from None
    if step_summary and os.environ.get("GITHUB_STEP_SUMMARY"):
        from .markdown import append_step_summary

        append_step_summary(doc, Path(os.environ["GITHUB_STEP_SUMMARY"]))
    return paths
