"""The embedded `local` provider: real postgres, pgbouncer and toxiproxy processes on loopback.

Layout of one cluster (a run dir under /tmp/pytest-pgready/run/<id>/, owned by the service user):
  n0/ (primary datadir)  n1/ … (replicas)  archive/  pgbouncer/  toxiproxy/  pgpass  *.log
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from ..errors import PgReadyUsageError
from . import config as conf
from .binaries import PgBinaries, find_pgbouncer, find_toxiproxy, PGBOUNCER_HINT, TOXIPROXY_HINT
from .model import Cluster, Endpoint, Node, Pooler, Proxy
from .osuser import OsUser, service_user
from .sandbox import free_port, new_run_dir, port_open, remove_dir, stop_cleanly_on_sigterm
from .template import APP_DB, REPLICATION_USER, SUPERUSER, get_template, run_as, _tail


class LocalNode(Node):
    def __init__(self, name: str, role: str, endpoint: Endpoint, datadir: Path, cluster: "LocalCluster") -> None:
        super().__init__(name, role, endpoint, datadir)
        self.cluster = cluster
        self.logfile = cluster.workdir / f"{name}.log"

    @property
    def pid(self) -> int | None:
        try:
            return int((self.datadir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def is_running(self) -> bool:
        pid = self.pid
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        try:  # a zombie or a reused pid is not our postmaster
            return str(self.datadir) in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            return False

    def _ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        c = self.cluster
        return run_as(c.user, [str(c.bin.tool("pg_ctl")), *args, "-D", str(self.datadir)], timeout + 10,
                      cwd=c.workdir, env=c.tool_env())

    def start(self, wait: bool = True, timeout: float = 60) -> None:
        clear_stale_pidfile(self)  # after a SIGKILL the dead postmaster's lock would refuse the restart
        args = ["start", "-l", str(self.logfile), "-t", str(int(timeout))] + (["-w"] if wait else ["-W"])
        r = self._ctl(*args, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(f"{self.name} did not start: {self.log_tail()}")
        if wait:
            self.cluster.verify_identity(self)

    def stop(self, mode: str = "fast", timeout: float = 60) -> None:
        if not self.is_running():
            return
        r = self._ctl("stop", "-m", mode, "-w", "-t", str(int(timeout)), timeout=timeout)
        if r.returncode != 0 and self.is_running():
            raise RuntimeError(f"{self.name} did not stop: {_tail(r.stderr)}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        pid = self.pid
        if pid is None:
            raise RuntimeError(f"{self.name} has no postmaster to signal")
        os.kill(pid, sig)
        if sig == signal.SIGKILL:  # children notice the postmaster's death; wait until they are gone
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(0.02)

    def freeze(self) -> None:
        """SIGSTOP the postmaster and every backend: a node that holds connections but answers nothing."""
        for pid in self._all_pids():
            os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        for pid in self._all_pids():
            os.kill(pid, signal.SIGCONT)

    def _all_pids(self) -> list[int]:
        from .sandbox import processes_under

        return processes_under(self.datadir)

    def promote(self, wait: bool = True, timeout: float = 60) -> None:
        super().promote(wait=wait, timeout=timeout)
        self.role = "primary"

    def log_tail(self, n: int = 5) -> str:
        try:
            lines = self.logfile.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "no log"
        return " | ".join(lines[-n:])[-600:]

    def write_node_conf(self, extra: dict[str, str] | None = None) -> None:
        c = self.cluster
        s = {"port": str(self.port), "listen_addresses": "'127.0.0.1'",
             "unix_socket_directories": conf.quote(str(c.workdir)), "cluster_name": conf.quote(self.name),
             "archive_command": conf.quote(conf.archive_command(c.archive_dir)) if c.archive_dir else "''"}
        if c.archive_dir:
            s["restore_command"] = conf.quote(conf.restore_command(c.archive_dir))
        s.update(extra or {})
        path = self.datadir / "pgready.node.conf"
        path.write_text(conf.render(s, "owned by the pytest-pgready sandbox: written on every start"))
        c.user.chown(path)


class LocalPooler(Pooler):
    def __init__(self, endpoint: Endpoint, cluster: "LocalCluster", ini_path: Path, proc: subprocess.Popen) -> None:
        super().__init__(endpoint, SUPERUSER, ini_path)
        self.cluster = cluster
        self.proc = proc
        self.settings: dict[str, str] = {}

    def repoint(self, node: Node) -> None:
        """Send new server connections to `node` (RELOAD) and drop the old ones (RECONNECT)."""
        import re

        text = self.ini_path.read_text()
        text = re.sub(r"host=\S+ port=\d+", f"host={node.host} port={node.port}", text)
        self.ini_path.write_text(text)
        with self.admin() as conn:
            conn.execute("RELOAD")
            try:
                conn.execute("RECONNECT")
            except Exception:  # older pgbouncer: no RECONNECT; servers are replaced as they close
                pass

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # safe shutdown
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class LocalCluster(Cluster):
    provider = "local"

    def __init__(self, bins: PgBinaries, user: OsUser) -> None:
        self.bin = bins
        self.user = user
        stop_cleanly_on_sigterm()
        self.workdir = new_run_dir()
        self.archive_dir: Path | None = None
        self.nodes: list[LocalNode] = []
        self.procs: list[subprocess.Popen] = []
        self.password = ""
        self.ssl = False
        self._closed = False
        self.primary = None  # type: ignore[assignment]
        self.replicas: list[Node] = []
        self.pooler = None
        self.toxiproxy = None
        self.toxiproxy_missing = "not requested"
        self.proxies: dict[str, Proxy] = {}
        self.read_only = False
        self.durability_relaxed: list[str] = []
        self.config_rewrites: list[str] = []
        self.config_source = "embedded defaults"
        self.declared_settings: dict[str, str] = {}
        self.sync = False
        atexit.register(self.close)

    # --- environment for tools --------------------------------------------------------------------------
    def tool_env(self) -> dict[str, str]:
        return {"PGPASSFILE": str(self.workdir / "pgpass"), "PGSSLMODE": "prefer", "PGCONNECT_TIMEOUT": "10",
                "HOME": str(self.workdir)}

    def run_tool(self, argv: list[str], *, as_owner: bool = False, timeout: float = 600,
                 env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL tool by name (resolved in the cluster's bin dir) or path."""
        exe = argv[0] if "/" in argv[0] else str(self.bin.tool(argv[0]))
        user = self.user if as_owner else OsUser("self", os.getuid(), os.getgid())
        full_env = {**self.tool_env(), **(env or {})}
        return run_as(user, [exe, *argv[1:]], timeout, cwd=cwd or self.workdir, env=full_env)

    # --- provisioning -----------------------------------------------------------------------------------
    def provision(self, replicas: int = 1, sync: bool = False, pgbouncer: bool = True, toxiproxy: bool = True,
                  archive: bool = True, conf_overrides: dict[str, Any] | None = None,
                  postgresql_conf: Path | None = None, pgbouncer_ini: Path | None = None,
                  init_sql: list[Path] | None = None) -> "LocalCluster":
        tpl = get_template(self.bin, self.user)
        self.password = tpl.password
        self.ssl = tpl.ssl
        pgpass = self.workdir / "pgpass"
        pgpass.write_text(f"127.0.0.1:*:*:{SUPERUSER}:{tpl.password}\n127.0.0.1:*:*:{REPLICATION_USER}:{tpl.password}\n")
        pgpass.chmod(0o600)
        self.user.chown(pgpass)
        from ..redact import remember_secret

        remember_secret(tpl.password)
        if archive:
            self.archive_dir = self.workdir / "archive"
            self.archive_dir.mkdir(mode=0o700)
            self.user.chown(self.archive_dir)
        tox_thread = None
        if toxiproxy:  # independent of postgres: start it while the primary starts
            import threading

            tox_thread = threading.Thread(target=self._start_toxiproxy, name="pgready-toxiproxy", daemon=True)
            tox_thread.start()
        primary = self._new_node("primary", "primary")
        r = subprocess.run(["cp", "-a", str(tpl.datadir), str(primary.datadir)], capture_output=True, text=True,
                           timeout=120)
        if r.returncode != 0:
            raise RuntimeError(f"copying the initdb template failed: {_tail(r.stderr)}")
        layers = conf.server_layers(archive=archive, ssl=tpl.ssl, postgresql_conf=postgresql_conf,
                                    conf_overrides=conf_overrides, available_libs=self._available_libs(),
                                    ssl_available=tpl.ssl)
        self._write(primary.datadir / "pgready.base.conf", conf.render(layers.base, "pytest-pgready embedded defaults"))
        self._write(primary.datadir / "pgready.user.conf", conf.render(layers.user, "bring-your-own settings"))
        self.config_rewrites += layers.notes
        self.config_source = layers.source
        self.declared_settings = layers.declared
        self.durability_relaxed += layers.durability_relaxed
        primary.write_node_conf()
        self.user.chown_tree(primary.datadir)
        self._start_node(primary)
        self.primary = primary
        if tox_thread is not None:
            tox_thread.join(30)
        if init_sql:
            for f in init_sql:
                self.apply_sql_file(Path(f))
        for i in range(1, replicas + 1):
            self.add_replica(f"replica{i}")
        if sync and self.replicas:
            self.set_sync([self.replicas[0].name])
        if pgbouncer:
            self._start_pgbouncer(pgbouncer_ini)
        if toxiproxy and self.toxiproxy is not None:
            self._proxy("primary", primary.port)
        return self

    def _write(self, path: Path, text: str) -> None:
        path.write_text(text)
        self.user.chown(path)

    def _available_libs(self) -> set[str]:
        try:
            r = subprocess.run([str(self.bin.tool("pg_config")), "--pkglibdir"], capture_output=True, text=True,
                               timeout=10)
            libdir = Path(r.stdout.strip())
            return {p.stem for p in libdir.glob("*.so")}
        except (OSError, subprocess.SubprocessError, PgReadyUsageError):
            return set()

    def _new_node(self, name: str, role: str) -> LocalNode:
        ep = Endpoint("127.0.0.1", free_port(), SUPERUSER, self.password, APP_DB,
                      {"sslmode": "prefer"})
        node = LocalNode(name, role, ep, self.workdir / f"n{len(self.nodes)}", self)
        self.nodes.append(node)
        return node

    def _start_node(self, node: LocalNode, attempts: int = 3) -> None:
        for attempt in range(attempts):
            try:
                node.start(timeout=60)
                return
            except RuntimeError:
                if "could not bind" in node.log_tail(20) or "Address already in use" in node.log_tail(20):
                    node.endpoint.port = free_port()  # lost a port race: take another
                    node.write_node_conf()
                    continue
                raise
        raise RuntimeError(f"{node.name} could not bind a port after {attempts} attempts")

    def verify_identity(self, node: LocalNode) -> None:
        """The server answering on that port must be the one we started: same data dir and system id."""
        expected = int.from_bytes((node.datadir / "global" / "pg_control").read_bytes()[:8], "little")
        deadline = time.monotonic() + 30
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                with node.connect(dbname="postgres", connect_timeout=5) as c:
                    ddir, sysid = c.execute("SELECT current_setting('data_directory'), "
                                            "(SELECT system_identifier FROM pg_control_system())").fetchone()
                break
            except Exception as e:  # starting up, or recovering
                last = e
                time.sleep(0.05)
        else:
            raise RuntimeError(f"{node.name} on port {node.port} does not answer: {last}")
        if Path(ddir).resolve() != node.datadir.resolve() or int(sysid) != expected:
            raise RuntimeError(f"port {node.port} is answered by another server ({ddir}), not {node.name}")

    def apply_sql_file(self, path: Path, dbname: str = APP_DB) -> None:
        r = self.run_tool(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", self.primary.dsn(dbname=dbname),
                           "-f", str(path)], timeout=900)
        if r.returncode != 0:
            raise PgReadyUsageError(f"--pgready-init-sql {path.name} failed: {_psql_error(r.stderr)}",
                                    "fix the SQL (it runs with psql -v ON_ERROR_STOP=1 on a fresh database)")

    def add_replica(self, name: str, *, via_proxy: bool = True) -> LocalNode:
        node = self._new_node(name, "replica")
        slot = name.replace("-", "_")
        r = self.run_tool(["pg_basebackup", "-h", "127.0.0.1", "-p", str(self.primary.port), "-U", REPLICATION_USER,
                           "-D", str(node.datadir), "-R", "-X", "stream", "-C", "-S", slot, "-c", "fast",
                           "--no-sync"], as_owner=True, timeout=600)
        if r.returncode != 0:
            raise RuntimeError(f"pg_basebackup for {name} failed: {_tail(r.stderr)}")
        auto = node.datadir / "postgresql.auto.conf"
        if via_proxy and self.toxiproxy is not None:
            proxy = self._proxy("replication", self.primary.port)
            text = auto.read_text().replace(f"port={self.primary.port}", f"port={proxy.listen_port}")
            self._write(auto, text)
        node.write_node_conf()
        self._start_node(node)
        self.replicas.append(node)
        self.wait_streaming([name])
        return node

    # --- pgbouncer / toxiproxy ---------------------------------------------------------------------------
    def _start_pgbouncer(self, user_ini: Path | None) -> None:
        exe = find_pgbouncer()
        if exe is None:
            self.config_rewrites.append(f"PgBouncer not installed ({PGBOUNCER_HINT}): pooling checks are na")
            return
        d = self.workdir / "pgbouncer"
        d.mkdir(mode=0o700)
        auth = d / "userlist.txt"
        auth.write_text(f'"{SUPERUSER}" "{self.password}"\n')
        auth.chmod(0o600)
        port = free_port()
        text, notes = conf.pgbouncer_config(user_ini, "127.0.0.1", self.primary.port, port, d, auth, SUPERUSER,
                                            sandbox_dbname=APP_DB, overrides=getattr(self, "pgbouncer_conf", None))
        self.config_rewrites += notes
        ini = d / "pgbouncer.ini"
        ini.write_text(text)
        self.user.chown_tree(d)
        log = open(self.workdir / "pgbouncer.out", "wb")
        proc = subprocess.Popen([str(exe), str(ini)], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=str(d), start_new_session=True, **self.user.popen_kwargs())
        self.procs.append(proc)
        if not _wait_port(port, proc, 15):
            raise RuntimeError(f"pgbouncer did not start: {_tail((self.workdir / 'pgbouncer.out').read_text())}")
        aliases = conf.pgbouncer_aliases(text)
        dbname = aliases[0] if aliases and aliases[0] != "*" else APP_DB
        pooler = LocalPooler(Endpoint("127.0.0.1", port, SUPERUSER, self.password, dbname), self, ini, proc)
        self.pooler = pooler

    def _start_toxiproxy(self) -> None:
        exe = find_toxiproxy()
        if exe is None:
            self.toxiproxy_missing = f"toxiproxy-server is not installed: {TOXIPROXY_HINT}"
            return
        port = free_port()
        log = open(self.workdir / "toxiproxy.out", "wb")
        proc = subprocess.Popen([str(exe), "-host", "127.0.0.1", "-port", str(port)], stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=str(self.workdir),
                                start_new_session=True, **self.user.popen_kwargs())
        self.procs.append(proc)
        if not _wait_port(port, proc, 15):
            self.toxiproxy_missing = f"toxiproxy-server did not start: {_tail((self.workdir / 'toxiproxy.out').read_text())}"
            return
        from .toxiproxy_api import ToxiproxyAPI

        self.toxiproxy = ToxiproxyAPI("127.0.0.1", port)
        self.toxiproxy_missing = None

    def _proxy(self, name: str, upstream_port: int) -> Proxy:
        if name in self.proxies:
            return self.proxies[name]
        listen = free_port()
        self.toxiproxy.create_proxy(name, f"127.0.0.1:{listen}", f"127.0.0.1:{upstream_port}")
        p = Proxy(name, listen, upstream_port)
        self.proxies[name] = p
        return p

    # --- teardown ------------------------------------------------------------------------------------------
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.pooler is not None:
            try:
                self.pooler.stop()
            except Exception:
                pass
        for node in reversed(self.nodes):
            try:
                if node.is_running():
                    node.thaw()
                    node.stop(mode="immediate", timeout=20)
            except Exception:
                pass
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
        remove_dir(self.workdir)
        try:
            atexit.unregister(self.close)
        except Exception:
            pass


