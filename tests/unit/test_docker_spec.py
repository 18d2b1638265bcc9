"""The docker provider without Docker: what it asks Docker for, the configuration it ships, the engine probe.

No Docker engine is needed (none answers on the machines this project runs on): the spec is pure, the
probe is tested against small socket servers made here, and the arguments are checked with docker-py's
own create-argument builder.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import pytest

from pytest_pgready.cluster import config as conf
from pytest_pgready.cluster import docker_spec as ds
from pytest_pgready.cluster.docker import check_engine, probe_engine
from pytest_pgready.errors import PgReadyUsageError

PASSWORD = "s3cret-Pa55word-xyz"


def spec(**kw):
    kw.setdefault("run_id", "ab12cd34")
    kw.setdefault("password", PASSWORD)
    return ds.build_spec(**kw)


def settings(**over):
    from pytest_pgready.settings import build

    return build(over, None, None)


# ----------------------------------------------------------------------------------------------- topology
def test_default_topology_in_start_order():
    s = spec()
    assert [(c.role, c.alias) for c in s.containers] == [
        ("toxiproxy", "toxiproxy"), ("primary", "primary"), ("replica", "replica1"), ("pgbouncer", "pgbouncer")]
    assert s.network == "pgready-ab12cd34"


def test_topology_follows_the_arguments():
    s = spec(replicas=2, pgbouncer=False, toxiproxy=False)
    assert [c.alias for c in s.containers] == ["primary", "replica1", "replica2"]
    assert s.proxies == []
    assert spec(replicas=0).of_role("replica") == []


def test_images_default_and_selectable():
    assert ds.images(settings()) == {"postgres": "postgres:16", "pgbouncer": "edoburu/pgbouncer:latest",
                                     "toxiproxy": "ghcr.io/shopify/toxiproxy:2.12.0"}
    assert ds.images(settings(pg_version=17))["postgres"] == "postgres:17"
    from pytest_pgready.settings import apply_table

    s = settings(pg_version=17)
    apply_table(s.values, s.sources, {"docker_pg_image": "postgres:15-alpine",
                                      "docker_pgbouncer_image": "example/pgbouncer:1.23"}, "test", None)
    imgs = ds.images(s)
    assert imgs["postgres"] == "postgres:15-alpine" and imgs["pgbouncer"] == "example/pgbouncer:1.23"
    s2 = spec(images=imgs)
    assert {c.image for c in s2.containers if c.role in ("primary", "replica")} == {"postgres:15-alpine"}
    assert s2.container("pgbouncer").image == "example/pgbouncer:1.23"


def test_settings_keys_exist_with_their_defaults():
    s = settings(provider="docker")
    assert s.effective_provider == "docker"
    assert s.docker_pg_image is None
    assert s.docker_pgbouncer_image == "edoburu/pgbouncer:latest"
    assert s.docker_toxiproxy_image == "ghcr.io/shopify/toxiproxy:2.12.0"
    assert s.docker_engine_timeout == 3


# ----------------------------------------------------------------------------------------------- env, commands
def test_primary_runs_the_official_entrypoint_with_its_env():
    p = spec().container("primary")
    assert p.command is None and p.entrypoint is None and p.user is None  # the image's own: initdb on first boot
    assert p.env == {"POSTGRES_USER": "postgres", "POSTGRES_PASSWORD": PASSWORD, "POSTGRES_DB": "app",
                     "POSTGRES_INITDB_ARGS": ds.INITDB_ARGS, "POSTGRES_HOST_AUTH_METHOD": "scram-sha-256"}
    assert "--data-checksums" in ds.INITDB_ARGS
    assert str(ds.INITDB_SCRIPT_PATH) in p.files and p.files[str(ds.INITDB_SCRIPT_PATH)][1] == 0o755


def test_replica_builds_itself_with_pg_basebackup():
    r = spec().container("replica1")
    assert r.command == ["bash", "/etc/pgready/replica.sh"] and r.user == "postgres"
    assert r.env == {"PGREADY_NODE_NAME": "replica1", "PGREADY_PRIMARY_HOST": "primary",
                     "PGREADY_PRIMARY_PORT": "5432", "PGREADY_REPLICATION_PASSWORD": PASSWORD}
    script = r.files["/etc/pgready/replica.sh"][0]
    assert 'pg_basebackup -h "$host" -p "$port" -U replicator -D "$PGDATA" -X stream -C -S' in script
    assert 'touch "$PGDATA/standby.signal"' in script
    assert script.rstrip().endswith("exec docker-entrypoint.sh postgres")
    assert 'if [ ! -s "$PGDATA/PG_VERSION" ]' in script  # a restarted replica does not rebuild itself


def test_pgbouncer_and_toxiproxy_commands():
    b = spec().container("pgbouncer")
    assert b.entrypoint == ["/bin/sh", "/etc/pgready/pgbouncer-start.sh"] and b.command is None
    assert b.env == {"PGREADY_PGBOUNCER_USER": "postgres", "PGREADY_PGBOUNCER_PASSWORD": PASSWORD}
    assert "exec pgbouncer /etc/pgready/pgbouncer.ini" in b.files["/etc/pgready/pgbouncer-start.sh"][0]
    t = spec().container("toxiproxy")
    assert t.command == ["-host=0.0.0.0"] and t.files == {} and t.env == {}


def test_pgbouncer_overrides_reach_the_container_ini():
    """POOL003/POOL004 probe poolers set [pgbouncer] keys; the docker provider renders them like the local one."""
    ini = spec(pgbouncer_overrides={"pool_mode": "session", "max_client_conn": 7}).container("pgbouncer") \
        .files["/etc/pgready/pgbouncer.ini"][0]
    assert "pool_mode = session" in ini and "max_client_conn = 7" in ini


def test_no_password_in_any_rendered_file():
    """The password travels in the environment only: never in a file (nor in the checked-in compose files)."""
    s = spec(replicas=2)
    for c in s.containers:
        for path, (text, _) in c.files.items():
            assert PASSWORD not in text, (c.alias, path)


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash not installed")
def test_scripts_are_valid_shell():
    for name, text, shell in (("initdb", ds.initdb_script(), "bash"), ("replica", ds.replica_script(), "bash"),
                              ("pgbouncer", ds.pgbouncer_script(), "sh")):
        r = subprocess.run([shell, "-n"], input=text, text=True, capture_output=True)
        assert r.returncode == 0, (name, r.stderr)


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash not installed")
def test_replica_script_escapes_the_password_for_pgpass(tmp_path):
    """pgpass needs ':' and '\\' escaped; run the script's own lines on a nasty password."""
    lines = [ln for ln in ds.replica_script().splitlines() if ln.startswith('pw="${pw//')]
    assert len(lines) == 2
    r = subprocess.run(["bash", "-c", 'pw=$1\n' + "\n".join(lines) + '\nprintf %s "$pw"', "x", "a:b\\c"],
                       capture_output=True, text=True)
    assert r.stdout == "a\\:b\\\\c"


