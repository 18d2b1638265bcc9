"""What the docker provider asks Docker for: images, environment, commands, files, networks and ports.

Pure: no Docker client, no sockets, nothing started. `docker.py` turns a `DockerSpec` into containers;
`docker-compose.test.yml` mounts the very same files (`docker/…`, written from this module:
`python -m pytest_pgready.cluster.docker_spec docker`, and a unit test keeps them equal).

Every PostgreSQL and PgBouncer setting is rendered by `config.py`, exactly as for the local provider:
`config.server_layers()` gives the embedded defaults and the user's rewritten postgresql.conf,
`config.pgbouncer_config()` the pgbouncer.ini; only the node file (port, listen address, paths,
archive, cluster_name, primary_conninfo) is the container's own, as it is each local node's own.

Topology, on one private bridge network (containers find each other by these aliases):
  primary      official postgres image; a one-off init script adds the include chain, the replication
               role and hba line, pg_stat_statements and the WAL archive directory
  replica1 …   same image; a script runs pg_basebackup from the primary, then the official entrypoint;
               streaming goes through Toxiproxy (when present) so replication faults can be injected
  pgbouncer    PgBouncer image; a script writes the auth file from the environment, then runs PgBouncer
  toxiproxy    Toxiproxy; proxies "primary" (clients → primary) and "replication" (standbys → primary)
Ports are published on the host's loopback only (random host ports), unless the engine is remote.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Mapping

from . import config as conf
from .template import APP_DB, INCLUDES, REPLICATION_USER, SUPERUSER

# --- images -----------------------------------------------------------------------------------------------
DEFAULT_PG_MAJOR = 16
DEFAULT_PG_IMAGE = f"postgres:{DEFAULT_PG_MAJOR}"
DEFAULT_PGBOUNCER_IMAGE = "edoburu/pgbouncer:latest"
DEFAULT_TOXIPROXY_IMAGE = "ghcr.io/shopify/toxiproxy:2.12.0"

# --- where things are, inside the containers ----------------------------------------------------------------
PG_PORT = 5432
PGBOUNCER_PORT = 6432
TOXIPROXY_API_PORT = 8474
PROXY_PORTS = {"primary": 15432, "replication": 15433}  # where Toxiproxy listens, inside its container
PRIMARY, PGBOUNCER, TOXIPROXY = "primary", "pgbouncer", "toxiproxy"  # network aliases
CONF_DIR = PurePosixPath("/etc/pgready")
ARCHIVE_DIR = PurePosixPath("/var/lib/postgresql/archive")
SOCKET_DIR = PurePosixPath("/var/run/postgresql")
INITDB_SCRIPT_PATH = PurePosixPath("/docker-entrypoint-initdb.d/10-pgready.sh")
REPLICA_SCRIPT_PATH = CONF_DIR / "replica.sh"
PGBOUNCER_SCRIPT_PATH = CONF_DIR / "pgbouncer-start.sh"
PGBOUNCER_INI_PATH = CONF_DIR / "pgbouncer.ini"
PGBOUNCER_RUNDIR = PurePosixPath("/tmp")
PGBOUNCER_AUTH_FILE = PGBOUNCER_RUNDIR / "userlist.txt"
REPLICA_PASSFILE = PurePosixPath("/tmp/pgready.pgpass")
TOXIPROXY_CONFIG_PATH = CONF_DIR / "toxiproxy.json"  # compose only: the provider uses the HTTP API
# what the local provider's initdb template uses (template.py), plus the entrypoint's host auth method
INITDB_ARGS = "--data-checksums --encoding=UTF8 --locale=C --auth-local=trust --auth-host=scram-sha-256"
HOST_AUTH_METHOD = "scram-sha-256"

DEFAULT_ENGINE = "unix:///var/run/docker.sock"
LABEL_RUN = "io.pytest-pgready.run"
LABEL_ROLE = "io.pytest-pgready.role"


@dataclass
class ContainerSpec:
    """One container: what docker.py passes to `containers.create` and copies in before `start`."""
    role: str  # primary | replica | pgbouncer | toxiproxy
    alias: str  # its name on the private network (= the node name for PostgreSQL servers)
    image: str
    command: list[str] | None = None  # None: the image's CMD
    entrypoint: list[str] | None = None  # None: the image's ENTRYPOINT
    env: dict[str, str] = field(default_factory=dict)
    user: str | None = None  # None: the image's USER
    files: dict[str, tuple[str, int]] = field(default_factory=dict)  # path in the container → (text, mode)
    ports: list[int] = field(default_factory=list)  # container ports published on the host (random host port)

    def create_kwargs(self, run_id: str, network: str, publish_ip: str) -> dict[str, Any]:
        """Keyword arguments of docker-py's `containers.create` (networking_config is added by docker.py)."""
        kw: dict[str, Any] = {
            "image": self.image, "name": container_name(run_id, self.alias), "environment": dict(self.env),
            "labels": {LABEL_RUN: run_id, LABEL_ROLE: self.role}, "network": network, "detach": True,
            "ports": {f"{p}/tcp": (publish_ip, None) if publish_ip else None for p in self.ports},
        }
        if self.command is not None:
            kw["command"] = list(self.command)
        if self.entrypoint is not None:
            kw["entrypoint"] = list(self.entrypoint)
        if self.user is not None:
            kw["user"] = self.user
        return kw


