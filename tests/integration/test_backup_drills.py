"""BKP001–BKP005 on real servers: each check passes on a healthy cluster and fails when broken on purpose.

The checks run in-process exactly as the suite runs them (the suite functions are called with real
clusters and a real Record); the procedures in pytest_pgready.drills.backup_* do the work.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

ROOT = Path(__file__).resolve().parents[2]

SEED = """
CREATE SCHEMA shop;
CREATE TYPE shop.status AS ENUM ('new', 'paid', 'shipped');
CREATE TABLE shop.customers (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL,
                             created timestamptz NOT NULL DEFAULT now(), photo bytea);
CREATE TABLE shop.orders (id serial PRIMARY KEY, customer_id bigint NOT NULL REFERENCES shop.customers,
                          status shop.status NOT NULL DEFAULT 'new', amount numeric(12,2) CHECK (amount >= 0),
                          tags text[], doc jsonb, ratio float8, placed tsrange);
CREATE INDEX orders_customer_id_idx ON shop.orders (customer_id);
CREATE TABLE shop.events (id bigint NOT NULL, at date NOT NULL, payload text, PRIMARY KEY (id, at))
  PARTITION BY RANGE (at);  -- a partitioned index: amcheck must skip its parent, check its children
CREATE TABLE shop.events_2024 PARTITION OF shop.events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE shop.events_2025 PARTITION OF shop.events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE UNLOGGED TABLE shop.cache (k text PRIMARY KEY, v text);
CREATE SEQUENCE shop.invoice_no START 1000;
CREATE SEQUENCE shop.never_used;
INSERT INTO shop.customers (name, photo) SELECT 'customer ' || g, decode(md5(g::text), 'hex')
  FROM generate_series(1, 300) g;
INSERT INTO shop.orders (customer_id, status, amount, tags, doc, ratio, placed)
  SELECT 1 + g % 300, (ARRAY['new', 'paid', 'shipped'])[1 + g % 3]::shop.status, g * 1.25, ARRAY['a', g::text],
         jsonb_build_object('g', g, 'odd', g % 2 = 1), g / 3.0, tsrange('2024-01-01', '2024-01-02')
  FROM generate_series(1, 3000) g;
