"""The schema suite (SCH001–SCH011) against real databases: a clean reference schema where every check
passes, a broken one where every check fails naming the planted object, the pitfalls, hostile names,
a pg_monitor role, and no secret in any report.

The databases and plugin runs are built once per PostgreSQL major (schemas/static_dbs.py) and shared
with test_index_checks.py.
"""

from __future__ import annotations

import pytest

from schemas.static_dbs import broken_scenario, clean_scenario, waiver_scenario
from static_support import assert_never_better, assert_no_secret

pytestmark = pytest.mark.integration

SCHEMA_IDS = [f"SCH{i:03d}" for i in range(1, 12)]
HOSTILE_SCHEMA = '"we""ird sch;ema"'
SCRIPT_TABLE = f'{HOSTILE_SCHEMA}."<script>alert(1)</script>"'
UNICODE_63 = "é" * 31 + "x"  # 63 bytes in UTF-8: NAMEDATALEN - 1

# check id → (objects that must be named, objects that must not be)
BROKEN_SCHEMA = {
    "SCH001": ([SCRIPT_TABLE, "bad.no_pk", "bad.p_nopk"],
               ["bad.p_nopk_2024", "bad.p_nopk_2025", "bad.parents", "bad.ext_member"]),
    "SCH002": (["trap.legacy_ids.id", "trap.tiny_ident.id", "trap.capped.id"], ["trap.half_used.n", "trap.half_used.id"]),
    "SCH003": (["bad.int4_pk.id", "bad.child_narrow.parent_id", "trap.legacy_ids.id", "trap.tiny_ident.id",
                'public."Select".id'], ["bad.codes.code", "bad.parents.id"]),
    "SCH004": (["bad.nv_child.nv_child_parent_fk", "bad.nv_child.nv_child_v_positive", "bad.pos_int.pos_int_positive"],
               ["trap.fk_include.fk_include_note_len"]),
    "SCH005": (["bad.child_narrow.parent_id", "bad.code_refs.code"], ["bad.nv_child.parent_id"]),
    "SCH006": (["bad.events_ts.happened_at", 'public."Select"."user"'], ["bad.allowed_ts.legacy_at"]),
    "SCH007": (["bad.prices.price", "bad.prices.total_amount"], ["bad.stock_levels.unit_cost", "bad.ext_member.price"]),
    "SCH008": (["bad.stock_levels.quantity", "bad.stock_levels.unit_cost", "bad.prices.total_amount"],
               ["bad.prices.price"]),
    "SCH009": (["bad.trg_table.audit_trg", "bad.fk_off.fk_off_parent_fk"], []),
    "SCH010": (["bad.scratch_unlogged", f'{HOSTILE_SCHEMA}."{UNICODE_63}"'], ["bad.cache_sessions"]),
    "SCH011": (["bad.reg_cols.fn", "bad.reg_cols.ns", "bad.reg_cols.ops", "bad.reg_cols.handler"],
               ["bad.reg_cols.cls"]),
}


@pytest.fixture
def clean(pg_cluster, run_pgready):
    return clean_scenario(pg_cluster, run_pgready)


@pytest.fixture
def broken(pg_cluster, run_pgready):
    return broken_scenario(pg_cluster, run_pgready)


def _objects(run, cid: str) -> list[str]:
    return run.check(cid)["evidence"].get("objects", [])


# ------------------------------------------------------------------------------- pass and fail, each id
@pytest.mark.parametrize("cid", SCHEMA_IDS)
def test_schema_check_passes_on_clean_reference_schema(clean, cid):
    for kind in ("default", "tuned"):
        c = clean[kind].check(cid)
        assert c["status"] == "pass", f"{kind}: {cid} {c['status']}: {c['summary']} {c['evidence']}"
        assert c["summary"] and "objects" not in c["evidence"]


@pytest.mark.parametrize("cid", SCHEMA_IDS)
def test_schema_check_fails_on_broken_schema(broken, cid):
    run = broken["superuser"]
    c = run.check(cid)
    assert c["status"] == "fail", f"{cid} {c['status']}: {c['summary']}"
    objs = _objects(run, cid)
    must, must_not = BROKEN_SCHEMA[cid]
    assert set(must) <= set(objs), f"{cid}: missing {set(must) - set(objs)} in {objs}"
    assert not set(must_not) & set(objs), f"{cid}: wrongly named {set(must_not) & set(objs)}"
    assert len(objs) == len(set(objs)), f"{cid}: an object is listed twice: {objs}"
    assert c["evidence"].get("remedy"), f"{cid}: no remedy"
    assert str(len(objs)) in c["summary"]


