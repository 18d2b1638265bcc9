"""schema suite: table design that is cheap to get right before production and expensive after
(SCH001–SCH011).

Every check is one catalog query (SQL next to it) that returns a single row: `tables` (the
application's table count: none → na, wrong database), the population it judged, and the offenders as
JSON. Works as a non-superuser holding pg_monitor; what that role cannot read is listed or `na`.
System schemas and extension-owned objects are skipped; partitions are judged at their parent.
Object strings are quoted by the server exactly like quote_ident (see _sql_helpers for the formats).
"""

from __future__ import annotations

from typing import Any

import pytest

from _sql_helpers import (DOMAIN_BASE, SEQUENCE_FED, STATS_AGE, TABLE_COUNT, USER_SCHEMA, allowed_by, count,
                          fetch_one, forbids_negatives, matching_pattern, overflow_eta,
                          require_tables, user_tables)


def _objects(rows: list[dict[str, Any]]) -> list[str]:
    """Offending object strings, each once, in the query's order."""
    return list(dict.fromkeys(r["object"] for r in rows))


def _some(objects: list[str], n: int = 5) -> str:
    return ", ".join(objects[:n]) + (f" and {len(objects) - n} more" if len(objects) > n else "")


# --------------------------------------------------------------------------------------------- SCH001
SCH001_SQL = f"""
WITH {user_tables('t')}
SELECT {TABLE_COUNT} AS tables,
       (SELECT count(*) FROM t) AS checked,
       (SELECT coalesce(json_agg(x ORDER BY x.object), '[]') FROM (
          SELECT t.qname AS object, t.relkind::text AS relkind,
                 -- a unique, non-partial index on NOT NULL columns can become the key without a rebuild
                 (SELECT json_build_object(
                           'index', format('%I', ic.relname),
                           'columns', (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.ord)
                                       FROM unnest(i.indkey) WITH ORDINALITY k(attnum, ord)
                                       JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum))
                  FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
                  WHERE i.indrelid = t.oid AND i.indisunique AND i.indisvalid AND i.indpred IS NULL
                    AND i.indexprs IS NULL AND i.indnkeyatts = i.indnatts
                    AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = i.indrelid
                                    AND a.attnum = ANY (i.indkey) AND NOT a.attnotnull)
                  ORDER BY i.indnatts, ic.relname LIMIT 1) AS candidate
          FROM t
          WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.conrelid = t.oid AND k.contype = 'p')
       ) x) AS rows
"""


def _pk_remedy(r: dict[str, Any]) -> str:
    c = r.get("candidate")
    if c and r["relkind"] == "r":
        return f"ALTER TABLE {r['object']} ADD PRIMARY KEY USING INDEX {c['index']};"
    if c:
        return f"ALTER TABLE {r['object']} ADD PRIMARY KEY ({c['columns']});"
    return (f"ALTER TABLE {r['object']} ADD PRIMARY KEY (<key columns>); -- or add a surrogate key: "
            f"ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY")


@pytest.mark.pgready(id="SCH001")
def test_sch001_tables_have_primary_key(pgready_conn, pgready_record):
    """Without a primary key rows cannot be addressed reliably: logical replication cannot update or
    delete them, and duplicates creep in."""
    row = fetch_one(pgready_conn, SCH001_SQL, pgready_record)
    require_tables(pgready_record, row)
    bad = row["rows"]
    pgready_record.add(tables_checked=row["checked"])
    if bad:
        objs = _objects(bad)
        pgready_record.fail(f"{count(len(objs), 'table')} of {row['checked']} without a primary key: {_some(objs)}",
                            objects=objs, remedy=[_pk_remedy(r) for r in bad],
                            unique_index_candidates={r["object"]: r["candidate"] for r in bad if r.get("candidate")})
    pgready_record.summary(f"all {row['checked']} tables have a primary key")