INSERT INTO shop.events SELECT g, DATE '2024-06-01' + g % 400, repeat('x', g % 50) FROM generate_series(1, 2000) g;
INSERT INTO shop.cache SELECT g::text, 'v' FROM generate_series(1, 50) g;
SELECT nextval('shop.invoice_no') FROM generate_series(1, 7);
CREATE MATERIALIZED VIEW shop.order_totals AS SELECT customer_id, sum(amount) AS total FROM shop.orders GROUP BY 1;
SELECT lo_from_bytea(0, convert_to('a large object', 'UTF8'));
"""
# A CHECK whose SQL function calls another one without a schema: fine for the application (its
# search_path has public), but pg_restore runs with an empty search_path, so the COPY fails and the
# table comes back empty. A classic, silent when nobody restores.
SEARCH_PATH_TRAP = """
CREATE FUNCTION public.norm(t text) RETURNS text LANGUAGE sql IMMUTABLE AS 'SELECT lower(t)';
CREATE FUNCTION public.is_normal(t text) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT norm(t) = t';
CREATE TABLE public.handles (id int PRIMARY KEY, handle text NOT NULL CHECK (public.is_normal(handle)));
INSERT INTO public.handles SELECT g, 'user' || g FROM generate_series(1, 500) g;
"""
# An "IMMUTABLE" function redefined after an index was built on it: every checksum is valid, the
# backup verifies, but the index no longer matches the heap. Only amcheck (heapallindexed) sees it.
LYING_INDEX = """
CREATE FUNCTION public.bucket(i int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $1 % 10';
CREATE TABLE public.readings (id int PRIMARY KEY, v int NOT NULL);
INSERT INTO public.readings SELECT g, g FROM generate_series(1, 500) g;
CREATE INDEX readings_bucket_idx ON public.readings (public.bucket(v));
CREATE OR REPLACE FUNCTION public.bucket(i int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $1 % 7';
"""
GOOD_BACKUP = "pg_dump -Fc -d {dsn} -f {backup_dir}/app.dump"
GOOD_RESTORE = "pg_restore --exit-on-error -d {dsn} {backup_dir}/app.dump"
SILENT_RESTORE = "echo 'restore finished'"  # exits 0, restores nothing


def _suite() -> Any:
    spec = importlib.util.spec_from_file_location("pgready_suite_backup", ROOT / "suites" / "test_backup.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


suite = _suite()


def settings(**over: Any) -> Any:
    from pytest_pgready.settings import build

    return build(over, None, None)


def run_check(fn: Callable[..., None], check_id: str, **fixtures: Any) -> tuple[str, Any]:
    """Call a suite check like pytest does; return (status, record)."""
    from pytest_pgready.cluster.model import Unsupported
    from pytest_pgready.results import CheckFailed, CheckNA, Record

    rec = Record(check_id)
    try:
        fn(pgready_record=rec, **fixtures)
    except CheckFailed:
        return "fail", rec
    except (CheckNA, Unsupported):
        return "na", rec
    return "pass", rec


@pytest.fixture(scope="module")
def source(pg_bins) -> Iterator[Any]:
    """A primary holding a small but varied application schema (and nothing else)."""
    from pytest_pgready.cluster.local import provision_local

    c = provision_local(settings(), bins=pg_bins, replicas=0, pgbouncer=False, toxiproxy=False, archive=True)
    with c.primary.connect() as conn:
        conn.execute(SEED)
    yield c
    c.close()


@pytest.fixture(scope="module")
def lab(source) -> Iterator[Any]:
    from pytest_pgready.drills.backup import BackupLab

    lab = BackupLab(source, settings())
    yield lab
    lab.close()


@pytest.fixture
def factory(cluster_factory) -> Callable[..., Any]:
    """pgready_cluster_factory's signature on the parametrized major."""

    def make(**kw: Any) -> Any:
        for k, v in (("replicas", 0), ("pgbouncer", False), ("toxiproxy", False)):
            kw.setdefault(k, v)
        return cluster_factory(**kw)

    return make


# ------------------------------------------------------------------------------------------------ BKP001
@pytest.mark.integration
def test_bkp001_passes_on_identical_restore(lab) -> None:
    status, rec = run_check(suite.test_bkp001_logical_round_trip, "BKP001", backup_lab=lab)
    assert status == "pass", rec.evidence
    src = rec.evidence["source"]
    # 7 tables: customers, orders, 2 partitions, the unlogged cache, the matview; sequences incl. identity
    assert src["tables"] == 6 and src["rows"] == 300 + 3000 + 2000 + 50 + 300
    assert src["sequences"] == 4 and src["large_objects"] == 1
    assert src["schema_fingerprint"] == rec.evidence["restored"]["schema_fingerprint"]
    for m in ("dump_seconds", "restore_seconds", "dump_mb_s", "restore_mb_s"):
        assert rec.report_metrics[m] > 0


@pytest.mark.integration
def test_bkp001_fails_when_restore_loses_rows(source, lab) -> None:
    from psycopg import sql

    from pytest_pgready.drills.backup import BackupLab

    with source.primary.connect(dbname="postgres") as c:
        c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier("trap")))
    with source.primary.connect(dbname="trap") as c:
        c.execute(SEARCH_PATH_TRAP)
    trap = BackupLab(source, settings(), dbname="trap")
    trap._cache["scratch"] = (True, lab.scratch())  # reuse the module's scratch instance
    status, rec = run_check(suite.test_bkp001_logical_round_trip, "BKP001", backup_lab=trap)
    assert status == "fail"
    assert "public.handles" in rec.evidence["objects"] and "pg_restore" in rec.evidence["objects"]
    problems = "\n".join(rec.evidence["problems"])
    assert "500 rows in source, 0 restored" in problems and "norm(text) does not exist" in problems


@pytest.mark.integration
def test_bkp001_runs_read_only_against_an_external_target(source) -> None:
    """Non-destructive on a read-only external target: dump from it, restore into a local scratch."""
    from pytest_pgready.cluster.external import ExternalCluster
    from pytest_pgready.drills.backup import BackupLab

    ext_settings = settings(dsn=source.primary.dsn())
    ext = ExternalCluster(ext_settings)
    assert ext.read_only and ext.primary.read_only_sessions
    ext_lab = BackupLab(ext, ext_settings)
    try:
        status, rec = run_check(suite.test_bkp001_logical_round_trip, "BKP001", backup_lab=ext_lab)
    finally:
        ext_lab.close()
    assert status == "pass", rec.evidence
    assert rec.evidence["source"]["rows"] == 5650
    assert source.password not in repr(rec.evidence) + repr(rec.metrics)


