"""Performance: latency and throughput under Locust load, the harness's own ceiling, critical queries,
slow statements, and replication lag while the load runs.

Order matters and is the order below: the static checks first (PERF003), then one calibration and
one load run shared by PERF006, PERF001, PERF002 and REP002 (module fixtures), the micro-benchmarks
(PERF004), and PERF005 last, so pg_stat_statements also holds the load's own statements.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterator

import pytest

# ------------------------------------------------------------------------------------------------ fixtures


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """PERF004: one test per declared critical query (results of one id are merged, the worst wins)."""
    if "critical_query" not in metafunc.fixturenames:
        return
    from pytest_pgready.fixtures import settings_key

    settings = metafunc.config.stash.get(settings_key, None)
    queries = list(getattr(settings, "critical_queries", None) or [])
    metafunc.parametrize("critical_query", queries or [None],
                         ids=[f"q{i + 1}" for i in range(len(queries))] or ["none-declared"])


def _processes(settings: Any) -> int:
    return int(settings.load_processes or os.cpu_count() or 1)


def _declared_target(settings: Any) -> float:
    return max(float(settings.target_rps or 0), float(settings.load_rate or 0))


def _progress(config: pytest.Config) -> Any:
    from pytest_pgready.workload.progress import terminal_progress

    return terminal_progress(config)


@pytest.fixture(scope="module")
def calibration(pgready_cluster, pgready_settings, pytestconfig):
    """PERF006's harness ceiling, measured once with the same users, processes and protocol as the run."""
    from pytest_pgready.workload.deps import require

    require("locust", "hdrh")
    from pytest_pgready.workload.calibrate import calibrate

    s = pgready_settings
    return calibrate(pgready_cluster, pgready_cluster.primary.dsn(), users=s.load_users,
                     processes=min(_processes(s), s.load_users), protocol=s.load_protocol,
                     seconds=s.calibrate_seconds, headroom=s.harness_headroom,
                     allow_remote=s.allow_destructive, progress=_progress(pytestconfig))


@dataclass
class LoadRun:
    result: Any  # runner.LoadResult
    lag: Any  # replag.LagSampler
    workload: str


@pytest.fixture(scope="module")
def load_run(pgready_cluster, pgready_settings, pytestconfig) -> Iterator[LoadRun]:
    """The one load run of the suite (dataset built and dropped around it), with lag sampled meanwhile."""
    from pytest_pgready.workload.deps import require

    require("locust", "hdrh")
    from pytest_pgready.workload import dataset
    from pytest_pgready.workload.locustfiles import LoadError, resolve
    from pytest_pgready.workload.replag import LagSampler
    from pytest_pgready.workload.runner import LoadSpec, run_load

    s = pgready_settings
    if s.load_rate is not None and s.load_rate < s.target_rps:
        raise LoadError(f"load_rate {s.load_rate:g}/s is below target_rps {s.target_rps:g}/s: "
                        "the open model can never reach the target", "raise load_rate or lower target_rps")
    locustfile = resolve(s)
    name = "your locustfile" if s.locustfile else s.workload
    extra: dict[str, Any] = {}
    built = False
    with pgready_cluster.primary.connect() as conn:
        if not s.locustfile and s.workload in ("point", "tpcb"):
            extra["dataset"] = dataset.create(conn)
            built = True
        elif not s.locustfile and s.workload == "app":
            if conn.execute("SELECT to_regclass('vend.machines') IS NULL").fetchone()[0]:
                raise LoadError("workload 'app' needs the VendHub schema (vend)",
                                "add --pgready-init-sql examples/schema.sql and examples/seed.sql")
    spec = LoadSpec(locustfile, users=s.load_users, duration_s=s.load_duration_s, warmup_s=s.load_warmup_s,
                    rate=s.load_rate, processes=min(_processes(s), s.load_users), protocol=s.load_protocol,
                    max_requests=s.load_max_requests, workers=s.load_workers, remote_workers=s.load_remote_workers,
                    master_bind_host=s.load_master_bind, master_port=s.load_master_port, extra=extra,
                    connect_timeout=s.connect_timeout)
    try:
        from pytest_pgready.workload.replag import wait_replayed

        wait_replayed(pgready_cluster.primary.connect)  # lag from the load, not the setup
        with LagSampler(pgready_cluster.primary.connect) as lag:
            result = run_load(spec, pgready_cluster.primary.dsn(), allow_remote=s.allow_destructive,
                              progress=_progress(pytestconfig))
        yield LoadRun(result, lag, name)
    finally:
        if built:
            with pgready_cluster.primary.connect() as conn:
                dataset.drop(conn)