# --------------------------------------------------------------------------------------------- SCH002
SCH002_SQL = f"""
WITH RECURSIVE {DOMAIN_BASE}, {user_tables('t')}, {SEQUENCE_FED}, {STATS_AGE}
SELECT {TABLE_COUNT} AS tables,
       (SELECT age_s FROM stats) AS stats_age_s,
       (SELECT coalesce(json_agg(x ORDER BY x.object), '[]') FROM (
          SELECT t.qname || '.' || quote_ident(a.attname) AS object, t.qname AS "table",
                 quote_ident(a.attname) AS "column", fed.how,
                 format('%I.%I', sn.nspname, s.relname) AS sequence, quote_ident(sn.nspname) AS sequence_schema,
                 format_type(a.atttypid, a.atttypmod) AS column_type,
                 format_type(sq.seqtypid, NULL) AS sequence_type,
                 CASE coalesce(fb.base, a.atttypid) WHEN 'int2'::regtype THEN 'int2' WHEN 'int4'::regtype THEN 'int4'
                      WHEN 'int8'::regtype THEN 'int8' END AS int_type,
                 sq.seqmax::numeric AS seqmax, sq.seqmin::numeric AS seqmin, sq.seqincrement::numeric AS increment,
                 sq.seqcycle AS cycle,
                 -- pg_sequences.last_value is NULL both for "never used" and "no privilege": tell them apart
                 pg_catalog.has_sequence_privilege(s.oid, 'SELECT,USAGE') AS readable,
                 CASE WHEN pg_catalog.has_sequence_privilege(s.oid, 'SELECT,USAGE')
                      THEN pg_catalog.pg_sequence_last_value(s.oid)::numeric END AS last_value,
                 -- pg_stat_get_tuples_inserted is pg_stat_all_tables.n_tup_ins (partitions summed)
                 CASE WHEN t.relkind = 'p'
                      THEN (SELECT sum(pg_catalog.pg_stat_get_tuples_inserted(pt.relid))
                            FROM pg_catalog.pg_partition_tree(t.oid) pt)
                      ELSE pg_catalog.pg_stat_get_tuples_inserted(t.oid)
                 END AS inserts
          FROM fed JOIN t ON t.oid = fed.relid
          JOIN pg_catalog.pg_attribute a ON a.attrelid = fed.relid AND a.attnum = fed.attnum AND NOT a.attisdropped
          LEFT JOIN final_base fb ON fb.typid = a.atttypid
          JOIN pg_catalog.pg_class s ON s.oid = fed.seqid
          JOIN pg_catalog.pg_namespace sn ON sn.oid = s.relnamespace
          JOIN pg_catalog.pg_sequence sq ON sq.seqrelid = s.oid
       ) x) AS rows
"""

INT_RANGE = {"int2": (-32768, 32767), "int4": (-2147483648, 2147483647),
             "int8": (-9223372036854775808, 9223372036854775807)}


def sequence_usage(r: dict[str, Any], stats_age_s: float | None) -> dict[str, Any]:
    """How much of its range a sequence-fed column has used: of the column type's range, and of the
    limit it will hit first (the sequence's MAXVALUE when that is lower; a CYCLE sequence only
    fails when it overflows the column)."""
    inc = float(r["increment"])
    up = inc > 0
    last = float(r["last_value"]) if r["last_value"] is not None else None
    type_lim = INT_RANGE[r["int_type"]][1 if up else 0] if r["int_type"] else None
    seq_lim = float(r["seqmax"] if up else r["seqmin"])
    if r["cycle"]:
        limit, limiter = (type_lim, "column type") if type_lim is not None and abs(type_lim) <= abs(seq_lim) \
            else (None, "none (the sequence cycles)")
    elif type_lim is not None and abs(type_lim) <= abs(seq_lim):
        limit, limiter = type_lim, "column type"
    else:
        limit, limiter = seq_lim, "sequence MAXVALUE" if up else "sequence MINVALUE"
    used = max(last / limit, 0.0) if (last is not None and limit) else 0.0
    out: dict[str, Any] = {"object": r["object"], "sequence": r["sequence"], "fed_by": r["how"],
                           "column_type": r["column_type"], "sequence_type": r["sequence_type"],
                           "last_value": int(last) if last is not None else None,
                           "limit": int(limit) if limit is not None else None, "limited_by": limiter,
                           "used": used, "used_pct": round(100 * used, 2)}
    if type_lim is not None:
        out["pct_of_type_range"] = round(100 * max((last or 0) / type_lim, 0.0), 2)
    if limit is not None and last is not None:
        eta, note = overflow_eta((limit - last) / abs(inc) if up else (last - limit) / abs(inc), abs(inc),
                                 r.get("inserts"), stats_age_s)
        out["days_to_overflow"] = round(eta, 1) if eta is not None else None
        out["time_to_overflow"] = note
    elif last is None:
        out["time_to_overflow"] = "never used yet"
    return out


def _widen_remedy(r: dict[str, Any], u: dict[str, Any]) -> str:
    if u["limited_by"] == "column type":
        fix = f"ALTER TABLE {r['table']} ALTER COLUMN {r['column']} TYPE bigint;"
        if r["sequence_type"] in ("smallint", "integer"):
            fix += f" ALTER SEQUENCE {r['sequence']} AS bigint;"
        if r["int_type"] == "int8":
            fix = f"plan a key migration for {r['object']} (bigint is the widest integer type)"
        return fix + " -- rewrites the table and its indexes: plan the lock or use a shadow column"
    return f"ALTER SEQUENCE {r['sequence']} NO MAXVALUE; -- or AS bigint if the sequence type is the limit"


