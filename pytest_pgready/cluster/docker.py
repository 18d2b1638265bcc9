"""The `docker` provider: the local provider's topology in containers, through testcontainers.

A primary (official postgres image), streaming replicas built with pg_basebackup, PgBouncer and
Toxiproxy on a private Docker network; ports published on the host's loopback. What is asked of
Docker (images, env, commands, files, ports) is `docker_spec.py`; every PostgreSQL/PgBouncer setting
is rendered by `config.py`, as for the local provider. This module only does it.

Importing it is cheap: `check_engine()` (the startup probe, stdlib sockets only) runs before
testcontainers or the docker SDK are imported.
"""

from __future__ import annotations

import atexit
import os
import re
import secrets
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ..errors import PgReadyUsageError
from . import docker_spec as ds
from .model import Cluster, Endpoint, Node, Pooler, Proxy, Unsupported
from .template import APP_DB, SUPERUSER

NO_ENGINE_FIX = "use --pgready-provider local (the default) or start Docker"
READY_TIMEOUT = 120.0  # a first start runs initdb in the container


# ================================================================================= the engine probe
def probe_engine(address: str, timeout: float = 3.0) -> str | None:
    """None when a Docker engine answers GET /_ping at `address` within `timeout`, else why it did not.

    unix:// and tcp:// (http://) are pinged; a TLS engine (DOCKER_TLS_VERIFY, or port 2376) must accept
    a TCP connection; ssh:// and npipe:// are not probed here (the Docker SDK reports them later).
    """
    u = urlparse(address)
    scheme = u.scheme or "unix"
    deadline = time.monotonic() + timeout
    try:
        if scheme == "unix":
            path = u.path or address.replace("unix://", "", 1)
            if not os.path.exists(path):
                return "no such socket"
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(path)
        elif scheme in ("tcp", "http", "https"):
            host, port = u.hostname or "127.0.0.1", u.port or (2376 if scheme == "https" else 2375)
            sock = socket.create_connection((host, port), timeout=timeout)
            if scheme == "https" or port == 2376 or os.environ.get("DOCKER_TLS_VERIFY") not in (None, "", "0"):
                sock.close()
                return None  # TLS: a listening engine is all we can tell without its client certificate
        else:
            return None
    except FileNotFoundError:
        return "no such socket"
    except PermissionError:
        return "permission denied"
    except ConnectionRefusedError:
        return "connection refused"
    except socket.timeout:
        return f"no answer within {timeout:g}s"
    except OSError as e:
        return e.strerror or e.__class__.__name__
    try:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
        data = b""
        while len(data) < 4096:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        return f"no answer within {timeout:g}s"
    except OSError as e:
        return e.strerror or e.__class__.__name__
    finally:
        sock.close()
    status = data.split(b"\r\n", 1)[0].decode(errors="replace")
    if not re.match(r"HTTP/1\.[01] 200\b", status):
        return f"not a Docker engine ({status[:60] or 'empty reply'})"
    return None


def check_engine(timeout: float = 3.0, address: str | None = None) -> str:
    """Raise the one-line usage error when no Docker engine answers; return the engine's address."""
    address = address or ds.engine_address()
    why = probe_engine(address, timeout)
    if why is None:
        return address
    if why == "permission denied":
        raise PgReadyUsageError(f"no Docker engine reachable at {address} (permission denied)",
                                "use --pgready-provider local (the default), or let your user use the Docker "
                                "socket (the docker group)")
    raise PgReadyUsageError(f"no Docker engine reachable at {address}", NO_ENGINE_FIX)


