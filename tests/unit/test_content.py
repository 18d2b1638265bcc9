"""compare() and normalise_schema(): planted differences are found and named; noise is not a difference.

The checksum query itself runs in the server and is tested in tests/integration/test_backup_drills.py.
"""

from __future__ import annotations

from pytest_pgready.drills.content import (Snapshot, TableSum, compare, hash_query, normalise_schema,
                                            schema_differences)

DUMP = """--
-- PostgreSQL database dump
--

\\restrict AbC123

-- Dumped from database version 15.18
-- Dumped by pg_dump version 15.18

SET statement_timeout = 0;
SELECT pg_catalog.set_config('search_path', '', false);

--
-- Name: shop; Type: SCHEMA; Schema: -; Owner: postgres
--

CREATE SCHEMA shop;


ALTER SCHEMA shop OWNER TO postgres;

SET default_tablespace = '';

--
-- Name: orders; Type: TABLE; Schema: shop; Owner: postgres
--

CREATE TABLE shop.orders (
    id bigint NOT NULL,
    amount numeric(12,2)
);

--
-- Name: orders_amount_idx; Type: INDEX; Schema: shop; Owner: postgres
--

CREATE INDEX orders_amount_idx ON shop.orders USING btree (amount);

--
-- Name: STATISTICS DATA orders; Type: STATISTICS DATA; Schema: shop; Owner: -
--

SELECT * FROM pg_catalog.pg_restore_relation_stats('relname', 'orders', 'reltuples', '3000'::real);

--
-- PostgreSQL database dump complete
--

\\unrestrict AbC123
"""


def snap(**over) -> Snapshot:
    s = Snapshot("app", tables={"shop.orders": TableSum(3, "123"), "shop.customers": TableSum(2, "-77")},
                 sequences={"shop.orders_id_seq": (3, True)}, large_objects=(1, "42"))
    for k, v in over.items():
        setattr(s, k, v)
    return s


def test_identical_snapshots_have_no_difference() -> None:
    assert compare(snap(), snap()) == []


def test_a_single_changed_row_is_found_by_checksum() -> None:
    restored = snap(tables={"shop.orders": TableSum(3, "124"), "shop.customers": TableSum(2, "-77")})
    diffs = compare(snap(), restored)
    assert [(d.kind, d.object) for d in diffs] == [("checksum", "shop.orders")]
    assert "same row count (3)" in diffs[0].detail


def test_a_missing_row_is_found_by_count() -> None:
    restored = snap(tables={"shop.orders": TableSum(2, "99"), "shop.customers": TableSum(2, "-77")})
    diffs = compare(snap(), restored)
    assert [(d.kind, d.object) for d in diffs] == [("row_count", "shop.orders")]
    assert "3 rows in source, 2 restored" in diffs[0].detail


def test_a_changed_sequence_value_is_found() -> None:
    diffs = compare(snap(), snap(sequences={"shop.orders_id_seq": (1, False)}))
    assert [(d.kind, d.object) for d in diffs] == [("sequence", "shop.orders_id_seq")]
    assert "last_value=3 is_called=true" in diffs[0].detail and "last_value=1 is_called=false" in diffs[0].detail


def test_missing_and_extra_tables_and_large_objects() -> None:
    restored = snap(tables={"shop.orders": TableSum(3, "123"), "shop.extra": TableSum(0, "0")}, large_objects=(0, "0"))
    kinds = {(d.kind, d.object) for d in compare(snap(), restored)}
    assert kinds == {("missing_table", "shop.customers"), ("extra_table", "shop.extra"),
                     ("large_objects", "pg_largeobject")}


def test_compare_can_be_limited_to_stable_tables() -> None:
    restored = snap(tables={"shop.orders": TableSum(9, "1"), "shop.customers": TableSum(2, "-77")})
    assert compare(snap(), restored, tables=["shop.customers"]) == []
    assert [d.object for d in compare(snap(), restored)] == ["shop.orders"]


def test_schema_is_split_per_object_without_noise() -> None:
    objs = normalise_schema(DUMP)
    assert set(objs) == {"SCHEMA -.shop", "TABLE shop.orders", "INDEX shop.orders_amount_idx"}  # no statistics
    text = "\n".join(objs.values())
    for noise in ("restrict", "Dumped", "SET ", "set_config", "--"):
        assert noise not in text
    assert "ALTER SCHEMA shop OWNER TO postgres;" in objs["SCHEMA -.shop"]


def test_schema_noise_alone_is_no_difference() -> None:
    other = DUMP.replace("AbC123", "ZzZ999").replace("15.18", "18.6").replace("SET statement_timeout = 0;", "")
    assert schema_differences(normalise_schema(DUMP), normalise_schema(other)) == []


def test_schema_differences_name_the_object() -> None:
    a = normalise_schema(DUMP)
    b = normalise_schema(DUMP.replace("USING btree (amount)", "USING btree (id)"))
    c = {k: v for k, v in a.items() if not k.startswith("INDEX")}
    diffs = schema_differences(a, b)
    assert [d.object for d in diffs] == ["INDEX shop.orders_amount_idx"] and "(id)" in diffs[0].detail
    assert [(d.object, d.detail) for d in schema_differences(a, c)] == [
        ("INDEX shop.orders_amount_idx", "missing after restore")]
    full_a, full_b = snap(schema=a), snap(schema=c)
    assert [d.kind for d in compare(full_a, full_b)] == ["schema"]


def test_fingerprint_is_order_independent_and_sensitive() -> None:
    a = snap(schema={"TABLE x.a": "CREATE TABLE x.a ();", "TABLE x.b": "CREATE TABLE x.b ();"})
    b = snap(schema=dict(reversed(list(a.schema.items()))))
    c = snap(schema={"TABLE x.a": "CREATE TABLE x.a ();"})
    assert a.schema_fingerprint() == b.schema_fingerprint() != c.schema_fingerprint()


def test_hash_query_is_one_statement_with_quoted_identifiers() -> None:
    q = hash_query([("table", "Odd Schema", 'ta"ble'), ("sequence", "s", "seq"), ("large_objects", "", "")])
    text = q.as_string(None)
    assert text.count("UNION ALL") == 2
    assert '"Odd Schema"."ta""ble"' in text and "FROM ONLY" in text
    assert hash_query([]) is None
