"""docker-compose.test.yml: the docker provider's topology, with the very files the provider renders.

Parsed with PyYAML; validated by `docker compose config` / `docker-compose config` when one is installed
(neither needs a Docker engine for that).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pytest_pgready.cluster import docker_spec as ds

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.test.yml"
DOCS = ROOT / "docs" / "docker.md"
DEV_PASSWORD = "pgready-dev-password"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def spec() -> ds.DockerSpec:
    return ds.compose_spec()


def default_of(value: str) -> str:
    """${VAR:-default} → default (compose interpolation of the defaults we ship)."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(value))


def mounts(service: dict) -> dict[str, str]:
    """container path → repository-relative host path, for ./… bind mounts (all read-only)."""
    out = {}
    for v in service.get("volumes", []):
        host, target, mode = v.split(":")
        assert host.startswith("./") and mode == "ro", v
        out[target] = host[2:]
    return out


def host_ports(service: dict) -> dict[int, int]:
    """container port → default host port."""
    out = {}
    for p in service.get("ports", []):
        ip, host, container = default_of(p).split(":")
        out[int(container)] = int(host)
    return out


def test_the_four_services(compose):
    assert set(compose["services"]) == {"primary", "replica", "pgbouncer", "toxiproxy"}
    assert set(ds.COMPOSE_SERVICES) == set(compose["services"])
    for svc in compose["services"].values():
        assert "build" not in svc and "image" in svc  # public images only


def test_every_service_has_a_healthcheck(compose):
    for name, svc in compose["services"].items():
        hc = svc.get("healthcheck")
        assert hc and hc["test"][0] in ("CMD", "CMD-SHELL"), name
        assert hc.get("interval") and hc.get("retries"), name
    assert "pg_stat_wal_receiver" in compose["services"]["replica"]["healthcheck"]["test"][1]
    assert compose["services"]["toxiproxy"]["healthcheck"]["test"] == ["CMD", "/toxiproxy-cli", "list"]


def test_ports_only_on_loopback(compose):
    for name, svc in compose["services"].items():
        assert svc.get("ports"), name
        for p in svc["ports"]:
            assert isinstance(p, str) and p.startswith("127.0.0.1:"), (name, p)
    assert host_ports(compose["services"]["primary"]) == {5432: 15432}
    assert host_ports(compose["services"]["replica"]) == {5432: 15433}
    assert host_ports(compose["services"]["pgbouncer"]) == {6432: 16432}
    assert host_ports(compose["services"]["toxiproxy"]) == {8474: 18474, 15432: 25432}


def test_replica_waits_for_a_healthy_primary(compose):
    deps = compose["services"]["replica"]["depends_on"]
    assert deps["primary"] == {"condition": "service_healthy"}
    assert deps["toxiproxy"] == {"condition": "service_healthy"}  # it streams through the replication proxy
    assert compose["services"]["pgbouncer"]["depends_on"]["primary"] == {"condition": "service_healthy"}


def test_toxiproxy_proxies_defined(compose, spec):
    tp = compose["services"]["toxiproxy"]
    assert tp["command"] == ["-host=0.0.0.0", f"-config={ds.TOXIPROXY_CONFIG_PATH}"]
    assert mounts(tp) == {str(ds.TOXIPROXY_CONFIG_PATH): ds.COMPOSE_PROXIES_FILE}
    proxies = json.loads((ROOT / ds.COMPOSE_PROXIES_FILE).read_text())
    assert {p["name"]: (p["listen"], p["upstream"]) for p in proxies} == {
        "primary": ("0.0.0.0:15432", "primary:5432"), "replication": ("0.0.0.0:15433", "primary:5432")}
    assert proxies == spec.proxies  # what the provider POSTs to the API


def test_mounted_files_are_the_providers_rendering(compose, spec):
    """Each mounted file equals what docker_spec (config.py) renders for that container at that path."""
    rendered = ds.compose_files()
    for name, svc in compose["services"].items():
        provider = spec.container(ds.COMPOSE_SERVICES[name])
        for target, rel in mounts(svc).items():
            text = (ROOT / rel).read_text()
            assert text == rendered[rel][0], f"{rel} drifted: run python -m pytest_pgready.cluster.docker_spec ."
            if name != "toxiproxy":
                assert provider.files[target][0] == text, (name, target)
        if name != "toxiproxy":
            assert set(mounts(svc)) == set(provider.files), name  # nothing missing, nothing extra
    assert {str(p.relative_to(ROOT)) for p in (ROOT / "docker").rglob("*") if p.is_file()} == set(rendered)


def test_images_commands_users_match_the_provider(compose, spec):
    for name, svc in compose["services"].items():
        c = spec.container(ds.COMPOSE_SERVICES[name])
        assert default_of(svc["image"]) == c.image, name
        assert svc.get("user") == c.user, name
        assert svc.get("entrypoint") == c.entrypoint, name
        if name != "toxiproxy":
            assert svc.get("command") == c.command, name
        else:
            assert svc["command"][: len(c.command)] == c.command


def test_env_matches_the_provider_with_dev_credentials(compose, spec):
    for name, svc in compose["services"].items():
        c = spec.container(ds.COMPOSE_SERVICES[name])
        env = {k: default_of(v) for k, v in (svc.get("environment") or {}).items()}
        assert set(env) == set(c.env), name
        for k, v in env.items():
            if "PASSWORD" in k:
                assert svc["environment"][k] == "${PGREADY_PASSWORD:-%s}" % DEV_PASSWORD, (name, k)
            else:
                assert v == c.env[k], (name, k)
    assert "dev" in DEV_PASSWORD


def test_docs_commands_match_the_compose_file(compose):
    """docs/docker.md's pytest command connects to what this compose file publishes."""
    text = DOCS.read_text()
    assert "docker compose -f docker-compose.test.yml up -d" in text
    dsns = dict(re.findall(r"--pgready-(dsn|replica-dsn|pgbouncer-dsn) (postgresql://\S+)", text))
    assert set(dsns) == {"dsn", "replica-dsn", "pgbouncer-dsn"}
    want = {"dsn": host_ports(compose["services"]["primary"])[5432],
            "replica-dsn": host_ports(compose["services"]["replica"])[5432],
            "pgbouncer-dsn": host_ports(compose["services"]["pgbouncer"])[6432]}
    for opt, dsn in dsns.items():
        assert dsn == f"postgresql://postgres:{DEV_PASSWORD}@127.0.0.1:{want[opt]}/app", opt
    head = COMPOSE.read_text().split("services:")[0]
    for opt, dsn in dsns.items():
        assert f"--pgready-{opt} {dsn}" in head  # the compose file's own header says the same


def _compose_cli() -> list[str] | None:
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


@pytest.mark.skipif(_compose_cli() is None, reason="neither `docker compose` nor `docker-compose` is installed")
def test_compose_itself_accepts_the_file(tmp_path):
    r = subprocess.run([*_compose_cli(), "-f", str(COMPOSE), "config", "--quiet"], capture_output=True, text=True,
                       cwd=str(ROOT), timeout=60)
    assert r.returncode == 0, r.stderr