# ================================================================================= nodes, pooler, cluster
class DockerNode(Node):
    """A PostgreSQL server in a container: kill → container kill, freeze/thaw → pause/unpause."""

    def __init__(self, name: str, role: str, endpoint: Endpoint, cluster: "DockerCluster", container: Any) -> None:
        super().__init__(name, role, endpoint, None)
        self.cluster = cluster
        self.container = container
        self.alias = name
        self.system_identifier: int | None = None

    def __repr__(self) -> str:
        return f"<DockerNode {self.name} {self.role} {self.endpoint.host}:{self.endpoint.port}>"

    def _state(self) -> dict[str, Any]:
        self.container.reload()
        return self.container.attrs.get("State", {})

    @property
    def pid(self) -> int | None:
        try:
            return int(self._state().get("Pid") or 0) or None  # the postmaster: PID 1 of the container
        except Exception:
            return None

    def is_running(self) -> bool:
        st = self._state()
        return bool(st.get("Running")) or bool(st.get("Paused"))

    def start(self, wait: bool = True, timeout: float = 60) -> None:
        st = self._state()
        if st.get("Paused"):
            self.container.unpause()
        elif not st.get("Running"):
            self.container.start()
            self.endpoint.port = self.cluster.host_port(self.container, ds.PG_PORT)  # a restart may move it
        if wait:
            self.cluster.wait_ready(self, timeout)

    def stop(self, mode: str = "fast", timeout: float = 60) -> None:
        """smart → SIGTERM, fast → SIGINT, immediate → SIGQUIT to the postmaster (PID 1); SIGKILL after timeout."""
        st = self._state()
        if not (st.get("Running") or st.get("Paused")):
            return
        if st.get("Paused"):
            self.container.unpause()
        sig = {"smart": "SIGTERM", "fast": "SIGINT", "immediate": "SIGQUIT"}.get(mode, "SIGINT")
        self.container.kill(signal=sig)
        if not self.cluster.wait_exited(self.container, timeout):
            self.container.kill()
            self.cluster.wait_exited(self.container, 15)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if sig == signal.SIGSTOP:
            return self.freeze()
        if sig == signal.SIGCONT:
            return self.thaw()
        st = self._state()
        if not st.get("Running"):
            raise RuntimeError(f"{self.name} has no postmaster to signal")
        if st.get("Paused"):  # Docker refuses to signal a paused container
            self.container.unpause()
        self.container.kill(signal=int(sig))
        if sig == signal.SIGKILL:  # the container dies with its PID 1: wait until Docker says so
            self.cluster.wait_exited(self.container, 15)

    def freeze(self) -> None:
        """docker pause (cgroup freezer): the postmaster and every backend hold their sockets, answer nothing."""
        if not self._state().get("Paused"):
            self.container.pause()

    def thaw(self) -> None:
        if self._state().get("Paused"):
            self.container.unpause()

    def promote(self, wait: bool = True, timeout: float = 60) -> None:
        super().promote(wait=wait, timeout=timeout)
        self.role = "primary"

    def log_tail(self, n: int = 5) -> str:
        try:
            lines = self.container.logs(tail=n).decode(errors="replace").strip().splitlines()
        except Exception:
            return "no log"
        return " | ".join(lines[-n:])[-600:]


class DockerPooler(Pooler):
    def __init__(self, endpoint: Endpoint, cluster: "DockerCluster", container: Any, ini_text: str) -> None:
        super().__init__(endpoint, SUPERUSER, None)
        self.cluster = cluster
        self.container = container
        self.ini_text = ini_text

    def repoint(self, node: Node) -> None:
        """Send new server connections to `node` (new ini + RELOAD) and drop the old ones (RECONNECT)."""
        alias = getattr(node, "alias", node.host)
        self.ini_text = re.sub(r"host=\S+ port=\d+", f"host={alias} port={ds.PG_PORT}", self.ini_text)
        self.container.put_archive("/", ds.tar_files({str(ds.PGBOUNCER_INI_PATH): (self.ini_text, 0o644)}))
        with self.admin() as conn:
            conn.execute("RELOAD")
            try:
                conn.execute("RECONNECT")
            except Exception:  # older pgbouncer: no RECONNECT; servers are replaced as they close
                pass

    def stop(self) -> None:
        """SIGINT: PgBouncer's safe shutdown (waits for clients' transactions); SIGKILL after 10 s."""
        self.container.reload()
        if self.container.status in ("running", "paused"):
            if self.container.status == "paused":
                self.container.unpause()
            self.container.kill(signal="SIGINT")
            if not self.cluster.wait_exited(self.container, 10):
                self.container.kill()