def _not_harness_bound(calibration: Any, settings: Any, record: Any) -> None:
    target = _declared_target(settings)
    record.add(declared_target_rps=target, **calibration.evidence())
    if calibration.harness_bound(target):
        record.na(f"harness-bound: the target {target:g} req/s is above {calibration.headroom:.0%} of the load "
                  f"generator's own ceiling ({calibration.harness_rps:g} req/s with SELECT 1); add load processes "
                  f"or worker hosts (load_processes, load_remote_workers) or lower target_rps (PERF006)")


# ------------------------------------------------------------------------------------------------ PERF003

@pytest.mark.pgready(id="PERF003")
def test_perf003_critical_queries_use_indexes(pgready_conn, pgready_settings, pgready_record):
    """The declared critical queries do not sequential-scan large tables (EXPLAIN, never executed)."""
    from pytest_pgready.workload.explain import explain, seq_scans

    queries = list(pgready_settings.critical_queries)
    if not queries:
        pgready_record.na("no critical queries declared: list them in critical_queries = [\"SELECT …\"]")
    version = pgready_conn.info.server_version
    scans: dict[tuple[str, str], list[int]] = {}
    for i, q in enumerate(queries, 1):
        for key in seq_scans(explain(pgready_conn, q, version)):
            scans.setdefault(key, []).append(i)
    if not scans:
        pgready_record.add(queries=len(queries), seq_scanned_tables=[])
        pgready_record.summary(f"none of the {len(queries)} critical queries sequential-scans a table")
        return
    rows = pgready_conn.execute(SIZES_SQL, ([k[0] for k in scans], [k[1] for k in scans])).fetchall()
    shown = {(n, t): q for n, t, q, _ in rows}  # schema.table as the server quotes it (format('%I.%I'))
    pgready_record.add(queries=len(queries), seq_scanned_tables=[shown.get(k, f"{k[0]}.{k[1]}") for k in scans])
    floor = pgready_settings.seqscan_min_rows
    large = [(n, t, q, int(r)) for n, t, q, r in rows if r is not None and r >= floor]
    unknown = [q for _, _, q, r in rows if r is None]
    if large:
        objects = [f"{q} (~{r:,} rows) in query {', '.join(map(str, scans[(n, t)]))}" for n, t, q, r in large]
        pgready_record.fail(f"{len(large)} large table(s) sequential-scanned by critical queries",
                            objects=objects, remedy="add an index matching the query's filter/join columns",
                            threshold_rows=floor)
    if unknown:
        pgready_record.na(f"sequential scans on tables never analyzed ({', '.join(unknown)}): run ANALYZE so "
                          "their size is known")
    pgready_record.summary(f"sequential scans only on small tables (< {floor:,} rows): "
                           f"{', '.join(shown.get(k, f'{k[0]}.{k[1]}') for k in scans)}")


SIZES_SQL = """
SELECT /* pgready */ n.nspname, c.relname, format('%%I.%%I', n.nspname, c.relname),
       CASE WHEN c.reltuples < 0 THEN NULL ELSE c.reltuples::bigint END
FROM unnest(%s::text[], %s::text[]) AS want(nsp, rel)
JOIN pg_namespace n ON n.nspname = want.nsp
JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = want.rel
"""

# ------------------------------------------------------------------------------------------------ PERF006