# ------------------------------------------------------------------------------------------------ BKP002
@pytest.mark.integration
def test_bkp002_passes_on_clean_physical_restore(lab, factory) -> None:
    status, rec = run_check(suite.test_bkp002_physical_round_trip, "BKP002", backup_lab=lab,
                            pgready_cluster_factory=factory)
    assert status == "pass", rec.evidence
    assert rec.evidence["verify"] == ["backup successfully verified"]
    assert rec.evidence["amcheck"]["btree_indexes"] > 100 and rec.evidence["amcheck"]["verify_heapam"]
    assert rec.evidence["compared_tables"]["app"] == 5  # the UNLOGGED table is excluded, and says so
    assert any("UNLOGGED" in n for n in rec.evidence["notes"])
    if lab.target_major() >= 17:
        assert rec.evidence["incremental"]["verified"] and not rec.evidence["incremental"]["problems"]
    else:
        assert "no incremental backup" in rec.evidence["incremental"]
    assert rec.report_metrics["basebackup_seconds"] > 0


@pytest.mark.integration
def test_bkp002_fails_when_amcheck_finds_a_corrupt_index(factory) -> None:
    from pytest_pgready.drills.backup import BackupLab

    broken = factory(archive=False, init_sql=False)
    with broken.primary.connect() as c:
        c.execute(LYING_INDEX)
    blab = BackupLab(broken, settings())
    try:
        status, rec = run_check(suite.test_bkp002_physical_round_trip, "BKP002", backup_lab=blab,
                                pgready_cluster_factory=factory)
    finally:
        blab.close()
    assert status == "fail"
    assert "app: index readings_bucket_idx" in rec.evidence["objects"]
    assert any("lacks matching index tuple" in p for p in rec.evidence["problems"])


# ------------------------------------------------------------------------------------------------ BKP003
@pytest.mark.integration
def test_bkp003_passes_when_both_layers_catch_corruption(lab) -> None:
    status, rec = run_check(suite.test_bkp003_corruption_is_detected, "BKP003", backup_lab=lab)
    assert status == "pass", rec.evidence
    flip, wal = rec.evidence["probes"]
    assert flip["detected_by"] == ["pg_verifybackup", "reading the page"]
    assert wal["detected_by"] == ["pg_verifybackup", "the restore"]
    assert "shop.orders" in rec.evidence["victim"]


@pytest.mark.integration
def test_bkp003_fails_without_data_and_manifest_checksums(factory) -> None:
    from pytest_pgready.drills.backup import BackupLab
    from pytest_pgready.drills.backup_corruption import disable_data_checksums

    c = factory(archive=False, init_sql=False)
    with c.primary.connect() as conn:
        conn.execute("CREATE TABLE ledger (id int PRIMARY KEY, memo text); "
                     "INSERT INTO ledger SELECT g, repeat('m', 100) FROM generate_series(1, 2000) g")
    disable_data_checksums(c)
    blab = BackupLab(c, settings(backup_manifest_checksums="NONE"))
    try:
        status, rec = run_check(suite.test_bkp003_corruption_is_detected, "BKP003", backup_lab=blab)
    finally:
        blab.close()
    assert status == "fail"
    assert rec.evidence["data_checksums"] is False and rec.evidence["manifest_checksums"] == "NONE"
    (obj,) = rec.evidence["objects"]
    assert "flipped in base/" in obj and "public.ledger" in obj
    flip = rec.evidence["probes"][0]
    assert flip["missed_by"] == ["pg_verifybackup", "reading the page"]
    assert rec.evidence["probes"][1]["detected_by"]  # the missing WAL segment is still caught


# ------------------------------------------------------------------------------------------------ BKP004
def test_bkp004_na_without_commands() -> None:
    status, rec = run_check(suite.test_bkp004_user_backup_tools, "BKP004", backup_lab=None,
                            pgready_settings=settings(backup_command=GOOD_BACKUP), pgready_cluster_factory=None)
    assert status == "na"


def test_bkp004_command_templates_are_quoted_and_checked() -> None:
    from pytest_pgready.drills.backup_tools import render_command

    line = render_command("pg_dump -d {dsn} -f {backup_dir}/x {{literal}}",
                          {"dsn": "host=/tmp/a b port=5", "backup_dir": "/tmp/it's"})
    assert line == "pg_dump -d 'host=/tmp/a b port=5' -f '/tmp/it'\"'\"'s'/x {literal}"
    with pytest.raises(ValueError, match=r"unknown placeholder \{pasword\}"):
        render_command("x {pasword}", {"dsn": "d"})