def _psql_error(stderr: str) -> str:
    """psql ends with a caret line; the useful part is 'file:line: ERROR: …'."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for ln in lines:
        if "ERROR:" in ln or "FATAL:" in ln:
            return ln[:300]
    return _tail(stderr)


def _pid_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "gone"


def _alive(pid: int) -> bool:
    return _pid_state(pid) not in ("Z", "gone")


def clear_stale_pidfile(node: Any) -> bool:
    """Remove postmaster.pid (and the Unix socket's lock file) when their process is dead or a zombie.
    A SIGKILLed postmaster is reparented to PID 1; until that reaps it, the zombie's PID still "exists"
    and a new postmaster (or pg_rewind's single-user crash recovery) refuses to start."""
    files = [Path(node.datadir) / "postmaster.pid"]
    sockdir = getattr(getattr(node, "cluster", None), "workdir", None)
    if sockdir is not None:
        files.append(Path(sockdir) / f".s.PGSQL.{node.port}.lock")
    removed = False
    for f in files:
        try:
            pid = int(f.read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            continue
        if not _alive(pid):
            f.unlink(missing_ok=True)
            removed = True
    return removed


def _wait_port(port: int, proc: subprocess.Popen, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if port_open("127.0.0.1", port):
            return True
        time.sleep(0.02)
    return False


def provision_local(settings: Any, *, bins: PgBinaries | None = None, replicas: int | None = None,
                    sync: bool = False, pgbouncer: bool = True, toxiproxy: bool = True, archive: bool = True,
                    conf: dict[str, Any] | None = None, init_sql: bool = True, byo: bool = True,
                    pgbouncer_conf: dict[str, Any] | None = None) -> LocalCluster:
    from .binaries import find_postgres

    bins = bins or find_postgres(settings.pg_bin, settings.pg_version)
    cluster = LocalCluster(bins, service_user())
    cluster.pgbouncer_conf = dict(pgbouncer_conf or {})  # [pgbouncer] keys merged over the ini (after BYO rewrite)
    try:
        cluster.provision(replicas=settings.replicas if replicas is None else replicas, sync=sync,
                          pgbouncer=pgbouncer, toxiproxy=toxiproxy, archive=archive, conf_overrides=conf,
                          postgresql_conf=settings.postgresql_conf if byo else None,
                          pgbouncer_ini=settings.pgbouncer_ini if byo else None,
                          init_sql=list(settings.init_sql) if init_sql else None)
    except BaseException:
        cluster.close()
        raise
    return cluster
