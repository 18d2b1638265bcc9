"""Shared scenery for the static-suite integration tests (config, security, health, replication).

Building a broken cluster and running the plugin costs seconds, so each scenario is built once per
PostgreSQL major, run (as superuser, as a pg_monitor role, sometimes as a plain role) and its reports are
cached here; many small tests then assert on the cached reports. Every helper that waits has a deadline;
background traffic targets 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from typing import Any, Callable

import psycopg
from psycopg import sql

_CACHE: dict[tuple[str, int], Any] = {}


def cached(name: str, major: int, build: Callable[[], Any]) -> Any:
    """Build a scenario once per (name, major); a failed build is not cached (the next test retries it)."""
    key = (name, major)
    if key not in _CACHE:
        _CACHE[key] = build()
    return _CACHE[key]


def settings(**over: Any) -> Any:
    from pytest_pgready.settings import build

    return build(dict(over), None, None)


def toml(**kv: Any) -> str:
    out = []
    for k, v in kv.items():
        if isinstance(v, bool):
            out.append(f"{k} = {'true' if v else 'false'}")
        elif isinstance(v, (int, float)):
            out.append(f"{k} = {v}")
        elif isinstance(v, list):
            out.append(f"{k} = [{', '.join(json.dumps(x) for x in v)}]")
        else:
            out.append(f"{k} = {str(v)!r}".replace("'", '"'))
    return "\n".join(out) + "\n"


def make_login_role(conn: Any, name: str, *member_of: str) -> str:
    """A LOGIN role with a fresh password (returned, never printed)."""
    pw = secrets.token_urlsafe(12)
    conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(name), sql.Literal(pw)))
    for role in member_of:
        conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(role), sql.Identifier(name)))
    return pw


def dsn_as(cluster: Any, user: str, password: str, dbname: str | None = None) -> str:
    return cluster.primary.endpoint.conninfo(dbname=dbname, user=user, password=password)


def wait_for(what: str, probe: Callable[[], bool], timeout: float = 20, every: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return
        time.sleep(every)
    raise TimeoutError(f"{what} not within {timeout:.0f}s")


class Loader(threading.Thread):
    """Runs one query in a loop on its own connection until stopped (or `max_seconds`, whichever first)."""

    def __init__(self, dsn: str, query: str, max_seconds: float = 180) -> None:
        super().__init__(daemon=True)
        self.dsn, self.query, self.max_seconds = dsn, query, max_seconds
        self.stop_event = threading.Event()
        self.loops = 0
        self.error: Exception | None = None
        self.ready = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        try:
            with psycopg.connect(self.dsn, autocommit=True, application_name="pgready-test-loader") as c:
                self.ready.set()
                while not self.stop_event.is_set() and time.monotonic() < deadline:
                    c.execute(self.query).fetchall()
                    self.loops += 1
        except Exception as e:  # reported by stop()
            self.error = e
        finally:
            self.ready.set()

    def __enter__(self) -> "Loader":
        self.start()
        self.ready.wait(15)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop_event.set()
        self.join(15)


def statuses(run: Any) -> dict[str, str]:
    assert run.report is not None, f"no readiness.json; output:\n{run.output[-3000:]}"
    return {c["id"]: c["status"] for c in run.report["checks"]}


def assert_no_secret(run: Any, *secret_values: str) -> None:
    """No password in readiness.json/html/md nor in the pytest output."""
    texts = [run.output] + [p.read_text(errors="replace") for p in run.report_dir.glob("readiness.*")]
    for s in secret_values:
        if s:
            assert not any(s in t for t in texts), "a password leaked into the report or output"


def assert_never_better(privileged: Any, restricted: Any, ids: list[str]) -> None:
    """A less privileged role gets the same verdict or `na` with a reason — never a pass the superuser fails."""
    a, b = statuses(privileged), statuses(restricted)
    for cid in ids:
        if b[cid] != a[cid]:
            assert b[cid] == "na", f"{cid}: superuser {a[cid]}, restricted role {b[cid]} " \
                                   f"({restricted.check(cid)['summary']})"
            assert restricted.check(cid)["summary"], f"{cid}: na without a reason"


def objects(run: Any, cid: str) -> str:
    """A check's evidence objects as one string, for 'the offending object is named' assertions."""
    return " | ".join(run.check(cid)["evidence"].get("objects", []))