@pytest.mark.integration
def test_bkp004_passes_with_working_dump_and_restore_scripts(lab, factory) -> None:
    s = settings(backup_command=GOOD_BACKUP, restore_command_line=GOOD_RESTORE)
    status, rec = run_check(suite.test_bkp004_user_backup_tools, "BKP004", backup_lab=lab, pgready_settings=s,
                            pgready_cluster_factory=factory)
    assert status == "pass", rec.evidence
    assert rec.evidence["restore_mode"] == "database" and rec.evidence["source"]["rows"] == 5650
    assert rec.evidence["commands"]["backup"]["exit"] == 0
    assert lab.cluster.password not in repr(rec.evidence)


@pytest.mark.integration
def test_bkp004_fails_when_restore_silently_restores_nothing(lab, factory) -> None:
    s = settings(backup_command=GOOD_BACKUP, restore_command_line=SILENT_RESTORE)
    status, rec = run_check(suite.test_bkp004_user_backup_tools, "BKP004", backup_lab=lab, pgready_settings=s,
                            pgready_cluster_factory=factory)
    assert status == "fail"
    restore = rec.evidence["commands"]["restore"]
    assert restore["exit"] == 0 and restore["output"] == ["restore finished"]
    assert {"shop.orders", "shop.customers"} <= set(rec.evidence["objects"])


@pytest.mark.integration
def test_bkp004_physical_tools_are_verified_as_a_started_instance(source, lab) -> None:
    """A restore command that writes a data directory into {target_dir}: pgready starts it and compares."""
    from pytest_pgready.drills.backup_tools import user_tools_round_trip

    r = user_tools_round_trip(source, "app", lab.scratch(),
                              "pg_basebackup -d {dsn} -D {backup_dir}/base -X stream -c fast",
                              "cp -a {backup_dir}/base/. {target_dir}/", timeout=300)
    assert r.mode == "datadir" and r.problems() == []
    assert r.restored.rows == 5650 - 50 and r.restored.schema == r.source.schema  # shop.cache is UNLOGGED
    assert "1 UNLOGGED relations not compared" in r.notes[0]


# ------------------------------------------------------------------------------------------------ BKP005
@pytest.mark.integration
def test_bkp005_passes_within_rto_and_fails_beyond(lab, source) -> None:
    status, rec = run_check(suite.test_bkp005_restore_time_within_rto, "BKP005", backup_lab=lab,
                            pgready_cluster=source, pgready_settings=settings(rto_seconds=3600))
    assert status == "pass", rec.evidence
    assert set(rec.evidence["measured_mb_s"]) == {"logical (pg_restore)", "physical (base backup)"}
    projected = rec.metrics["projected_restore_seconds"]
    assert 0 < projected < 3600 and rec.score is not None and rec.score > 0.9
    # the same measured figures against an RTO the restore cannot meet
    rto = projected / 10
    status, rec = run_check(suite.test_bkp005_restore_time_within_rto, "BKP005", backup_lab=lab,
                            pgready_cluster=source, pgready_settings=settings(rto_seconds=rto))
    assert status == "fail"
    assert rec.evidence["objects"] == [rec.evidence["method"]] and rec.score < 0.5


# ------------------------------------------------------------------------------------------------ end to end
@pytest.mark.integration
def test_suites_run_through_the_plugin(pg_bins, run_pgready, tmp_path) -> None:
    """`pytest --pgready` wires the module fixtures, records and report metrics of both suites.
    The wiring does not depend on the major: it runs once, on the newest one selected."""
    from pytest_pgready.cluster.binaries import all_postgres

    majors = os.environ.get("PGREADY_TEST_MAJORS")
    newest = max(b.major for b in all_postgres() if not majors or str(b.major) in majors.split(","))
    if pg_bins.major != newest:
        pytest.skip(f"plugin wiring is checked once, on PostgreSQL {newest}")
    seed = tmp_path / "seed.sql"
    seed.write_text(SEED)
    run = run_pgready("--pgready-suite", "backup,pitr", "--pgready-pg-bin", str(pg_bins.bindir),
                      "--pgready-init-sql", str(seed), "-k", "bkp001 or bkp005 or pitr001",
                      config="replicas = 0\n", timeout=300)
    assert run.status("BKP001") == "pass", run.output[-3000:]
    assert run.status("BKP005") == "pass" and run.status("PITR001") == "pass"
    assert "6 tables, 5,650 rows" in run.check("BKP001")["summary"]
    metrics = run.report["metrics"]
    for key in ("dump_seconds", "restore_seconds", "dump_mb_s", "restore_mb_s", "projected_restore_seconds"):
        assert metrics[key] > 0
    from pytest_pgready.cluster.template import get_template
    from pytest_pgready.cluster.osuser import service_user

    password = get_template(pg_bins, service_user()).password
    for f in run.report_dir.iterdir():
        assert password not in f.read_text(errors="replace"), f.name