@pytest.mark.pgready(id="SCH002")
def test_sch002_sequences_far_from_overflow(pgready_conn, pgready_record, pgready_settings):
    """A sequence-fed key that reaches its type's limit stops every insert: an outage with a long fix."""
    s = pgready_settings
    row = fetch_one(pgready_conn, SCH002_SQL, pgready_record)
    require_tables(pgready_record, row)
    rows = row["rows"]
    if not rows:
        pgready_record.add(columns_checked=0)
        pgready_record.summary("no sequence-fed or identity columns")
        return
    unreadable = [r for r in rows if not r["readable"]]
    readable = [r for r in rows if r["readable"]]
    if unreadable:
        schemas = sorted({r["sequence_schema"] for r in unreadable})
        pgready_record.add(unreadable=_objects(unreadable),
                           unreadable_remedy=[f"GRANT SELECT ON ALL SEQUENCES IN SCHEMA {n} TO <this role>;"
                                              for n in schemas] + ["or GRANT pg_read_all_data TO <this role>; (PG14+)"])
    if not readable:
        pgready_record.na(f"none of the {len(rows)} sequences feeding columns is readable by this role "
                          f"(pg_sequences.last_value is NULL without SELECT/USAGE): GRANT SELECT ON the sequences "
                          f"(or pg_read_all_data) to it")
    usage = {r["object"]: sequence_usage(r, row["stats_age_s"]) for r in readable}
    failing = sorted((r for r in readable if usage[r["object"]]["used"] >= s.seq_usage_fail),
                     key=lambda r: -usage[r["object"]]["used"])
    warning = [usage[r["object"]] for r in readable if s.seq_usage_warn <= usage[r["object"]]["used"] < s.seq_usage_fail]
    worst = max(usage.values(), key=lambda u: u["used"])
    pgready_record.metric("max_used_pct", worst["used_pct"])
    pgready_record.add(columns_checked=len(readable), threshold_pct=round(100 * s.seq_usage_fail, 2),
                       warn_pct=round(100 * s.seq_usage_warn, 2), worst=worst)
    if warning:
        pgready_record.add(warnings=[{k: v for k, v in u.items() if k != "used"} for u in warning])
    note = f"; {count(len(unreadable), 'unreadable sequence')} listed" if unreadable else ""
    if failing:
        details = [{k: v for k, v in usage[r["object"]].items() if k != "used"} for r in failing]
        objs = _objects(failing)
        first = usage[objs[0]]
        pgready_record.fail(
            f"{count(len(objs), 'sequence-fed column')} at ≥ {100 * s.seq_usage_fail:.0f} % of the usable range: "
            f"{first['object']} at {first['used_pct']} % of its {first['limited_by']} limit "
            f"({first.get('time_to_overflow', '')}){note}",
            objects=objs, remedy=[_widen_remedy(r, usage[r["object"]]) for r in failing], columns=details)
    warn_txt = f"; {len(warning)} above the {100 * s.seq_usage_warn:.0f} % warning level" if warning else ""
    pgready_record.summary(f"{count(len(readable), 'sequence-fed column')} below {100 * s.seq_usage_fail:.0f} % of their range "
                           f"(highest: {worst['object']} {worst['used_pct']} %){warn_txt}{note}")


# --------------------------------------------------------------------------------------------- SCH003
SCH003_SQL = f"""
WITH RECURSIVE {DOMAIN_BASE}, {user_tables('t', partitions=True)}, {SEQUENCE_FED},
ints(typ, width) AS (VALUES ('int2'::regtype::oid, 2), ('int4'::regtype::oid, 4), ('int8'::regtype::oid, 8))
SELECT {TABLE_COUNT} AS tables,
       (SELECT count(*) FROM pg_catalog.pg_constraint k JOIN t ON t.oid = k.conrelid
        WHERE k.contype IN ('p', 'f') AND k.conparentid = 0) AS checked,
       (SELECT coalesce(json_agg(x ORDER BY x.object, x.kind DESC), '[]') FROM (
          -- a narrow primary key: single-column, or a sequence-fed column of a composite key
          SELECT t.qname || '.' || quote_ident(a.attname) AS object, 'primary key' AS kind, t.qname AS "table",
                 quote_ident(a.attname) AS "column", format_type(a.atttypid, a.atttypmod) AS type,
                 NULL::text AS "references"
          FROM pg_catalog.pg_constraint k JOIN t ON t.oid = k.conrelid
          JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = ANY (k.conkey)
          LEFT JOIN final_base fb ON fb.typid = a.atttypid
          WHERE k.contype = 'p' AND k.conparentid = 0
            AND coalesce(fb.base, a.atttypid) IN ('int2'::regtype, 'int4'::regtype)
            AND (cardinality(k.conkey) = 1
                 OR EXISTS (SELECT 1 FROM fed WHERE fed.relid = a.attrelid AND fed.attnum = a.attnum))
          UNION ALL
          -- an FK column narrower than the key it references (int4 → int8)
          SELECT t.qname || '.' || quote_ident(a.attname), 'foreign key', t.qname, quote_ident(a.attname),
                 format_type(a.atttypid, a.atttypmod),
                 format('%I.%I.%I', rn.nspname, rc.relname, r.attname) || ' ' || format_type(r.atttypid, r.atttypmod)
          FROM pg_catalog.pg_constraint k JOIN t ON t.oid = k.conrelid
          CROSS JOIN LATERAL unnest(k.conkey, k.confkey) AS u(attnum, refnum)
          JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.attnum
          JOIN pg_catalog.pg_attribute r ON r.attrelid = k.confrelid AND r.attnum = u.refnum
          JOIN pg_catalog.pg_class rc ON rc.oid = k.confrelid
          JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
          LEFT JOIN final_base fa ON fa.typid = a.atttypid
          LEFT JOIN final_base fr ON fr.typid = r.atttypid
          JOIN ints ia ON ia.typ = coalesce(fa.base, a.atttypid)
          JOIN ints ir ON ir.typ = coalesce(fr.base, r.atttypid)
          WHERE k.contype = 'f' AND k.conparentid = 0 AND ia.width < ir.width
       ) x) AS rows
"""