# ------------------------------------------------------------------------------------------- SCH002
def _column(run, cid: str, obj: str, key: str = "columns") -> dict:
    rows = [r for r in run.check(cid)["evidence"].get(key, []) if r["object"] == obj]
    assert rows, f"{obj} not in {cid} evidence[{key!r}]"
    return rows[0]


def test_sch002_judges_the_column_type_not_the_sequence_max(broken):
    """int4 column, bigint sequence at 2,000,000,050: 93 % of int4 although ~0 % of the sequence's 2^63."""
    run = broken["superuser"]
    legacy = _column(run, "SCH002", "trap.legacy_ids.id")
    assert legacy["column_type"] == "integer" and legacy["sequence_type"] == "bigint"
    assert legacy["limited_by"] == "column type" and legacy["limit"] == 2**31 - 1
    assert 93.0 < legacy["pct_of_type_range"] < 93.2
    # 50 rows were inserted after setval: a rate exists, so the time to overflow is estimated
    assert legacy["days_to_overflow"] is not None and "inserts/day" in legacy["time_to_overflow"]
    assert any("ALTER COLUMN id TYPE bigint" in r for r in run.check("SCH002")["evidence"]["remedy"])


def test_sch002_identity_near_limit_fails_half_used_warns_low_maxvalue_fails(broken):
    run = broken["superuser"]
    ev = run.check("SCH002")["evidence"]
    tiny = _column(run, "SCH002", "trap.tiny_ident.id")
    assert tiny["fed_by"] == "identity" and tiny["column_type"] == "smallint" and tiny["used_pct"] > 91
    capped = _column(run, "SCH002", "trap.capped.id")
    assert capped["limited_by"] == "sequence MAXVALUE" and capped["used_pct"] == 90.0
    assert capped["pct_of_type_range"] == 0.0
    assert "cannot be estimated" in capped["time_to_overflow"]  # no insert since the statistics started
    warned = _column(run, "SCH002", "trap.half_used.n", "warnings")
    assert 60 < warned["used_pct"] < 61 and "trap.half_used.n" not in ev["objects"]
    assert ev["threshold_pct"] == 75.0 and ev["warn_pct"] == 50.0


def test_sch002_unreadable_sequences_listed_or_na(clean, broken):
    # the pg_monitor role may read trap.legacy_seq only: that column is judged, the others listed
    mon = broken["monitor"].check("SCH002")
    assert mon["status"] == "fail" and mon["evidence"]["objects"] == ["trap.legacy_ids.id"]
    assert {"trap.tiny_ident.id", "trap.capped.id"} <= set(mon["evidence"]["unreadable"])
    assert "unreadable" in mon["summary"]
    # no sequence readable at all: na, saying what to grant
    na = clean["monitor"].check("SCH002")
    assert na["status"] == "na" and "GRANT SELECT" in na["summary"]
    assert "shop.orders.id" in na["evidence"]["unreadable"]


# ------------------------------------------------------------------------------------------- SCH004
def test_sch004_not_null_constraints_and_not_enforced(clean, broken):
    major = clean["major"]
    ok = clean["tuned"].check("SCH004")
    assert ok["status"] == "pass"
    bad = broken["superuser"].check("SCH004")
    if major >= 18:
        # PG18 keeps NOT NULL in pg_constraint (contype 'n'): dozens of them, none a false failure
        assert ok["evidence"]["constraints_checked"] > 100
        assert [r["object"] for r in ok["evidence"]["not_enforced"]] == ["pit.not_null_heavy.a_short"]
        assert "NOT ENFORCED" in ok["summary"]
        # NOT NULL … NOT VALID is a NOT VALID constraint; NOT ENFORCED is listed, never failed
        assert "trap.fk_include.fk_include_note_nn" in bad["evidence"]["objects"]
        assert "trap.fk_include.fk_include_note_len" in [r["object"] for r in bad["evidence"]["not_enforced"]]
    else:
        assert "not_enforced" not in ok["evidence"]
    assert "ALTER TABLE bad.nv_child VALIDATE CONSTRAINT nv_child_parent_fk;" in bad["evidence"]["remedy"]
    assert "ALTER DOMAIN bad.pos_int VALIDATE CONSTRAINT pos_int_positive;" in bad["evidence"]["remedy"]


