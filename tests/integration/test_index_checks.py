"""The indexes suite (IDX001–IDX007) against real databases: the clean reference schema passes, the broken
one fails naming the planted index or table, the pitfalls, young statistics, an index being built right
now, a pg_monitor role, and per-object waivers.

Databases and plugin runs are shared with test_schema_checks.py (schemas/static_dbs.py).
"""

from __future__ import annotations

import pytest

from schemas.static_dbs import BUILDING_INDEX, broken_scenario, clean_scenario, waiver_scenario

pytestmark = pytest.mark.integration

INDEX_IDS = [f"IDX{i:03d}" for i in range(1, 8)]

# check id → (objects that must be named, objects that must not be)
BROKEN_INDEXES = {
    "IDX001": (["bad.orders_nofk(parent_id)", "trap.fk_include(parent_id)", "trap.fk_partial(parent_id)",
                "trap.fk_multi(wh, code)", "trap.fk_expr(parent_id)", "trap.fk_hash(parent_id)",
                "trap.p_fk(parent_id)"],
               ["trap.p_fk_2024(parent_id)", "trap.p_fk_2025(parent_id)", "bad.child_narrow(parent_id)",
                "bad.fk_off(parent_id)", "bad.ext_member(parent_id)"]),
    "IDX002": (["bad.dupvals_v_uq", "bad.p_nopk_v_idx"], [f"bad.{BUILDING_INDEX}"]),
    "IDX003": (["bad.dups_email_copy", "bad.dups_v_b"], ["bad.dups_email_key", "bad.dups_v_a"]),
    "IDX004": (["bad.redund_a_idx"], ["bad.redund_b_uq", "bad.redund_a_b_idx", "bad.redund_b_a_idx"]),
    "IDX005": (["bad.unused_big_payload_idx"], ["bad.unused_big_pkey"]),
    "IDX006": (["bad.bloated_pkey"], ["bad.unused_big_payload_idx"]),
    "IDX007": (["bad.scanned"], ["bad.unused_big"]),
}


@pytest.fixture
def clean(pg_cluster, run_pgready):
    return clean_scenario(pg_cluster, run_pgready)


@pytest.fixture
def broken(pg_cluster, run_pgready):
    return broken_scenario(pg_cluster, run_pgready)


@pytest.fixture
def waivers(pg_cluster, run_pgready):
    return waiver_scenario(pg_cluster, run_pgready)


def _objects(run, cid: str) -> list[str]:
    return run.check(cid)["evidence"].get("objects", [])


# ------------------------------------------------------------------------------- pass and fail, each id
@pytest.mark.parametrize("cid", INDEX_IDS)
def test_index_check_passes_on_clean_reference_schema(clean, cid):
    c = clean["tuned"].check(cid)
    assert c["status"] == "pass", f"{cid} {c['status']}: {c['summary']} {c['evidence']}"
    assert c["summary"] and "objects" not in c["evidence"]
    if cid not in ("IDX005", "IDX007"):  # the usage checks are na with default settings (next test)
        assert clean["default"].status(cid) == "pass", clean["default"].check(cid)["summary"]


@pytest.mark.parametrize("cid", INDEX_IDS)
def test_index_check_fails_on_broken_schema(broken, cid):
    run = broken["superuser"]
    c = run.check(cid)
    assert c["status"] == "fail", f"{cid} {c['status']}: {c['summary']}"
    objs = _objects(run, cid)
    must, must_not = BROKEN_INDEXES[cid]
    assert set(must) <= set(objs), f"{cid}: missing {set(must) - set(objs)} in {objs}"
    assert not set(must_not) & set(objs), f"{cid}: wrongly named {set(must_not) & set(objs)}"
    assert len(objs) == len(set(objs))
    assert c["evidence"].get("remedy"), f"{cid}: no remedy"


# ------------------------------------------------------------------------------ usage statistics age
@pytest.mark.parametrize("cid", ["IDX005", "IDX007"])
def test_usage_checks_are_na_while_statistics_are_young(clean, cid):
    c = clean["default"].check(cid)
    assert c["status"] == "na"
    assert "min_stats_age_days" in c["summary"] and "7 days" in c["summary"]
    assert c["evidence"]["stats_age_days"] < 7 and c["evidence"]["min_stats_age_days"] == 7


def test_idx005_figures_and_standby_note(clean, broken):
    c = broken["superuser"].check("IDX005")
    unused = {u["object"]: u for u in c["evidence"]["unused"]}
    assert unused["bad.unused_big_payload_idx"]["bytes"] > 1024 * 1024 == c["evidence"]["floor_bytes"]
    assert "standbys" in c["evidence"]["standby_note"]
    ok = clean["tuned"].check("IDX005")
    assert ok["evidence"]["indexes_scanned"] > 0 and ok["evidence"]["stats_age_days"] >= 0


