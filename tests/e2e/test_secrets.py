"""No password reaches any output: terminal, readiness.json/html/md, JUnit XML, log file, evidence."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
SECRET = "Sup3r-S3cret-pw-4711"
REPLICA_SECRET = "R3plica-S3cret-0815"


def _all_text(paths: list[Path]) -> str:
    out = []
    for p in paths:
        if p.is_dir():
            out += [f.read_text(errors="replace") for f in p.rglob("*") if f.is_file()]
        elif p.exists():
            out.append(p.read_text(errors="replace"))
    return "\n".join(out)


def test_password_in_dsn_and_pgpassword_appears_nowhere(pg_cluster, run_pgready, tmp_path: Path):
    ep = pg_cluster.primary.endpoint
    with pg_cluster.primary.connect(dbname="postgres") as c:
        c.execute("DROP ROLE IF EXISTS secret_app")
        c.execute(f"CREATE ROLE secret_app LOGIN PASSWORD '{SECRET}' IN ROLE pg_monitor")
    junit, log = tmp_path / "junit.xml", tmp_path / "pytest.log"
    own = tmp_path / "own_checks"
    own.mkdir()
    # a user's check that crashes holding the DSN in a local: under -l/--tb=long the traceback shows it
    (own / "test_own.py").write_text(
        "import pytest\n\n"
        "@pytest.mark.pgready(id='ACME001', severity='low', category='security')\n"
        "def test_crashes_with_the_dsn_in_hand(pgready_settings):\n"
        "    dsn = pgready_settings.dsn\n"
        "    raise RuntimeError('could not use ' + dsn)\n")
    dsn = f"postgresql://secret_app:{SECRET}@{ep.host}:{ep.port}/app"
    # a replica DSN that cannot be reached: its password must not leak through the error either
    bad_replica = f"postgresql://secret_app:{REPLICA_SECRET}@127.0.0.1:1/app?connect_timeout=2"
    run = run_pgready("--pgready-dsn", dsn, "--pgready-replica-dsn", bad_replica,
                      "--pgready-suite", "schema,indexes,config,security,health,replication",
                      "--junitxml", str(junit), "--html", str(tmp_path / "pytest-report.html"), "--log-file", str(log), "--log-file-level", "DEBUG",
                      "-rA", "--tb=long", "-l", "-v", env={"PGPASSWORD": SECRET},
                      config=f"paths = [{str(own)!r}]\n")
    assert run.report is not None, run.output[-3000:]
    assert {c["status"] for c in run.report["checks"]} - {"na"}, "the run must have evaluated checks"
    text = run.output + _all_text([run.report_dir, junit, log, tmp_path / "pytest-report.html"])
    assert junit.exists() and (run.report_dir / "readiness.html").exists() and (tmp_path / "pytest-report.html").exists()
    for s in (SECRET, REPLICA_SECRET):
        assert s not in text, f"secret leaked: …{text[max(0, text.find(s) - 200):text.find(s) + 50]}…"
    assert "********" in run.report["target"]["dsn"]
    assert run.status("ACME001") == "error" and "could not use" in run.output  # the crash is shown, masked