# ----------------------------------------------------------------------------------------------- network, ports
def test_ports_published_per_container():
    s = spec()
    assert s.container("primary").ports == [5432]
    assert s.container("replica1").ports == [5432]
    assert s.container("pgbouncer").ports == [6432]
    assert s.container("toxiproxy").ports == [8474, 15432]  # API + client proxy; "replication" stays internal


def test_create_kwargs_bind_loopback_and_join_the_private_network():
    s = spec()
    kw = s.container("primary").create_kwargs(s.run_id, s.network, "127.0.0.1")
    assert kw["ports"] == {"5432/tcp": ("127.0.0.1", None)}
    assert kw["network"] == "pgready-ab12cd34" and kw["name"] == "pgready-ab12cd34-primary"
    assert kw["labels"] == {ds.LABEL_RUN: "ab12cd34", ds.LABEL_ROLE: "primary"}
    remote = s.container("primary").create_kwargs(s.run_id, s.network, "")
    assert remote["ports"] == {"5432/tcp": None}  # a remote engine: every interface of that host


def test_docker_py_accepts_what_we_ask_for():
    """docker-py's own create-argument builder (no daemon needed) takes every container's kwargs."""
    models = pytest.importorskip("docker.models.containers")
    from docker.types import EndpointConfig

    s = spec()
    for c in s.containers:
        kw = c.create_kwargs(s.run_id, s.network, "127.0.0.1")
        kw["networking_config"] = {s.network: EndpointConfig("1.44", aliases=[c.alias])}
        kw["version"] = "1.44"
        out = models._create_container_args(dict(kw))
        assert out["host_config"]["NetworkMode"] == s.network
        assert out["networking_config"]["EndpointsConfig"][s.network]["Aliases"] == [c.alias]
        for p in c.ports:
            assert out["host_config"]["PortBindings"][f"{p}/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": ""}]
        assert out.get("entrypoint") == c.entrypoint and out.get("user") == c.user


