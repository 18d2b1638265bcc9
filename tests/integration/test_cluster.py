"""The embedded cluster: topology, replication through the pooler, teardown, reaping, BYO config."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pytest_pgready.cluster import sandbox

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "config"


def _wait(pred, timeout: float = 15.0, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return None


def test_full_topology_replicates_through_pgbouncer_and_leaves_nothing(cluster_factory):
    c = cluster_factory(replicas=1, pgbouncer=True, toxiproxy=True)
    assert c.pooler is not None and len(c.replicas) == 1
    with c.pooler.connect() as conn:
        conn.execute("CREATE TABLE probe(id int PRIMARY KEY, note text)")
        conn.execute("INSERT INTO probe VALUES (42, 'through pgbouncer')")
    replica = c.replicas[0]

    def seen() -> bool:
        with replica.connect() as r:
            if r.execute("SELECT to_regclass('probe') IS NULL").fetchone()[0]:
                return False
            return r.execute("SELECT note FROM probe WHERE id = 42").fetchone() == ("through pgbouncer",)

    assert _wait(seen), "the row written through pgbouncer never reached the replica"
    with replica.connect() as r:
        assert r.execute("SELECT pg_is_in_recovery()").fetchone()[0] is True
    if c.toxiproxy is not None:  # the client→primary proxy reaches the same server
        import psycopg

        with psycopg.connect(c.client_path("toxiproxy"), connect_timeout=5) as t:
            assert t.execute("SELECT count(*) FROM probe").fetchone()[0] == 1
    workdir = c.workdir
    c.close()
    assert not workdir.exists()
    assert sandbox.processes_under(workdir) == []


def test_identity_check_rejects_a_foreign_server(pg_cluster, cluster_factory):
    """A node whose port is answered by another server must not be taken for ours."""
    other = cluster_factory(replicas=0, pgbouncer=False, toxiproxy=False)
    node = other.primary
    real_port = node.endpoint.port
    node.endpoint.port = pg_cluster.primary.port
    try:
        with pytest.raises(RuntimeError, match="answered by another server"):
            other.verify_identity(node)
    finally:
        node.endpoint.port = real_port


def test_sync_standby_is_reported_sync(cluster_factory):
    c = cluster_factory(replicas=1, sync=True, pgbouncer=False, toxiproxy=False)
    with c.primary.connect(dbname="postgres") as conn:
        assert _wait(lambda: conn.execute(
            "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'replica1'").fetchone() == ("sync",))


def test_a_sigkilled_primary_starts_again_at_once(cluster_factory):
    """No wait for PID 1 to reap the dead postmaster: its stale lock files are cleared by start()."""
    c = cluster_factory(replicas=0, pgbouncer=False, toxiproxy=False)
    with c.primary.connect(dbname="postgres") as conn:
        conn.execute("CREATE TABLE survived (id int PRIMARY KEY)")
        conn.execute("INSERT INTO survived VALUES (1)")
    c.primary.kill(signal.SIGKILL)
    deadline = time.monotonic() + 30
    while True:  # orphaned backends may still hold the shared memory for a moment: start() says so
        try:
            c.primary.start()
            break
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    with c.primary.connect(dbname="postgres") as conn:
        assert conn.execute("SELECT count(*) FROM survived").fetchone() == (1,)


def test_bring_your_own_config_is_honoured_and_rewrites_are_listed(cluster_factory):
    c = cluster_factory(replicas=0, pgbouncer=True, toxiproxy=False,
                        settings={"postgresql_conf": str(EXAMPLES / "postgresql-production.conf"),
                                  "pgbouncer_ini": str(EXAMPLES / "pgbouncer.ini")})
    with c.primary.connect(dbname="postgres") as conn:
        got = dict(conn.execute(
            "SELECT name, setting FROM pg_settings WHERE name IN ('wal_level', 'max_wal_senders', "
            "'archive_timeout', 'max_connections', 'idle_in_transaction_session_timeout', 'archive_command')"
        ).fetchall())
    assert got["wal_level"] == "replica" and got["max_wal_senders"] == "3"
    assert got["archive_timeout"] == "300" and got["max_connections"] == "200"
    assert got["idle_in_transaction_session_timeout"] == "300000"
    assert str(c.archive_dir) in got["archive_command"]  # archiving goes to the sandbox, for real
    notes = "\n".join(c.config_rewrites)
    assert "archive_command" in notes and "/mnt/wal_archive" in notes
    assert "shared_buffers 4GB capped" in notes
    assert c.declared_settings["archive_command"].startswith("test ! -f /mnt/wal_archive")
    assert c.config_source == "your postgresql-production.conf"
    pools = {r["key"]: r["value"] for r in c.pooler.show("CONFIG")}
    assert pools["pool_mode"] == "transaction" and pools["default_pool_size"] == "25"
    assert c.pooler.endpoint.dbname == "vendhub"
    with c.pooler.connect() as conn:  # the user's database alias works through the sandbox pooler
        assert conn.execute("SELECT current_database()").fetchone()[0] == "app"


def test_two_clusters_under_xdist_do_not_collide(tmp_path: Path):
    (tmp_path / "test_two.py").write_text(textwrap.dedent("""
        import json, os, pytest

        @pytest.mark.parametrize("n", [1, 2])
        def test_cluster(pgready_cluster_factory, n, tmp_path_factory):
            c = pgready_cluster_factory(replicas=0)
            with c.primary.connect() as conn:
                conn.execute("SELECT 1")
            out = os.environ["OUT_DIR"]
            with open(os.path.join(out, f"c{n}.json"), "w") as f:
                json.dump({"port": c.primary.port, "dir": str(c.workdir),
                           "worker": os.environ.get("PYTEST_XDIST_WORKER")}, f)
    """))
    out = tmp_path / "out"
    out.mkdir()
    r = subprocess.run([sys.executable, "-m", "pytest", "-n", "2", "-p", "no:cacheprovider", "-q", str(tmp_path)],
                       capture_output=True, text=True, timeout=300, cwd=tmp_path,
                       env={**os.environ, "OUT_DIR": str(out)})
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    import json

    a, b = (json.loads((out / f"c{n}.json").read_text()) for n in (1, 2))
    assert a["worker"] != b["worker"]
    assert a["port"] != b["port"] and a["dir"] != b["dir"]


def test_sigkill_mid_provisioning_is_reaped_by_the_next_run(tmp_path: Path, pg_bins):
    """Kill a provisioning process with SIGKILL once its primary runs; the next provisioning reaps it."""
    script = tmp_path / "provision.py"
    script.write_text(textwrap.dedent(f"""
        import sys, time
        from pytest_pgready.settings import build
        from pytest_pgready.cluster.local import LocalCluster
        from pytest_pgready.cluster.binaries import find_postgres
        from pytest_pgready.cluster.osuser import service_user
        bins = find_postgres({str(pg_bins.bindir)!r})
        c = LocalCluster(bins, service_user())
        print(c.workdir, flush=True)
        c.provision(replicas=3, pgbouncer=True, toxiproxy=True)
        time.sleep(60)
    """))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        workdir = Path(proc.stdout.readline().strip())
        assert _wait(lambda: (workdir / "n0" / "postmaster.pid").exists(), timeout=60)
        assert _wait(lambda: sandbox.processes_under(workdir), timeout=30)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert workdir.exists() and sandbox.processes_under(workdir), "the crash should leave leftovers"
    reaped = sandbox.reap()
    assert workdir in reaped
    assert not workdir.exists()
    assert sandbox.processes_under(workdir) == []