@pytest.mark.pgready(id="PERF006")
def test_perf006_harness_not_bottleneck(calibration, pgready_settings, pgready_record):
    """The load generator can drive the declared target with room to spare (calibrated with SELECT 1)."""
    target = _declared_target(pgready_settings)
    pgready_record.add(declared_target_rps=target, **calibration.evidence())
    pgready_record.metric("harness_ceiling_rps", calibration.harness_rps, report=True)
    if calibration.harness_rps <= 0:
        pgready_record.fail("the calibration run completed no request: the harness could not drive the target")
    if calibration.harness_bound(target):
        pgready_record.fail(f"the harness is the bottleneck: target {target:g} req/s > {calibration.headroom:.0%} of "
                            f"its ceiling {calibration.harness_rps:g} req/s (SELECT 1)",
                            remedy="raise load_processes, add worker hosts (load_remote_workers) or lower target_rps")
    pgready_record.summary(f"harness ceiling {calibration.harness_rps:g} req/s; the target {target:g} req/s uses "
                           f"{target / calibration.harness_rps:.0%} of it")


# ------------------------------------------------------------------------------------------------ PERF001


@pytest.mark.pgready(id="PERF001")
def test_perf001_latency_slo(request, calibration, pgready_settings, pgready_record):
    """p95 and p99 latency of the workload (HdrHistogram, µs, warm-up excluded) within the SLO."""
    s = pgready_settings
    _not_harness_bound(calibration, s, pgready_record)
    run: LoadRun = request.getfixturevalue("load_run")
    res = run.result
    pgready_record.add(workload=run.workload, **res.evidence())
    if res.ok == 0:
        pgready_record.fail(f"no request succeeded in the steady window ({res.err} errors)",
                            objects=[m for m in res.errors][:5])
    lat = res.latency_ms
    pgready_record.metric("latency_ms", {k: lat[k] for k in ("p50", "p90", "p95", "p99", "max")}, report=True)
    pgready_record.metric("latency_histogram_us", res.histogram_us(), report=True)
    pgready_record.slo("latency_p95_ms", lat["p95"], s.slo_p95_ms / 2, s.slo_p95_ms)
    pgready_record.slo("latency_p99_ms", lat["p99"], s.slo_p99_ms / 2, s.slo_p99_ms)
    over = [f"p95 {lat['p95']:g} ms > SLO {s.slo_p95_ms:g} ms"] if lat["p95"] > s.slo_p95_ms else []
    over += [f"p99 {lat['p99']:g} ms > SLO {s.slo_p99_ms:g} ms"] if lat["p99"] > s.slo_p99_ms else []
    if over:
        pgready_record.fail(f"latency above the SLO: {'; '.join(over)} ({res.ok} requests, {res.model} model)",
                            objects=over, slowest_queries=_slowest(res))
    pgready_record.summary(f"p95 {lat['p95']:g} ms, p99 {lat['p99']:g} ms within the SLO "
                           f"({s.slo_p95_ms:g}/{s.slo_p99_ms:g} ms) over {res.ok} requests")


def _slowest(res: Any) -> list[str]:
    by = sorted(res.labels.items(), key=lambda kv: -(kv[1]["latency_ms"].get("p95") or 0))
    return [f"{k}: p95 {v['latency_ms'].get('p95')} ms" for k, v in by[:5]]


# ------------------------------------------------------------------------------------------------ PERF002


@pytest.mark.pgready(id="PERF002")
def test_perf002_throughput_target(request, calibration, pgready_settings, pgready_record):
    """Throughput at least target_rps, with at most max_error_rate of the requests failing."""
    s = pgready_settings
    _not_harness_bound(calibration, s, pgready_record)
    run: LoadRun = request.getfixturevalue("load_run")
    res = run.result
    pgready_record.add(workload=run.workload, **res.evidence())
    pgready_record.metric("throughput_rps", res.throughput_rps, report=True)
    pgready_record.metric("error_rate", round(res.error_rate, 6), report=True)
    if res.ok + res.err == 0:
        pgready_record.fail("no request completed in the steady window")
    if s.target_rps > 0:
        pgready_record.slo("throughput", res.throughput_rps, s.target_rps * 2, s.target_rps, higher_is_better=True)
    problems = []
    if res.throughput_rps < s.target_rps:
        problems.append(f"throughput {res.throughput_rps:g} req/s < target {s.target_rps:g} req/s")
    if res.error_rate > s.max_error_rate:
        problems.append(f"error rate {res.error_rate:.4%} > {s.max_error_rate:.4%} ({res.err} of {res.ok + res.err})")
    if problems:
        pgready_record.fail("; ".join(problems), objects=problems + list(res.errors)[:5])
    pgready_record.summary(f"{res.throughput_rps:g} req/s ≥ {s.target_rps:g} req/s, error rate {res.error_rate:.4%}")


