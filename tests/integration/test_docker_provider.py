"""The docker provider for real.

- Without an engine (always runs): the one-line startup error of `pytest --pgready --pgready-provider
  docker`, and the proof that the containers get what the local provider renders (a real local cluster
  is provisioned with the same bring-your-own files and its files are compared with the Docker ones).
- With an engine (marked `docker`; skipped with "no Docker engine reachable: …" otherwise): the whole
  topology in containers, its faults and process control.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_pgready.cluster import config as conf
from pytest_pgready.cluster import docker_spec as ds
from pytest_pgready.cluster.docker import probe_engine

ENGINE = ds.engine_address()
_WHY = probe_engine(ENGINE, 3)
NO_ENGINE = None if _WHY is None else f"no Docker engine reachable: {ENGINE} ({_WHY})"
needs_engine = pytest.mark.skipif(NO_ENGINE is not None, reason=NO_ENGINE or "")

BYO_CONF = """# a production postgresql.conf
listen_addresses = '10.0.0.5'
port = 6543
max_connections = 200
shared_buffers = 4GB
work_mem = '12MB'
maintenance_work_mem = 256MB
archive_command = 'pgbackrest --stanza=main archive-push %p'
shared_preload_libraries = 'pg_stat_statements'
log_min_duration_statement = 250
random_page_cost = 1.1
"""
BYO_INI = """[databases]
app = host=db.internal port=5432 dbname=app
shop = host=db.internal port=5432 dbname=shop pool_size=10

