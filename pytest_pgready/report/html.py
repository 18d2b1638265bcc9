"""readiness.html: one self-contained page (inline CSS, inline SVG, no JavaScript, no external URL).

A pure view model is built from readiness.json here; the jinja2 templates in reports/ only lay
it out, with autoescape on: object names are data, and data is never markup.
"""

from __future__ import annotations

import functools
from typing import Any, Mapping

from ..scoring import worklist
from .charts import category_chart, fmt, metric_charts
from .fmt import (STATUS_LABEL, gate_text, num, objects_of, one_line, pct, plain_title, printable, remedy_of,
                  topology_text, value_text, verdict_word)

MAX_OBJECTS = 50
_SKIP_EVIDENCE = ("objects", "remedy")


@functools.lru_cache(maxsize=1)
def _env():
    import jinja2

    from ..plugin import shipped_dir

    def finalize(value: Any) -> Any:  # control characters in names (ESC, BEL …) shown as \xNN, never raw
        return printable(value) if isinstance(value, str) and not hasattr(value, "__html__") else value

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(shipped_dir("reports"))), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, finalize=finalize)
    env.filters["num"] = num
    env.filters["pct"] = pct
    return env


def _evidence(check: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Evidence as display blocks: lists of objects, code (remedy, SQL), text, structures as JSON."""
    ev = check.get("evidence") or {}
    blocks: list[dict[str, Any]] = []
    objs = objects_of(check)
    if objs:
        blocks.append({"key": "objects", "kind": "list", "items": objs[:MAX_OBJECTS],
                       "more": max(0, len(objs) - MAX_OBJECTS)})
    rem = remedy_of(check)
    if rem:
        blocks.append({"key": "remedy", "kind": "code", "text": "\n".join(rem[:MAX_OBJECTS])
                       + (f"\n-- … {len(rem) - MAX_OBJECTS} more" if len(rem) > MAX_OBJECTS else "")})
    for k, v in ev.items():
        if k in _SKIP_EVIDENCE:
            continue
        if isinstance(v, list) and v and all(isinstance(x, (str, int, float)) for x in v):
            blocks.append({"key": k, "kind": "list", "items": [str(x) for x in v[:MAX_OBJECTS]],
                           "more": max(0, len(v) - MAX_OBJECTS)})
            continue
        text = value_text(v)
        code = not isinstance(v, str) or "\n" in text or len(text) > 140 or k.lower() in ("sql", "query", "command")
        blocks.append({"key": k, "kind": "code" if code else "text", "text": text})
    return blocks


def _metrics(check: Mapping[str, Any]) -> list[dict[str, str]]:
    rows = []
    for k, v in (check.get("metrics") or {}).items():
        if k == "slo" and isinstance(v, Mapping):
            for name, s in v.items():
                if isinstance(s, Mapping):
                    rows.append({"key": f"SLO {name}", "text": f"measured {s.get('measured')} · target {s.get('target')}"
                                 f" · limit {s.get('limit')} · score {s.get('score')}"})
            continue
        rows.append({"key": k, "text": one_line(value_text(v), 300)})
    return rows


def _check_view(c: Mapping[str, Any]) -> dict[str, Any]:
    st = c.get("status")
    return {"id": c.get("id"), "title": plain_title(str(c.get("title") or "")), "severity": c.get("severity"),
            "status": st, "label": STATUS_LABEL.get(st, str(st)), "summary": c.get("summary") or "",
            "weight": num(c.get("weight"), 2), "score": c.get("score"), "duration": fmt(float(c.get("duration_s") or 0), "s"),
            "evidence": _evidence(c), "metrics": _metrics(c), "nodeid": c.get("nodeid") or "",
            "open": st in ("fail", "error")}


def short_title(title: str, limit: int = 70) -> str:
    """The catalogue's 'passes when' sentence up to its first parenthesis, cut to fit a table cell."""
    t = plain_title(title).split(" (")[0].strip()
    return one_line(t, limit)


def _work_item(c: Mapping[str, Any]) -> dict[str, Any]:
    objs = objects_of(c)
    rem = remedy_of(c)
    return {"id": c.get("id"), "title": short_title(str(c.get("title") or "")), "severity": c.get("severity"),
            "status": c.get("status"), "label": STATUS_LABEL.get(c.get("status"), "?"), "summary": c.get("summary") or "",
            "objects": objs[:6], "more_objects": max(0, len(objs) - 6), "remedy": rem[:3],
            "more_remedy": max(0, len(rem) - 3), "category": c.get("category")}


def _tile(label: str, value: str, detail: str, ok: bool | None) -> dict[str, str]:
    return {"label": label, "value": value, "detail": detail,
            "cls": "c-na" if ok is None else "c-good" if ok else "c-bad"}


def _n(v: Any) -> float | None:
    try:
        return None if v is None or isinstance(v, bool) else float(v)
    except (TypeError, ValueError):
        return None


def key_figures(doc: Mapping[str, Any]) -> list[dict[str, str]]:
    """The claims readiness reports usually make without proof, each with its measured figure."""
    m, th = doc.get("metrics") or {}, doc.get("thresholds") or {}
    rto, rpo = _n(th.get("rto_seconds")), _n(th.get("rpo_seconds"))
    tiles = []

    def vs(v: float, limit: float | None, unit: str, word: str = "target", higher: bool = False) -> tuple[str, bool | None]:
        if limit is None:
            return "", None
        ok = v >= limit if higher else v <= limit
        return f"{word} {'≥' if higher else '≤'} {fmt(limit, unit)}", ok

    if (v := _n(m.get("restore_seconds"))) is not None:
        tiles.append(_tile("Restore time", fmt(v, "s"), *vs(v, rto, "s", "RTO")))
    fo = m.get("failover_write_gap_seconds")
    if isinstance(fo, Mapping) and (v := _n(fo.get("p95", fo.get("max")))) is not None:
        tiles.append(_tile("Failover write gap p95", fmt(v, "s"), *vs(v, rto, "s", "RTO")))
    if (v := _n(m.get("lost_acknowledged_writes"))) is not None:
        tiles.append(_tile("Lost acknowledged writes", fmt(v), "must be 0", v == 0))
    if (v := _n(m.get("archive_rpo_seconds"))) is not None:
        tiles.append(_tile("Data at risk (archive RPO)", fmt(v, "s"), *vs(v, rpo, "s", "RPO")))
    lat = m.get("latency_ms")
    if isinstance(lat, Mapping) and (v := _n(lat.get("p95"))) is not None:
        tiles.append(_tile("Latency p95", fmt(v, "ms"), *vs(v, _n(th.get("slo_p95_ms")), "ms", "SLO")))
    if (v := _n(m.get("throughput_rps"))) is not None:
        tiles.append(_tile("Throughput", fmt(v, "req/s"), *vs(v, _n(th.get("target_rps")), "", "target", True)))
    series = m.get("replication_lag_series")
    if isinstance(series, list) and series:
        lags = [x for x in (_n(p[1]) for p in series if isinstance(p, (list, tuple)) and len(p) > 1) if x is not None]
        if lags:
            tiles.append(_tile("Replication lag (peak)", fmt(max(lags), "s"),
                               *vs(max(lags), _n(th.get("max_replay_lag_seconds")), "s", "limit")))
    pc, ps = _n(m.get("pool_clients")), _n(m.get("pool_server_connections"))
    if pc is not None and ps is not None:
        tiles.append(_tile("Connection pooling", f"{fmt(pc)} → {fmt(ps)}", "clients → server connections", None))
    if (v := _n(m.get("pool_wait_ms"))) is not None:
        tiles.append(_tile("Pool wait", fmt(v, "ms"), *vs(v, _n(th.get("max_pool_wait_ms")), "ms", "limit")))
    return tiles


def _target_rows(t: Mapping[str, Any]) -> list[tuple[str, str]]:
    rows = [("PostgreSQL", str(t.get("server_version") or "unknown")), ("Provider", str(t.get("provider") or "unknown")),
            ("Topology", topology_text(t))]
    if t.get("dsn"):
        rows.append(("Target", str(t["dsn"])))
    if t.get("config_source"):
        rows.append(("Configuration", str(t["config_source"])))
    if t.get("read_only") is not None:
        rows.append(("Mode", "read-only (drills and load not run)" if t.get("read_only") else "drills allowed"))
    return rows


def _caveats(doc: Mapping[str, Any]) -> list[str]:
    t = doc.get("target") or {}
    out = [f"Durability relaxed: {d}" for d in t.get("durability_relaxed") or []]
    if t.get("toxiproxy"):
        out.append(f"Network faults not injected: {t['toxiproxy']}")
    if not t.get("provider") and not t.get("server_version"):
        out.append("No check reached a database: the target is unknown.")
    return out


def build_view(doc: Mapping[str, Any]) -> dict[str, Any]:
    """Everything the template shows, precomputed (pure)."""
    checks = list(doc.get("checks") or [])
    gate = doc.get("gate") or {}
    counts = {s: 0 for s in STATUS_LABEL}
    for c in checks:
        counts[c.get("status")] = counts.get(c.get("status"), 0) + 1
    by_cat: dict[str, list[dict[str, Any]]] = {}
    for c in checks:
        by_cat.setdefault(str(c.get("category")), []).append(_check_view(c))
    cats = []
    for cat in doc.get("categories") or []:
        cats.append({**cat, "items": by_cat.pop(str(cat.get("id")), [])})
    for cid, items in by_cat.items():
        cats.append({"id": cid, "score": None, "checks": len(items), "items": items})
    score = doc.get("score")
    work = [_work_item(c) for c in worklist(checks)]
    crit = sum(1 for c in checks if c.get("status") == "fail" and c.get("severity") == "critical")
    if gate.get("passed"):
        headline = "Every gate condition holds."
    else:
        bits = []
        if crit:
            bits.append(f"{crit} critical check{'s' if crit > 1 else ''} failed")
        if counts.get("error"):
            bits.append(f"{counts['error']} check{'s' if counts['error'] > 1 else ''} could not complete")
        headline = (", ".join(bits) + ".") if bits else "The gate conditions do not hold."
        headline = headline[0].upper() + headline[1:]
    tool = doc.get("tool") or {}
    total = len(checks) or 1
    seg_x, segments = 0.0, []
    for st in ("pass", "waived", "na", "fail", "error"):
        w = 100.0 * counts.get(st, 0) / total
        if w > 0:
            segments.append({"cls": f"s-{st}", "x": round(seg_x, 3), "w": round(w, 3),
                             "tip": f"{counts[st]} {STATUS_LABEL[st].lower()}"})
            seg_x += w
    words = {"pass": "passed", "fail": "failed", "error": "error" if counts.get("error") == 1 else "errors",
             "waived": "waived", "na": "not applicable"}
    return {
        "segments": segments, "pills": [(st, counts.get(st, 0), words[st]) for st in ("pass", "fail", "error", "waived", "na")],
        "ready": bool(gate.get("passed")), "verdict": verdict_word(doc), "headline": headline,
        "reasons": list(gate.get("reasons") or []), "gate_text": gate_text(doc),
        "score": score, "score_text": num(score), "grade": doc.get("grade"), "coverage_text": pct(doc.get("coverage")),
        "ring": max(0.0, min(100.0, float(score))) if isinstance(score, (int, float)) else 0.0,
        "ring_cls": ("c-na" if score is None else "c-bad" if doc.get("grade") == "not ready" or score < 70
                     else "c-good" if score >= 90 else "c-warn"),
        "fail_under": gate.get("fail_under"), "min_coverage": gate.get("min_coverage"),
        "counts": counts, "total": len(checks), "generated_at": doc.get("generated_at"),
        "duration": fmt(float(doc["duration_s"]), "s") if isinstance(doc.get("duration_s"), (int, float)) else None,
        "target_rows": _target_rows(doc.get("target") or {}), "caveats": _caveats(doc),
        "rewrites": [str(r) for r in (doc.get("target") or {}).get("config_rewrites") or []],
        "worklist": work, "category_chart": category_chart(doc), "categories": cats,
        "tiles": key_figures(doc), "charts": metric_charts(doc),
        "tool": f"{tool.get('name', 'pytest-pgready')} {tool.get('version', '')}".strip(),
        "schema_version": doc.get("schema_version"), "algorithm_version": doc.get("algorithm_version"),
    }


def render_html(doc: Mapping[str, Any]) -> str:
    return _env().get_template("readiness.html.j2").render(v=build_view(doc))