# ------------------------------------------------------------------------------------------------ REP002 (load)


@pytest.mark.pgready(id="REP002", kind="L", suite="performance")
def test_rep002_lag_under_load(load_run, pgready_settings, pgready_record):
    """Replay lag of every standby, sampled once per second on the primary while the load runs."""
    s = pgready_settings
    lag = load_run.lag
    if lag.error and not lag.series:
        raise RuntimeError(f"lag sampling failed: {lag.error}")
    if not lag.standbys:
        pgready_record.na("no standby streams from the primary: nothing to lag (add replicas to the topology)")
    pgready_record.add(standbys=sorted(lag.standbys), samples=len(lag.series), wal_bytes_during_load=lag.wal_bytes,
                       workload=load_run.workload, sampling_error=lag.error)
    if lag.wal_bytes == 0:
        pgready_record.na(f"the load ({load_run.workload}) wrote no WAL: lag under load needs a writing workload "
                          "(workload = 'tpcb' or 'app', or your own locustfile)")
    pgready_record.metric("replication_lag_series", lag.series, report=True)
    peak_s = max(p[1] for p in lag.series)
    peak_b = max(p[2] for p in lag.series)
    pgready_record.metric("peak_lag_seconds", peak_s)
    pgready_record.metric("peak_lag_bytes", peak_b)
    over = [f"{p[0]:g}s into the run: lag {p[1]:g}s / {p[2]:,} bytes" for p in lag.series
            if p[1] > s.max_replay_lag_seconds or p[2] > s.max_replay_lag_bytes]
    if over:
        pgready_record.fail(f"replication lag under load peaked at {peak_s:g}s / {peak_b:,} bytes (limit "
                            f"{s.max_replay_lag_seconds:g}s / {s.max_replay_lag_bytes:,} bytes)",
                            objects=over[:10], samples_over_limit=len(over))
    pgready_record.summary(f"lag under load peaked at {peak_s:g}s / {peak_b:,} bytes over {len(lag.series)} samples")


# ------------------------------------------------------------------------------------------------ PERF004


@pytest.mark.pgready(id="PERF004")
def test_perf004_critical_query_benchmark(request, critical_query, pgready_cluster, pgready_settings, pgready_record):
    """Each declared critical query, timed with pytest-benchmark (pedantic rounds): p95 within its budget."""
    from pytest_pgready.workload.explain import placeholders

    s = pgready_settings
    if critical_query is None:
        pgready_record.na("no critical queries declared: list them in critical_queries = [\"SELECT …\"]")
    if os.environ.get("PYTEST_XDIST_WORKER") or hasattr(request.config, "workerinput"):
        pgready_record.na("pytest-benchmark disables itself under xdist (-n): run the performance suite without -n")
    try:
        benchmark = request.getfixturevalue("benchmark")
    except pytest.FixtureLookupError:
        pgready_record.na("pytest-benchmark is not installed: pip install 'pytest-pgready[bench]'")
    if getattr(benchmark, "disabled", False):
        pgready_record.na("pytest-benchmark is disabled (--benchmark-disable, or xdist is active)")
    if placeholders(critical_query):
        pgready_record.na(f"the query has $n parameters: give PERF004 a literal form to execute ({critical_query[:80]})")
    pgready_record.add(query=critical_query, rounds=s.perf004_rounds, budget_p95_ms=s.perf004_p95_ms)
    with pgready_cluster.primary.connect(autocommit=False) as conn:  # every round rolled back: DML never lands
        cur = conn.cursor()

        def run() -> None:
            cur.execute(critical_query)
            if cur.description is not None:
                cur.fetchall()

        benchmark.pedantic(run, setup=conn.rollback, rounds=s.perf004_rounds,
                           warmup_rounds=min(10, s.perf004_rounds), iterations=1)
        conn.rollback()
    timings = sorted(benchmark.stats.stats.data)
    p95, p99 = _pct(timings, 95) * 1000, _pct(timings, 99) * 1000
    pgready_record.metric("p95_ms", round(p95, 3))
    pgready_record.metric("p99_ms", round(p99, 3))
    pgready_record.metric("median_ms", round(_pct(timings, 50) * 1000, 3))
    pgready_record.slo("critical_p95_ms", round(p95, 3), s.perf004_p95_ms / 2, s.perf004_p95_ms)
    if p95 > s.perf004_p95_ms:
        pgready_record.fail(f"critical query p95 {p95:.3f} ms > budget {s.perf004_p95_ms:g} ms",
                            objects=[f"{critical_query[:120]} (p95 {p95:.3f} ms, p99 {p99:.3f} ms)"])
    pgready_record.summary(f"p95 {p95:.3f} ms, p99 {p99:.3f} ms ≤ {s.perf004_p95_ms:g} ms over {len(timings)} rounds")