class DockerCluster(Cluster):
    provider = "docker"

    # the same procedures as the local provider's: they only talk to the primary through SQL

    def __init__(self, spec: ds.DockerSpec, client: Any, engine: str) -> None:
        self.spec = spec
        self.client = client  # docker-py DockerClient (from testcontainers' DockerClient)
        self.engine = engine
        self.password = spec.password
        self.publish_ip = ""
        self.host = "127.0.0.1"
        self.network: Any = None
        self.containers: dict[str, Any] = {}
        self.nodes: list[DockerNode] = []
        self._closed = False
        self.primary = None  # type: ignore[assignment]
        self.replicas: list[Node] = []
        self.pooler = None
        self.toxiproxy = None
        self.toxiproxy_missing = "not requested"
        self.proxies: dict[str, Proxy] = {}
        self.archive_dir = None  # the archive lives in the primary container, at docker_spec.ARCHIVE_DIR
        self.archive_in_container = str(ds.ARCHIVE_DIR) if spec.archive else None
        self.workdir = None
        self.read_only = False
        self.ssl = False
        self.sync = False
        self.durability_relaxed = list(spec.layers.durability_relaxed)
        self.config_rewrites = list(spec.layers.notes) + list(spec.pgbouncer_notes)
        self.config_source = spec.layers.source
        self.declared_settings = dict(spec.layers.declared)
        self.bin: Any = None
        self.pg_bin: Path | None = None  # --pgready-pg-bin: where run_tool finds client tools
        atexit.register(self.close)

    # --- Docker plumbing -----------------------------------------------------------------------------------
    def host_port(self, container: Any, port: int) -> int:
        container.reload()
        bindings = (container.attrs.get("NetworkSettings", {}).get("Ports") or {}).get(f"{port}/tcp") or []
        for b in bindings:
            if b.get("HostPort"):
                return int(b["HostPort"])
        raise RuntimeError(f"{container.name}: port {port} is not published")

    def wait_exited(self, container: Any, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            container.reload()
            if container.status in ("exited", "dead", "created"):
                return True
            time.sleep(0.05)
        return False

    def _pull(self, image: str) -> None:
        import docker

        try:
            self.client.images.get(image)
        except docker.errors.ImageNotFound:
            try:
                self.client.images.pull(image)
            except docker.errors.APIError as e:
                raise PgReadyUsageError(f"cannot pull {image} ({_short(e)})",
                                        "check the image name (docker_pg_image, docker_pgbouncer_image, "
                                        "docker_toxiproxy_image) and your registry access") from None

    def run_container(self, cs: ds.ContainerSpec) -> Any:
        """create → copy the rendered files in → start: the files are there before the first process runs."""
        from docker.types import EndpointConfig
        from testcontainers.core.labels import create_labels

        self._pull(cs.image)
        kw = cs.create_kwargs(self.spec.run_id, self.spec.network, self.publish_ip)
        kw["labels"] = create_labels(cs.image, kw["labels"])  # testcontainers' session label: Ryuk reaps it
        kw["networking_config"] = {self.spec.network: EndpointConfig(self.client.api._version, aliases=[cs.alias])}
        image = kw.pop("image")
        container = self.client.containers.create(image, **kw)
        self.containers[cs.alias] = container
        if cs.files:
            container.put_archive("/", ds.tar_files(cs.files))
        container.start()
        return container

    # --- provisioning --------------------------------------------------------------------------------------
    def provision(self, *, init_sql: list[Path] | None = None, sync: bool = False) -> "DockerCluster":
        from testcontainers.core import utils as tc_utils
        from testcontainers.core.labels import create_labels

        from ..redact import remember_secret

        remember_secret(self.password)
        self.publish_ip = ds.publish_ip(self.engine, inside_container=tc_utils.inside_container(),
                                        host_override=os.environ.get("TESTCONTAINERS_HOST_OVERRIDE")
                                        or os.environ.get("TC_HOST"))
        self.network = self.client.networks.create(self.spec.network, driver="bridge",
                                                   labels=create_labels("", {ds.LABEL_RUN: self.spec.run_id}))
        for cs in self.spec.of_role("toxiproxy"):
            self._start_toxiproxy(cs)
        self.primary = self._start_node(self.spec.container(ds.PRIMARY), "primary")
        for f in init_sql or []:
            self.apply_sql_file(Path(f))
        for cs in self.spec.of_role("replica"):
            self.replicas.append(self._start_node(cs, "replica"))
        if self.replicas:
            self.wait_streaming([n.name for n in self.replicas])
        if sync and self.replicas:
            self.set_sync([self.replicas[0].name])
        for cs in self.spec.of_role("pgbouncer"):
            self._start_pgbouncer(cs)
        with self.primary.connect(dbname="postgres") as c:
            major = int(c.execute("SHOW server_version_num").fetchone()[0]) // 10000
        self.bin = _local_client_tools(self.pg_bin, major)
        return self

    def _endpoint(self, container: Any, port: int, dbname: str = APP_DB) -> Endpoint:
        return Endpoint(self.host, self.host_port(container, port), SUPERUSER, self.password, dbname,
                        {"sslmode": "prefer"})

    def _start_node(self, cs: ds.ContainerSpec, role: str) -> DockerNode:
        container = self.run_container(cs)
        node = DockerNode(cs.alias, role, self._endpoint(container, ds.PG_PORT), self, container)
        self.nodes.append(node)
        self.wait_ready(node, READY_TIMEOUT)
        return node

    def wait_ready(self, node: DockerNode, timeout: float) -> None:
        """Until the server in that container answers as itself (cluster_name, and the same system id as before)."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            node.container.reload()
            if node.container.status in ("exited", "dead"):
                raise RuntimeError(f"{node.name} container exited: {node.log_tail(8)}")
            try:
                with node.connect(dbname="postgres", connect_timeout=5) as c:
                    name, sysid = c.execute("SELECT current_setting('cluster_name'), "
                                            "(SELECT system_identifier FROM pg_control_system())").fetchone()
                break
            except Exception as e:  # initdb, the entrypoint's socket-only server, recovery
                last = e
                time.sleep(0.2)
        else:
            raise RuntimeError(f"{node.name} does not answer on {node.host}:{node.port} after {timeout:.0f}s: "
                               f"{last}; log: {node.log_tail(8)}")
        if name != node.name or (node.system_identifier is not None and int(sysid) != node.system_identifier):
            raise RuntimeError(f"{node.host}:{node.port} is answered by another server ({name}), not {node.name}")
        node.system_identifier = int(sysid)

    def add_replica(self, name: str, *, via_proxy: bool = True) -> DockerNode:
        cs = ds.replica_spec(name, self.spec.images["postgres"], self.spec.layers, self.password,
                             archive=self.spec.archive, via_toxiproxy=via_proxy and self.toxiproxy is not None)
        node = self._start_node(cs, "replica")
        self.replicas.append(node)
        self.wait_streaming([name])
        return node

    def apply_sql_file(self, path: Path, dbname: str = APP_DB) -> None:
        """psql -v ON_ERROR_STOP=1 -f inside the primary container, as the local provider runs it."""
        target = f"/tmp/pgready-init/{secrets.token_hex(3)}-{path.name}"
        container = self.containers[ds.PRIMARY]
        container.put_archive("/", ds.tar_files({target: (path.read_bytes(), 0o644)}))
        rc, out = container.exec_run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(ds.SOCKET_DIR),
                                      "-U", SUPERUSER, "-d", dbname, "-f", target], user="postgres")
        if rc != 0:
            raise PgReadyUsageError(f"--pgready-init-sql {path.name} failed: {_tail(out)}",
                                    "fix the SQL (it runs with psql -v ON_ERROR_STOP=1 on a fresh database)")

    def _start_pgbouncer(self, cs: ds.ContainerSpec) -> None:
        container = self.run_container(cs)
        ep = self._endpoint(container, ds.PGBOUNCER_PORT)
        pooler = DockerPooler(ep, self, container, cs.files[str(ds.PGBOUNCER_INI_PATH)][0])
        deadline = time.monotonic() + 60
        last: Exception | None = None
        while time.monotonic() < deadline:
            container.reload()
            if container.status in ("exited", "dead"):
                break
            try:
                with pooler.connect(connect_timeout=5) as c:
                    c.execute("SELECT 1")
                self.pooler = pooler
                return
            except Exception as e:
                last = e
                time.sleep(0.2)
        logs = container.logs(tail=8).decode(errors="replace").strip().replace("\n", " | ")
        raise RuntimeError(f"pgbouncer did not start: {last}; log: {logs[-600:]}")

    def _start_toxiproxy(self, cs: ds.ContainerSpec) -> None:
        from .toxiproxy_api import ToxiproxyAPI, ToxiproxyError

        container = self.run_container(cs)
        api = ToxiproxyAPI(self.host, self.host_port(container, ds.TOXIPROXY_API_PORT))
        deadline = time.monotonic() + 30
        while True:
            try:
                api.version()
                break
            except Exception as e:
                if time.monotonic() > deadline:
                    self.toxiproxy_missing = f"the toxiproxy container did not answer: {e}"
                    return
                time.sleep(0.1)
        try:
            for body in self.spec.proxies:
                api.create_proxy(body["name"], body["listen"], body["upstream"])
        except ToxiproxyError as e:
            self.toxiproxy_missing = f"creating the toxiproxy proxies failed: {e}"
            return
        for body in self.spec.proxies:
            listen = int(body["listen"].rsplit(":", 1)[1])
            published = listen in cs.ports
            self.proxies[body["name"]] = Proxy(body["name"], self.host_port(container, listen) if published else listen,
                                               ds.PG_PORT)
        self.toxiproxy = api
        self.toxiproxy_missing = None

    # --- what checks use -------------------------------------------------------------------------------------
    def client_path(self, via: str = "primary") -> str:
        if via == "toxiproxy" and "primary" in self.proxies:
            return self.primary.endpoint.conninfo(host=self.host, port=self.proxies["primary"].listen_port)
        return super().client_path(via)

    def tool_env(self) -> dict[str, str]:
        return {"PGCONNECT_TIMEOUT": "10", "PGSSLMODE": "prefer", "PGPASSWORD": self.password}

    def run_tool(self, argv: list[str], *, as_owner: bool = False, timeout: float = 600,
                 env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        """A PostgreSQL client tool of this machine, against the containers' published ports."""
        if self.bin is None:
            from .binaries import PG_INSTALL_HINT

            raise Unsupported(f"no local PostgreSQL client tools to run {argv[0]} against the containers: "
                              f"{PG_INSTALL_HINT}")
        exe = argv[0] if "/" in argv[0] else str(self.bin.tool(argv[0]))
        full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "HOME": os.environ.get("HOME", "/tmp"),
                    **self.tool_env(), **(env or {})}
        try:
            return subprocess.run([exe, *argv[1:]], capture_output=True, text=True, timeout=timeout,
                                  cwd=str(cwd) if cwd else None, env=full_env, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"{Path(exe).name} did not finish within {timeout:.0f}s") from None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for container in reversed(list(self.containers.values())):
            try:
                container.remove(force=True, v=True)
            except Exception:
                pass
        if self.network is not None:
            try:
                self.network.remove()
            except Exception:
                pass
        try:
            atexit.unregister(self.close)
        except Exception:
            pass


