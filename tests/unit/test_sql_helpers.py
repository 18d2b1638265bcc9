"""The pure rules of the schema and indexes suites (suites/_sql_helpers.py, SCH002's range arithmetic):
name matching, allow-lists, reading CHECK definitions, the btree size estimate, overflow estimates."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

SUITES = Path(__file__).resolve().parents[2] / "suites"
if str(SUITES) not in sys.path:
    sys.path.insert(0, str(SUITES))

import _sql_helpers as h  # noqa: E402


def _suite_module(name: str):
    """A shipped suite module under a private name (its basename would collide with test modules)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"_pgready_suite_{name}", SUITES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_schema = _suite_module("test_schema")
INT_RANGE, PG_UPGRADE_BLOCKED_REG_TYPES, sequence_usage = (_schema.INT_RANGE, _schema.PG_UPGRADE_BLOCKED_REG_TYPES,
                                                           _schema.sequence_usage)

MONEY = ["price", "amount", "cost", "total", "balance", "fee", "tax", "discount"]


# ------------------------------------------------------------------------------------ names and globs
@pytest.mark.parametrize("name,words", [
    ("unit_price", ["unit", "price"]), ("PriceUSD", ["price", "usd"]), ("totalAmount", ["total", "amount"]),
    ("qty on hand", ["qty", "on", "hand"]), ("ü_fee", ["fee"]), ("__x__", ["x"]),
])
def test_name_words(name, words):
    assert h.name_words(name) == words


@pytest.mark.parametrize("name,hit", [
    ("unit_price", "price"), ("prices", "price"), ("PriceUSD", "price"), ("total_amount", "amount"),
    ("subtotal", None), ("taxes", "tax"), ("account_id", None), ("discounted", None), ("syntax", None),
    ("coffee_cups", None), ("fees", "fee"),
])
def test_money_names_match_words_not_substrings(name, hit):
    assert h.matching_pattern(name, MONEY) == hit


def test_count_pattern_does_not_match_account_but_glob_can():
    assert h.matching_pattern("account_no", ["count"]) is None
    assert h.matching_pattern("retry_count", ["count"]) == "count"
    assert h.matching_pattern("amt_usd", ["amt_*"]) == "amt_*"
    assert h.matching_pattern("AMT_usd", ["amt_*"]) == "amt_*"  # globs match the lower-cased name


def test_allow_list_matches_plain_and_quoted_forms():
    assert h.allowed_by(["audit.*"], "audit.events.at", "audit.events.at") == "audit.*"
    assert h.allowed_by(['public."Select".*'], "public.Select.user", 'public."Select"."user"') == 'public."Select".*'
    assert h.allowed_by(["public.Select.*"], "public.Select.user", 'public."Select"."user"') == "public.Select.*"
    assert h.allowed_by(["audit.*"], "public.audit.at", "public.audit.at") is None


# ------------------------------------------------------------------------------ CHECK definitions
@pytest.mark.parametrize("defs,column,expected", [
    (["CHECK ((price >= (0)::numeric))"], "price", True),
    (["CHECK (((discount >= (0)::numeric) AND (discount <= (100)::numeric)))"], "discount", True),
    (["CHECK ((quantity > 0))"], "quantity", True),
    (["CHECK ((qty >= 1))"], "qty", True),
    (["CHECK ((0 <= qty))"], "qty", True),
    (["CHECK ((price >= (0)::double precision))"], "price", True),
    (["CHECK ((total_amount >= (0)::money))"], "total_amount", True),
    (["CHECK ((VALUE >= (0)::numeric))"], "VALUE", True),
    (["CHECK ((unit_cost < 1000000))"], "unit_cost", False),
    (["CHECK ((price >= ('-1'::integer)::numeric))"], "price", False),
    (["CHECK ((price >= (-1)::numeric))"], "price", False),
    (["CHECK ((unit_price >= (0)::numeric))"], "price", False),   # another column whose name ends alike
    (["CHECK ((price_old >= (0)::numeric))"], "price", False),
    (['CHECK (("Qty" >= 0))'], '"Qty"', True),
    (['CHECK (("Qty" >= 0))'], "qty", False),
    ([], "price", False), ([None], "price", False),
])
def test_forbids_negatives(defs, column, expected):
    assert h.forbids_negatives(defs, column) is expected


@given(st.integers(min_value=-10**6, max_value=10**6), st.sampled_from([">=", ">"]))
def test_forbids_negatives_follows_the_bound(n, op):
    d = f"CHECK ((amount {op} ({n})::numeric))"
    assert h.forbids_negatives([d], "amount") is (n >= 0)


