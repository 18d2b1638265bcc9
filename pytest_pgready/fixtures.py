"""Public fixtures: pgready_settings, pgready_cluster, pgready_cluster_factory, pgready_conn, pgready_record.

Importing this module is cheap; providers and psycopg load when a fixture is first used.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import pytest

settings_key = pytest.StashKey[Any]()
_aborted_key = pytest.StashKey[str]()  # set when the run could not start: no report, just the line
_target: dict[str, Any] = {}


def current_target() -> dict[str, Any]:
    """Facts about the target of this process (set by pgready_cluster), for the report."""
    return dict(_target)


@pytest.fixture(scope="session")
def pgready_settings(pytestconfig: pytest.Config):
    """The merged, validated settings (also usable without --pgready)."""
    s = pytestconfig.stash.get(settings_key, None)
    if s is None:
        from .errors import PgReadyUsageError
        from .plugin import build_settings

        try:
            s = build_settings(pytestconfig)
        except PgReadyUsageError as e:
            raise pytest.UsageError(e.line()) from None
        pytestconfig.stash[settings_key] = s
    return s


@pytest.fixture(scope="session")
def pgready_cluster(pgready_settings, pytestconfig: pytest.Config) -> Iterator[Any]:
    """The cluster under test: the embedded one (provisioned once per session) or the external target."""
    from .cluster.providers import open_cluster
    from .errors import PgReadyUsageError

    try:
        cluster = open_cluster(pgready_settings)
    except PgReadyUsageError as e:  # bad init SQL, unusable binaries: one line, not one error per check
        pytestconfig.stash[_aborted_key] = e.line()
        pytest.exit(e.line(), returncode=4)
    try:
        _target.clear()
        _target.update(describe_target(cluster, pgready_settings))
        yield cluster
    finally:
        cluster.close()


def describe_target(cluster: Any, settings: Any) -> dict[str, Any]:
    from .redact import redact_dsn

    try:
        version = cluster.server_version()
    except Exception as e:  # the target may be gone; the report says so
        version = f"unknown ({e.__class__.__name__})"
    return {"provider": cluster.provider, "server_version": version,
            "dsn": redact_dsn(settings.dsn) if settings.dsn else redact_dsn(cluster.primary.dsn()),
            "topology": cluster.topology(), "config_source": cluster.config_source,
            "config_rewrites": list(cluster.config_rewrites), "durability_relaxed": list(cluster.durability_relaxed),
            "toxiproxy": None if cluster.toxiproxy is not None else cluster.toxiproxy_missing,
            "read_only": cluster.read_only,
            "binaries": getattr(cluster.bin, "describe", lambda: None)() if cluster.bin else None}


@pytest.fixture
def pgready_cluster_factory(pgready_settings) -> Iterator[Callable[..., Any]]:
    """Build extra clusters for drills: factory(replicas=1, sync=False, pgbouncer=False, toxiproxy=False,
    conf={...}, archive=True, init_sql=True). They are destroyed when the test ends."""
    from .cluster.providers import new_cluster

    made: list[Any] = []

    def factory(**kw: Any) -> Any:
        c = new_cluster(pgready_settings, **kw)
        made.append(c)
        return c

    try:
        yield factory
    finally:
        for c in reversed(made):
            c.close()


@pytest.fixture(scope="session")
def _pgready_conn_holder(pgready_cluster) -> Iterator[dict[str, Any]]:
    holder: dict[str, Any] = {}
    yield holder
    conn = holder.get("conn")
    if conn is not None:
        conn.close()


@pytest.fixture
def pgready_conn(pgready_cluster, _pgready_conn_holder):
    """A psycopg 3 connection to the primary (read-only with timeouts on an external target)."""
    conn = _pgready_conn_holder.get("conn")
    if conn is None or conn.closed or conn.broken:
        conn = pgready_cluster.primary.connect()
        _pgready_conn_holder["conn"] = conn
    return conn


@pytest.fixture
def pgready_record(request: pytest.FixtureRequest):
    """Evidence, metrics and verdict helpers for the running check (see results.Record)."""
    from .plugin import _record_key, check_spec
    from .results import Record

    rec = request.node.stash.get(_record_key, None)
    if rec is None:
        spec = check_spec(request.node)
        rec = Record(spec.id if spec else request.node.name)
        request.node.stash[_record_key] = rec
    return rec