@pytest.mark.pgready(id="SCH003")
def test_sch003_no_narrow_integer_keys(pgready_conn, pgready_record):
    """int4 keys run out at 2^31; widening a busy key later rewrites the table and every referencing one."""
    row = fetch_one(pgready_conn, SCH003_SQL, pgready_record)
    require_tables(pgready_record, row)
    bad = row["rows"]
    pgready_record.add(keys_checked=row["checked"])
    if bad:
        objs = _objects(bad)
        pgready_record.fail(
            f"{count(len(objs), 'integer key column')} narrower than bigint: {_some(objs)}", objects=objs,
            remedy=[f"ALTER TABLE {r['table']} ALTER COLUMN {r['column']} TYPE bigint; -- rewrites the table" for r in bad],
            columns=[{k: v for k, v in r.items() if v is not None} for r in bad])
    pgready_record.summary(f"no int2/int4 primary key or narrowing FK column among {row['checked']} keys")


# --------------------------------------------------------------------------------------------- SCH004
SCH004_SQL = f"""
WITH {user_tables('t', partitions=True)},
doms AS (
  SELECT ty.oid, format('%I.%I', n.nspname, ty.typname) AS qname
  FROM pg_catalog.pg_type ty JOIN pg_catalog.pg_namespace n ON n.oid = ty.typnamespace
  WHERE ty.typtype = 'd' AND {USER_SCHEMA}
    AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e WHERE e.classid = 'pg_catalog.pg_type'::regclass
                    AND e.objid = ty.oid AND e.deptype = 'e')),
cons AS (
  -- judged where declared: not the clones on partitions (conparentid) nor inherited copies (conislocal)
  SELECT k.oid, k.conname, k.contype, k.convalidated, k.contypid, coalesce(t.qname, d.qname) AS owner
  FROM pg_catalog.pg_constraint k
  LEFT JOIN t ON t.oid = k.conrelid AND k.conparentid = 0 AND k.conislocal
  LEFT JOIN doms d ON d.oid = k.contypid
  WHERE t.oid IS NOT NULL OR d.oid IS NOT NULL)
SELECT {TABLE_COUNT} AS tables,
       (SELECT count(*) FROM cons) AS checked,
       (SELECT coalesce(json_agg(x ORDER BY x.object), '[]') FROM (
          SELECT c.owner || '.' || quote_ident(c.conname) AS object, c.owner, quote_ident(c.conname) AS name,
                 c.contype::text AS contype, c.contypid <> 0 AS on_domain, c.convalidated AS validated,
                 -- PG18: NOT ENFORCED constraints are also NOT VALID; probe the column, do not compare versions
                 coalesce((to_jsonb(k) ->> 'conenforced')::bool, true) AS enforced,
                 pg_catalog.pg_get_constraintdef(c.oid) AS definition
          FROM cons c JOIN pg_catalog.pg_constraint k ON k.oid = c.oid
          WHERE NOT c.convalidated
       ) x) AS rows
"""

CONTYPES = {"c": "check", "f": "foreign key", "n": "not null", "p": "primary key", "u": "unique", "x": "exclusion",
            "t": "constraint trigger"}


@pytest.mark.pgready(id="SCH004")
def test_sch004_no_not_valid_constraints(pgready_conn, pgready_record):
    """A NOT VALID constraint guards new rows only: existing rows were never checked, and the planner
    cannot rely on it."""
    row = fetch_one(pgready_conn, SCH004_SQL, pgready_record)
    require_tables(pgready_record, row)
    rows = row["rows"]
    not_enforced = [r for r in rows if not r["enforced"]]
    not_valid = [r for r in rows if r["enforced"]]
    pgready_record.add(constraints_checked=row["checked"])
    if not_enforced:
        pgready_record.add(not_enforced=[{"object": r["object"], "type": CONTYPES.get(r["contype"], r["contype"]),
                                          "definition": r["definition"]} for r in not_enforced])
    if not_valid:
        objs = _objects(not_valid)
        pgready_record.fail(
            f"{count(len(objs), 'NOT VALID constraint')} (existing rows never checked): {_some(objs)}", objects=objs,
            remedy=[f"ALTER {'DOMAIN' if r['on_domain'] else 'TABLE'} {r['owner']} VALIDATE CONSTRAINT {r['name']};"
                    for r in not_valid],
            constraints=[{"object": r["object"], "type": CONTYPES.get(r["contype"], r["contype"]),
                          "definition": r["definition"]} for r in not_valid])
    extra = f"; {count(len(not_enforced), 'NOT ENFORCED constraint')} listed" if not_enforced else ""
    pgready_record.summary(f"all {row['checked']} constraints are validated{extra}")