def _pct(sorted_values: list[float], p: float) -> float:
    import math

    k = max(0, min(len(sorted_values) - 1, math.ceil(p / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


# ------------------------------------------------------------------------------------------------ PERF005

SLOW_SQL = """
WITH /* pgready */ s AS (
  SELECT d.datname, p.query, p.calls,
         COALESCE((to_jsonb(p) ->> 'mean_exec_time')::float8, (to_jsonb(p) ->> 'mean_time')::float8) AS mean_ms
  FROM pg_stat_statements p LEFT JOIN pg_database d ON d.oid = p.dbid
  WHERE p.calls >= %(min_calls)s AND p.query NOT LIKE '%%/* pgready */%%'
    AND p.query !~* '^COPY .* TO stdout'  -- pg_dump reading tables (BKP drills, the team's own dumps)
), slow AS (SELECT * FROM s WHERE mean_ms > %(slow_ms)s ORDER BY mean_ms DESC LIMIT 20)
SELECT (SELECT count(*) FROM s), (SELECT count(*) FROM s WHERE mean_ms > %(slow_ms)s),
       (SELECT count(*) FROM s WHERE query = '<insufficient privilege>'),
       (SELECT coalesce(json_agg(json_build_array(datname, query, calls, round(mean_ms::numeric, 3))), '[]') FROM slow)
"""


@pytest.mark.pgready(id="PERF005")
def test_perf005_no_slow_statements(pgready_conn, pgready_settings, pgready_record):
    """No statement in pg_stat_statements (1.8+ mean_exec_time, older mean_time) slower on average than slow_query_ms."""
    import psycopg

    s = pgready_settings
    try:
        with pgready_conn.transaction():
            considered, slow, hidden, rows = pgready_conn.execute(
                SLOW_SQL, {"min_calls": s.slow_query_min_calls, "slow_ms": s.slow_query_ms}).fetchone()
    except psycopg.errors.UndefinedTable:
        pgready_record.na("pg_stat_statements is not installed in this database: CREATE EXTENSION pg_stat_statements")
    except psycopg.errors.ObjectNotInPrerequisiteState:
        pgready_record.na("pg_stat_statements is not preloaded: add it to shared_preload_libraries and restart")
    except psycopg.errors.InsufficientPrivilege:
        pgready_record.na("cannot read pg_stat_statements: GRANT pg_read_all_stats TO the checking role")
    pgready_record.add(statements_considered=considered, min_calls=s.slow_query_min_calls,
                       threshold_ms=s.slow_query_ms)
    if considered == 0:
        pgready_record.na(f"pg_stat_statements holds no statement called ≥ {s.slow_query_min_calls} times yet: "
                          "run this check after the application's traffic")
    if hidden:
        pgready_record.add(hidden_statements=f"{hidden} statements of other roles are hidden: "
                                             "GRANT pg_read_all_stats to see their text")
    if slow:
        objects = [f"[{db}] {' '.join(str(q).split())[:160]} (mean {ms} ms × {calls} calls)" for db, q, calls, ms in rows]
        pgready_record.fail(f"{slow} statement(s) average above {s.slow_query_ms:g} ms", objects=objects,
                            remedy="EXPLAIN (ANALYZE, BUFFERS) each one; index or rewrite it")
    pgready_record.summary(f"no statement averages above {s.slow_query_ms:g} ms ({considered} statements)")