@dataclass
class DockerSpec:
    run_id: str
    network: str
    containers: list[ContainerSpec]  # in start order
    proxies: list[dict[str, Any]]  # Toxiproxy API bodies (POST /proxies)
    layers: conf.ServerLayers  # the PostgreSQL settings, as config.py rendered them
    pgbouncer_notes: list[str]
    password: str  # superuser and replication role: random per cluster (never printed)
    images: dict[str, str]
    archive: bool
    toxiproxy: bool

    def container(self, alias: str) -> ContainerSpec:
        for c in self.containers:
            if c.alias == alias:
                return c
        raise KeyError(alias)

    def of_role(self, role: str) -> list[ContainerSpec]:
        return [c for c in self.containers if c.role == role]


# --- names --------------------------------------------------------------------------------------------------
def container_name(run_id: str, alias: str) -> str:
    return f"pgready-{run_id}-{alias}"


def network_name(run_id: str) -> str:
    return f"pgready-{run_id}"


def slot_name(node_name: str) -> str:
    return node_name.replace("-", "_")


def images(settings: Any) -> dict[str, str]:
    """Images from the settings: docker_pg_image, else postgres:<pg_version or 16>."""
    pg = getattr(settings, "docker_pg_image", None) or f"postgres:{getattr(settings, 'pg_version', None) or DEFAULT_PG_MAJOR}"
    return {"postgres": pg,
            "pgbouncer": getattr(settings, "docker_pgbouncer_image", None) or DEFAULT_PGBOUNCER_IMAGE,
            "toxiproxy": getattr(settings, "docker_toxiproxy_image", None) or DEFAULT_TOXIPROXY_IMAGE}


# --- PostgreSQL -----------------------------------------------------------------------------------------------
def node_settings(name: str, *, archive: bool, upstream: tuple[str, int] | None = None) -> dict[str, str]:
    """The node's own file (pgready.node.conf): what the container owns, like each local node's file."""
    s = {"port": str(PG_PORT), "listen_addresses": "'*'", "unix_socket_directories": conf.quote(str(SOCKET_DIR)),
         "cluster_name": conf.quote(name),
         "archive_command": conf.quote(conf.archive_command(ARCHIVE_DIR)) if archive else "''"}  # type: ignore[arg-type]
    if archive:
        s["restore_command"] = conf.quote(conf.restore_command(ARCHIVE_DIR))  # type: ignore[arg-type]
    if upstream is not None:
        host, port = upstream
        s["primary_conninfo"] = conf.quote(f"host={host} port={port} user={REPLICATION_USER} "
                                           f"passfile={REPLICA_PASSFILE} application_name={name}")
        s["primary_slot_name"] = conf.quote(slot_name(name))
    return s