# ----------------------------------------------------------------------------------------- scenarios
def checkpoint_stats_sql(major: int) -> tuple[str, str]:
    """(query of timed/requested counters, name for pg_stat_reset_shared) for this major."""
    if major >= 17:
        return "SELECT num_timed, num_requested FROM pg_stat_checkpointer", "checkpointer"
    return "SELECT checkpoints_timed, checkpoints_req FROM pg_stat_bgwriter", "bgwriter"


def switch_and_archive(conn: Any, timeout: float = 20) -> None:
    """Write a little WAL, switch segments and wait until the archiver has stored one."""
    before = conn.execute("SELECT archived_count FROM pg_stat_archiver").fetchone()[0]
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS wal_nudge AS SELECT 1 AS x")
    conn.execute("SELECT pg_switch_wal()")
    wait_for("a WAL segment archived", lambda: conn.execute(
        "SELECT archived_count FROM pg_stat_archiver").fetchone()[0] > before, timeout)


GOOD_SQL = """
CREATE TABLE items (id bigint PRIMARY KEY, qty int NOT NULL CHECK (qty >= 0), pad text NOT NULL)
    WITH (fillfactor = 90);
INSERT INTO items SELECT g, g % 50, repeat('x', 60) FROM generate_series(1, 2000) g;
DELETE FROM items WHERE id <= 10;
CREATE TABLE notes (id bigint PRIMARY KEY, owner text NOT NULL DEFAULT current_user, body text);
ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_notes ON notes USING (owner = current_user);
CREATE FUNCTION item_count() RETURNS bigint LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_catalog, public AS 'SELECT count(*) FROM public.items';
SELECT pg_stat_force_next_flush();
"""
GOOD_LOAD = "SELECT pad FROM items WHERE id = 11 + (random() * 1980)::int"


def good_scenario(pg_bins: Any, run_pgready: Callable[..., Any]) -> dict[str, Any]:
    """A well-configured primary (embedded defaults), an unprivileged app role with timeouts, traffic running.

    The cluster stays up after the runs (checkpoint_timeout = 30s) so that CFG013 can later be judged on a
    timed checkpoint; `close()` it when done (atexit also does).
    """
    from pytest_pgready.cluster.local import provision_local

    def build() -> dict[str, Any]:
        c = provision_local(settings(), bins=pg_bins, replicas=0, pgbouncer=False, toxiproxy=False,
                            conf={"checkpoint_timeout": "30s"})
        try:
            with c.primary.connect() as conn:
                app_pw = make_login_role(conn, "pgready_app")
                conn.execute("ALTER ROLE pgready_app SET statement_timeout = '30s'")
                conn.execute("GRANT USAGE ON SCHEMA public TO pgready_app")
                mon_pw = make_login_role(conn, "monitor", "pg_monitor")
                conn.execute(GOOD_SQL)
                wait_for("statistics of items", lambda: conn.execute(
                    "SELECT n_dead_tup > 0 FROM pg_stat_user_tables WHERE relname = 'items'").fetchone()[0])
                conn.execute("ANALYZE items")  # after the flush, or the pending counts land after the analyze
                switch_and_archive(conn)
                stats_sql, target = checkpoint_stats_sql(pg_bins.major)
                conn.execute("SELECT pg_stat_reset_shared(%s)", (target,))
                reset_at = time.monotonic()
            # tls_exempt_networks = []: this loopback server stands in for a remote one (SEC010)
            cfg = toml(app_role="pgready_app", declared_ram="512MB", cache_sample_seconds=2.5, cache_min_reads=50,
                       bloat_min_rows=1000, tls_exempt_networks=[])
            suites = "config,security,health,replication"
            with Loader(c.primary.dsn(), GOOD_LOAD):
                time.sleep(0.3)
                su = run_pgready("--pgready-dsn", c.primary.dsn(), "--pgready-suite", suites, config=cfg)
                mon = run_pgready("--pgready-dsn", dsn_as(c, "monitor", mon_pw), "--pgready-suite", suites,
                                  config=cfg)
            return {"cluster": c, "superuser": su, "monitor": mon, "secrets": [c.password, mon_pw, app_pw],
                    "reset_at": reset_at, "stats_sql": stats_sql}
        except BaseException:
            c.close()
            raise

    return cached("good", pg_bins.major, build)


