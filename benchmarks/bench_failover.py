"""Benchmark: one kill → promote → resume trial end to end on the embedded cluster, repeated.

    python benchmarks/bench_failover.py [--trials 5] [--major 18] [--writers 4]

Each trial: oracle writers commit through the multi-host DSN (every writer every 5 ms), the primary is
SIGKILLed, the most advanced standby promoted, writes resume; then the old primary rejoins with
pg_rewind for the next trial. Printed per trial: the write gap (server: consecutive committed_at on
the new primary; client: last acknowledgement → first on the new primary), detection and promotion
times, and the resolution — the largest interval between acknowledgements in the second before the
fault, i.e. how finely the writers sample time (the gap's error bar; it must stay ≤ 50 ms).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RESOLUTION_LIMIT_S = 0.05


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--major", type=int, default=None, help="PostgreSQL major (default: the first found)")
    ap.add_argument("--writers", type=int, default=4)
    args = ap.parse_args(argv)

    from pytest_pgready.cluster.local import provision_local
    from pytest_pgready.drills.failover_crash import crash_drill
    from pytest_pgready.drills.oracle import percentile
    from pytest_pgready.drills.rejoin import rejoin
    from pytest_pgready.settings import build


    settings = build({"pg_version": args.major}, None, None)
    settings.values.update(failover_writers=args.writers, client_query_timeout_s=2, resume_timeout_seconds=30,
                           client_conninfo="connect_timeout=2")
    t = time.monotonic()
    cluster = provision_local(settings, replicas=1, pgbouncer=False, toxiproxy=False)
    print(f"cluster: PostgreSQL {cluster.bin.version}, primary + 1 standby, fsync=on "
          f"(provisioned in {time.monotonic() - t:.1f}s)")
    gaps, resolutions = [], []
    try:
        print(f"{'trial':>5} {'gap_s':>7} {'server_s':>8} {'client_s':>8} {'detect_s':>8} {'promote_s':>9} "
              f"{'resol_ms':>8} {'lost':>4} {'rejoin_s':>8}")
        for i in range(args.trials):
            run = crash_drill(cluster, settings, paths=("multihost",), first_id=1 + 100 * i)
            v = run.verdict
            rj = rejoin(cluster, run.failover.old, run.failover.new, fallback=True) if i + 1 < args.trials else {}
            gaps.append(v.write_gap_s)
            resolutions.append(v.resolution_s)
            print(f"{i + 1:>5} {v.write_gap_s:>7.3f} {v.server_gap_s:>8.3f} {v.client_gap_s:>8.3f} "
                  f"{run.failover.detect_s:>8.3f} {run.failover.promote_s:>9.3f} "
                  f"{(v.resolution_s or 0) * 1000:>8.1f} {len(v.lost):>4} {rj.get('seconds', 0):>8.2f}")
    finally:
        cluster.close()
    worst = max(r for r in resolutions if r is not None)
    print(f"write gap: p50 {percentile(gaps, 50):.3f}s  p95 {percentile(gaps, 95):.3f}s  max {max(gaps):.3f}s "
          f"over {len(gaps)} trials")
    print(f"resolution (max inter-commit interval before the fault): {worst * 1000:.1f} ms "
          f"({'ok' if worst <= RESOLUTION_LIMIT_S else 'TOO COARSE'}: limit {RESOLUTION_LIMIT_S * 1000:.0f} ms)")
    return 0 if worst <= RESOLUTION_LIMIT_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
