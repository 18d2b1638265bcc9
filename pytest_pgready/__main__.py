"""`pgready` / `python -m pytest_pgready`: re-render a report, compare two runs.

    pgready report readiness.json [--out DIR]    HTML + Markdown from a JSON (no database needed)
    pgready compare old.json new.json            what changed; exit 1 on any regression
    pgready demo [--out DIR]                     a synthetic report with every status and chart
    pgready settings                             every setting, its type, default and meaning (Markdown)

Exit status: 0 fine, 1 regression (compare), 2 bad input — always one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

from . import __version__
from .errors import PgReadyUsageError

RANK = {"pass": 4, "waived": 3, "na": 2, "fail": 1, "error": 0}  # compare: lower is worse


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage + message)
        print(f"pgready: {message} — see `pgready --help`", file=sys.stderr)
        raise SystemExit(2)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="pgready", description="pytest-pgready reports: re-render and compare readiness.json files")
    p.add_argument("--version", action="version", version=f"pytest-pgready {__version__}")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND", parser_class=_Parser)
    r = sub.add_parser("report", help="render readiness.html and readiness.md from a readiness.json")
    r.add_argument("json", type=Path)
    r.add_argument("--out", type=Path, default=None, help="output directory (default: the JSON's directory)")
    c = sub.add_parser("compare", help="compare two readiness.json; exit 1 on any regression")
    c.add_argument("old", type=Path)
    c.add_argument("new", type=Path)
    d = sub.add_parser("demo", help="write a synthetic report with every status and every chart")
    d.add_argument("--out", type=Path, default=Path("pgready-demo"))
    sub.add_parser("settings", help="print the settings reference (Markdown)")
    return p


# ------------------------------------------------------------------------------------------------ compare
def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if math.isfinite(v) else None


def metric_deltas(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[tuple[str, float, float]]:
    """(name, old, new) for numeric metrics and numeric members of dict metrics (percentiles) in both runs."""
    out = []
    for k in sorted(set(old) & set(new)):
        a, b = old[k], new[k]
        if _num(a) is not None and _num(b) is not None:
            out.append((k, float(a), float(b)))
        elif isinstance(a, Mapping) and isinstance(b, Mapping):
            for sk in [x for x in a if x in b]:
                if _num(a[sk]) is not None and _num(b[sk]) is not None:
                    out.append((f"{k}.{sk}", float(a[sk]), float(b[sk])))
    return out


def compare(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """Pure diff of two reports: status changes, score delta, gate change, metric deltas, regression reasons."""
    oc = {c["id"]: c for c in old.get("checks") or [] if isinstance(c, Mapping) and "id" in c}
    nc = {c["id"]: c for c in new.get("checks") or [] if isinstance(c, Mapping) and "id" in c}
    worse, better, added, removed = [], [], [], []
    for cid, c in nc.items():
        if cid not in oc:
            added.append((cid, c.get("status")))
            continue
        a, b = oc[cid].get("status"), c.get("status")
        if RANK.get(b, 0) < RANK.get(a, 0):
            worse.append((cid, a, b, c.get("summary") or ""))
        elif RANK.get(b, 0) > RANK.get(a, 0):
            better.append((cid, a, b, c.get("summary") or ""))
    removed = [(cid, c.get("status")) for cid, c in oc.items() if cid not in nc]
    so, sn = _num(old.get("score")), _num(new.get("score"))
    go, gn = bool((old.get("gate") or {}).get("passed")), bool((new.get("gate") or {}).get("passed"))
    regressions = [f"{cid} got worse: {a} → {b}" for cid, a, b, _ in worse]
    regressions += [f"{cid} is new and {st}" for cid, st in added if st in ("fail", "error")]
    if so is not None and sn is not None and round(sn, 1) < round(so, 1):
        regressions.append(f"score dropped {so:g} → {sn:g}")
    elif so is not None and sn is None:
        regressions.append(f"score dropped {so:g} → n/a (nothing evaluated)")
    if go and not gn:
        regressions.append("gate went from PASSED to FAILED")
    return {"worse": worse, "better": better, "added": added, "removed": removed, "score": (so, sn),
            "grade": (old.get("grade"), new.get("grade")), "gate": (go, gn),
            "metrics": metric_deltas(old.get("metrics") or {}, new.get("metrics") or {}), "regressions": regressions}


def compare_lines(d: Mapping[str, Any]) -> list[str]:
    so, sn = d["score"]
    delta = f" ({sn - so:+.1f})" if so is not None and sn is not None else ""
    gate = lambda p: "PASSED" if p else "FAILED"  # noqa: E731
    lines = [f"score: {'n/a' if so is None else f'{so:g}'} → {'n/a' if sn is None else f'{sn:g}'}{delta}"
             f" · grade {d['grade'][0]} → {d['grade'][1]} · gate {gate(d['gate'][0])} → {gate(d['gate'][1])}"]
    for title, rows in (("worse", d["worse"]), ("better", d["better"])):
        if rows:
            lines.append(f"{title} ({len(rows)}):")
            lines += [f"  {cid}: {a} → {b}  {s}".rstrip() for cid, a, b, s in rows]
    if d["added"]:
        lines.append(f"new checks ({len(d['added'])}): " + ", ".join(f"{cid} {st}" for cid, st in d["added"]))
    if d["removed"]:
        lines.append(f"checks no longer reported ({len(d['removed'])}): "
                     + ", ".join(f"{cid} (was {st})" for cid, st in d["removed"]))
    changed = [(k, a, b) for k, a, b in d["metrics"] if a != b]
    if changed:
        lines.append("metrics:")
        for k, a, b in changed:
            rel = f" ({(b - a) / a:+.1%})" if a else ""
            lines.append(f"  {k}: {a:g} → {b:g}{rel}")
    if d["regressions"]:
        lines.append(f"REGRESSION ({len(d['regressions'])}): " + "; ".join(d["regressions"]))
    else:
        lines.append("no regression")
    return lines


# ---------------------------------------------------------------------------------------------------- main
def _report(json_path: Path, out: Path | None) -> int:
    from .report import load_report, write_reports
    from .report.markdown import github_annotations

    doc = load_report(json_path)
    out = out or json_path.resolve().parent
    try:
        from .report.html import render_html
        from .report.markdown import render_markdown

        render_html(doc), render_markdown(doc)  # malformed content fails here, before anything is written
    except (TypeError, ValueError, KeyError, AttributeError, IndexError) as e:
        raise PgReadyUsageError(f"{json_path} cannot be rendered ({e.__class__.__name__}: {e})",
                                "give a readiness.json written by pytest-pgready") from None
    paths = write_reports(doc, out, formats=("html", "md"), step_summary=False)
    for line in github_annotations(doc):
        print(line)
    for k in ("html", "md"):
        print(f"pgready: wrote {paths[k]}")
    return 0


def _compare(old: Path, new: Path) -> int:
    from .report import load_report

    d = compare(load_report(old), load_report(new))
    print("\n".join(compare_lines(d)))
    return 1 if d["regressions"] else 0


def _demo(out: Path) -> int:
    from .report import write_reports
    from .report.sample import sample_doc

    paths = write_reports(sample_doc(), out, step_summary=False)
    print(f"pgready: wrote {paths['html']}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.cmd == "report":
            return _report(args.json, args.out)
        if args.cmd == "compare":
            return _compare(args.old, args.new)
        if args.cmd == "demo":
            return _demo(args.out)
        if args.cmd == "settings":
            from .settings_doc import reference

            sys.stdout.write(reference())
            return 0
        _parser().print_help(sys.stderr)
        return 2
    except PgReadyUsageError as e:
        print(e.line(), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