# --------------------------------------------------------------------------------------------- SCH005
SCH005_SQL = f"""
WITH {user_tables('t', partitions=True)},
fk AS (SELECT k.* FROM pg_catalog.pg_constraint k JOIN t ON t.oid = k.conrelid
       WHERE k.contype = 'f' AND k.conparentid = 0)
SELECT {TABLE_COUNT} AS tables,
       (SELECT count(*) FROM fk) AS checked,
       (SELECT coalesce(json_agg(x ORDER BY x.object), '[]') FROM (
          SELECT t.qname || '.' || quote_ident(a.attname) AS object, t.qname AS "table",
                 quote_ident(a.attname) AS "column", quote_ident(fk.conname) AS "constraint",
                 format_type(a.atttypid, a.atttypmod) AS type,
                 format('%I.%I.%I', rn.nspname, rc.relname, r.attname) AS "references",
                 format_type(r.atttypid, r.atttypmod) AS referenced_type
          FROM fk JOIN t ON t.oid = fk.conrelid
          CROSS JOIN LATERAL unnest(fk.conkey, fk.confkey) AS u(attnum, refnum)
          JOIN pg_catalog.pg_attribute a ON a.attrelid = fk.conrelid AND a.attnum = u.attnum
          JOIN pg_catalog.pg_attribute r ON r.attrelid = fk.confrelid AND r.attnum = u.refnum
          JOIN pg_catalog.pg_class rc ON rc.oid = fk.confrelid
          JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
          WHERE (a.atttypid, a.atttypmod) IS DISTINCT FROM (r.atttypid, r.atttypmod)
       ) x) AS rows
"""


@pytest.mark.pgready(id="SCH005")
def test_sch005_fk_types_match(pgready_conn, pgready_record):
    """A type mismatch between an FK and its key makes every lookup cast (indexes may go unused) and lets
    the referencing side hold values the key cannot, or the reverse."""
    row = fetch_one(pgready_conn, SCH005_SQL, pgready_record)
    require_tables(pgready_record, row)
    bad = row["rows"]
    pgready_record.add(foreign_keys_checked=row["checked"])
    if bad:
        objs = _objects(bad)
        pgready_record.fail(
            f"{count(len(objs), 'FK column')} typed unlike the referenced key: "
            + "; ".join(f"{r['object']} {r['type']} → {r['references']} {r['referenced_type']}" for r in bad[:5]),
            objects=objs,
            remedy=[f"ALTER TABLE {r['table']} ALTER COLUMN {r['column']} TYPE {r['referenced_type']};" for r in bad],
            mismatches=bad)
    pgready_record.summary(f"all columns of {row['checked']} foreign keys match their key's type and typmod")


# --------------------------------------------------------------------------------------------- SCH006
SCH006_SQL = f"""
WITH RECURSIVE {DOMAIN_BASE}, {user_tables('t')}
SELECT {TABLE_COUNT} AS tables,
       (SELECT count(*) FROM t JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid
        WHERE a.attnum > 0 AND NOT a.attisdropped) AS checked,
       (SELECT coalesce(json_agg(x ORDER BY x.object), '[]') FROM (
          SELECT t.qname || '.' || quote_ident(a.attname) AS object, t.qname AS "table",
                 quote_ident(a.attname) AS "column", t.nspname || '.' || t.relname || '.' || a.attname AS plain,
                 format_type(a.atttypid, a.atttypmod) AS type
          FROM t JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped
          LEFT JOIN final_base fb ON fb.typid = a.atttypid
          JOIN pg_catalog.pg_type ty ON ty.oid = coalesce(fb.base, a.atttypid)
          WHERE ty.oid = 'timestamp'::regtype OR (ty.typcategory = 'A' AND ty.typelem = 'timestamp'::regtype)
       ) x) AS rows
"""


@pytest.mark.pgready(id="SCH006")
def test_sch006_no_timestamp_without_time_zone(pgready_conn, pgready_record, pgready_settings):
    """`timestamp` stores wall-clock time without a zone: values shift silently when a client or server
    time zone differs, and DST makes some of them ambiguous."""
    row = fetch_one(pgready_conn, SCH006_SQL, pgready_record)
    require_tables(pgready_record, row)
    allow = pgready_settings.timestamp_allow
    bad, allowed = [], []
    for r in row["rows"]:
        g = allowed_by(allow, r["plain"], r["object"])
        (allowed if g else bad).append(r if not g else f"{r['object']} (timestamp_allow {g!r})")
    pgready_record.add(columns_checked=row["checked"])
    if allowed:
        pgready_record.add(allowed=allowed)
    if bad:
        objs = _objects(bad)
        pgready_record.fail(
            f"{count(len(objs), 'timestamp without time zone column')}: {_some(objs)}", objects=objs,
            remedy=[f"ALTER TABLE {r['table']} ALTER COLUMN {r['column']} TYPE timestamptz USING {r['column']} "
                    f"AT TIME ZONE 'UTC'; -- state the zone the values were written in" for r in bad]
            + ["or allow-list deliberate ones: timestamp_allow = [\"schema.table.column\"]"])
    pgready_record.summary(f"no timestamp-without-time-zone column among {row['checked']}"
                           + (f" ({len(allowed)} allow-listed)" if allowed else ""))