# ================================================================================= entry point
def provision_docker(settings: Any, *, bins: Any = None, replicas: int | None = None, sync: bool = False,
                     pgbouncer: bool = True, toxiproxy: bool = True, archive: bool = True,
                     conf: dict[str, Any] | None = None, init_sql: bool = True, byo: bool = True,
                     pgbouncer_conf: dict[str, Any] | None = None) -> DockerCluster:
    """The same arguments as provision_local (`bins` is ignored: the servers come from the image)."""
    engine = check_engine(getattr(settings, "docker_engine_timeout", 3.0))
    try:
        import docker  # noqa: F401  (the docker SDK, a testcontainers dependency)
        from testcontainers.core.config import testcontainers_config as tc_config
        from testcontainers.core.container import Reaper
        from testcontainers.core.docker_client import DockerClient
    except ImportError:
        raise PgReadyUsageError("the docker provider needs testcontainers",
                                "pip install 'pytest-pgready[docker]'") from None
    try:
        tc = DockerClient()
        tc.client.ping()
    except Exception:
        raise PgReadyUsageError(f"no Docker engine reachable at {engine}", NO_ENGINE_FIX) from None
    if not tc_config.ryuk_disabled:
        try:
            Reaper.get_instance()  # removes this session's containers if the process dies without close()
        except Exception as e:
            raise PgReadyUsageError(f"testcontainers' Ryuk reaper did not start ({_short(e)})",
                                    "set TESTCONTAINERS_RYUK_DISABLED=true (pgready still removes its containers "
                                    "at exit)") from None
    imgs = ds.images(settings)
    postgresql_conf = settings.postgresql_conf if byo else None
    libs = _image_libraries(tc.client, imgs["postgres"]) if postgresql_conf is not None else None
    spec = ds.build_spec(run_id=secrets.token_hex(4), password=secrets.token_urlsafe(18), images=imgs,
                         replicas=settings.replicas if replicas is None else replicas, pgbouncer=pgbouncer,
                         toxiproxy=toxiproxy, archive=archive, postgresql_conf=postgresql_conf,
                         pgbouncer_ini_path=settings.pgbouncer_ini if byo else None, conf_overrides=conf,
                         available_libs=libs, pgbouncer_overrides=pgbouncer_conf)
    cluster = DockerCluster(spec, tc.client, engine)
    cluster.pg_bin = settings.pg_bin
    host = tc.host()
    cluster.host = "127.0.0.1" if host in ("localhost", "::1") else host
    try:
        cluster.provision(init_sql=list(settings.init_sql) if init_sql else None, sync=sync)
    except BaseException:
        cluster.close()
        raise
    return cluster