# ------------------------------------------------------------------------------------ allow-lists etc.
def test_allow_lists_keep_listed_objects_out_and_say_so(broken):
    run = broken["superuser"]
    assert any(a.startswith("bad.allowed_ts.legacy_at") for a in run.check("SCH006")["evidence"]["allowed"])
    assert any(a.startswith("bad.cache_sessions") for a in run.check("SCH010")["evidence"]["allowed"])


def test_sch009_names_the_fk_constraint_of_disabled_enforcement_triggers(broken):
    c = broken["superuser"].check("SCH009")
    kinds = {t["object"]: t["kind"] for t in c["evidence"]["triggers"]}
    assert kinds["bad.fk_off.fk_off_parent_fk"] == "foreign key enforcement"
    assert kinds["bad.trg_table.audit_trg"] == "user"


def test_sch011_blocks_exactly_pg_upgrades_list(clean, broken):
    c = broken["superuser"].check("SCH011")
    types = {r["object"]: r["type"] for r in c["evidence"]["columns"]}
    assert types["bad.reg_cols.ops"] == "regoper[]" and types["bad.reg_cols.handler"] == "bad.proc_ref"
    assert sorted(c["evidence"]["blocked_types"]) == ["regcollation", "regconfig", "regdictionary", "regnamespace",
                                                      "regoper", "regoperator", "regproc", "regprocedure"]
    # regclass / regtype / regrole columns (pit.maintenance_targets) pass
    assert clean["tuned"].status("SCH011") == "pass"


# ------------------------------------------------------------------------------------ hostile names
def test_hostile_identifiers_are_quoted_like_quote_ident(pg_cluster, broken):
    run = broken["superuser"]
    with pg_cluster.primary.connect(dbname=broken["db"]) as c:
        expected = c.execute(
            "SELECT format('%%I.%%I', s, t), format('%%I.%%I(%%I)', s, t, col), format('%%I.%%I', s, u), "
            "octet_length(u), format('%%I.%%I.%%I', 'public', 'Select', 'user') "
            "FROM (VALUES ('we\"ird sch;ema', '<script>alert(1)</script>', 'ü mlaut \"q\"', %s)) v(s, t, col, u)",
            (UNICODE_63,)).fetchone()
    table, fk, unlogged, nbytes, reserved = expected
    assert table == SCRIPT_TABLE and nbytes == 63
    assert table in _objects(run, "SCH001")
    assert fk == f'{SCRIPT_TABLE}("ü mlaut ""q""")' and fk in _objects(run, "IDX001")
    assert unlogged in _objects(run, "SCH010")
    assert reserved == 'public."Select"."user"' and reserved in _objects(run, "SCH006")
    assert f"CREATE INDEX CONCURRENTLY ON {SCRIPT_TABLE} (\"ü mlaut \"\"q\"\"\");" in \
        run.check("IDX001")["evidence"]["remedy"]
    # the names are data: the HTML report escapes them
    html = (run.report_dir / "readiness.html").read_text(encoding="utf-8")
    assert "<script>alert(1)</script>" not in html


# --------------------------------------------------------------------------- roles, databases, secrets
def test_pg_monitor_role_gets_the_same_verdicts_or_na(clean, broken):
    ids = SCHEMA_IDS + [f"IDX{i:03d}" for i in range(1, 8)]
    assert_never_better(clean["tuned"], clean["monitor"], ids)
    assert_never_better(broken["superuser"], broken["monitor"], ids)
    # only what needs privileges beyond pg_monitor becomes na: sequence values and pg_stats
    assert {cid for cid in ids if clean["monitor"].status(cid) == "na"} == {"SCH002", "IDX006"}
    assert broken["monitor"].status("SCH001") == "fail"


def test_no_application_tables_is_na_not_pass(pg_cluster, run_pgready):
    empty = waiver_scenario(pg_cluster, run_pgready)["empty"]
    for cid in SCHEMA_IDS:
        c = empty.check(cid)
        assert c["status"] == "na" and "no application tables" in c["summary"], (cid, c["summary"])


def test_no_secret_in_reports_or_output(clean, broken):
    for scenario, runs in ((clean, ("default", "tuned", "monitor")), (broken, ("superuser", "monitor"))):
        for r in runs:
            assert_no_secret(scenario[r], *scenario["secrets"])
