"""Pooling: PgBouncer answers in the declared mode, fans many clients into few server connections with
little waiting, refuses clients beyond max_client_conn clearly, and leaks no session state.

POOL001/POOL002/POOL006 look at the cluster's own pooler. POOL003/POOL004 change pooler settings, so
they run on a throw-away PgBouncer (pgready_cluster_factory) built from the same config: your
--pgready-pgbouncer-ini, with pool_mode and the reset settings read from the real pooler.
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest

PROBE_MAX_CLIENT_CONN = 5


def _pooler(cluster: Any, record: Any) -> Any:
    if cluster.pooler is None:
        record.na("no PgBouncer in this topology: give --pgready-pgbouncer-dsn (external) or install pgbouncer "
                  "(the embedded cluster starts one when it is found)")
    return cluster.pooler


def _config(pooler: Any) -> dict[str, str]:
    return {r["key"]: str(r["value"]) for r in pooler.show("CONFIG")}


# ------------------------------------------------------------------------------------------------ POOL001


@pytest.mark.pgready(id="POOL001")
def test_pool001_pgbouncer_answers_in_declared_mode(pgready_cluster, pgready_settings, pgready_record):
    """A client gets an answer through PgBouncer, and the pool_mode it runs (every database) is the declared one."""
    import psycopg

    pooler = _pooler(pgready_cluster, pgready_record)
    try:
        with pooler.connect() as conn:
            conn.execute("SELECT 1").fetchone()
    except psycopg.Error as e:
        pgready_record.fail(f"PgBouncer does not answer at {pooler.endpoint.host}:{pooler.endpoint.port}",
                            objects=[" ".join(str(e).split())[:200]])
    declared = pgready_settings.pool_mode
    try:
        version = pooler.show("VERSION")[0]["version"]
        cfg = _config(pooler)
        dbs = pooler.show("DATABASES")
    except psycopg.Error as e:
        msg = " ".join(str(e).split())[:160]
        if declared:
            pgready_record.na(f"PgBouncer answers, but its admin console is not readable ({msg}): add the user to "
                              "stats_users so pool_mode can be verified")
        pgready_record.add(admin_console=msg)
        pgready_record.summary("PgBouncer answers (admin console not readable; no pool_mode declared)")
        return
    mode = cfg.get("pool_mode", "?")
    per_db = {d["name"]: d.get("pool_mode") or mode for d in dbs if d.get("name") != "pgbouncer"}
    pgready_record.add(version=version, pool_mode=mode, declared_pool_mode=declared, databases=per_db,
                       max_client_conn=cfg.get("max_client_conn"), default_pool_size=cfg.get("default_pool_size"))
    if declared is None:
        pgready_record.summary(f"{version} answers; pool_mode {mode} (none declared: set pool_mode to enforce one)")
        return
    wrong = ([f"[pgbouncer] pool_mode = {mode}"] if mode != declared else []) + \
        [f"database {name}: pool_mode = {m}" for name, m in per_db.items() if m != declared]
    if wrong:
        pgready_record.fail(f"PgBouncer runs pool_mode {mode}, declared {declared}", objects=wrong,
                            remedy=f"set pool_mode = {declared} in pgbouncer.ini (and per-database overrides)")
    pgready_record.summary(f"{version} answers in the declared pool_mode {declared}")


# ------------------------------------------------------------------------------------------------ POOL002 / POOL006


@pytest.fixture(scope="module")
def fan_in_run(pgready_cluster, pgready_settings) -> Any:
    """pool_clients concurrent clients through the pooler for pool_duration_s (shared by POOL002 and POOL006)."""
    from pytest_pgready.workload.deps import require

    require("hdrh", what="the pooling fan-in checks")
    from pytest_pgready.workload.fanin import run_fan_in

    s = pgready_settings
    pooler = pgready_cluster.pooler
    ep = pooler.endpoint
    admin_dsn = pooler.endpoint.conninfo(dbname="pgbouncer", user=pooler.admin_user)
    cfg = _config(pooler)
    result = run_fan_in(pooler.dsn(), admin_dsn, pgready_cluster.primary.dsn(), dbname=ep.dbname, user=ep.user,
                        clients=s.pool_clients, duration_s=s.pool_duration_s, rate=s.pool_client_rate,
                        xact_ms=s.pool_xact_ms, op_timeout=float(s.connect_timeout),
                        deadline=s.pool_duration_s + s.pool_clients * 0.2 + 120)
    dbs = pooler.show("DATABASES")
    return result, cfg, dbs


def _pool_limit(cfg: dict[str, str], dbs: list[dict[str, Any]], dbname: str) -> int:
    row = next((d for d in dbs if d.get("name") == dbname), None)
    size = int(row["pool_size"]) + int(row.get("reserve_pool") or 0) if row else \
        int(cfg.get("default_pool_size", 20)) + int(cfg.get("reserve_pool_size", 0))
    cap = int(cfg.get("max_db_connections", 0) or 0)
    return min(size, cap) if cap else size


@pytest.mark.pgready(id="POOL002")
def test_pool002_many_clients_few_servers(request, pgready_cluster, pgready_settings, pgready_record):
    """pool_clients clients at once, every one served, through no more server connections than the pool size."""
    _pooler(pgready_cluster, pgready_record)
    res, cfg, dbs = request.getfixturevalue("fan_in_run")
    limit = _pool_limit(cfg, dbs, pgready_cluster.pooler.endpoint.dbname)
    pgready_record.metric("pool_clients", res.connected, report=True)
    pgready_record.metric("pool_server_connections", res.server_connections, report=True)
    pgready_record.add(clients_requested=res.clients, clients_connected=res.connected, queries_ok=res.queries_ok,
                       pool_size_limit=limit, backends_seen_in_pg_stat_activity=res.max_backends,
                       servers_in_show_pools=res.max_pool_servers, distinct_backend_pids=len(res.backend_pids),
                       samples=res.samples, duration_s=res.duration_s, client_latency_ms=_lat(res),
                       pool_mode=cfg.get("pool_mode"), max_client_conn=cfg.get("max_client_conn"))
    if res.sampler_error or res.samples == 0:
        raise RuntimeError(f"server connections were not sampled: {res.sampler_error or 'no sample taken'}")
    problems = [f"{n}× connect: {m}" for m, n in res.connect_errors.items()] + \
        [f"{n}× query: {m}" for m, n in res.query_errors.items()]
    if res.server_connections > limit:
        problems.insert(0, f"{res.server_connections} server connections > pool size {limit}")
    if res.queries_ok == 0:
        problems.append("no client query succeeded")
    if problems:
        pgready_record.fail(f"{res.clients} clients through PgBouncer: {res.errors} client errors, "
                            f"{res.server_connections} server connections (pool size {limit})", objects=problems[:12],
                            remedy="raise max_client_conn / the pool size, or use transaction pooling")
    pgready_record.summary(f"{res.connected} clients served through {res.server_connections} server connections "
                           f"(pool size {limit}), no client error, {res.queries_ok} queries")


def _lat(res: Any) -> dict[str, float]:
    from pytest_pgready.workload.hdr import summary_ms

    return {k: v for k, v in summary_ms(res.latency).items() if k in ("p50", "p95", "p99", "max")}


@pytest.mark.pgready(id="POOL006")
def test_pool006_pool_wait_under_load(request, pgready_cluster, pgready_settings, pgready_record):
    """While the POOL002 clients run, clients wait for a server connection no longer than max_pool_wait_ms."""
    _pooler(pgready_cluster, pgready_record)
    res, cfg, _ = request.getfixturevalue("fan_in_run")
    limit = pgready_settings.max_pool_wait_ms
    pgready_record.add(peak_maxwait_ms=round(res.maxwait_ms, 3), mean_wait_per_xact_ms=round(res.mean_wait_ms, 3),
                       transactions=res.xacts, peak_waiting_clients=res.max_waiting_clients, samples=res.samples,
                       clients=res.connected, client_latency_ms=_lat(res), limit_ms=limit)
    if res.sampler_error or res.samples == 0:
        raise RuntimeError(f"SHOW POOLS was not sampled: {res.sampler_error or 'no sample taken'}")
    if res.xacts == 0:
        pgready_record.fail("no transaction went through the pooler during the run", objects=list(res.query_errors))
    pgready_record.metric("pool_wait_ms", res.pool_wait_ms, report=True)
    if limit > 0:
        pgready_record.slo("pool_wait", res.pool_wait_ms, limit / 2, limit)
    if res.pool_wait_ms > limit:
        pgready_record.fail(f"clients waited up to {res.pool_wait_ms:g} ms for a server connection (limit {limit:g} ms)",
                            objects=[f"peak maxwait {res.maxwait_ms:.1f} ms with {res.max_waiting_clients} clients "
                                     f"waiting; mean wait {res.mean_wait_ms:.2f} ms per transaction"],
                            remedy="raise default_pool_size (within max_connections) or shorten transactions")
    pgready_record.summary(f"pool wait {res.pool_wait_ms:g} ms ≤ {limit:g} ms over {res.xacts} transactions")


# ------------------------------------------------------------------------------------------------ POOL003 / POOL004


@pytest.fixture(scope="module")
def probe_pooler(pgready_cluster, pgready_settings) -> Iterator[Any]:
    """A throw-away cluster whose PgBouncer runs the target's pooling config with pool size 1 and a small
    max_client_conn (drills change both; the real pooler is never touched)."""
    from pytest_pgready.cluster.providers import new_cluster

    if pgready_cluster.pooler is None:
        yield None
        return
    cfg = _config(pgready_cluster.pooler)
    mirrored = {k: cfg[k] for k in ("pool_mode", "server_reset_query", "server_reset_query_always",
                                    "max_prepared_statements") if k in cfg}  # an empty reset query stays empty
    from pytest_pgready.cluster.model import Unsupported

    try:
        probe = new_cluster(pgready_settings, replicas=0, pgbouncer=True, toxiproxy=False, archive=False,
                            init_sql=False, pgbouncer_conf={**mirrored, "default_pool_size": 1, "min_pool_size": 0,
                                                            "reserve_pool_size": 0,
                                                            "max_client_conn": PROBE_MAX_CLIENT_CONN})
    except TypeError as e:  # a provider without pgbouncer_conf support
        if "pgbouncer_conf" not in str(e):
            raise
        raise Unsupported("this provider cannot start a probe PgBouncer with changed settings (pgbouncer_conf)") from None
    try:
        yield probe, cfg
    finally:
        probe.close()


@pytest.mark.pgready(id="POOL003")
def test_pool003_max_client_conn_enforced(request, pgready_cluster, pgready_record):
    """The client beyond max_client_conn gets PgBouncer's clear error; and the real pooler's max_client_conn
    fits its open-file limit (past that limit clients are dropped at accept(), with no error at all)."""
    from pytest_pgready.workload.poolprobe import expected_fds, nofile_limit, probe_client_limit

    pooler = _pooler(pgready_cluster, pgready_record)
    probe, cfg = request.getfixturevalue("probe_pooler")
    if probe.pooler is None:
        pgready_record.na("pgbouncer is not installed here, so the limit cannot be probed on a copy")
    got = probe_client_limit(probe.pooler, PROBE_MAX_CLIENT_CONN)
    pgready_record.add(probe_max_client_conn=PROBE_MAX_CLIENT_CONN, probe_clients_held=got.held,
                       probe_extra_client=got.extra_error or "connected", probe_seconds=got.extra_seconds)
    problems = [f"client {i + 1} of {PROBE_MAX_CLIENT_CONN} refused below the limit: {e}"
                for i, e in enumerate(got.held_errors)]
    if got.extra_error is None:
        problems.append(f"client {PROBE_MAX_CLIENT_CONN + 1} was let in beyond max_client_conn {PROBE_MAX_CLIENT_CONN}")
    elif "max_client_conn" not in got.extra_error:
        problems.append(f"client {PROBE_MAX_CLIENT_CONN + 1} failed without PgBouncer's max_client_conn error: "
                        f"{got.extra_error}")
    configured = int(cfg.get("max_client_conn", 0))
    pid = getattr(getattr(pooler, "proc", None), "pid", None)
    fd_limit = nofile_limit(pid) if pid else None
    need = expected_fds(cfg, pooler.show("DATABASES"))
    pgready_record.add(max_client_conn=configured, expected_fd_use=need,
                       open_file_limit=fd_limit if fd_limit is not None else "not visible (remote pooler)")
    if fd_limit is not None and need > fd_limit:
        problems.append(f"max_client_conn {configured} needs ~{need} file descriptors but PgBouncer may open only "
                        f"{fd_limit}: clients past the limit are dropped at accept(), not refused with an error")
    if problems:
        pgready_record.fail(f"max_client_conn is not enforced with a clear error ({len(problems)} problem(s))",
                            objects=problems, remedy="raise PgBouncer's open-file limit (LimitNOFILE= in its "
                                                     "systemd unit, ulimit -n) above max_client_conn + pool sizes")
    pgready_record.summary(f"client {PROBE_MAX_CLIENT_CONN + 1} refused: {got.extra_error}; max_client_conn "
                           f"{configured} fits the open-file limit "
                           f"{fd_limit if fd_limit is not None else '(not visible)'}")


@pytest.mark.pgready(id="POOL004")
def test_pool004_no_session_state_leak(request, pgready_cluster, pgready_record):
    """Session state one client leaves behind (SET, temp table, advisory lock, prepared statement) is not seen
    by the next client of the same server connection."""
    from pytest_pgready.workload.poolprobe import probe_session_leaks

    _pooler(pgready_cluster, pgready_record)
    probe, cfg = request.getfixturevalue("probe_pooler")
    if probe.pooler is None:
        pgready_record.na("pgbouncer is not installed here, so the leak probe cannot run on a copy")
    mode = cfg.get("pool_mode", "?")
    got = probe_session_leaks(probe.pooler, mode)
    pgready_record.add(pool_mode=mode, server_reset_query=cfg.get("server_reset_query"),
                       server_reset_query_always=cfg.get("server_reset_query_always"),
                       max_prepared_statements=cfg.get("max_prepared_statements", "unsupported (< 1.21)"),
                       backend_pid_a=got.pid_a, backend_pid_b=got.pid_b, prepared_statements=got.prepared)
    if not got.same_server:
        pgready_record.na(f"client B landed on another server connection ({got.pid_b} ≠ {got.pid_a}) although the "
                          "probe pool holds one: nothing can be said about leaks")
    if got.leaks:
        pgready_record.fail(f"{len(got.leaks)} kind(s) of session state leak between clients in {mode} mode",
                            objects=got.leaks,
                            remedy="use SET LOCAL and transaction-scoped advisory locks, avoid temp tables, disable "
                                   "prepared statements (prepare_threshold=None) — or use session pooling, or "
                                   "PgBouncer >= 1.21 with max_prepared_statements")
    pgready_record.summary(f"{mode} mode: nothing of client A's session is visible to client B; prepared statements "
                           f"{got.prepared}")