def node_conf_text(name: str, *, archive: bool, upstream: tuple[str, int] | None = None) -> str:
    return conf.render(node_settings(name, archive=archive, upstream=upstream),
                       "owned by the pytest-pgready container: rendered for this node")


def initdb_script() -> str:
    includes = " ".join(str(CONF_DIR / f) for f in INCLUDES)
    return f"""#!/usr/bin/env bash
# pytest-pgready: run once by the official postgres image's entrypoint, on a fresh data directory.
# It gives the container what the local provider's initdb template has: the include chain of the
# configuration rendered by pytest_pgready/cluster/config.py, a replication role, replication over
# the private network, pg_stat_statements, and a WAL archive directory.
set -euo pipefail
{{
  printf '\\n# pytest-pgready: defaults, then your config, then what the container must own\\n'
  for f in {includes}; do
    printf "include_if_exists = '%s'\\n" "$f"
  done
}} >> "$PGDATA/postgresql.conf"
printf 'host replication all all {HOST_AUTH_METHOD}\\n' >> "$PGDATA/pg_hba.conf"
mkdir -p {ARCHIVE_DIR}
chmod 700 {ARCHIVE_DIR}
psql -v ON_ERROR_STOP=1 -X -q --username "$POSTGRES_USER" --dbname postgres --set "pw=$POSTGRES_PASSWORD" <<'SQL'
CREATE ROLE {REPLICATION_USER} WITH LOGIN REPLICATION PASSWORD :'pw';
SQL
psql -v ON_ERROR_STOP=1 -X -q --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \\
     -c 'CREATE EXTENSION IF NOT EXISTS pg_stat_statements'
"""


def replica_script() -> str:
    return f"""#!/usr/bin/env bash
# pytest-pgready: a streaming replica. On a fresh container: wait for the primary, pg_basebackup from it
# (with a replication slot named after the node), mark the data directory as a standby; then hand over
# to the official entrypoint, which starts postgres. Streaming then goes where primary_conninfo in
# pgready.node.conf says (through Toxiproxy when there is one). Runs as the postgres user.
# Environment: PGREADY_NODE_NAME, PGREADY_PRIMARY_HOST, PGREADY_PRIMARY_PORT, PGREADY_REPLICATION_PASSWORD.
set -euo pipefail
name="${{PGREADY_NODE_NAME:?}}"
host="${{PGREADY_PRIMARY_HOST:-{PRIMARY}}}"
port="${{PGREADY_PRIMARY_PORT:-{PG_PORT}}}"
pw="${{PGREADY_REPLICATION_PASSWORD:?}}"
pw="${{pw//\\\\/\\\\\\\\}}"
pw="${{pw//:/\\\\:}}"
umask 077
printf '*:*:*:{REPLICATION_USER}:%s\\n' "$pw" > {REPLICA_PASSFILE}
export PGPASSFILE={REPLICA_PASSFILE}
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  until pg_isready -q -h "$host" -p "$port"; do sleep 0.5; done
  mkdir -p "$PGDATA"
  chmod 700 "$PGDATA"
  pg_basebackup -h "$host" -p "$port" -U {REPLICATION_USER} -D "$PGDATA" -X stream -C -S "${{name//-/_}}" -c fast
  touch "$PGDATA/standby.signal"
fi
exec docker-entrypoint.sh postgres
"""


def postgres_files(layers: conf.ServerLayers, node_conf: str) -> dict[str, tuple[str, int]]:
    return {str(CONF_DIR / INCLUDES[0]): (layers.base_text(), 0o644),
            str(CONF_DIR / INCLUDES[1]): (layers.user_text(), 0o644),
            str(CONF_DIR / INCLUDES[2]): (node_conf, 0o644)}


