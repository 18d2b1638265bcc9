"""Run the same readiness run N times in a row and report every check whose status changed.

A readiness tool whose verdict changes between two identical runs cannot gate a release. This is the
measurement behind docs/reliability.md ("no flakes"): `make flakes` runs the demo's full default run
(every suite, the example application, embedded cluster) five times; tests/e2e/test_flakes.py runs a
short version of it in `make test`.

    python scripts/flakes.py [--runs 5] [--suite schema,config] [--out DIR] [-- extra pytest args]

Exit status: 0 when every run gave the same status for every check, 1 when some check flaked,
2 when a run did not complete (no readiness.json).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO_ARGS = ["--pgready-init-sql", "examples/schema.sql", "--pgready-init-sql", "examples/roles.sql",
             "--pgready-init-sql", "examples/seed.sql", "--pgready-config", "examples/pgready.toml"]


def statuses(report: dict) -> dict[str, str]:
    return {c["id"]: c["status"] for c in report["checks"]}


def flaky(runs: list[dict[str, str]]) -> dict[str, list[str]]:
    """Check id → the status of each run, for the checks that did not give one status in every run."""
    ids = sorted(set().union(*runs)) if runs else []
    out = {}
    for cid in ids:
        seen = [r.get(cid, "absent") for r in runs]
        if len(set(seen)) > 1:
            out[cid] = seen
    return out


def run_once(i: int, out: Path, suite: str | None, extra: list[str], timeout: float) -> tuple[dict | None, float]:
    rdir = out / f"run-{i}"
    argv = [sys.executable, "-m", "pytest", "--pgready", "-p", "no:cacheprovider", "-q", "-rN",
            "--pgready-report-dir", str(rdir), *DEMO_ARGS, *(["--pgready-suite", suite] if suite else []), *extra]
    t0 = time.monotonic()
    try:
        subprocess.run(argv, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, time.monotonic() - t0
    path = rdir / "readiness.json"
    return (json.loads(path.read_text()) if path.exists() else None), time.monotonic() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--suite", default=None, help="comma list of suites (default: every suite)")
    ap.add_argument("--out", type=Path, default=ROOT / "pgready-flakes")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds one run may take")
    ap.add_argument("extra", nargs="*", help="extra pytest arguments (after --)")
    a = ap.parse_args(argv)
    if a.runs < 2:
        print("flakes: --runs must be at least 2 — one run cannot disagree with itself", file=sys.stderr)
        return 2
    a.out.mkdir(parents=True, exist_ok=True)
    runs: list[dict[str, str]] = []
    for i in range(1, a.runs + 1):
        report, seconds = run_once(i, a.out, a.suite, a.extra, a.timeout)
        if report is None:
            print(f"flakes: run {i} wrote no readiness.json after {seconds:.0f}s — see {a.out}/run-{i}", file=sys.stderr)
            return 2
        runs.append(statuses(report))
        counts = {s: list(runs[-1].values()).count(s) for s in ("pass", "fail", "waived", "na", "error")}
        print(f"run {i}: {seconds:.0f}s, score {report['score']}, "
              + ", ".join(f"{n} {s}" for s, n in counts.items() if n), flush=True)
    bad = flaky(runs)
    checks = len(set().union(*runs))
    rate = len(bad) / checks if checks else 0.0
    summary = {"runs": a.runs, "checks": checks, "flaky": bad, "flake_rate": round(rate, 4)}
    (a.out / "flakes.json").write_text(json.dumps(summary, indent=2))
    print(f"flakes: {len(bad)} of {checks} checks changed status over {a.runs} runs (flake rate {rate:.1%})")
    for cid, seen in bad.items():
        print(f"  {cid}: {' → '.join(seen)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