def test_publish_ip():
    assert ds.publish_ip("unix:///var/run/docker.sock") == "127.0.0.1"
    assert ds.publish_ip("tcp://10.0.0.5:2375") == ""
    assert ds.publish_ip("unix:///var/run/docker.sock", inside_container=True) == ""
    assert ds.publish_ip("unix:///var/run/docker.sock", host_override="docker-host") == ""


def test_toxiproxy_proxies_point_at_the_primary():
    assert spec().proxies == [
        {"name": "primary", "listen": "0.0.0.0:15432", "upstream": "primary:5432", "enabled": True},
        {"name": "replication", "listen": "0.0.0.0:15433", "upstream": "primary:5432", "enabled": True}]


# ----------------------------------------------------------------------------------------------- shared rendering
def test_postgres_settings_are_config_py_s_rendering():
    """Same settings → the same files the local provider writes (pgready.base.conf, pgready.user.conf)."""
    s = spec()
    for alias in ("primary", "replica1"):
        files = s.container(alias).files
        local_base = dict(conf.BASE_SETTINGS, archive_mode="on")  # what LocalCluster.provision writes
        assert files["/etc/pgready/pgready.base.conf"][0] == conf.render(local_base, "pytest-pgready embedded defaults")
        assert files["/etc/pgready/pgready.user.conf"][0] == conf.render({}, "bring-your-own settings")
    assert spec(archive=False).container("primary").files["/etc/pgready/pgready.base.conf"][0] == \
        conf.render(dict(conf.BASE_SETTINGS, archive_mode="off"), "pytest-pgready embedded defaults")


def test_bring_your_own_postgresql_conf_goes_through_the_shared_rewrite(tmp_path):
    f = tmp_path / "postgresql-production.conf"
    f.write_text("work_mem = '12MB'\nport = 6543\nshared_buffers = 8GB\nssl = on\n"
                 "archive_command = 'pgbackrest archive-push %p'\nfsync = off\n"
                 "shared_preload_libraries = 'pg_stat_statements,timescaledb'\n")
    s = spec(postgresql_conf=f, available_libs={"pg_stat_statements"})
    rw = conf.rewrite_postgresql_conf(f.read_text(), f.name, {"pg_stat_statements"}, ssl_available=False)
    user = s.container("primary").files["/etc/pgready/pgready.user.conf"][0]
    assert user == conf.render(rw.settings, "bring-your-own settings")
    assert s.container("replica1").files["/etc/pgready/pgready.user.conf"][0] == user
    parsed = {name: raw for _, name, raw in conf.parse_conf(user)}
    assert parsed["work_mem"] == "'12MB'" and parsed["shared_buffers"] == "'256MB'" and parsed["ssl"] == "off"
    assert "port" not in parsed and "archive_command" not in parsed
    assert parsed["shared_preload_libraries"] == "'pg_stat_statements'"
    assert s.layers.source == "your postgresql-production.conf"
    assert s.layers.declared["archive_command"] == "pgbackrest archive-push %p"
    assert s.layers.declared["shared_buffers"] == "8GB"
    assert s.layers.durability_relaxed == ["fsync=off (from your config)"]
    assert any("port rewritten" in n for n in s.layers.notes)
    node = s.container("primary").files["/etc/pgready/pgready.node.conf"][0]
    assert "port = 5432" in node and "listen_addresses = '*'" in node  # the container owns these


def test_conf_overrides_quoted_like_the_local_provider():
    s = spec(conf_overrides={"synchronous_commit": "off", "work_mem": "'4MB'", "max_connections": 50})
    user = dict((n, r) for _, n, r in conf.parse_conf(s.container("primary").files["/etc/pgready/pgready.user.conf"][0]))
    assert user == {"synchronous_commit": "'off'", "work_mem": "'4MB'", "max_connections": "'50'"}
    assert s.layers.durability_relaxed == ["synchronous_commit=off (from your config)"]


def test_node_files():
    s = spec()
    p = dict((n, r) for _, n, r in conf.parse_conf(s.container("primary").files["/etc/pgready/pgready.node.conf"][0]))
    assert p["cluster_name"] == "'primary'" and p["port"] == "5432"
    assert p["archive_command"] == conf.quote(conf.archive_command(ds.ARCHIVE_DIR))
    assert p["restore_command"] == conf.quote(conf.restore_command(ds.ARCHIVE_DIR))
    assert "primary_conninfo" not in p
    r = dict((n, r) for _, n, r in conf.parse_conf(s.container("replica1").files["/etc/pgready/pgready.node.conf"][0]))
    assert r["cluster_name"] == "'replica1'" and r["primary_slot_name"] == "'replica1'"
    assert r["primary_conninfo"] == ("'host=toxiproxy port=15433 user=replicator passfile=/tmp/pgready.pgpass "
                                     "application_name=replica1'")
    direct = spec(toxiproxy=False).container("replica1").files["/etc/pgready/pgready.node.conf"][0]
    assert "host=primary port=5432" in direct
    assert "archive_command = ''" in spec(archive=False).container("primary").files["/etc/pgready/pgready.node.conf"][0]