def primary_spec(image: str, layers: conf.ServerLayers, password: str, *, archive: bool,
                 name: str = PRIMARY) -> ContainerSpec:
    files = postgres_files(layers, node_conf_text(name, archive=archive))
    files[str(INITDB_SCRIPT_PATH)] = (initdb_script(), 0o755)
    env = {"POSTGRES_USER": SUPERUSER, "POSTGRES_PASSWORD": password, "POSTGRES_DB": APP_DB,
           "POSTGRES_INITDB_ARGS": INITDB_ARGS, "POSTGRES_HOST_AUTH_METHOD": HOST_AUTH_METHOD}
    return ContainerSpec("primary", name, image, env=env, files=files, ports=[PG_PORT])


def replica_spec(name: str, image: str, layers: conf.ServerLayers, password: str, *, archive: bool,
                 via_toxiproxy: bool, primary: str = PRIMARY) -> ContainerSpec:
    upstream = (TOXIPROXY, PROXY_PORTS["replication"]) if via_toxiproxy else (primary, PG_PORT)
    files = postgres_files(layers, node_conf_text(name, archive=archive, upstream=upstream))
    files[str(REPLICA_SCRIPT_PATH)] = (replica_script(), 0o755)
    env = {"PGREADY_NODE_NAME": name, "PGREADY_PRIMARY_HOST": primary, "PGREADY_PRIMARY_PORT": str(PG_PORT),
           "PGREADY_REPLICATION_PASSWORD": password}
    return ContainerSpec("replica", name, image, command=["bash", str(REPLICA_SCRIPT_PATH)], env=env, user="postgres",
                         files=files, ports=[PG_PORT])


# --- PgBouncer ------------------------------------------------------------------------------------------------
def pgbouncer_script() -> str:
    return f"""#!/bin/sh
# pytest-pgready: write PgBouncer's auth file from the environment (so no password is in any file of the
# repository or the image), then run PgBouncer with the pgbouncer.ini rendered by config.py.
# Environment: PGREADY_PGBOUNCER_USER (default {SUPERUSER}), PGREADY_PGBOUNCER_PASSWORD.
set -eu
umask 077
user="${{PGREADY_PGBOUNCER_USER:-{SUPERUSER}}}"
pw=$(printf '%s' "${{PGREADY_PGBOUNCER_PASSWORD:?}}" | sed 's/"/""/g')
printf '"%s" "%s"\\n' "$user" "$pw" > {PGBOUNCER_AUTH_FILE}
exec pgbouncer {PGBOUNCER_INI_PATH}
"""


def pgbouncer_ini(user_ini: Path | None = None, primary: str = PRIMARY,
                  overrides: Mapping[str, Any] | None = None) -> tuple[str, list[str]]:
    """config.pgbouncer_config with the container's paths, listening on every interface of the container."""
    return conf.pgbouncer_config(user_ini, primary, PG_PORT, PGBOUNCER_PORT, PGBOUNCER_RUNDIR,  # type: ignore[arg-type]
                                 PGBOUNCER_AUTH_FILE, SUPERUSER, listen_addr="*",  # type: ignore[arg-type]
                                 sandbox_dbname=APP_DB, overrides=dict(overrides or {}))


def pgbouncer_spec(image: str, ini_text: str, password: str) -> ContainerSpec:
    files = {str(PGBOUNCER_INI_PATH): (ini_text, 0o644), str(PGBOUNCER_SCRIPT_PATH): (pgbouncer_script(), 0o755)}
    env = {"PGREADY_PGBOUNCER_USER": SUPERUSER, "PGREADY_PGBOUNCER_PASSWORD": password}
    return ContainerSpec("pgbouncer", PGBOUNCER, image, entrypoint=["/bin/sh", str(PGBOUNCER_SCRIPT_PATH)],
                         env=env, files=files, ports=[PGBOUNCER_PORT])


