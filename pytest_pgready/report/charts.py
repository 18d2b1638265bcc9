"""Charts for the HTML report as plain data: SVG primitives (rect/line/text/polyline) with coordinates.

Pure functions from readiness.json to geometry; the template only draws what it is given and
autoescapes every label. A chart whose metric is absent is simply not produced (None).
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence

Chart = dict[str, Any]
W, H = 560, 250
ML, MR, MT, MB = 56, 16, 22, 40  # margins of vertical charts: room for y and x labels


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def fmt(v: float, unit: str = "") -> str:
    """Short human numbers for labels: 0.0123 → 0.012, 1234 → 1,234, 12.34 → 12.3."""
    a = abs(v)
    if a == 0:
        s = "0"
    elif a >= 1000:
        s = f"{v:,.0f}"
    elif a >= 100:
        s = f"{v:.0f}"
    elif a >= 10:
        s = f"{v:.1f}".rstrip("0").rstrip(".")
    elif a >= 1:
        s = f"{v:.2f}".rstrip("0").rstrip(".")
    else:
        s = f"{v:.3g}"
    return f"{s} {unit}".strip() if unit else s


def nice_ticks(vmax: float, n: int = 4) -> list[float]:
    """0 and round steps (1, 2, 2.5, 5 × 10^k) up to at least vmax."""
    if vmax <= 0:
        return [0.0, 1.0]
    raw = vmax / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    top = math.ceil(vmax / step - 1e-9) * step
    return [round(i * step, 10) for i in range(int(round(top / step)) + 1)]


def _r(x: float) -> float:
    return round(x, 1)


def _chart(cid: str, title: str, subtitle: str = "", width: int = W, height: int = H) -> Chart:
    return {"id": cid, "title": title, "subtitle": subtitle, "width": width, "height": height, "els": [],
            "notes": [], "legend": []}


def _text(c: Chart, x: float, y: float, text: str, cls: str = "lbl", anchor: str = "start") -> None:
    c["els"].append({"k": "text", "x": _r(x), "y": _r(y), "text": text, "cls": cls, "anchor": anchor})


def _line(c: Chart, x1: float, y1: float, x2: float, y2: float, cls: str = "axis") -> None:
    c["els"].append({"k": "line", "x1": _r(x1), "y1": _r(y1), "x2": _r(x2), "y2": _r(y2), "cls": cls})


def _rect(c: Chart, x: float, y: float, w: float, h: float, cls: str, tip: str = "") -> None:
    c["els"].append({"k": "rect", "x": _r(x), "y": _r(y), "w": _r(max(w, 0)), "h": _r(max(h, 0)), "cls": cls,
                     "tip": tip})


def _refs_in_scale(refs: Iterable[tuple[str, float | None]], vmax: float, c: Chart, unit: str,
                   factor: float = 4.0) -> list[tuple[str, float]]:
    """Reference lines (SLOs, RTO) that fit on the scale; far-off ones become a note instead."""
    out = []
    for label, v in refs:
        if v is None or v <= 0:
            continue
        if vmax > 0 and v > vmax * factor:
            c["notes"].append(f"{label} {fmt(v, unit)} is far above every measurement (off scale)")
        else:
            out.append((label, v))
    return out


def vbars(cid: str, title: str, items: Sequence[tuple[str, float, str]], unit: str,
          refs: Sequence[tuple[str, float | None]] = (), subtitle: str = "", value_labels: bool = True,
          label_every: int = 1) -> Chart:
    """Vertical bars (label, value, css class) with dashed horizontal reference lines."""
    c = _chart(cid, title, subtitle)
    vmax = max([v for _, v, _ in items] + [0.0])
    refs_ok = _refs_in_scale(refs, vmax, c, unit)
    ticks = nice_ticks(max([vmax] + [v for _, v in refs_ok]) * 1.08)
    top = ticks[-1] or 1.0
    mr = REF_LABEL_W if refs_ok else MR  # reference labels live in a right-hand margin, clear of the bars
    pw, ph = W - ML - mr, H - MT - MB
    y = lambda v: MT + ph - ph * (v / top)  # noqa: E731
    for t in ticks:
        _line(c, ML, y(t), ML + pw, y(t), "grid")
        _text(c, ML - 6, y(t) + 4, fmt(t), "tick", "end")
    _text(c, 4, MT - 8, unit, "tick")
    slot = pw / max(1, len(items))
    bw = min(56.0, slot * 0.7)
    for i, (label, v, cls) in enumerate(items):
        x = ML + slot * i + (slot - bw) / 2
        _rect(c, x, y(v), bw, ph - (y(v) - MT), cls, f"{label}: {fmt(v, unit)}")
        if value_labels:
            _text(c, x + bw / 2, y(v) - 4, fmt(v), "val", "middle")
        if i % label_every == 0:
            _text(c, x + bw / 2, H - MB + 16, label, "tick", "middle")
    _line(c, ML, MT + ph, ML + pw, MT + ph, "axis")
    _ref_labels(c, [(label, v, y(v)) for label, v in refs_ok], ML, ML + pw, unit)
    return c


REF_LABEL_W = 116


def _ref_labels(c: Chart, refs: list[tuple[str, float, float]], x0: float, x1: float, unit: str) -> None:
    """Dashed horizontal lines with their labels in the right margin, nudged apart when close."""
    last = -1e9
    for label, v, yy in sorted(refs, key=lambda r: r[2]):
        _line(c, x0, yy, x1, yy, "ref")
        ty = max(yy + 4, last + 13)
        _text(c, x1 + 6, ty, f"{label} {fmt(v, unit)}", "reflbl")
        last = ty


def hbars(cid: str, title: str, rows: Sequence[tuple[str, float | None, str, str]], vmax: float, unit: str = "",
          marker: tuple[str, float] | None = None, subtitle: str = "", label_w: int = 130,
          refs: Sequence[tuple[str, float | None]] = (), width: int = W, note_w: int = 150,
          row_cls: str = "rowlbl") -> Chart:
    """Horizontal bars (label, value or None, css class, right-hand note) on a 0..vmax track."""
    row_h = 30
    label_w = max(label_w, 16 + 8 * max((len(r[0]) for r in rows), default=0))
    c = _chart(cid, title, subtitle, width=width, height=MT + row_h * len(rows) + 26)
    x0, x1 = label_w, width - note_w
    refs_ok = _refs_in_scale(refs, vmax, c, unit)
    top = max([vmax] + [v for _, v in refs_ok]) or 1.0
    x = lambda v: x0 + (x1 - x0) * min(1.0, max(0.0, v / top))  # noqa: E731
    for i, (label, v, cls, note) in enumerate(rows):
        yy = MT + i * row_h
        _text(c, x0 - 8, yy + 15, label, row_cls, "end")
        _rect(c, x0, yy + 4, x1 - x0, 16, "track")
        if v is not None:
            _rect(c, x0, yy + 4, x(v) - x0, 16, cls, f"{label}: {note}")
        _text(c, x1 + 8, yy + 16, note, "val" if v is not None else "muted")
    bottom = MT + row_h * len(rows)
    if marker is not None:
        _line(c, x(marker[1]), MT - 4, x(marker[1]), bottom, "ref")
        _text(c, x(marker[1]), MT - 8, marker[0], "reflbl", "middle")
    for label, v in refs_ok:
        _line(c, x(v), MT - 4, x(v), bottom, "ref")
        _text(c, x(v), bottom + 14, f"{label} {fmt(v, unit)}", "reflbl", "middle")
    return c


def _score_cls(score: float | None) -> str:
    if score is None:
        return "c-na"
    return "c-good" if score >= 90 else "c-warn" if score >= 70 else "c-bad"


def category_chart(doc: Mapping[str, Any]) -> Chart | None:
    cats = doc.get("categories") or []
    if not cats:
        return None
    rows = []
    for cat in cats:
        s = _num(cat.get("score"))
        evaluated = cat.get("checks", 0) - cat.get("na", 0)
        bad = cat.get("failed", 0) + cat.get("errors", 0)
        note = (f"{fmt(s)} · {evaluated}/{cat.get('checks', 0)} run" + (f" · {bad} to fix" if bad else "")
                if s is not None else f"not evaluated (0/{cat.get('checks', 0)})")
        rows.append((str(cat.get("id")), s, _score_cls(s), note))
    fu = _num((doc.get("gate") or {}).get("fail_under"))
    return hbars("categories", "Score by category", rows, 100.0,
                 marker=(f"fail-under {fmt(fu)}", fu) if fu is not None else None,
                 subtitle="0–100, weighted by severity; checks that were not applicable are left out",
                 width=1100, note_w=260, row_cls="rowlbl cap")


def latency_chart(m: Mapping[str, Any], th: Mapping[str, Any]) -> Chart | None:
    lat = m.get("latency_ms")
    if not isinstance(lat, Mapping):
        return None
    p95, p99 = _num(th.get("slo_p95_ms")), _num(th.get("slo_p99_ms"))
    items = []
    for k in ("p50", "p90", "p95", "p99", "max"):
        v = _num(lat.get(k))
        if v is None:
            continue
        slo = p95 if k == "p95" else p99 if k == "p99" else None
        items.append((k, v, "c-bad" if slo is not None and v > slo else "c-main"))
    if not items:
        return None
    return vbars("latency", "Latency percentiles", items, "ms",
                 refs=[("SLO p95", p95), ("SLO p99", p99)], subtitle="whole load run, warm-up excluded")


def histogram_chart(m: Mapping[str, Any], th: Mapping[str, Any], max_bars: int = 48) -> Chart | None:
    raw = m.get("latency_histogram_us")
    if not isinstance(raw, list):
        return None
    buckets = [(b, n) for b, n in ((_num(p[0]), _num(p[1])) for p in raw if isinstance(p, (list, tuple)) and len(p) >= 2)
               if b is not None and n is not None and n >= 0]
    buckets.sort()
    nz = [i for i, (_, n) in enumerate(buckets) if n > 0]
    if not nz:
        return None
    buckets = buckets[nz[0]: nz[-1] + 1]
    if len(buckets) > max_bars:  # merge neighbours so bars stay readable
        g = math.ceil(len(buckets) / max_bars)
        buckets = [(buckets[min(i + g, len(buckets)) - 1][0], sum(n for _, n in buckets[i:i + g]))
                   for i in range(0, len(buckets), g)]
    items = [(fmt(b / 1000.0), n, "c-main") for b, n in buckets]
    c = vbars("histogram", "Latency distribution", items, "requests", value_labels=False,
              label_every=max(1, math.ceil(len(items) / 8)), subtitle="requests per latency bucket (upper bound, ms)")
    # SLO markers as vertical lines at their position between bucket bounds (log interpolation)
    pw = W - ML - MR
    slot = pw / len(buckets)
    bounds = [b for b, _ in buckets]
    for label, slo in (("SLO p95", _num(th.get("slo_p95_ms"))), ("SLO p99", _num(th.get("slo_p99_ms")))):
        if slo is None or slo <= 0:
            continue
        us = slo * 1000.0
        if us > bounds[-1]:
            c["notes"].append(f"{label} {fmt(slo, 'ms')}: every request was faster than this")
            continue
        i = next(i for i, b in enumerate(bounds) if b >= us)
        lo = bounds[i - 1] if i > 0 else 0.0
        frac = 1.0 if lo <= 0 else (math.log(us) - math.log(lo)) / max(1e-9, math.log(bounds[i]) - math.log(lo))
        xx = ML + slot * (i + max(0.0, min(1.0, frac)))
        _line(c, xx, MT, xx, H - MB, "ref")
        right = xx > W * 0.7
        _text(c, xx + (-4 if right else 4), MT + 10 + (13 if label.endswith("99") else 0), f"{label} {fmt(slo, 'ms')}",
              "reflbl", "end" if right else "start")
    return c


def failover_chart(m: Mapping[str, Any], th: Mapping[str, Any]) -> Chart | None:
    fo = m.get("failover_write_gap_seconds")
    if not isinstance(fo, Mapping):
        v = _num(fo)
        if v is None:
            return None
        fo = {"max": v}
    trials = [t for t in (_num(x) for x in fo.get("trials") or []) if t is not None]
    rto = _num(th.get("rto_seconds"))
    cls = lambda v: "c-bad" if rto is not None and v > rto else "c-main"  # noqa: E731
    if trials:
        items = [(f"#{i + 1}", v, cls(v)) for i, v in enumerate(trials)]
        refs = [("p95", _num(fo.get("p95"))), ("RTO", rto)]
    else:
        items = [(k, v, cls(v)) for k, v in ((k, _num(fo.get(k))) for k in ("p50", "p95", "max")) if v is not None]
        refs = [("RTO", rto)]
    if not items:
        return None
    return vbars("failover", "Failover write gap per trial", items, "s", refs=refs,
                 subtitle="seconds without a successful write after the primary was killed")


def lag_chart(m: Mapping[str, Any], th: Mapping[str, Any]) -> Chart | None:
    series = m.get("replication_lag_series")
    if not isinstance(series, list):
        return None
    pts = [(t, v) for t, v in ((_num(p[0]), _num(p[1])) for p in series if isinstance(p, (list, tuple)) and len(p) >= 2)
           if t is not None and v is not None]
    if len(pts) < 2:
        return None
    pts.sort()
    c = _chart("lag", "Replication lag over time", "replay lag of the standby while the workload ran")
    t0, t1 = pts[0][0], pts[-1][0]
    vmax = max(v for _, v in pts)
    refs = _refs_in_scale([("limit", _num(th.get("max_replay_lag_seconds")))], vmax, c, "s", factor=3.0)
    ticks = nice_ticks(max([vmax] + [v for _, v in refs]) * 1.08 or 1.0)
    top = ticks[-1] or 1.0
    pw, ph = W - ML - MR, H - MT - MB
    pw -= (REF_LABEL_W - MR) if refs else 0
    x = lambda t: ML + pw * ((t - t0) / ((t1 - t0) or 1.0))  # noqa: E731
    y = lambda v: MT + ph - ph * (v / top)  # noqa: E731
    for t in ticks:
        _line(c, ML, y(t), ML + pw, y(t), "grid")
        _text(c, ML - 6, y(t) + 4, fmt(t), "tick", "end")
    for t in nice_ticks(t1 - t0, 5):
        if t <= t1 - t0 + 1e-9:
            _text(c, x(t0 + t), H - MB + 16, fmt(t), "tick", "middle")
    _text(c, ML + pw, H - 6, "seconds into the run", "tick", "end")
    _text(c, 4, MT - 8, "s", "tick")
    line = " ".join(f"{_r(x(t))},{_r(y(v))}" for t, v in pts)
    c["els"].append({"k": "poly", "points": f"{_r(x(t0))},{_r(y(0))} {line} {_r(x(t1))},{_r(y(0))}", "cls": "area"})
    c["els"].append({"k": "poly", "points": line, "cls": "series"})
    _line(c, ML, MT + ph, ML + pw, MT + ph, "axis")
    _ref_labels(c, [(label, v, y(v)) for label, v in refs], ML, ML + pw, "s")
    c["notes"].append(f"peak {fmt(vmax, 's')} over {fmt(t1 - t0, 's')}")
    return c


_DURATIONS = (("dump_seconds", "pg_dump"), ("basebackup_seconds", "pg_basebackup"), ("restore_seconds", "restore"),
              ("recovery_seconds", "PITR recovery"), ("archive_rpo_seconds", "archive RPO"))
_RATES = (("dump_mb_s", "pg_dump"), ("backup_mb_s", "base backup"), ("restore_mb_s", "restore"))


def backup_charts(m: Mapping[str, Any], th: Mapping[str, Any]) -> list[Chart]:
    out = []
    rows = [(label, v) for k, label in _DURATIONS if (v := _num(m.get(k))) is not None]
    if rows:
        vmax = max(v for _, v in rows) * 1.1 or 1.0
        rto, rpo = _num(th.get("rto_seconds")), _num(th.get("rpo_seconds"))
        hrows = []
        for label, v in rows:
            limit = rpo if label == "archive RPO" else rto if label in ("restore", "PITR recovery") else None
            hrows.append((label, v, "c-bad" if limit is not None and v > limit else "c-main", fmt(v, "s")))
        c = hbars("backup-seconds", "Backup and restore time", hrows, vmax, "s", refs=[("RTO", rto)],
                  subtitle="measured on this run's data", label_w=100)
        out.append(c)
    rates = [(label, v) for k, label in _RATES if (v := _num(m.get(k))) is not None]
    if rates:
        vmax = max(v for _, v in rates) * 1.1 or 1.0
        out.append(hbars("backup-rate", "Backup and restore throughput",
                         [(label, v, "c-main", fmt(v, "MB/s")) for label, v in rates], vmax, "MB/s",
                         subtitle="MB/s; with database size this predicts the restore time (BKP005)", label_w=100))
    return out


def throughput_chart(m: Mapping[str, Any], th: Mapping[str, Any]) -> Chart | None:
    rps = _num(m.get("throughput_rps"))
    if rps is None:
        return None
    target = _num(th.get("target_rps"))
    ceiling = _num(m.get("harness_ceiling_rps"))
    rows = [("measured", rps, "c-bad" if target is not None and rps < target else "c-good", fmt(rps, "req/s"))]
    if ceiling is not None:
        rows.append(("load generator max", ceiling, "c-na", fmt(ceiling, "req/s")))
    vmax = max([rps, ceiling or 0, target or 0]) * 1.1 or 1.0
    c = hbars("throughput", "Throughput vs target", rows, vmax, "req/s",
              marker=(f"target {fmt(target)}", target) if target is not None else None,
              subtitle="requests per second sustained by the workload", label_w=100)
    err, max_err = _num(m.get("error_rate")), _num(th.get("max_error_rate"))
    if err is not None:
        c["notes"].append(f"error rate {err:.3%}" + (f" (limit {max_err:.3%})" if max_err is not None else ""))
    return c


def metric_charts(doc: Mapping[str, Any]) -> list[Chart]:
    """Every chart the metrics allow, in reading order; absent metrics produce nothing."""
    m = doc.get("metrics") or {}
    th = doc.get("thresholds") or {}
    charts = [latency_chart(m, th), histogram_chart(m, th), throughput_chart(m, th), failover_chart(m, th),
              lag_chart(m, th)] + backup_charts(m, th)
    return [c for c in charts if c is not None]
