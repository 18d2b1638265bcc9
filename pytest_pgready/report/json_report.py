"""readiness.json (DESIGN §5): build the document, load it back, write files atomically.

The document is the single source every other renderer reads, so HTML/Markdown can be
re-rendered later from the JSON alone (`pgready report readiness.json`).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable

from .. import __version__
from ..catalog import CATEGORIES
from ..errors import PgReadyUsageError
from ..redact import redact_obj
from ..scoring import ALGORITHM_VERSION, check_score, score_run, worklist

SCHEMA_VERSION = 1
TOOL = "pytest-pgready"
TARGET_KEYS = ("provider", "server_version", "dsn", "topology", "config_source", "config_rewrites",
               "durability_relaxed", "toxiproxy", "read_only", "binaries")
# Settings copied into the report so a re-render (or a reader) can draw SLO lines without the config.
THRESHOLD_KEYS = ("slo_p95_ms", "slo_p99_ms", "target_rps", "max_error_rate", "rto_seconds", "rpo_seconds",
                  "max_replay_lag_seconds", "max_pool_wait_ms", "switchover_gap_seconds")


def _clean(obj: Any) -> Any:
    """JSON-safe: NaN/inf → None, tuples → lists, unknown objects → str (a Path, a Decimal, a date)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [_clean(v) for v in obj]
    if isinstance(obj, (dt.date, dt.datetime)):
        return obj.isoformat()
    try:  # Decimal and numpy scalars
        f = float(obj)
        return f if math.isfinite(f) else None
    except (TypeError, ValueError):
        return str(obj)


def _attr(r: Any, name: str, default: Any = None) -> Any:
    return r.get(name, default) if isinstance(r, dict) else getattr(r, name, default)


def _check_entry(r: Any) -> dict[str, Any]:
    entry = {k: _attr(r, k) for k in ("id", "title", "category", "severity", "weight", "status", "summary",
                                      "evidence", "metrics", "duration_s")}
    entry["evidence"] = entry["evidence"] or {}
    entry["metrics"] = entry["metrics"] or {}
    entry["summary"] = entry["summary"] or ""
    entry["duration_s"] = float(entry["duration_s"] or 0.0)
    entry["weight"] = float(entry["weight"] or 0.0)
    s = check_score(r)
    entry["score"] = None if s is None else round(s, 4)
    entry["nodeid"] = _attr(r, "nodeid", "") or ""
    return entry


def _sort_key(c: dict[str, Any]) -> tuple[int, str]:
    cat = c.get("category")
    return (CATEGORIES.index(cat) if cat in CATEGORIES else len(CATEGORIES), str(c.get("id")))


def merge_metrics(results: Iterable[Any]) -> dict[str, Any]:
    """Top-level `metrics`: the union of every check's report_metrics; the first writer of a key wins."""
    out: dict[str, Any] = {}
    for r in results:
        for k, v in (_attr(r, "report_metrics") or {}).items():
            out.setdefault(k, v)
    return out


def _target(target: dict[str, Any] | None) -> dict[str, Any]:
    t = dict(target or {})
    for k in TARGET_KEYS:
        t.setdefault(k, None)
    t["topology"] = t["topology"] or {}
    t["config_rewrites"] = t["config_rewrites"] or []
    t["durability_relaxed"] = t["durability_relaxed"] or []
    return t


def build_report(results: list[Any], target: dict[str, Any] | None, settings: Any, started: float | None = None,
                 now: dt.datetime | None = None) -> dict[str, Any]:
    """The readiness.json document for a run: every selected check, whatever its status; redacted."""
    fail_under = getattr(settings, "fail_under", None)
    min_coverage = float(getattr(settings, "min_coverage", 0.8))
    verdict = score_run(results, fail_under, min_coverage)
    now = now or dt.datetime.now(dt.timezone.utc)
    checks = sorted((_check_entry(r) for r in results), key=_sort_key)
    thresholds = {}
    for k in THRESHOLD_KEYS:
        try:
            v = getattr(settings, k)
        except AttributeError:
            continue
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            thresholds[k] = v
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": TOOL, "version": __version__},
        "algorithm_version": ALGORITHM_VERSION,
        "generated_at": now.isoformat(timespec="seconds"),
        "duration_s": round(max(0.0, now.timestamp() - started), 3) if started else None,
        "target": _target(target),
        "score": verdict["score"],
        "coverage": verdict["coverage"],
        "grade": verdict["grade"],
        "gate": verdict["gate"],
        "counts": verdict["counts"],
        "categories": verdict["categories"],
        "worklist": [c["id"] for c in worklist(checks)],
        "checks": checks,
        "metrics": merge_metrics(results),
        "thresholds": thresholds,
    }
    return redact_obj(_clean(doc))


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(_clean(doc), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_atomic(path: Path, text: str) -> Path:
    """Write via a temp file in the same directory and rename, so a crash never leaves half a report."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def ensure_dir(report_dir: Path) -> Path:
    """Create the report directory, or fail with one line that says what to do."""
    report_dir = Path(report_dir)
    try:
        report_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise PgReadyUsageError(f"cannot create the report directory {report_dir} ({e.strerror or e})",
                                "pass --pgready-report-dir a writable directory") from None
    if not os.access(report_dir, os.W_OK | os.X_OK):
        raise PgReadyUsageError(f"the report directory {report_dir} is not writable",
                                "pass --pgready-report-dir a writable directory")
    return report_dir


def load_report(path: Path) -> dict[str, Any]:
    """Read a readiness.json back; any problem is a one-line PgReadyUsageError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PgReadyUsageError(f"{path} does not exist", "give the path of a readiness.json") from None
    except (OSError, UnicodeDecodeError) as e:
        raise PgReadyUsageError(f"cannot read {path} ({getattr(e, 'strerror', None) or e.__class__.__name__})",
                                "give a readable readiness.json") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise PgReadyUsageError(f"{path} is not JSON ({e.msg} at line {e.lineno})",
                                "give a readiness.json written by pytest-pgready") from None
    if not isinstance(doc, dict) or "schema_version" not in doc:
        raise PgReadyUsageError(f"{path} is not a readiness report (no schema_version)",
                                "give a readiness.json written by pytest-pgready")
    if doc["schema_version"] != SCHEMA_VERSION:
        raise PgReadyUsageError(f"{path} has schema_version {doc['schema_version']!r}; this pgready reads {SCHEMA_VERSION}",
                                "re-run the suites with this version, or use the pgready that wrote it")
    problems = [k for k, t in (("checks", list), ("gate", dict), ("target", dict), ("metrics", dict))
                if not isinstance(doc.get(k), t)]
    if problems:
        raise PgReadyUsageError(f"{path} is not a valid readiness report ({problems[0]!r} missing or malformed)",
                                "give a readiness.json written by pytest-pgready")
    return doc


def schema_path() -> Path:
    return Path(__file__).with_name("readiness.schema.json")


def load_schema() -> dict[str, Any]:
    return json.loads(schema_path().read_text(encoding="utf-8"))