# --- Toxiproxy ------------------------------------------------------------------------------------------------
def toxiproxy_proxies(primary: str = PRIMARY) -> list[dict[str, Any]]:
    """The proxies, as POST /proxies bodies (and, for compose, as toxiproxy's -config JSON)."""
    return [{"name": name, "listen": f"0.0.0.0:{port}", "upstream": f"{primary}:{PG_PORT}", "enabled": True}
            for name, port in PROXY_PORTS.items()]


def toxiproxy_spec(image: str) -> ContainerSpec:
    # only the client-facing proxy is published: the replication proxy is for the standbys, on the network
    return ContainerSpec("toxiproxy", TOXIPROXY, image, command=["-host=0.0.0.0"],
                         ports=[TOXIPROXY_API_PORT, PROXY_PORTS["primary"]])


# --- the whole cluster ----------------------------------------------------------------------------------------
def build_spec(*, run_id: str, password: str, images: Mapping[str, str] | None = None, replicas: int = 1,
               pgbouncer: bool = True, toxiproxy: bool = True, archive: bool = True,
               postgresql_conf: Path | None = None, pgbouncer_ini_path: Path | None = None,
               conf_overrides: dict[str, Any] | None = None, available_libs: set[str] | None = None,
               pgbouncer_overrides: Mapping[str, Any] | None = None) -> DockerSpec:
    """Everything the provider will ask Docker for, in start order: toxiproxy, primary, replicas, pgbouncer."""
    imgs = {"postgres": DEFAULT_PG_IMAGE, "pgbouncer": DEFAULT_PGBOUNCER_IMAGE, "toxiproxy": DEFAULT_TOXIPROXY_IMAGE,
            **(images or {})}
    # the official image has no server certificate: ssl = on in the user's file is turned off, with a note
    layers = conf.server_layers(archive=archive, ssl=False, postgresql_conf=postgresql_conf,
                                conf_overrides=conf_overrides, available_libs=available_libs, ssl_available=False)
    containers: list[ContainerSpec] = []
    if toxiproxy:
        containers.append(toxiproxy_spec(imgs["toxiproxy"]))
    containers.append(primary_spec(imgs["postgres"], layers, password, archive=archive))
    for i in range(1, replicas + 1):
        containers.append(replica_spec(f"replica{i}", imgs["postgres"], layers, password, archive=archive,
                                       via_toxiproxy=toxiproxy))
    notes: list[str] = []
    if pgbouncer:
        ini, notes = pgbouncer_ini(pgbouncer_ini_path, overrides=pgbouncer_overrides)
        containers.append(pgbouncer_spec(imgs["pgbouncer"], ini, password))
    return DockerSpec(run_id, network_name(run_id), containers, toxiproxy_proxies() if toxiproxy else [], layers,
                      notes, password, dict(imgs), archive, toxiproxy)


# --- where the engine is, and how ports are published ---------------------------------------------------------
def engine_address(env: Mapping[str, str] | None = None, home: Path | None = None) -> str:
    """The Docker engine testcontainers will use: ~/.testcontainers.properties tc.host, DOCKER_HOST,
    the current docker context (DOCKER_CONTEXT or ~/.docker/config.json), else the default socket."""
    env = os.environ if env is None else env
    home = Path(env.get("HOME") or Path.home()) if home is None else home
    try:
        for line in (home / ".testcontainers.properties").read_text().splitlines():
            k, sep, v = line.partition("=")
            if sep and k.strip() == "tc.host" and v.strip():
                return v.strip()
    except OSError:
        pass
    if env.get("DOCKER_HOST"):
        return str(env["DOCKER_HOST"])
    cfg_dir = Path(env["DOCKER_CONFIG"]) if env.get("DOCKER_CONFIG") else home / ".docker"
    name = env.get("DOCKER_CONTEXT")
    if not name:
        try:
            name = json.loads((cfg_dir / "config.json").read_text()).get("currentContext")
        except (OSError, ValueError, AttributeError):
            name = None
    if name and name != "default":
        meta = cfg_dir / "contexts" / "meta" / hashlib.sha256(name.encode()).hexdigest() / "meta.json"
        try:
            host = json.loads(meta.read_text())["Endpoints"]["docker"]["Host"]
            if host:
                return str(host)
        except (OSError, ValueError, KeyError, TypeError):
            pass
    return DEFAULT_ENGINE


