"""A realistic synthetic run: every status, every chart. Used by the tests, the docs screenshot and
`pgready demo` — a report can be looked at (and its rendering checked) without a database."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

from ..catalog import CATALOG, SEVERITY_WEIGHTS
from ..results import CheckResult

HOSTILE = "<img src=x onerror=alert(1)>"

_OUTCOMES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "CFG006": ("fail", "the archiver is failing: 14 failures since the last success 2 h ago",
               {"objects": ["archive_command = 'cp %p /mnt/wal-archive/%f'"], "failed_count": 14,
                "last_failed_wal": "000000010000000A000000F3",
                "remedy": "check the archive destination: the last error was 'cp: /mnt/wal-archive: No space left on device'"}),
    "IDX001": ("fail", "3 foreign keys have no supporting index",
               {"objects": ["public.orders(customer_id)", "public.order_items(product_id)", f"public.{HOSTILE}(id)"],
                "remedy": ["CREATE INDEX CONCURRENTLY ON public.orders (customer_id);",
                           "CREATE INDEX CONCURRENTLY ON public.order_items (product_id);",
                           f'CREATE INDEX CONCURRENTLY ON public."{HOSTILE}" (id);']}),
    "SEC003": ("fail", "ssl = off; 2 remote pg_hba rules are host, not hostssl",
               {"objects": ["pg_hba.conf:92 host all app 10.0.0.0/8 scram-sha-256",
                            "pg_hba.conf:93 host replication repl 10.0.0.0/8 scram-sha-256"],
                "remedy": "set ssl = on with a certificate and change the rules to hostssl"}),
    "SCH003": ("fail", "2 int4 primary keys: at 1,000 rows/s public.events overflows in 24 days",
               {"objects": ["public.events(id) int4", "public.audit_log(id) int4"],
                "remedy": ["ALTER TABLE public.events ALTER COLUMN id TYPE bigint;"]}),
    "REP005": ("error", "check error: TimeoutError: replica did not reach streaming within 120 s", {}),
    "HLT007": ("waived", "public.sessions has 41 % dead tuples",
               {"waiver": "sessions is truncated nightly (expires 2026-03-31)", "objects": []}),
    "BKP004": ("na", "no backup_command/restore_command_line configured: set them in [tool.pgready] to test your own tooling", {}),
    "POOL003": ("na", "destructive drill against an external target: pass --pgready-allow-destructive", {}),
    "IDX005": ("na", "statistics are 2 days old (min_stats_age 7 days): re-run later", {}),
    "SEC001": ("pass", "no trust or password rule for non-local connections", {}),
    "PERF001": ("pass", "p95 38.2 ms, p99 81.0 ms at 420 req/s (SLO 100 / 250 ms)", {}),
    "FO001": ("pass", "write gap p95 2.6 s over 5 trials (RTO 60 s)", {}),
    "BKP001": ("pass", "pg_dump → pg_restore round trip identical: 14 tables, 1,204,551 rows, 6 sequences", {}),
}


def sample_results(selected: tuple[str, ...] | None = None) -> list[CheckResult]:
    """Results for every catalogue check: the planted outcomes above, the rest pass."""
    out = []
    for cid, spec in CATALOG.items():
        if selected is not None and cid not in selected:
            continue
        status, summary, evidence = _OUTCOMES.get(cid, ("pass", "holds", {}))
        if status == "pass" and summary == "holds":
            summary = f"holds: {spec.title.split('(')[0].strip().rstrip(':;,.')}".replace('**', '').replace('`', '')[:140]
        r = CheckResult(cid, spec.title, spec.category, spec.severity, SEVERITY_WEIGHTS[spec.severity], status,
                        summary=summary, evidence=dict(evidence), duration_s=0.004 + sum(map(ord, cid)) % 90 / 1000,
                        nodeid=f"suites/test_{spec.category}.py::test_{cid.lower()}")
        if cid == "PERF001":
            r.score = 0.962
            r.metrics = {"slo": {"latency_p95_ms": {"measured": 38.2, "target": 100, "limit": 250, "score": 0.988}}}
            r.report_metrics = {
                "latency_ms": {"p50": 6.1, "p95": 38.2, "p99": 81.0, "max": 212.4},
                "latency_histogram_us": [[250, 0], [500, 310], [1000, 2900], [2000, 11800], [4000, 26500],
                                         [8000, 19800], [16000, 7400], [32000, 2600], [64000, 700], [128000, 120],
                                         [256000, 9]],
                "throughput_rps": 420.5, "error_rate": 0.0002, "harness_ceiling_rps": 2900.0}
        elif cid == "FO001":
            r.report_metrics = {"failover_write_gap_seconds": {"p50": 2.1, "p95": 2.6, "max": 2.7,
                                                               "trials": [1.9, 2.1, 2.7, 2.0, 2.4]},
                                "lost_acknowledged_writes": 0}
        elif cid == "BKP001":
            r.report_metrics = {"dump_seconds": 3.2, "restore_seconds": 4.1, "dump_mb_s": 96.0, "restore_mb_s": 74.9}
        elif cid == "BKP002":
            r.report_metrics = {"basebackup_seconds": 2.4, "backup_mb_s": 131.0}
        elif cid == "PITR002":
            r.report_metrics = {"recovery_seconds": 6.8, "archive_rpo_seconds": 41.0}
        elif cid == "REP002":
            r.report_metrics = {"replication_lag_series": [[t, lag, int(lag * 9e6)] for t, lag in zip(
                range(0, 62, 2), [0.02, 0.03, 0.05, 0.4, 0.9, 1.3, 0.8, 0.5, 0.3, 0.2, 0.6, 1.1, 1.7, 2.2, 1.4, 0.9,
                                  0.5, 0.3, 0.2, 0.2, 0.1, 0.4, 0.7, 0.5, 0.3, 0.2, 0.1, 0.05, 0.04, 0.03, 0.02])]}
        elif cid == "POOL002":
            r.report_metrics = {"pool_clients": 1000, "pool_server_connections": 25, "pool_wait_ms": 12.5}
        out.append(r)
    return out


def sample_target() -> dict[str, Any]:
    return {"provider": "local", "server_version": "16.4", "dsn": "postgresql://app:********@127.0.0.1:54321/shop",
            "topology": {"primary": 1, "replicas": 1, "pgbouncer": True, "toxiproxy": True, "synchronous": False},
            "config_source": "config/postgresql-production.conf (paths and ports rewritten)",
            "config_rewrites": ["port = 5432 → 54321", "data_directory → temp dir"],
            "durability_relaxed": [], "toxiproxy": None, "read_only": False, "binaries": None}


def sample_settings(fail_under: float | None = 85.0, min_coverage: float = 0.8) -> Any:
    return SimpleNamespace(fail_under=fail_under, min_coverage=min_coverage, slo_p95_ms=100.0, slo_p99_ms=250.0,
                           target_rps=400.0, max_error_rate=0.001, rto_seconds=60.0, rpo_seconds=300.0,
                           max_replay_lag_seconds=5.0, max_pool_wait_ms=100.0, switchover_gap_seconds=5.0,
                           weight_for=lambda cid, default: default)


def sample_doc(fail_under: float | None = 85.0) -> dict[str, Any]:
    from .json_report import build_report

    now = dt.datetime(2025, 11, 21, 14, 30, 0, tzinfo=dt.timezone.utc)
    return build_report(sample_results(), sample_target(), sample_settings(fail_under), started=now.timestamp() - 412,
                        now=now)