# ------------------------------------------------------------------------------------ btree estimate
def test_btree_estimate_matches_a_fresh_bigint_index():
    # 100,000 bigint keys: 20 bytes per tuple (8 header + 8 data + 4 line pointer), 366 per 90 %-full page
    assert h.btree_pages_estimate(100_000, 8, False, 90) == 1 + -(-100_000 // 366)
    assert h.btree_pages_estimate(0, 8, False, 90) == 1  # the metapage
    assert h.btree_pages_estimate(-1, 8, False, 90) == 1  # never analyzed (reltuples = -1)


def test_btree_estimate_grows_with_nulls_width_and_lower_fillfactor():
    base = h.btree_pages_estimate(50_000, 8, False, 90)
    assert h.btree_pages_estimate(50_000, 8, True, 90) > base
    assert h.btree_pages_estimate(50_000, 40, False, 90) > base
    assert h.btree_pages_estimate(50_000, 8, False, 100) < base


@given(st.floats(min_value=0, max_value=1e9), st.floats(min_value=0, max_value=1e9),
       st.floats(min_value=0, max_value=2000), st.booleans(), st.integers(min_value=10, max_value=100))
def test_btree_estimate_is_monotonic_in_rows(a, b, width, nulls, ff):
    lo, hi = sorted((a, b))
    assert h.btree_pages_estimate(lo, width, nulls, ff) <= h.btree_pages_estimate(hi, width, nulls, ff)


# ------------------------------------------------------------------------------- overflow and figures
def test_overflow_eta():
    assert h.overflow_eta(0, 1, 100, 3600) == (0.0, "exhausted: the next insert fails")
    eta, note = h.overflow_eta(864_000, 1, 36_000, 3600)  # 10 inserts/s → 864,000 a day
    assert eta == pytest.approx(1.0) and "864,000 inserts/day" in note
    eta2, _ = h.overflow_eta(864_000, 2, 36_000, 3600)  # INCREMENT 2 burns values twice as fast
    assert eta2 == pytest.approx(0.5)
    assert h.overflow_eta(100, 1, 0, 3600)[0] is None
    assert "cannot be estimated" in h.overflow_eta(100, 1, None, 3600)[1]


def test_figures():
    assert h.human_bytes(512) == "512 B" and h.human_bytes(1536) == "1.5 KiB" and h.human_bytes(None) == "?"
    assert h.days(90) == "1.5 minutes" and h.days(7200) == "2.0 hours" and h.days(3 * 86400) == "3.0 days"
    assert h.count(1, "index", "indexes") == "1 index" and h.count(2, "table") == "2 tables"


# --------------------------------------------------------------------------------- SCH002 arithmetic
def _seq(**kw):
    row = {"object": "s.t.id", "sequence": "s.t_id_seq", "how": "identity", "column_type": "integer",
           "sequence_type": "bigint", "int_type": "int4", "seqmax": 2**63 - 1, "seqmin": 1, "increment": 1,
           "cycle": False, "last_value": 2_000_000_000, "inserts": None}
    row.update(kw)
    return row


def test_sequence_usage_is_judged_on_the_column_type():
    u = sequence_usage(_seq(), 3600)
    assert u["limited_by"] == "column type" and u["limit"] == INT_RANGE["int4"][1]
    assert u["used_pct"] == pytest.approx(93.13, abs=0.01) and u["pct_of_type_range"] == u["used_pct"]


def test_sequence_usage_low_maxvalue_limits_first():
    u = sequence_usage(_seq(int_type="int8", column_type="bigint", seqmax=1000, last_value=900), 3600)
    assert u["limited_by"] == "sequence MAXVALUE" and u["used_pct"] == 90.0 and u["pct_of_type_range"] == 0.0


def test_sequence_usage_cycle_descending_and_unused():
    # a cycling sequence below the type's limit wraps instead of failing
    assert sequence_usage(_seq(cycle=True, seqmax=1000, last_value=999), None)["used"] == 0.0
    # a descending int2 sequence counts towards the type's minimum
    d = sequence_usage(_seq(int_type="int2", increment=-1, seqmin=-(2**63), last_value=-30000), None)
    assert d["limit"] == -32768 and d["used_pct"] == pytest.approx(91.55, abs=0.01)
    fresh = sequence_usage(_seq(last_value=None), None)
    assert fresh["used"] == 0.0 and fresh["time_to_overflow"] == "never used yet"


def test_pg_upgrade_blocklist_is_exact():
    # src/bin/pg_upgrade/check.c: regclass, regrole and regtype are allowed (their OIDs are preserved)
    assert set(PG_UPGRADE_BLOCKED_REG_TYPES) == {"regcollation", "regconfig", "regdictionary", "regnamespace",
                                                 "regoper", "regoperator", "regproc", "regprocedure"}