def test_the_include_chain_is_the_templates():
    from pytest_pgready.cluster.template import INCLUDES

    script = ds.initdb_script()
    assert " ".join(f"/etc/pgready/{f}" for f in INCLUDES) in script
    assert "include_if_exists" in script and "host replication all all scram-sha-256" in script
    assert "CREATE ROLE replicator WITH LOGIN REPLICATION" in script
    assert "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" in script


def test_pgbouncer_ini_is_config_py_s_rendering(tmp_path):
    s = spec()
    ini = s.container("pgbouncer").files["/etc/pgready/pgbouncer.ini"][0]
    expected, notes = conf.pgbouncer_config(None, "primary", 5432, 6432, ds.PGBOUNCER_RUNDIR, ds.PGBOUNCER_AUTH_FILE,
                                            "postgres", listen_addr="*", sandbox_dbname="app")
    assert ini == expected and notes == []
    assert ini.startswith(conf.default_pgbouncer_ini("primary", 5432, 6432, ds.PGBOUNCER_RUNDIR,
                                                     ds.PGBOUNCER_AUTH_FILE, "postgres", listen_addr="*")
                          .split("[pgbouncer]\n")[0])
    assert "listen_addr = *\n" in ini and "auth_file = /tmp/userlist.txt\n" in ini and "auth_user = postgres\n" in ini
    user_ini = tmp_path / "pgbouncer.ini"
    user_ini.write_text("[databases]\nshop = host=db.internal port=5432 dbname=shop\n\n[pgbouncer]\n"
                        "listen_addr = 10.0.0.1\npool_mode = session\nmax_client_conn = 5000\nauth_type = hba\n")
    s2 = spec(pgbouncer_ini_path=user_ini)
    ini2 = s2.container("pgbouncer").files["/etc/pgready/pgbouncer.ini"][0]
    text, notes2, _ = conf.rewrite_pgbouncer_ini(user_ini.read_text(), "pgbouncer.ini", "primary", 5432, 6432,
                                                 ds.PGBOUNCER_RUNDIR, ds.PGBOUNCER_AUTH_FILE, "postgres",
                                                 sandbox_dbname="app", listen_addr="*")
    assert ini2 == text.replace("[pgbouncer]\n", "[pgbouncer]\nauth_user = postgres\n", 1)
    assert s2.pgbouncer_notes == notes2
    assert "shop = host=primary port=5432 dbname=app" in ini2 and "pool_mode = session" in ini2  # the sandbox db
    assert "listen_addr = *" in ini2 and "auth_type = scram-sha-256" in ini2


def test_local_listen_addr_default_is_unchanged():
    """The additive listen_addr parameter keeps the local provider's loopback default."""
    ini = conf.default_pgbouncer_ini("127.0.0.1", 5432, 6432, Path("/run/x"), Path("/run/x/u"), "postgres")
    assert "listen_addr = 127.0.0.1\n" in ini


# ----------------------------------------------------------------------------------------------- files into containers
def test_tar_files_for_put_archive():
    data = ds.tar_files({"/etc/pgready/a.conf": ("x = 1\n", 0o644), "/etc/pgready/run.sh": (b"#!/bin/sh\n", 0o755)})
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert set(members) == {"etc/pgready/a.conf", "etc/pgready/run.sh"}
        assert members["etc/pgready/a.conf"].mode == 0o644 and members["etc/pgready/run.sh"].mode == 0o755
        assert members["etc/pgready/a.conf"].uid == 0
        assert tar.extractfile("etc/pgready/a.conf").read() == b"x = 1\n"