def publish_ip(engine: str, *, inside_container: bool = False, host_override: str | None = None) -> str:
    """127.0.0.1 when the engine runs on this machine (its published ports are on our loopback);
    every interface ("") when the engine is remote or we run in a container next to it."""
    if host_override or inside_container:
        return ""
    return "127.0.0.1" if engine.startswith("unix://") else ""


# --- files into containers ------------------------------------------------------------------------------------
def tar_files(files: Mapping[str, tuple[str | bytes, int]]) -> bytes:
    """A tar for `put_archive(path="/")`: files with their modes, owned by root. Docker creates missing
    parent directories (0755, root); existing ones keep their owner and mode."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path, (content, mode) in sorted(files.items()):
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(str(PurePosixPath(path).relative_to("/")))
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


# --- docker-compose.test.yml: the same files, from the same functions -----------------------------------------
# compose service → the provider's container (network alias) it mirrors
COMPOSE_SERVICES = {"primary": PRIMARY, "replica": "replica1", "pgbouncer": PGBOUNCER, "toxiproxy": TOXIPROXY}
# file under the repository root → (compose service, path inside the container)
COMPOSE_MOUNTS: dict[str, tuple[str, str]] = {
    "docker/postgres/initdb.sh": ("primary", str(INITDB_SCRIPT_PATH)),
    "docker/postgres/pgready.base.conf": ("primary", str(CONF_DIR / INCLUDES[0])),
    "docker/postgres/pgready.user.conf": ("primary", str(CONF_DIR / INCLUDES[1])),
    "docker/postgres/primary.node.conf": ("primary", str(CONF_DIR / INCLUDES[2])),
    "docker/postgres/replica.sh": ("replica", str(REPLICA_SCRIPT_PATH)),
    "docker/postgres/replica1.node.conf": ("replica", str(CONF_DIR / INCLUDES[2])),
    "docker/pgbouncer/pgbouncer.ini": ("pgbouncer", str(PGBOUNCER_INI_PATH)),
    "docker/pgbouncer/start.sh": ("pgbouncer", str(PGBOUNCER_SCRIPT_PATH)),
}
COMPOSE_PROXIES_FILE = "docker/toxiproxy/proxies.json"  # mounted at TOXIPROXY_CONFIG_PATH


def compose_spec() -> DockerSpec:
    """The topology of docker-compose.test.yml: one replica, PgBouncer, Toxiproxy, archive on, no BYO config."""
    return build_spec(run_id="compose", password="", replicas=1)


def compose_files() -> dict[str, tuple[str, int]]:
    """What docker/ must hold: every file the compose services mount, rendered like the provider's (text, mode)."""
    spec = compose_spec()
    out = {rel: spec.container(COMPOSE_SERVICES[svc]).files[path] for rel, (svc, path) in COMPOSE_MOUNTS.items()}
    out[COMPOSE_PROXIES_FILE] = (json.dumps(spec.proxies, indent=2) + "\n", 0o644)
    return out


def write_compose_files(root: Path) -> list[Path]:
    written = []
    for rel, (text, mode) in compose_files().items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        p.chmod(mode)
        written.append(p)
    return written


if __name__ == "__main__":  # python -m pytest_pgready.cluster.docker_spec [repository root]
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd()
    if root.name == "docker":
        root = root.parent
    for p in write_compose_files(root):
        print(p)
