"""The bad-input corpus: every mistake ends in one line naming the problem and the fix.

Each case runs `pytest --pgready …` as a user would, in a subprocess, and asserts: non-zero exit,
no traceback, a `pgready:` line that names the problem, within a bounded time. The table in
docs/reliability.md is generated from CASES (see test_reliability_doc_lists_every_case).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Case:
    name: str
    args: tuple[str, ...]
    expect: str  # a fragment of the one-line error
    toml: str | None = None
    needs: str = ""  # "server" | "silent-port" | ""


CASES: list[Case] = [
    Case("dsn-bad-port", ("--pgready-dsn", "postgresql://app@db.example:notaport/shop"), "invalid port 'notaport'"),
    Case("dsn-gibberish", ("--pgready-dsn", "not a dsn"), "neither a URI nor key=value"),
    Case("dsn-wrong-scheme", ("--pgready-dsn", "mysql://app@db/shop"), "not a PostgreSQL URI"),
    Case("dsn-unterminated-quote", ("--pgready-dsn", "host='db port=5432"), "malformed"),
    Case("dsn-port-out-of-range", ("--pgready-dsn", "host=127.0.0.1 port=70000"), "invalid port"),
    Case("dsn-empty", ("--pgready-dsn", " "), "is empty"),
    Case("unknown-suite", ("--pgready-suite", "shema"), "unknown suite 'shema' (did you mean 'schema'?)"),
    Case("empty-suite", ("--pgready-suite", ","), "is empty"),
    Case("unknown-provider", ("--pgready-provider", "kubernetes"), "is not one of local, docker, external"),
    Case("fail-under-out-of-range", ("--pgready-fail-under", "150"), "out of range"),
    Case("fail-under-not-a-number", ("--pgready-fail-under", "eighty"), "is not a number"),
    Case("negative-threshold", (), "out of range", toml="cache_hit_ratio = -1\n"),
    Case("nonsense-threshold-type", (), "is not a number", toml="slo_p95_ms = 'fast'\n"),
    Case("tls-exempt-not-a-network", (), "'10.0.0.0/33' is not an IP network",
         toml='tls_exempt_networks = ["127.0.0.0/8", "10.0.0.0/33"]\n'),
    Case("unknown-config-key", (), "unknown key 'cache_hit_ration'", toml="cache_hit_ration = 0.9\n"),
    Case("bad-toml", (), "is not valid TOML", toml="fail_under = = 3\n"),
    Case("missing-config-file", ("--pgready-config", "/nonexistent/pgready.toml"), "does not exist"),
    Case("config-is-a-directory", ("--pgready-config", "/tmp"), "cannot read"),
    Case("waiver-unknown-check", (), "unknown check 'IDX999'",
         toml='[[waivers]]\nid = "IDX999"\nreason = "x"\n'),
    Case("waiver-without-reason", (), "has no reason", toml='[[waivers]]\nid = "IDX001"\n'),
    Case("waiver-bad-expiry", (), "is not a date",
         toml='[[waivers]]\nid = "IDX001"\nreason = "r"\nexpires = "soon"\n'),
    Case("weights-unknown-check", (), "weights names unknown check", toml="[weights]\nNOPE001 = 1.0\n"),
    Case("weights-negative", (), "is not a weight", toml="[weights]\nIDX005 = -3\n"),
    Case("slo-p95-above-p99", (), "slo_p95_ms is above slo_p99_ms", toml="slo_p95_ms = 500\nslo_p99_ms = 100\n"),
    Case("missing-init-sql", ("--pgready-init-sql", "/nonexistent/schema.sql"), "does not exist"),
    Case("init-sql-is-a-directory", ("--pgready-init-sql", "/tmp"), "is not a file"),
    Case("missing-postgresql-conf", ("--pgready-postgresql-conf", "/nonexistent/postgresql.conf"), "does not exist"),
    Case("missing-pgbouncer-ini", ("--pgready-pgbouncer-ini", "/nonexistent/pgbouncer.ini"), "does not exist"),
    Case("missing-locustfile", ("--pgready-locustfile", "/nonexistent/locustfile.py"), "does not exist"),
    Case("missing-binaries", ("--pgready-pg-bin", "/nonexistent/bin"), "does not hold postgres"),
    Case("unavailable-major", ("--pgready-pg-version", "14"), "no PostgreSQL 14 binaries found"),
    Case("dsn-with-local-provider", ("--pgready-dsn", "postgresql://a@127.0.0.1/x", "--pgready-provider", "local"),
         "conflicts with --pgready-provider local"),
    Case("replica-without-primary", ("--pgready-replica-dsn", "postgresql://a@127.0.0.1/x"), "without --pgready-dsn"),
    Case("external-without-dsn", ("--pgready-provider", "external"), "needs a target"),
    Case("report-dir-not-writable", ("--pgready-report-dir", "/proc/pgready-report"), "is not writable"),
    Case("unreachable-host", ("--pgready-dsn", "postgresql://app@127.0.0.1:1/shop"), "cannot connect"),
    Case("unresolvable-host", ("--pgready-dsn", "postgresql://app@no-such-host.invalid/shop"), "cannot connect"),
    Case("silent-port", (), "did not answer within 2s", toml="connect_timeout = 2\n", needs="silent-port"),
    Case("wrong-password", (), "password authentication failed", needs="server"),
    Case("role-without-privileges", (), "grant the role CONNECT", needs="server"),
    Case("broken-init-sql", (), "failed", needs="broken-sql"),
    Case("own-check-unknown-severity", ("--pgready-suite", "schema"), "severity 'urgent' is not one of",
         needs="own-check"),
]


@pytest.fixture(scope="module")
def silent_port():
    """A port that accepts connections and never says a word."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield srv.getsockname()[1]
    stop.set()
    t.join(2)
    for s in held:
        s.close()
    srv.close()