# ---------------------------------------------------------------------------------- SCH007 / SCH008
# numeric-like columns that are not keys (ids are neither money nor quantities); names are matched in
# Python (matching_pattern: whole words, not substrings)
_NUMERIC_COLUMNS = """
          FROM t JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped
          LEFT JOIN final_base fb ON fb.typid = a.atttypid
          JOIN pg_catalog.pg_type bt ON bt.oid = coalesce(fb.base, a.atttypid)
          WHERE bt.typnamespace = 'pg_catalog'::regnamespace
            AND bt.typname IN ('int2', 'int4', 'int8', 'numeric', 'float4', 'float8', 'money')
            AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.conrelid = t.oid
                            AND k.contype IN ('p', 'f') AND a.attnum = ANY (k.conkey))"""

SCH007_SQL = f"""
WITH RECURSIVE {DOMAIN_BASE}, {user_tables('t')}
SELECT {TABLE_COUNT} AS tables,
       (SELECT coalesce(json_agg(x ORDER BY x.object), '[]') FROM (
          SELECT t.qname || '.' || quote_ident(a.attname) AS object, t.qname AS "table",
                 quote_ident(a.attname) AS "column", a.attname AS name, bt.typname::text AS base,
                 format_type(a.atttypid, a.atttypmod) AS type
          {_NUMERIC_COLUMNS}
       ) x) AS rows
"""

INEXACT = {"float4": "real (binary floating point)", "float8": "double precision (binary floating point)",
           "money": "money (locale-dependent, fixed 2 decimals)"}


@pytest.mark.pgready(id="SCH007")
def test_sch007_money_is_numeric(pgready_conn, pgready_record, pgready_settings):
    """Binary floats cannot represent cents (0.1 + 0.2 ≠ 0.3) and `money` depends on lc_monetary:
    sums drift and restores into another locale change values."""
    row = fetch_one(pgready_conn, SCH007_SQL, pgready_record)
    require_tables(pgready_record, row)
    patterns = pgready_settings.money_patterns
    money = [r for r in row["rows"] if matching_pattern(r["name"], patterns)]
    bad = [r for r in money if r["base"] in INEXACT]
    pgready_record.add(money_columns_checked=len(money), patterns=patterns)
    if bad:
        objs = _objects(bad)
        pgready_record.fail(
            f"{count(len(objs), 'money-like column')} not stored as exact numbers: "
            + "; ".join(f"{r['object']} is {INEXACT[r['base']]}" for r in bad[:5]), objects=objs,
            remedy=[f"ALTER TABLE {r['table']} ALTER COLUMN {r['column']} TYPE numeric(14, 2);" for r in bad],
            columns=[{"object": r["object"], "type": r["type"]} for r in bad])
    if not money:
        pgready_record.summary(f"no numeric column is named like money (patterns: {', '.join(patterns)})")
        return
    pgready_record.summary(f"all {len(money)} money-like columns are numeric or integer")


SCH008_SQL = f"""
WITH RECURSIVE {DOMAIN_BASE}, {user_tables('t')}
SELECT {TABLE_COUNT} AS tables,
       (SELECT coalesce(json_agg(x ORDER BY x.object), '[]') FROM (
          SELECT t.qname || '.' || quote_ident(a.attname) AS object, t.qname AS "table",
                 quote_ident(a.attname) AS "column", a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type,
                 quote_ident(left(t.relname, 28) || '_' || left(a.attname, 20) || '_nonnegative') AS check_name,
                 (SELECT coalesce(json_agg(pg_catalog.pg_get_constraintdef(k.oid)), '[]')
                  FROM pg_catalog.pg_constraint k
                  WHERE k.conrelid = t.oid AND k.contype = 'c' AND a.attnum = ANY (k.conkey)) AS checks,
                 -- a domain's CHECKs, and those of the domains it is built on (index lookups, domains only)
                 CASE WHEN fb.typid IS NULL THEN '[]'::json ELSE
                   (SELECT coalesce(json_agg(pg_catalog.pg_get_constraintdef(k.oid)), '[]')
                    FROM pg_catalog.pg_constraint k
                    WHERE k.contype = 'c' AND k.contypid = ANY (a.atttypid || ARRAY(
                          SELECT d.base FROM domain_base d WHERE d.typid = a.atttypid)))
                 END AS domain_checks
          {_NUMERIC_COLUMNS}
       ) x) AS rows
"""