# ------------------------------------------------------------------------------------------- IDX001
def test_idx001_pitfalls(clean, broken):
    run = broken["superuser"]
    fks = {f["object"]: f for f in run.check("IDX001")["evidence"]["foreign_keys"]}
    # indexes mentioning the column but not covering it are named, so the reader sees why
    assert fks["trap.fk_include(parent_id)"]["indexes_not_covering"] == ["fk_include_note_idx"]
    assert fks["trap.fk_partial(parent_id)"]["indexes_not_covering"] == ["fk_partial_parent_id_idx"]
    assert fks["trap.fk_multi(wh, code)"]["indexes_not_covering"] == ["fk_multi_wh_idx"]
    assert fks["trap.fk_hash(parent_id)"]["indexes_not_covering"] == ["fk_hash_idx"]
    # the partitioned table's FK: once, at the parent; no partition, no clone
    objs = _objects(run, "IDX001")
    assert [o for o in objs if o.startswith("trap.p_fk")] == ["trap.p_fk(parent_id)"]
    remedy = run.check("IDX001")["evidence"]["remedy"]
    assert "CREATE INDEX CONCURRENTLY ON bad.orders_nofk (parent_id);" in remedy
    assert any(r.startswith("CREATE INDEX ON trap.p_fk (parent_id);") for r in remedy)  # no CONCURRENTLY there
    # FK columns leading an index in another order, FKs on/to partitioned tables: covered (clean passes)
    # (28 in clean.sql + 3 in pitfalls_pass.sql, each judged once whatever the partitions)
    assert clean["tuned"].check("IDX001")["evidence"]["foreign_keys_checked"] == 31


# ------------------------------------------------------------------------------------------- IDX002
def test_idx002_build_in_progress_ignored_partitioned_parent_listed_separately(broken):
    ev = broken["superuser"].check("IDX002")["evidence"]
    assert ev["in_progress"] == [f"bad.{BUILDING_INDEX}"]
    assert [i["object"] for i in ev["invalid"]] == ["bad.dupvals_v_uq"]
    waiting = ev["partitioned_waiting_for_partitions"]
    assert waiting == [{"object": "bad.p_nopk_v_idx", "table": "bad.p_nopk",
                        "partitions_missing": ["bad.p_nopk_2024", "bad.p_nopk_2025"]}]
    assert any("CREATE UNIQUE INDEX CONCURRENTLY dupvals_v_uq ON bad.dupvals" in r for r in ev["remedy"])


# ------------------------------------------------------------------------------------ IDX003 / IDX004
def test_idx003_keeps_the_constraint_index(broken):
    groups = {g["keep"]: g["drop"] for g in broken["superuser"].check("IDX003")["evidence"]["duplicates"]}
    assert groups == {"bad.dups_email_key": ["bad.dups_email_copy"], "bad.dups_v_a": ["bad.dups_v_b"]}


def test_idx004_attnum_1_is_not_a_prefix_of_attnum_12(pg_cluster, clean, broken):
    with pg_cluster.primary.connect(dbname=clean["db"]) as c:
        one, twelve = c.execute("SELECT (SELECT indkey::text FROM pg_index WHERE indexrelid = 'pit.wide_c1_idx'::regclass),"
                                " (SELECT indkey::text FROM pg_index WHERE indexrelid = 'pit.wide_c12_c3_idx'::regclass)"
                                ).fetchone()
    assert (one, twelve) == ("1", "12 3")  # a textual prefix: the trap is armed
    assert clean["tuned"].status("IDX004") == "pass"
    red = broken["superuser"].check("IDX004")["evidence"]["redundant"]
    assert red == [{"object": "bad.redund_a_idx", "definition": red[0]["definition"],
                    "covered_by": "bad.redund_a_b_idx", "covered_by_definition": red[0]["covered_by_definition"]}]


# ------------------------------------------------------------------------------------ IDX006 / IDX007
def test_idx006_estimates_bloat_from_statistics(clean, broken):
    bloated = {b["object"]: b for b in broken["superuser"].check("IDX006")["evidence"]["bloated"]}
    b = bloated["bad.bloated_pkey"]
    assert b["bloat_pct"] > 80 and b["estimated_pages"] < b["pages"] / 5
    ok = clean["tuned"].check("IDX006")
    assert ok["evidence"]["above_floor"] >= 1 and ok["metrics"]["max_bloat_pct"] < 50
    # pg_monitor cannot read pg_stats of tables it cannot SELECT: na, saying what to grant
    na = clean["monitor"].check("IDX006")
    assert na["status"] == "na" and "GRANT SELECT" in na["summary"]


def test_idx007_figures(broken):
    tables = {t["object"]: t for t in broken["superuser"].check("IDX007")["evidence"]["tables"]}
    t = tables["bad.scanned"]
    assert t["seq_scan"] >= 3 and t["idx_scan"] == 0 and t["seq_scan_pct"] == 100.0
    assert t["rows_per_seq_scan"] >= 1000


# ------------------------------------------------------------------------------------------ waivers
def test_waiver_for_one_object_leaves_the_others_failing(waivers):
    c = waivers["partly"].check("IDX001")
    assert c["status"] == "fail"
    assert c["evidence"]["objects"] == ["public.c(d)"]
    assert c["evidence"]["waived_objects"] == ["public.a(b) — waived: a holds ten rows; reviewed by the DBA"]


def test_expired_waiver_does_not_waive_and_says_so(waivers):
    ev = waivers["partly"].check("IDX001")["evidence"]
    assert "public.c(d)" in ev["objects"]
    assert any("IDX001:public.c(d) expired 2020-01-01" in e for e in ev["expired_waivers"])


def test_all_objects_waived_is_waived(waivers):
    c = waivers["all"].check("IDX001")
    assert c["status"] == "waived"
    assert c["evidence"]["objects"] == [] and len(c["evidence"]["waived_objects"]) == 2
    assert waivers["all"].status("SCH001") == "pass"  # waivers touch only their check


def test_no_application_tables_is_na_not_pass(waivers):
    for cid in INDEX_IDS:
        c = waivers["empty"].check(cid)
        assert c["status"] == "na" and "no application tables" in c["summary"], (cid, c["summary"])