BAD_CONF = {
    "fsync": "off", "full_page_writes": "off", "synchronous_commit": "off", "wal_level": "minimal",
    "max_wal_senders": "0", "archive_mode": "off", "autovacuum": "off", "superuser_reserved_connections": "1",
    "max_connections": "600", "shared_buffers": "1MB", "work_mem": "64MB", "log_min_duration_statement": "-1",
    "log_lock_waits": "off", "log_temp_files": "-1", "log_checkpoints": "off", "shared_preload_libraries": "",
    "password_encryption": "md5", "idle_in_transaction_session_timeout": "0",
}
BAD_SQL = """
CREATE TABLE no_vacuum (id bigint PRIMARY KEY) WITH (autovacuum_enabled = false);
GRANT CREATE ON SCHEMA public TO PUBLIC;
CREATE FUNCTION public.leaky_definer() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1';
CREATE TABLE policy_no_rls (id int PRIMARY KEY, owner text);
CREATE POLICY p ON policy_no_rls USING (owner = current_user);
CREATE TABLE rls_no_policy (id int PRIMARY KEY);
ALTER TABLE rls_no_policy ENABLE ROW LEVEL SECURITY;
CREATE ROLE su_extra1 SUPERUSER;
CREATE ROLE su_extra2 SUPERUSER;
CREATE ROLE su_extra3 SUPERUSER;
"""
LEAKED_PASSWORD = "Hunter2-leak-7f3a"


def bad_config_scenario(pg_bins: Any, run_pgready: Callable[..., Any]) -> dict[str, Any]:
    """One primary that breaks every config and security check at once, judged as superuser and as pg_monitor."""
    from pytest_pgready.cluster.local import provision_local

    def build() -> dict[str, Any]:
        c = provision_local(settings(), bins=pg_bins, replicas=0, pgbouncer=False, toxiproxy=False, archive=False,
                            conf=BAD_CONF)
        try:
            node = c.primary
            node.stop()
            r = c.run_tool(["pg_checksums", "--disable", "-D", str(node.datadir)], as_owner=True, timeout=120)
            assert r.returncode == 0, r.stderr
            hba = node.datadir / "pg_hba.conf"
            hba.write_text(hba.read_text() + "host all all 127.0.0.1/32 scram-sha-256\n"
                                             "host all all 0.0.0.0/0 trust\nhost all all 10.0.0.0/8 password\n")
            node.start()
            with node.connect() as conn:
                conn.execute("ALTER SYSTEM SET ssl = off")
                conn.execute(sql.SQL("ALTER SYSTEM SET primary_conninfo = {}").format(
                    sql.Literal(f"host=10.1.2.3 user=replicator password={LEAKED_PASSWORD}")))
                conn.execute("SELECT pg_reload_conf()")
                legacy_pw = make_login_role(conn, "legacy_md5")  # hashed with md5 (password_encryption)
                conn.execute("SET password_encryption = 'scram-sha-256'")  # the hba asks monitor for SCRAM
                mon_pw = make_login_role(conn, "monitor", "pg_monitor")
                conn.execute(BAD_SQL)
                for _ in range(10):
                    conn.execute("CHECKPOINT")
            wait_for("ssl off after reload", lambda: _show(c, "ssl") == "off")
            # tls_exempt_networks = []: this loopback server stands in for a remote one (SEC010)
            cfg = toml(declared_ram="16GB", tls_exempt_networks=[])
            suites = "config,security"
            # a TCP client without TLS, held open during the runs (SEC010)
            with psycopg.connect(node.dsn(sslmode="disable"), autocommit=True, application_name="plain-client"):
                su = run_pgready("--pgready-dsn", node.dsn(), "--pgready-suite", suites, config=cfg)
                mon = run_pgready("--pgready-dsn", dsn_as(c, "monitor", mon_pw), "--pgready-suite", suites,
                                  config=toml(declared_ram="16GB", app_role="postgres", tls_exempt_networks=[]))
                # the default on an external target: a client on the same host needs no TLS
                local = run_pgready("--pgready-dsn", node.dsn(), "--pgready-suite", "security",
                                    config=toml(declared_ram="16GB"))
            return {"superuser": su, "monitor": mon, "local": local,
                    "secrets": [c.password, mon_pw, legacy_pw, LEAKED_PASSWORD]}
        finally:
            c.close()

    return cached("bad_config", pg_bins.major, build)


def _show(cluster: Any, name: str) -> str:
    with cluster.primary.connect() as conn:
        return conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(name))).fetchone()[0]