def _image_libraries(client: Any, image: str) -> set[str] | None:
    """The shared libraries the image's PostgreSQL can preload (a one-off container): None if unknown."""
    script = ('d=$(pg_config --pkglibdir 2>/dev/null || true); '
              'for x in $d /usr/lib/postgresql/*/lib /usr/local/lib/postgresql; do '
              '[ -d "$x" ] && ls "$x"; done; true')
    try:
        from testcontainers.core.labels import create_labels

        out = client.containers.run(image, ["sh", "-c", script], remove=True,  # the entrypoint execs non-postgres
                                    labels=create_labels(image, {ds.LABEL_ROLE: "probe"}))
    except Exception:
        return None
    libs = {Path(x.strip()).stem for x in out.decode(errors="replace").split() if x.strip().endswith(".so")}
    return libs or None


def _local_client_tools(pg_bin: Path | None, major: int | None) -> Any:
    """This machine's PostgreSQL tools (pg_dump …) for run_tool: the server's major if installed, else any."""
    from .binaries import find_postgres

    for want in (major, None):
        try:
            return find_postgres(pg_bin, want)
        except Exception:
            continue
    return None


def _short(e: BaseException) -> str:
    return " ".join(str(e).split())[:200]


def _tail(out: Any) -> str:
    text = out.decode(errors="replace") if isinstance(out, bytes) else str(out or "")
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "no output"