def _run(tmp_path: Path, args: list[str], toml: str | None) -> tuple[int, str, float]:
    argv = [sys.executable, "-m", "pytest", "--pgready", "-p", "no:cacheprovider", "-q",
            "--pgready-report-dir", str(tmp_path / "report"), *args]
    if toml is not None:
        cfg = tmp_path / "pgready.toml"
        cfg.write_text(toml)
        argv += ["--pgready-config", str(cfg)]
    t0 = time.monotonic()
    p = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=tmp_path, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout + p.stderr, time.monotonic() - t0


def _server_args(case: Case, request: pytest.FixtureRequest, tmp_path: Path) -> list[str]:
    if case.needs == "silent-port":
        port = request.getfixturevalue("silent_port")
        return ["--pgready-dsn", f"postgresql://app@127.0.0.1:{port}/shop"]
    if case.needs == "own-check":
        own = tmp_path / "own"
        own.mkdir()
        (own / "test_own.py").write_text("import pytest\n\n@pytest.mark.pgready(id='ACME001', severity='urgent', "
                                         "category='schema')\ndef test_own():\n    pass\n")
        return [str(own)]
    if case.needs == "broken-sql":
        bad = tmp_path / "broken.sql"
        bad.write_text("CREATE TABLE ok(id int primary key);\nCREATE TABLE broken(id int primary key,);\n")
        return ["--pgready-init-sql", str(bad), "--pgready-suite", "schema"]
    cluster = request.getfixturevalue("pg_cluster")
    ep = cluster.primary.endpoint
    if case.name == "wrong-password":
        return ["--pgready-dsn", f"postgresql://postgres:wrong-password-123@{ep.host}:{ep.port}/app"]
    with cluster.primary.connect(dbname="postgres") as c:
        c.execute("DROP ROLE IF EXISTS nobody_here")
        c.execute("CREATE ROLE nobody_here LOGIN PASSWORD 'np-secret-42'")
        c.execute("REVOKE CONNECT ON DATABASE app FROM PUBLIC")
    request.addfinalizer(lambda: _grant_back(cluster))
    return ["--pgready-dsn", f"postgresql://nobody_here:np-secret-42@{ep.host}:{ep.port}/app"]


def _grant_back(cluster) -> None:
    with cluster.primary.connect(dbname="postgres") as c:
        c.execute("GRANT CONNECT ON DATABASE app TO PUBLIC")


def _assert_one_line(case: Case, code: int, out: str, seconds: float) -> None:
    assert code != 0, out
    assert "Traceback" not in out, out
    lines = [ln for ln in out.splitlines() if "pgready:" in ln]
    assert lines, f"no pgready: line in\n{out}"
    assert case.expect in lines[0], f"expected {case.expect!r} in {lines[0]!r}"
    assert " — " in lines[0], f"the line names no fix: {lines[0]!r}"
    assert seconds < 60
    for secret in ("wrong-password-123", "np-secret-42"):
        assert secret not in out


OFFLINE = [c for c in CASES if c.needs in ("", "silent-port", "own-check")]
ONLINE = [c for c in CASES if c.needs not in ("", "silent-port", "own-check")]


@pytest.mark.parametrize("case", OFFLINE, ids=[c.name for c in OFFLINE])
def test_bad_input_is_one_clear_line(case: Case, tmp_path: Path, request: pytest.FixtureRequest):
    args = list(case.args) + (_server_args(case, request, tmp_path) if case.needs else [])
    _assert_one_line(case, *_run(tmp_path, args, case.toml))


@pytest.mark.integration
@pytest.mark.parametrize("case", ONLINE, ids=[c.name for c in ONLINE])
def test_bad_input_against_a_server_is_one_clear_line(case: Case, tmp_path: Path, request: pytest.FixtureRequest,
                                                     pg_cluster):
    args = list(case.args) + _server_args(case, request, tmp_path)
    _assert_one_line(case, *_run(tmp_path, args, case.toml))


def test_corpus_is_large_enough():
    assert len(CASES) >= 30


def corpus_table() -> str:
    """The corpus as the Markdown table of docs/reliability.md (paste it there when CASES changes)."""
    rows = ["| # | case | input | the one line says |", "|---|---|---|---|"]
    for i, c in enumerate(CASES, 1):
        parts = [f"`{' '.join(c.args)}`"] if c.args else []
        if c.toml:
            parts.append("TOML `" + c.toml.strip().replace("\n", "; ") + "`")
        if c.needs:
            parts.append(f"({c.needs})")
        cell = " ".join(parts).replace("|", "\\|")
        rows.append(f"| {i} | {c.name} | {cell} | {c.expect.replace('|', chr(92) + '|')} |")
    return "\n".join(rows) + "\n"


def test_reliability_doc_lists_every_case():
    doc = (ROOT / "docs" / "reliability.md").read_text()
    assert corpus_table() in doc, "docs/reliability.md: regenerate the corpus table with corpus_table()"