[pgbouncer]
listen_addr = 10.0.0.5
listen_port = 6432
pool_mode = transaction
max_client_conn = 3000
default_pool_size = 40
auth_type = scram-sha-256
"""


def _settings(**over):
    from pytest_pgready.settings import build

    return build(over, None, None)


# ================================================================================= no engine needed
def _run_pgready(tmp_path: Path, docker_host: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCKER_HOST": docker_host, "HOME": str(tmp_path)}  # HOME: no ~/.testcontainers.properties
    for k in ("PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER", "DOCKER_CONTEXT", "DOCKER_CONFIG"):
        env.pop(k, None)
    return subprocess.run([sys.executable, "-m", "pytest", "--pgready", "--pgready-provider", "docker",
                           "-p", "no:cacheprovider"], capture_output=True, text=True, cwd=str(tmp_path), env=env,
                          stdin=subprocess.DEVNULL, timeout=120)


@pytest.mark.parametrize("kind", ["unix", "tcp"])
def test_no_engine_ends_in_one_line(tmp_path, kind):
    """`pytest --pgready --pgready-provider docker` with no engine: one line, non-zero exit, no traceback."""
    if kind == "unix":
        address = f"unix://{tmp_path}/docker.sock"  # nothing listens there
    else:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{s.getsockname()[1]}"  # a port nobody listens on
        s.close()
    r = _run_pgready(tmp_path, address)
    out = (r.stdout + r.stderr).strip().splitlines()
    lines = [ln for ln in out if ln.strip()]
    assert r.returncode == 4, r.stdout + r.stderr  # pytest's usage error
    assert lines == [f"ERROR: pgready: no Docker engine reachable at {address} — "
                     "use --pgready-provider local (the default) or start Docker"]
    assert "Traceback" not in r.stdout + r.stderr


def _local_files(cluster) -> dict[str, str]:
    d = cluster.primary.datadir
    return {"base": (d / "pgready.base.conf").read_text(), "user": (d / "pgready.user.conf").read_text(),
            "node": (d / "pgready.node.conf").read_text(),
            "ini": cluster.pooler.ini_path.read_text() if cluster.pooler is not None else ""}


def _ini(text: str) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    section = ""
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("["):
            section = s.strip("[]")
            out.setdefault(section, {})
        elif "=" in s and not s.startswith((";", "#")):
            k, v = (x.strip() for x in s.split("=", 1))
            out[section][k] = v
    return out


@pytest.mark.integration
def test_containers_get_what_the_local_provider_renders(cluster_factory, tmp_path):
    """Provision a real local cluster with bring-your-own files; the Docker spec for the same settings
    must carry the same PostgreSQL settings and the same PgBouncer settings, differing only where the
    sandbox owns them (ports, paths, listen addresses, hosts)."""
    from pytest_pgready.cluster.binaries import find_pgbouncer

    pg_conf = tmp_path / "postgresql-production.conf"
    pg_conf.write_text(BYO_CONF)
    ini = tmp_path / "pgbouncer.ini"
    ini.write_text(BYO_INI)
    with_bouncer = find_pgbouncer() is not None
    local = cluster_factory(replicas=0, pgbouncer=with_bouncer, toxiproxy=False,
                            settings={"postgresql_conf": str(pg_conf), "pgbouncer_ini": str(ini)})
    lf = _local_files(local)
    spec = ds.build_spec(run_id="cmp", password="x", replicas=0, toxiproxy=False, pgbouncer=True,
                         postgresql_conf=pg_conf, pgbouncer_ini_path=ini, available_libs=local._available_libs())
    files = spec.container("primary").files

    base_local = {n: r for _, n, r in conf.parse_conf(lf["base"])}
    base_docker = {n: r for _, n, r in conf.parse_conf(files["/etc/pgready/pgready.base.conf"][0])}
    base_local.pop("ssl", None)  # the local template has a certificate; the official image has none
    assert base_docker == base_local
    user_local = {n: r for _, n, r in conf.parse_conf(lf["user"])}
    user_docker = {n: r for _, n, r in conf.parse_conf(files["/etc/pgready/pgready.user.conf"][0])}
    assert user_docker == user_local
    assert user_docker["work_mem"] == "'12MB'" and user_docker["shared_buffers"] == "'256MB'"
    node_local = {n for _, n, _ in conf.parse_conf(lf["node"])}
    node_docker = {n for _, n, _ in conf.parse_conf(files["/etc/pgready/pgready.node.conf"][0])}
    assert node_docker == node_local  # the same sandbox-owned keys, with the container's values
    assert spec.layers.declared == local.declared_settings
    assert spec.layers.source == local.config_source

    if with_bouncer:
        owned = {"listen_addr", "listen_port", "unix_socket_dir", "auth_file", "logfile", "pidfile"}
        a = _ini(lf["ini"])
        b = _ini(spec.container("pgbouncer").files["/etc/pgready/pgbouncer.ini"][0])
        assert {k: v for k, v in a["pgbouncer"].items() if k not in owned} == \
            {k: v for k, v in b["pgbouncer"].items() if k not in owned}
        hostport = re.compile(r"host=\S+ port=\d+")
        assert {k: hostport.sub("", v) for k, v in a["databases"].items()} == \
            {k: hostport.sub("", v) for k, v in b["databases"].items()}
        assert "host=primary port=5432" in b["databases"]["shop"] and "dbname=app" in b["databases"]["shop"]
        assert b["pgbouncer"]["listen_addr"] == "*" and a["pgbouncer"]["listen_addr"] == "127.0.0.1"


# ================================================================================= with an engine
@pytest.fixture(scope="module")
def docker_cluster():
    from pytest_pgready.cluster.docker import provision_docker

    c = provision_docker(_settings(provider="docker"))
    yield c
    c.close()


@pytest.mark.docker
@needs_engine
def test_topology(docker_cluster):
    c = docker_cluster
    assert c.provider == "docker" and c.topology()["replicas"] == 1 and c.topology()["pgbouncer"]
    with c.primary.connect() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS t_docker (id int)")
        conn.execute("INSERT INTO t_docker VALUES (1)")
        assert conn.execute("SHOW wal_level").fetchone()[0] == "replica"
        assert conn.execute("SHOW cluster_name").fetchone()[0] == "primary"
        assert conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'").fetchone()[0] == 1
    c.wait_streaming(["replica1"])
    with c.replicas[0].connect() as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone()[0] is True
        status = conn.execute("SELECT status, sender_host FROM pg_stat_wal_receiver").fetchone()
        assert status[0] == "streaming" and status[1] == "toxiproxy"
    with c.pooler.connect() as conn:
        assert conn.execute("SELECT current_setting('cluster_name')").fetchone()[0] == "primary"
    assert any(p["database"] == "app" for p in c.pooler.show("POOLS"))
    assert set(c.toxiproxy.proxies()) == {"primary", "replication"}
    import psycopg

    with psycopg.connect(c.client_path("toxiproxy"), connect_timeout=10) as conn:
        assert conn.execute("SELECT 1").fetchone()[0] == 1


@pytest.mark.docker
@needs_engine
def test_freeze_thaw_is_pause(docker_cluster):
    import psycopg

    node = docker_cluster.primary
    node.freeze()
    try:
        assert node._state()["Paused"]
        with pytest.raises(psycopg.OperationalError):
            node.connect(connect_timeout=2)
    finally:
        node.thaw()
    with node.connect() as conn:
        assert conn.execute("SELECT 1").fetchone()[0] == 1


@pytest.mark.docker
@needs_engine
def test_toxiproxy_disables_the_client_path(docker_cluster):
    import psycopg

    api = docker_cluster.toxiproxy
    api.set_enabled("primary", False)
    try:
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(docker_cluster.client_path("toxiproxy"), connect_timeout=2)
    finally:
        api.reset()
    with psycopg.connect(docker_cluster.client_path("toxiproxy"), connect_timeout=10) as conn:
        assert conn.execute("SELECT 1").fetchone()[0] == 1


@pytest.mark.docker
@needs_engine
def test_kill_then_start_recovers(docker_cluster):
    node = docker_cluster.primary
    tag = secrets.token_hex(4)
    with node.connect() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS t_kill (v text)")
        conn.execute("INSERT INTO t_kill VALUES (%s)", (tag,))
    node.kill(signal.SIGKILL)
    assert not node.is_running()
    node.start()
    with node.connect() as conn:
        assert conn.execute("SELECT count(*) FROM t_kill WHERE v = %s", (tag,)).fetchone()[0] == 1
    node.stop(mode="fast")
    assert not node.is_running()
    node.start()
    docker_cluster.wait_streaming(["replica1"], timeout=120)


@pytest.mark.docker
@needs_engine
def test_promote_and_repoint(tmp_path):
    from pytest_pgready.cluster.docker import provision_docker

    c = provision_docker(_settings(provider="docker"), toxiproxy=False)
    try:
        replica = c.replicas[0]
        c.primary.kill(signal.SIGKILL)
        replica.promote(timeout=60)
        with replica.connect() as conn:
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone()[0] is False
            conn.execute("CREATE TABLE after_failover (id int)")
        c.pooler.repoint(replica)
        with c.pooler.connect() as conn:
            assert conn.execute("SELECT current_setting('cluster_name')").fetchone()[0] == "replica1"
    finally:
        c.close()


@pytest.mark.docker
@needs_engine
def test_bring_your_own_config_in_containers(tmp_path):
    from pytest_pgready.cluster.docker import provision_docker

    pg_conf = tmp_path / "postgresql-production.conf"
    pg_conf.write_text(BYO_CONF)
    sql = tmp_path / "schema.sql"
    sql.write_text("CREATE TABLE byo_schema (id bigint PRIMARY KEY);\n")
    c = provision_docker(_settings(provider="docker", postgresql_conf=str(pg_conf), init_sql=[str(sql)]),
                         replicas=0, pgbouncer=False, toxiproxy=False)
    try:
        with c.primary.connect() as conn:
            assert conn.execute("SHOW work_mem").fetchone()[0] == "12MB"
            assert conn.execute("SHOW max_connections").fetchone()[0] == "200"
            assert conn.execute("SHOW port").fetchone()[0] == "5432"
            assert conn.execute("SELECT to_regclass('byo_schema') IS NOT NULL").fetchone()[0]
        assert c.config_source == "your postgresql-production.conf"
        assert any("port rewritten" in n for n in c.config_rewrites)
        assert c.declared_settings["archive_command"].startswith("pgbackrest")
    finally:
        c.close()


# ================================================================================= the container files, run natively
@pytest.mark.integration
def test_container_scripts_and_files_work_with_real_servers(pg_bins):
    """Without an engine, run what the containers run — the init script, the rendered include chain and node
    files, the replica script (pg_basebackup, passfile, standby.signal), PgBouncer's start script and ini —
    with this machine's PostgreSQL and PgBouncer. Only what the official image provides is emulated (initdb,
    the first-boot socket-only server), and container paths/ports are mapped into a temp dir and free ports.
    It proves the files, not the images."""
    import shutil
    import tempfile
    import time

    import psycopg

    from pytest_pgready.cluster.binaries import find_pgbouncer
    from pytest_pgready.cluster.osuser import service_user
    from pytest_pgready.cluster.sandbox import free_port, port_open
    from pytest_pgready.cluster.template import run_as

    user = service_user()
    root = Path(tempfile.mkdtemp(prefix="pgr-native-"))
    p_primary, p_replica, p_bouncer = free_port(), free_port(), free_port()
    password = "Pw:with\\odd\"chars-" + secrets.token_hex(3)
    spec = ds.build_spec(run_id="native", password=password, replicas=1, toxiproxy=False, pgbouncer=True)
    bindir = str(pg_bins.bindir)
    path_env = f"{bindir}:/usr/sbin:/usr/bin:/bin"

    def mapped(text: str, alias: str, port: int) -> str:
        """A container's paths → its own directory under root; its port 5432 → a free port."""
        fs = root / alias
        for a, b in ((str(ds.CONF_DIR), f"{root}/etc-pgready"), (str(ds.ARCHIVE_DIR), f"{fs}/archive"),
                     (str(ds.SOCKET_DIR), f"{fs}/run"), (str(ds.REPLICA_PASSFILE), f"{fs}/pgpass"),
                     (str(ds.PGBOUNCER_AUTH_FILE), f"{fs}/userlist.txt"), ("/tmp/pgbouncer.", f"{fs}/pgbouncer."),
                     ("unix_socket_dir = /tmp", f"unix_socket_dir = {fs}/run"),
                     ("listen_addresses = '*'", "listen_addresses = '127.0.0.1'"),
                     ("listen_addr = *", "listen_addr = 127.0.0.1"), ("listen_port = 6432", f"listen_port = {p_bouncer}"),
                     ("host=primary port=5432", f"host=127.0.0.1 port={p_primary}"),
                     ("\nport = 5432\n", f"\nport = {port}\n"),
                     ("exec docker-entrypoint.sh postgres", 'exec postgres -D "$PGDATA"')):
            text = text.replace(a, b)
        return text

    def install(alias: str, port: int) -> dict[str, Path]:
        out = {}
        (root / alias / "run").mkdir(parents=True)
        for path, (text, mode) in spec.container(alias).files.items():
            where = "initdb.d" if path == str(ds.INITDB_SCRIPT_PATH) else "etc/pgready"
            dest = root / alias / where / Path(path).name
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(mapped(text, alias, port))
            dest.chmod(mode)
            out[path] = dest
        return out

    def boot(alias: str) -> None:
        """Each container has its own /etc/pgready: point the shared path at this one's before it starts
        (the servers already running read their files at start only)."""
        link = root / "etc-pgready"
        link.unlink(missing_ok=True)
        link.symlink_to(root / alias / "etc" / "pgready")

    procs: list[subprocess.Popen] = []
    pdata, rdata = root / "data-primary", root / "data-replica"
    env = {"PATH": path_env, "PGDATA": str(pdata), "POSTGRES_USER": "postgres", "POSTGRES_PASSWORD": password,
           "POSTGRES_DB": "app", "PGHOST": f"{root}/primary/run", "PGPORT": str(p_primary), "PGUSER": "postgres",
           "HOME": str(root)}
    try:
        primary_files = install("primary", p_primary)
        replica_files = install("replica1", p_replica)
        bouncer_files = install("pgbouncer", p_bouncer)
        pw_file = root / "pwfile"
        pw_file.write_text(password + "\n")
        user.chown_tree(root)
        # --- what the official entrypoint does on first boot, then our init script ---------------------
        r = run_as(user, [f"{bindir}/initdb", "-D", str(pdata), "--username=postgres", f"--pwfile={pw_file}",
                          *ds.INITDB_ARGS.split(), "--no-sync"], 120, cwd=root, env=env)
        assert r.returncode == 0, r.stderr
        with open(pdata / "pg_hba.conf", "a") as f:
            f.write(f"\nhost all all all {ds.HOST_AUTH_METHOD}\n")
        ctl = [f"{bindir}/pg_ctl", "-D", str(pdata), "-w", "-t", "60"]
        boot("primary")
        r = run_as(user, [*ctl, "-o", f"-c listen_addresses='' -k {root}/primary/run -p {p_primary}", "-l",
                          str(root / "init.log"), "start"], 90, cwd=root, env=env)
        assert r.returncode == 0, (root / "init.log").read_text()
        r = run_as(user, [f"{bindir}/createdb", "app"], 60, cwd=root, env=env)
        assert r.returncode == 0, r.stderr
        r = run_as(user, ["bash", str(primary_files[str(ds.INITDB_SCRIPT_PATH)])], 120, cwd=root, env=env)
        assert r.returncode == 0, r.stderr
        assert run_as(user, [*ctl, "stop", "-m", "fast"], 90, cwd=root, env=env).returncode == 0
        # --- the real start: the include chain, the rendered base/user/node files -----------------------
        r = run_as(user, [*ctl, "-l", str(root / "primary.log"), "start"], 90, cwd=root, env=env)
        assert r.returncode == 0, (root / "primary.log").read_text()[-2000:]
        from psycopg.conninfo import make_conninfo

        def local_dsn(port: int) -> str:
            return make_conninfo(host="127.0.0.1", port=port, user="postgres", password=password, dbname="app")

        dsn = local_dsn(p_primary)
        with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as c:
            assert c.execute("SHOW cluster_name").fetchone()[0] == "primary"
            assert c.execute("SHOW archive_mode").fetchone()[0] == "on"
            assert c.execute("SHOW shared_preload_libraries").fetchone()[0] == "pg_stat_statements"
            assert c.execute("SELECT count(*) >= 0 FROM pg_stat_statements").fetchone()[0]
            assert c.execute("SELECT rolreplication FROM pg_roles WHERE rolname = 'replicator'").fetchone()[0]
            c.execute("CREATE TABLE native_t (v text)")
            c.execute("INSERT INTO native_t VALUES ('from the primary')")
            seg = c.execute("SELECT pg_walfile_name(pg_current_wal_lsn())").fetchone()[0]
            c.execute("SELECT pg_switch_wal()")
        deadline = time.monotonic() + 30
        while not (root / "primary" / "archive" / seg).exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert (root / "primary" / "archive" / seg).exists(), "archive_command from the node file did not archive"
        # --- the replica script: pg_basebackup through the passfile, standby.signal, streaming ----------
        renv = {"PATH": path_env, "PGDATA": str(rdata), "HOME": str(root), **spec.container("replica1").env,
                "PGREADY_PRIMARY_HOST": "127.0.0.1", "PGREADY_PRIMARY_PORT": str(p_primary)}
        boot("replica1")
        log = open(root / "replica.log", "wb")
        procs.append(subprocess.Popen(["bash", str(replica_files[str(ds.REPLICA_SCRIPT_PATH)])], stdout=log,
                                      stderr=subprocess.STDOUT, cwd=str(root), env=renv, start_new_session=True,
                                      **user.popen_kwargs()))
        rdsn = local_dsn(p_replica)
        deadline, status = time.monotonic() + 90, None
        while time.monotonic() < deadline and status != "streaming":
            assert procs[-1].poll() is None, (root / "replica.log").read_text()[-2000:]
            try:
                with psycopg.connect(rdsn, autocommit=True, connect_timeout=3) as c:
                    row = c.execute("SELECT status FROM pg_stat_wal_receiver").fetchone()
                    status = row[0] if row else None
            except psycopg.OperationalError:
                pass
            time.sleep(0.2)
        assert status == "streaming", (root / "replica.log").read_text()[-2000:]
        assert (rdata / "standby.signal").exists()
        with psycopg.connect(rdsn, autocommit=True) as c:
            assert c.execute("SHOW cluster_name").fetchone()[0] == "replica1"
            assert c.execute("SELECT v FROM native_t").fetchone()[0] == "from the primary"
        with psycopg.connect(dsn, autocommit=True) as c:
            assert c.execute("SELECT slot_name, active FROM pg_replication_slots").fetchall() == [("replica1", True)]
        # --- PgBouncer's start script and the rendered ini ------------------------------------------------
        if find_pgbouncer() is not None:
            benv = {"PATH": path_env, "HOME": str(root), **spec.container("pgbouncer").env}
            boot("pgbouncer")
            blog = open(root / "pgbouncer.out", "wb")
            procs.append(subprocess.Popen(["sh", str(bouncer_files[str(ds.PGBOUNCER_SCRIPT_PATH)])], stdout=blog,
                                          stderr=subprocess.STDOUT, cwd=str(root), env=benv, start_new_session=True,
                                          **user.popen_kwargs()))
            deadline = time.monotonic() + 20
            while not port_open("127.0.0.1", p_bouncer) and time.monotonic() < deadline:
                assert procs[-1].poll() is None, (root / "pgbouncer.out").read_text()[-2000:]
                time.sleep(0.05)
            bdsn = local_dsn(p_bouncer)
            with psycopg.connect(bdsn, autocommit=True, connect_timeout=10) as c:
                assert c.execute("SELECT current_setting('cluster_name')").fetchone()[0] == "primary"
            assert (root / "pgbouncer" / "userlist.txt").stat().st_mode & 0o077 == 0
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGINT)
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
        if (pdata / "postmaster.pid").exists():
            run_as(user, [f"{bindir}/pg_ctl", "-D", str(pdata), "-w", "-t", "30", "stop", "-m", "immediate"], 40,
                   cwd=root, env={"PATH": path_env})
        if not os.environ.get("PGREADY_KEEP_NATIVE"):
            shutil.rmtree(root, ignore_errors=True)