@pytest.mark.pgready(id="SCH008")
def test_sch008_quantities_cannot_go_negative(pgready_conn, pgready_record, pgready_settings):
    """A negative price or stock level is a bug the database can refuse; without a CHECK it is found
    by accounting."""
    row = fetch_one(pgready_conn, SCH008_SQL, pgready_record)
    require_tables(pgready_record, row)
    patterns = list(pgready_settings.money_patterns) + list(pgready_settings.quantity_patterns)
    judged = [r for r in row["rows"] if matching_pattern(r["name"], patterns)]
    bad = [r for r in judged
           if not forbids_negatives(r["checks"], r["column"]) and not forbids_negatives(r["domain_checks"], "VALUE")]
    pgready_record.add(columns_checked=len(judged), patterns=patterns)
    if bad:
        objs = _objects(bad)
        pgready_record.fail(
            f"{count(len(objs), 'quantity/price column')} accepting negative values: {_some(objs)}", objects=objs,
            remedy=[f"ALTER TABLE {r['table']} ADD CONSTRAINT {r['check_name']} CHECK ({r['column']} >= 0) NOT VALID; "
                    f"ALTER TABLE {r['table']} VALIDATE CONSTRAINT {r['check_name']};" for r in bad],
            columns=[{"object": r["object"], "type": r["type"], "checks": r["checks"] + r["domain_checks"]} for r in bad])
    if not judged:
        pgready_record.summary(f"no numeric column is named like a quantity or price (patterns: {', '.join(patterns)})")
        return
    pgready_record.summary(f"all {len(judged)} quantity/price columns carry a CHECK (or domain) forbidding negatives")


# --------------------------------------------------------------------------------------------- SCH009
SCH009_SQL = f"""
WITH {user_tables('t', kinds="'r', 'p', 'v', 'f'", partitions=True)}
SELECT {TABLE_COUNT} AS tables,
       (SELECT count(*) FROM pg_catalog.pg_trigger tg JOIN t ON t.oid = tg.tgrelid) AS checked,
       (SELECT coalesce(json_agg(x ORDER BY x.object), '[]') FROM (
          SELECT CASE WHEN tg.tgisinternal AND k.oid IS NOT NULL THEN t.qname || '.' || quote_ident(k.conname)
                      ELSE t.qname || '.' || quote_ident(tg.tgname) END AS object,
                 t.qname AS "table", quote_ident(tg.tgname) AS trigger, tg.tgisinternal AS internal,
                 k.contype::text AS contype, tg.tgenabled::text AS enabled
          FROM pg_catalog.pg_trigger tg JOIN t ON t.oid = tg.tgrelid
          LEFT JOIN pg_catalog.pg_constraint k ON k.oid = tg.tgconstraint
          WHERE tg.tgenabled IN ('D', 'R')
            -- a partition's clone of a parent's trigger disabled with it is reported at the parent
            AND NOT (tg.tgparentid <> 0 AND EXISTS (SELECT 1 FROM pg_catalog.pg_trigger p
                                                   WHERE p.oid = tg.tgparentid AND p.tgenabled = tg.tgenabled))
       ) x) AS rows
"""


@pytest.mark.pgready(id="SCH009")
def test_sch009_no_disabled_triggers(pgready_conn, pgready_record):
    """A disabled trigger is logic that silently stopped running; a disabled FK trigger lets orphans in
    that no later VALIDATE will notice."""
    row = fetch_one(pgready_conn, SCH009_SQL, pgready_record)
    require_tables(pgready_record, row)
    disabled = [r for r in row["rows"] if r["enabled"] == "D"]
    replica_only = [r for r in row["rows"] if r["enabled"] == "R"]
    pgready_record.add(triggers_checked=row["checked"])
    if replica_only:
        pgready_record.add(replica_only=_objects(replica_only),
                           replica_only_note="ENABLE REPLICA triggers fire only with session_replication_role = replica")
    if disabled:
        objs = _objects(disabled)
        fk = _objects([r for r in disabled if r["internal"] and r["contype"] == "f"])
        remedy = []
        for r in disabled:
            if r["internal"]:
                remedy.append(f"ALTER TABLE {r['table']} ENABLE TRIGGER {r['trigger']}; -- superuser; enforces "
                              f"{r['object']} again, but rows written meanwhile were never checked: drop and re-add "
                              f"the constraint NOT VALID, then VALIDATE CONSTRAINT")
            else:
                remedy.append(f"ALTER TABLE {r['table']} ENABLE TRIGGER {r['trigger']};")
        pgready_record.fail(
            f"{count(len(objs), 'disabled trigger')} ({len(fk)} enforcing foreign keys): {_some(objs)}", objects=objs,
            remedy=list(dict.fromkeys(remedy)),
            triggers=[{"object": r["object"], "trigger": r["trigger"],
                       "kind": "foreign key enforcement" if r["internal"] and r["contype"] == "f"
                       else "internal" if r["internal"] else "user"} for r in disabled])
    pgready_record.summary(f"none of {row['checked']} triggers is disabled")


# --------------------------------------------------------------------------------------------- SCH010
SCH010_SQL = f"""
WITH {user_tables('t', partitions=True)}
SELECT {TABLE_COUNT} AS tables,
       (SELECT count(*) FROM t) AS checked,
       (SELECT coalesce(json_agg(x ORDER BY x.object), '[]') FROM (
          SELECT t.qname AS object, t.nspname || '.' || t.relname AS plain
          FROM t WHERE t.relpersistence = 'u'
       ) x) AS rows
"""