# ----------------------------------------------------------------------------------------------- engine address
def test_engine_address_precedence(tmp_path):
    home = tmp_path
    assert ds.engine_address({}, home) == "unix:///var/run/docker.sock"
    (home / ".docker" / "contexts" / "meta").mkdir(parents=True)
    (home / ".docker" / "config.json").write_text(json.dumps({"currentContext": "desktop-linux"}))
    meta = home / ".docker" / "contexts" / "meta" / hashlib.sha256(b"desktop-linux").hexdigest()
    meta.mkdir()
    (meta / "meta.json").write_text(json.dumps({"Endpoints": {"docker": {"Host": "unix:///home/u/.docker/desktop/docker.sock"}}}))
    assert ds.engine_address({}, home) == "unix:///home/u/.docker/desktop/docker.sock"
    assert ds.engine_address({"DOCKER_CONTEXT": "default"}, home) == "unix:///var/run/docker.sock"
    assert ds.engine_address({"DOCKER_HOST": "tcp://10.1.2.3:2375"}, home) == "tcp://10.1.2.3:2375"
    (home / ".testcontainers.properties").write_text("ryuk.disabled=true\ntc.host=tcp://tc-host:2375\n")
    assert ds.engine_address({"DOCKER_HOST": "tcp://10.1.2.3:2375"}, home) == "tcp://tc-host:2375"


# ----------------------------------------------------------------------------------------------- the engine probe
class _UnixServer:
    """A unix socket that answers like a Docker engine (or not at all)."""

    def __init__(self, path: Path, reply: bytes | None) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(4)
        self.reply = reply
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            if self.reply is not None:
                c.recv(1024)
                c.sendall(self.reply)
                c.close()

    def close(self) -> None:
        self.sock.close()
        for c in self.conns:
            c.close()


@pytest.fixture
def short_tmp():
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="pgr"))  # unix socket paths must stay short
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_probe_answers_none_for_an_engine(short_tmp):
    srv = _UnixServer(short_tmp / "d.sock", b"HTTP/1.1 200 OK\r\nApi-Version: 1.45\r\nContent-Length: 2\r\n\r\nOK")
    try:
        assert probe_engine(f"unix://{short_tmp}/d.sock", 2) is None
        assert check_engine(2, f"unix://{short_tmp}/d.sock") == f"unix://{short_tmp}/d.sock"
    finally:
        srv.close()


def test_probe_missing_socket_refused_and_not_docker(short_tmp):
    assert probe_engine(f"unix://{short_tmp}/none.sock", 1) == "no such socket"
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    assert probe_engine(f"tcp://127.0.0.1:{port}", 1) == "connection refused"
    srv = _UnixServer(short_tmp / "web.sock", b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    try:
        assert probe_engine(f"unix://{short_tmp}/web.sock", 1).startswith("not a Docker engine (HTTP/1.1 404")
    finally:
        srv.close()


def test_probe_gives_up_within_its_timeout(short_tmp):
    srv = _UnixServer(short_tmp / "mute.sock", None)  # accepts, never answers
    try:
        t0 = time.monotonic()
        why = probe_engine(f"unix://{short_tmp}/mute.sock", 0.3)
        assert why == "no answer within 0.3s"
        assert time.monotonic() - t0 < 2
    finally:
        srv.close()


def test_check_engine_raises_the_one_line_error(short_tmp):
    with pytest.raises(PgReadyUsageError) as ei:
        check_engine(1, f"unix://{short_tmp}/none.sock")
    assert ei.value.line() == (f"pgready: no Docker engine reachable at unix://{short_tmp}/none.sock — "
                               "use --pgready-provider local (the default) or start Docker")
    assert "\n" not in ei.value.line()


def test_check_engine_uses_docker_host(monkeypatch, short_tmp):
    monkeypatch.setenv("HOME", str(short_tmp))
    monkeypatch.setenv("DOCKER_HOST", f"unix://{short_tmp}/x.sock")
    with pytest.raises(PgReadyUsageError, match=f"at unix://{short_tmp}/x.sock — "):
        check_engine(1)


def test_probing_imports_neither_testcontainers_nor_docker(short_tmp):
    """The startup probe runs before anything heavy is imported."""
    code = ("import sys\nfrom pytest_pgready.cluster.docker import check_engine\n"
            "from pytest_pgready.errors import PgReadyUsageError\n"
            "try:\n    check_engine(1)\nexcept PgReadyUsageError as e:\n    print(e.line())\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('testcontainers', 'docker', 'psycopg')))\n")
    env = {**os.environ, "DOCKER_HOST": f"unix://{short_tmp}/none.sock", "HOME": str(short_tmp)}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    line, mods = r.stdout.strip().splitlines()
    assert line.startswith(f"pgready: no Docker engine reachable at unix://{short_tmp}/none.sock")
    assert mods == "[]"