@pytest.mark.pgready(id="SCH010")
def test_sch010_no_unlogged_tables(pgready_conn, pgready_record, pgready_settings):
    """An UNLOGGED table is truncated by crash recovery and is empty on every standby and restored backup."""
    row = fetch_one(pgready_conn, SCH010_SQL, pgready_record)
    require_tables(pgready_record, row)
    bad, allowed = [], []
    for r in row["rows"]:
        g = allowed_by(pgready_settings.unlogged_allow, r["plain"], r["object"])
        (allowed if g else bad).append(r if not g else f"{r['object']} (unlogged_allow {g!r})")
    pgready_record.add(tables_checked=row["checked"])
    if allowed:
        pgready_record.add(allowed=allowed)
    if bad:
        objs = _objects(bad)
        pgready_record.fail(
            f"{count(len(objs), 'UNLOGGED table')} (emptied by a crash, absent on standbys): {_some(objs)}", objects=objs,
            remedy=[f"ALTER TABLE {o} SET LOGGED;" for o in objs]
            + ["or allow-list disposable ones: unlogged_allow = [\"schema.table\"]"])
    pgready_record.summary(f"no UNLOGGED table among {row['checked']}"
                           + (f" ({len(allowed)} allow-listed)" if allowed else ""))


# --------------------------------------------------------------------------------------------- SCH011
# pg_upgrade refuses these reg* types in user tables because the OIDs they store are not preserved:
# src/bin/pg_upgrade/check.c (data_types_usage_checks, "Checking for reg* data types in user tables";
# check_for_reg_data_type_usage in version.c/check.c before PG17): regcollation, regconfig,
# regdictionary, regnamespace, regoper, regoperator, regproc, regprocedure. regclass, regrole and regtype
# are fine (pg_class, pg_authid and pg_type OIDs are preserved). Like pg_upgrade, the type is also found
# inside domains, arrays, composite types and ranges, in tables, materialized views and indexes.
PG_UPGRADE_BLOCKED_REG_TYPES = ("regcollation", "regconfig", "regdictionary", "regnamespace", "regoper",
                                "regoperator", "regproc", "regprocedure")

SCH011_SQL = f"""
WITH RECURSIVE oids AS (
  SELECT t.oid FROM pg_catalog.pg_type t
  WHERE t.typnamespace = 'pg_catalog'::regnamespace
    AND t.typname IN ({", ".join(f"'{n}'" for n in PG_UPGRADE_BLOCKED_REG_TYPES)})
  UNION ALL
  SELECT * FROM (
    WITH x AS (SELECT oid FROM oids)
    SELECT t.oid FROM pg_catalog.pg_type t, x WHERE t.typbasetype = x.oid AND t.typtype = 'd'
    UNION ALL
    SELECT t.oid FROM pg_catalog.pg_type t, x WHERE t.typelem = x.oid AND t.typtype = 'b'
    UNION ALL
    SELECT t.oid FROM pg_catalog.pg_type t, pg_catalog.pg_class c, pg_catalog.pg_attribute a, x
    WHERE t.typtype = 'c' AND t.oid = c.reltype AND c.oid = a.attrelid AND NOT a.attisdropped AND a.atttypid = x.oid
    UNION ALL
    SELECT t.oid FROM pg_catalog.pg_type t, pg_catalog.pg_range r, x
    WHERE t.typtype = 'r' AND r.rngtypid = t.oid AND r.rngsubtype = x.oid
  ) foo
), {user_tables('t', kinds="'r', 'p', 'm', 'i', 'I'")}
SELECT {TABLE_COUNT} AS tables,
       (SELECT coalesce(json_agg(x ORDER BY x.object), '[]') FROM (
          SELECT t.qname || '.' || quote_ident(a.attname) AS object, t.qname AS "table",
                 quote_ident(a.attname) AS "column", t.relkind::text AS relkind,
                 format_type(a.atttypid, a.atttypmod) AS type
          FROM t JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped
          WHERE a.atttypid IN (SELECT oid FROM oids)
       ) x) AS rows
"""


@pytest.mark.pgready(id="SCH011")
def test_sch011_no_reg_types_blocking_pg_upgrade(pgready_conn, pgready_record):
    """pg_upgrade refuses to run while such a column exists: the next major upgrade needs a dump/restore."""
    row = fetch_one(pgready_conn, SCH011_SQL, pgready_record)
    require_tables(pgready_record, row)
    bad = row["rows"]
    if bad:
        objs = _objects(bad)
        pgready_record.fail(
            f"{count(len(objs), 'column')} of a reg* type that blocks pg_upgrade: "
            + "; ".join(f"{r['object']} {r['type']}" for r in bad[:5]), objects=objs,
            remedy=[f"ALTER TABLE {r['table']} ALTER COLUMN {r['column']} TYPE text USING {r['column']}::text;"
                    if r["relkind"] in ("r", "p") else f"drop and recreate {r['table']} without {r['column']}"
                    for r in bad],
            columns=[{"object": r["object"], "type": r["type"]} for r in bad],
            blocked_types=list(PG_UPGRADE_BLOCKED_REG_TYPES))
    pgready_record.summary("no column uses a reg* type that pg_upgrade refuses "
                           f"({', '.join(PG_UPGRADE_BLOCKED_REG_TYPES)})")
