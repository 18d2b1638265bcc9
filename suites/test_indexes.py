"""indexes suite: the indexes a production workload needs, and the ones that only cost writes and
space (IDX001–IDX007).

Every check is one catalog/statistics query (SQL next to it) returning a single row: `tables` (none →
na, wrong database), the population judged and the offenders as JSON. Usage checks (IDX005, IDX007)
are `na` while the statistics are younger than min_stats_age_days (age: pg_stat_database.stats_reset,
else the postmaster start time) or when track_counts is off. Object strings: indexes `schema.index`,
foreign keys `schema.table(col1, col2)`, tables `schema.table`, quoted by the server like quote_ident.
"""

from __future__ import annotations

from typing import Any

import pytest
from psycopg import sql

from _sql_helpers import (STATS_AGE, TABLE_COUNT, btree_pages_estimate, count, days, fetch_one, human_bytes, require_tables,
                          user_tables)


def _objects(rows: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(r["object"] for r in rows))


def _some(objects: list[str], n: int = 5) -> str:
    return ", ".join(objects[:n]) + (f" and {len(objects) - n} more" if len(objects) > n else "")


def _young_stats_na(record: Any, row: dict[str, Any], min_days: float, check: str) -> None:
    """Usage counters that have not seen a full business cycle prove nothing: na, with the age."""
    if not row["track_counts"]:
        record.na("track_counts is off, so no usage statistics are collected: set track_counts = on")
    age = row["stats_age_s"] or 0.0
    origin = "pg_stat_database.stats_reset" if row["stats_reset_known"] else "server start; never reset"
    since = str(row["stats_since"])[:19]
    record.add(stats_since=str(row["stats_since"]), stats_age_days=round(age / 86400, 3), stats_age_origin=origin,
               min_stats_age_days=min_days)
    if age < min_days * 86400:
        record.na(f"usage statistics cover only {days(age)} (counted since {since}, {origin}); {check} needs "
                  f"at least {min_days:g} days: re-run later, or lower min_stats_age_days if the workload "
                  f"has already run its full cycle")


# --------------------------------------------------------------------------------------------- IDX001
IDX001_SQL = f"""
WITH {user_tables('t', partitions=True)},
fk AS (
  -- judged once where declared: not the clones PostgreSQL adds on partitions (conparentid)
  SELECT k.oid, k.conname, k.conrelid, k.confrelid, k.conkey, t.qname, t.relkind
  FROM pg_catalog.pg_constraint k JOIN t ON t.oid = k.conrelid
  WHERE k.contype = 'f' AND k.conparentid = 0)
SELECT {TABLE_COUNT} AS tables,
       (SELECT count(*) FROM fk) AS checked,
       (SELECT coalesce(json_agg(x ORDER BY x.object), '[]') FROM (
          SELECT fk.qname || '(' || cols.list || ')' AS object, fk.qname AS "table", cols.list AS columns,
                 quote_ident(fk.conname) AS "constraint", fk.relkind::text AS relkind,
                 format('%I.%I', rn.nspname, rc.relname) AS "references",
                 -- indexes that mention the FK's first column but do not cover it (partial, INCLUDE, hash …)
                 (SELECT json_agg(format('%I', ic.relname) ORDER BY ic.relname)
                  FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
                  WHERE i.indrelid = fk.conrelid AND fk.conkey[1] = ANY (i.indkey::int2[])) AS not_covering
          FROM fk
          CROSS JOIN LATERAL (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY u.ord) AS list
                              FROM unnest(fk.conkey) WITH ORDINALITY u(attnum, ord)
                              JOIN pg_catalog.pg_attribute a ON a.attrelid = fk.conrelid AND a.attnum = u.attnum) cols
          JOIN pg_catalog.pg_class rc ON rc.oid = fk.confrelid
          JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
          WHERE NOT EXISTS (
            -- covered: a valid, non-partial btree whose first n KEY columns (indnkeyatts, not INCLUDE)
            -- are the FK's n columns in any order; expression positions are attnum 0 and never match
            SELECT 1 FROM pg_catalog.pg_index i
            JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
            JOIN pg_catalog.pg_am am ON am.oid = ic.relam
            WHERE i.indrelid = fk.conrelid AND i.indisvalid AND i.indpred IS NULL AND am.amname = 'btree'
              AND i.indnkeyatts >= cardinality(fk.conkey)
              AND (SELECT array_agg(k ORDER BY k) FROM unnest((i.indkey::int2[])[0:cardinality(fk.conkey) - 1]) k)
                = (SELECT array_agg(k ORDER BY k) FROM unnest(fk.conkey) k))
       ) x) AS rows
"""


def _fk_index_remedy(r: dict[str, Any]) -> str:
    if r["relkind"] == "p":
        return (f"CREATE INDEX ON {r['table']} ({r['columns']}); -- partitioned: CONCURRENTLY is not supported here; "
                f"to avoid the lock create it ON ONLY the parent, then CONCURRENTLY on each partition and "
                f"ALTER INDEX … ATTACH PARTITION")
    return f"CREATE INDEX CONCURRENTLY ON {r['table']} ({r['columns']});"


@pytest.mark.pgready(id="IDX001")
def test_idx001_foreign_keys_have_index(pgready_conn, pgready_record):
    """Without an index on the referencing columns every DELETE/UPDATE of a referenced row scans the
    whole referencing table under lock, and joins along the FK scan too."""
    row = fetch_one(pgready_conn, IDX001_SQL, pgready_record)
    require_tables(pgready_record, row)
    bad = row["rows"]
    pgready_record.add(foreign_keys_checked=row["checked"])
    if bad:
        objs = _objects(bad)
        pgready_record.fail(
            f"{count(len(objs), 'foreign key')} of {row['checked']} without a supporting index: {_some(objs)}", objects=objs,
            remedy=[_fk_index_remedy(r) for r in bad],
            foreign_keys=[{"object": r["object"], "constraint": r["constraint"], "references": r["references"],
                           "indexes_not_covering": r["not_covering"] or []} for r in bad])
    pgready_record.summary(f"all {row['checked']} foreign keys have a valid btree index leading with their columns")


# --------------------------------------------------------------------------------------------- IDX002
IDX002_SQL = rf"""
WITH {user_tables('t', kinds="'r', 'p', 'm'", partitions=True)},
building AS (
  SELECT p.index_relid, p.relid FROM pg_catalog.pg_stat_progress_create_index p
  WHERE p.datid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database()))
SELECT {TABLE_COUNT} AS tables,
       (SELECT count(*) FROM pg_catalog.pg_index i JOIN t ON t.oid = i.indrelid) AS checked,
       (SELECT coalesce(json_agg(x ORDER BY x.object), '[]') FROM (
          SELECT format('%I.%I', t.nspname, ic.relname) AS object, t.qname AS "table", ic.relkind::text AS relkind,
                 -- being built right now (CREATE INDEX / REINDEX CONCURRENTLY): not a leftover
                 EXISTS (SELECT 1 FROM building b
                         WHERE b.index_relid = i.indexrelid
                            OR (b.relid = i.indrelid AND coalesce(b.index_relid, 0) = 0)) AS building,
                 regexp_replace(pg_catalog.pg_get_indexdef(i.indexrelid), '^CREATE (UNIQUE )?INDEX ',
                                'CREATE \1INDEX CONCURRENTLY ') AS recreate,
                 -- a partitioned index is invalid until every partition has an attached, valid index
                 CASE WHEN ic.relkind = 'I' THEN (
                   SELECT coalesce(json_agg(format('%I.%I', pn.nspname, pc.relname) ORDER BY pc.relname), '[]')
                   FROM pg_catalog.pg_inherits pi
                   JOIN pg_catalog.pg_class pc ON pc.oid = pi.inhrelid
                   JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace
                   WHERE pi.inhparent = i.indrelid
                     AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_inherits ii
                                     JOIN pg_catalog.pg_index ci ON ci.indexrelid = ii.inhrelid
                                     WHERE ii.inhparent = i.indexrelid AND ci.indrelid = pi.inhrelid AND ci.indisvalid))
                 END AS partitions_missing
          FROM pg_catalog.pg_index i JOIN t ON t.oid = i.indrelid
          JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
          WHERE NOT i.indisvalid
       ) x) AS rows
"""


@pytest.mark.pgready(id="IDX002")
def test_idx002_no_invalid_indexes(pgready_conn, pgready_record):
    """An invalid index (a failed CREATE INDEX CONCURRENTLY) is maintained on every write but never used;
    a failed unique one enforces nothing."""
    row = fetch_one(pgready_conn, IDX002_SQL, pgready_record)
    require_tables(pgready_record, row)
    building = [r for r in row["rows"] if r["building"]]
    waiting = [r for r in row["rows"] if not r["building"] and r["relkind"] == "I"]
    invalid = [r for r in row["rows"] if not r["building"] and r["relkind"] != "I"]
    pgready_record.add(indexes_checked=row["checked"])
    if building:
        pgready_record.add(in_progress=_objects(building),
                           in_progress_note="being built concurrently right now (pg_stat_progress_create_index)")
    if waiting:
        pgready_record.add(partitioned_waiting_for_partitions=[
            {"object": r["object"], "table": r["table"], "partitions_missing": r["partitions_missing"]}
            for r in waiting])
    if invalid or waiting:
        objs = _objects(invalid) + _objects(waiting)
        remedy = [f"DROP INDEX CONCURRENTLY {r['object']}; {r['recreate']};" for r in invalid]
        remedy += [f"on each partition of {r['table']} lacking it ({', '.join(r['partitions_missing'] or [])}): "
                   f"CREATE INDEX CONCURRENTLY …, then ALTER INDEX {r['object']} ATTACH PARTITION <that index>;"
                   for r in waiting]
        parts = []
        if invalid:
            parts.append(f"{count(len(invalid), 'invalid index', 'invalid indexes')} ({_some(_objects(invalid))})")
        if waiting:
            parts.append(f"{count(len(waiting), 'partitioned index', 'partitioned indexes')} missing on partitions "
                         f"({_some(_objects(waiting))})")
        pgready_record.fail(" and ".join(parts), objects=objs, remedy=remedy,
                            invalid=[{"object": r["object"], "table": r["table"]} for r in invalid])
    extra = f" ({len(building)} being built right now)" if building else ""
    pgready_record.summary(f"all {row['checked']} indexes are valid{extra}")


# --------------------------------------------------------------------------------------------- IDX003
IDX003_SQL = f"""
WITH {user_tables('t', kinds="'r', 'p', 'm'", partitions=True)},
ix AS (
  SELECT i.indexrelid, i.indrelid, format('%I.%I', t.nspname, ic.relname) AS object, t.qname AS "table",
         ic.relkind, ic.relam, i.indkey::text AS keys, i.indclass::text AS opclasses, i.indcollation::text AS collations,
         i.indoption::text AS options, i.indnkeyatts,
         coalesce(pg_catalog.pg_get_expr(i.indexprs, i.indrelid), '') AS exprs,
         coalesce(pg_catalog.pg_get_expr(i.indpred, i.indrelid), '') AS pred,
         k.contype::text AS contype, quote_ident(k.conname) AS conname,
         i.indisprimary, i.indisunique, i.indisreplident, ic.relname AS idxname,
         left(ic.relname, length(t.relname) + 1) = t.relname || '_' AS conventional_name
  FROM pg_catalog.pg_index i JOIN t ON t.oid = i.indrelid
  JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
  LEFT JOIN pg_catalog.pg_constraint k ON k.conindid = i.indexrelid AND k.conrelid = i.indrelid
       AND k.contype IN ('p', 'u', 'x')
  -- attached partition indexes follow their parent index: judged there
  WHERE i.indisvalid AND NOT ic.relispartition),
dup AS (
  -- identical: same table, access method, key and INCLUDE columns, opclasses, collations, sort options,
  -- expressions and predicate; uniqueness is not part of the identity
  SELECT indrelid, relam, keys, opclasses, collations, options, indnkeyatts, exprs, pred
  FROM ix GROUP BY indrelid, relam, keys, opclasses, collations, options, indnkeyatts, exprs, pred
  HAVING count(*) > 1),
grp AS (
  -- the keeper comes first: constraint-backing, replica identity, unique, then named the way PostgreSQL
  -- names indexes (<table>_…), then by name — never by OID, which a dump/restore reorders (the dropped
  -- object must stay the same for waivers)
  SELECT json_agg(json_build_object('object', ix.object, 'table', ix."table", 'relkind', ix.relkind::text,
                                    'constraint_type', ix.contype, 'constraint', ix.conname,
                                    'definition', pg_catalog.pg_get_indexdef(ix.indexrelid))
                  ORDER BY (ix.contype IS NOT NULL) DESC, ix.indisprimary DESC, ix.indisreplident DESC,
                           ix.indisunique DESC, ix.conventional_name DESC, ix.idxname) AS members
  FROM ix JOIN dup USING (indrelid, relam, keys, opclasses, collations, options, indnkeyatts, exprs, pred)
  GROUP BY indrelid, relam, keys, opclasses, collations, options, indnkeyatts, exprs, pred)
SELECT {TABLE_COUNT} AS tables,
       (SELECT count(*) FROM ix) AS checked,
       (SELECT coalesce(json_agg(members), '[]') FROM grp) AS rows
"""


def _drop_remedy(m: dict[str, Any]) -> str:
    if m.get("constraint_type"):
        return (f"ALTER TABLE {m['table']} DROP CONSTRAINT {m['constraint']}; -- check first that no foreign key "
                f"depends on it")
    return f"DROP INDEX {'CONCURRENTLY ' if m['relkind'] == 'i' else ''}{m['object']};"


@pytest.mark.pgready(id="IDX003")
def test_idx003_no_duplicate_indexes(pgready_conn, pgready_record):
    """A duplicate index doubles the write and vacuum cost and the space for nothing."""
    row = fetch_one(pgready_conn, IDX003_SQL, pgready_record)
    require_tables(pgready_record, row)
    groups = row["rows"]
    pgready_record.add(indexes_checked=row["checked"])
    if groups:
        drops = [m for g in groups for m in g[1:]]
        objs = _objects(drops)
        pgready_record.fail(
            f"{count(len(objs), 'duplicate index', 'duplicate indexes')}: "
            + "; ".join(f"{m['object']} duplicates {g[0]['object']}" for g in groups for m in g[1:][:5]),
            objects=objs, remedy=[_drop_remedy(m) for m in drops],
            duplicates=[{"keep": g[0]["object"], "drop": [m["object"] for m in g[1:]],
                         "definition": g[0]["definition"]} for g in groups])
    pgready_record.summary(f"no duplicate among {row['checked']} indexes")


# --------------------------------------------------------------------------------------------- IDX004
IDX004_SQL = f"""
WITH {user_tables('t', kinds="'r', 'p', 'm'", partitions=True)},
ix AS (
  -- int2vector/oidvector cast to arrays are 0-based; slices come back 1-based: compare arrays, never text
  SELECT i.indexrelid, i.indrelid, format('%I.%I', t.nspname, ic.relname) AS object, t.qname AS "table",
         ic.relkind, i.indnkeyatts AS nkey,
         (i.indkey::int2[])[0:i.indnkeyatts - 1] AS keys,
         (i.indkey::int2[])[i.indnkeyatts:i.indnatts - 1] AS included,
         (i.indclass::oid[])[0:i.indnkeyatts - 1] AS opclasses,
         (i.indcollation::oid[])[0:i.indnkeyatts - 1] AS collations,
         (i.indoption::int2[])[0:i.indnkeyatts - 1] AS options,
         i.indexprs IS NOT NULL AS has_exprs, pg_catalog.pg_get_expr(i.indpred, i.indrelid) AS pred,
         i.indisunique, i.indisreplident,
         EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid
                 AND k.contype IN ('p', 'u', 'x')) AS backs_constraint
  FROM pg_catalog.pg_index i JOIN t ON t.oid = i.indrelid
  JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
  JOIN pg_catalog.pg_am am ON am.oid = ic.relam
  WHERE am.amname = 'btree' AND i.indisvalid AND NOT ic.relispartition)
SELECT {TABLE_COUNT} AS tables,
       (SELECT count(*) FROM ix) AS checked,
       (SELECT coalesce(json_agg(x ORDER BY x.object), '[]') FROM (
          SELECT DISTINCT ON (a.indexrelid) a.object, a."table", a.relkind::text AS relkind,
                 pg_catalog.pg_get_indexdef(a.indexrelid) AS definition, b.object AS covered_by,
                 pg_catalog.pg_get_indexdef(b.indexrelid) AS covered_by_definition
          FROM ix a JOIN ix b ON b.indrelid = a.indrelid AND b.indexrelid <> a.indexrelid
          WHERE NOT a.indisunique AND NOT a.backs_constraint AND NOT a.indisreplident AND NOT a.has_exprs
            AND b.nkey > a.nkey
            AND b.keys[1:a.nkey] = a.keys AND b.opclasses[1:a.nkey] = a.opclasses
            AND b.collations[1:a.nkey] = a.collations AND b.options[1:a.nkey] = a.options
            AND a.pred IS NOT DISTINCT FROM b.pred
            AND a.included <@ (b.keys || b.included)
          ORDER BY a.indexrelid, b.nkey, b.indexrelid
       ) x) AS rows
"""


@pytest.mark.pgready(id="IDX004")
def test_idx004_no_redundant_prefix_indexes(pgready_conn, pgready_record):
    """An index whose keys lead a wider one answers nothing the wider one cannot, and costs every write."""
    row = fetch_one(pgready_conn, IDX004_SQL, pgready_record)
    require_tables(pgready_record, row)
    bad = row["rows"]
    pgready_record.add(indexes_checked=row["checked"])
    if bad:
        objs = _objects(bad)
        pgready_record.fail(
            f"{count(len(objs), 'redundant index', 'redundant indexes')} (leading prefix of another): "
            + "; ".join(f"{r['object']} (covered by {r['covered_by']})" for r in bad[:5]), objects=objs,
            remedy=[f"DROP INDEX {'CONCURRENTLY ' if r['relkind'] == 'i' else ''}{r['object']};" for r in bad],
            redundant=[{"object": r["object"], "definition": r["definition"], "covered_by": r["covered_by"],
                        "covered_by_definition": r["covered_by_definition"]} for r in bad])
    pgready_record.summary(f"no redundant prefix index among {row['checked']} btree indexes")


# --------------------------------------------------------------------------------------------- IDX005
IDX005_SQL = f"""
WITH {user_tables('t', kinds="'r', 'p', 'm'", partitions=True)}, {STATS_AGE},
ix AS (
  SELECT i.indexrelid, format('%I.%I', t.nspname, ic.relname) AS object, t.qname AS "table", ic.relkind,
         i.indisunique OR i.indisreplident
           OR EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.conindid = i.indexrelid
                      AND k.conrelid = i.indrelid AND k.contype IN ('p', 'u', 'x')) AS needed
  FROM pg_catalog.pg_index i JOIN t ON t.oid = i.indrelid
  JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
  WHERE i.indisvalid AND NOT ic.relispartition),
leaf AS (
  -- a partitioned index is used when any partition's index is: sum its leaves
  SELECT ix.indexrelid AS root, ix.indexrelid AS relid FROM ix WHERE ix.relkind = 'i'
  UNION ALL
  SELECT ix.indexrelid, pt.relid FROM ix CROSS JOIN LATERAL pg_catalog.pg_partition_tree(ix.indexrelid) pt
  WHERE ix.relkind = 'I' AND pt.isleaf),
usage AS (
  -- pg_stat_get_numscans is pg_stat_all_indexes.idx_scan, without building the whole view
  SELECT leaf.root, coalesce(sum(pg_catalog.pg_stat_get_numscans(leaf.relid)), 0) AS scans
  FROM leaf GROUP BY leaf.root),
unused AS (
  SELECT ix.object, ix."table", ix.relkind, ix.indexrelid
  FROM ix JOIN usage u ON u.root = ix.indexrelid WHERE u.scans = 0 AND NOT ix.needed),
sizes AS (
  -- pg_relation_size (a stat() per file) only for the unused ones
  SELECT leaf.root, sum(pg_catalog.pg_relation_size(leaf.relid)) AS bytes
  FROM leaf JOIN unused ON unused.indexrelid = leaf.root GROUP BY leaf.root)
SELECT {TABLE_COUNT} AS tables,
       (SELECT since FROM stats) AS stats_since, (SELECT age_s FROM stats) AS stats_age_s,
       (SELECT reset_known FROM stats) AS stats_reset_known, (SELECT track_counts FROM stats) AS track_counts,
       (SELECT count(*) FROM pg_catalog.pg_stat_replication) AS standbys,
       (SELECT count(*) FROM ix) AS checked,
       (SELECT count(*) FROM usage WHERE scans > 0) AS scanned,
       (SELECT coalesce(json_agg(x ORDER BY x.bytes DESC, x.object), '[]') FROM (
          SELECT unused.object, unused."table", unused.relkind::text AS relkind, sizes.bytes
          FROM unused JOIN sizes ON sizes.root = unused.indexrelid
       ) x) AS rows
"""


@pytest.mark.pgready(id="IDX005")
def test_idx005_no_large_unused_indexes(pgready_conn, pgready_record, pgready_settings):
    """An index no query uses still costs every insert, update and vacuum, and its share of memory."""
    s = pgready_settings
    row = fetch_one(pgready_conn, IDX005_SQL, pgready_record)
    require_tables(pgready_record, row)
    pgready_record.add(standby_note="idx_scan counts scans on this server only: usage on standbys (read replicas) "
                                    "is not visible from the primary — check them before dropping",
                       standbys_streaming=row["standbys"])
    _young_stats_na(pgready_record, row, s.min_stats_age_days, "IDX005")
    floor = s.unused_index_min_bytes
    bad = [r for r in row["rows"] if (r["bytes"] or 0) > floor]
    pgready_record.add(indexes_checked=row["checked"], indexes_scanned=row["scanned"], floor_bytes=floor,
                       unused_below_floor=len(row["rows"]) - len(bad))
    if bad:
        objs = _objects(bad)
        total = sum(r["bytes"] for r in bad)
        pgready_record.metric("unused_index_bytes", total)
        pgready_record.fail(
            f"{count(len(objs), 'index', 'indexes')} larger than {human_bytes(floor)} never scanned in "
            f"{days(row['stats_age_s'])}: "
            + "; ".join(f"{r['object']} {human_bytes(r['bytes'])}" for r in bad[:5])
            + f" ({human_bytes(total)} in all)", objects=objs,
            remedy=[f"DROP INDEX {'CONCURRENTLY ' if r['relkind'] == 'i' else ''}{r['object']}; -- after checking "
                    f"standbys and rare jobs (month-end reports)" for r in bad],
            unused=[{"object": r["object"], "bytes": r["bytes"], "size": human_bytes(r["bytes"])} for r in bad])
    pgready_record.summary(f"no index above {human_bytes(floor)} went unused in {days(row['stats_age_s'])} "
                           f"({row['scanned']} of {row['checked']} indexes scanned)")


# --------------------------------------------------------------------------------------------- IDX006
IDX006_SQL = f"""
WITH {user_tables('t', kinds="'r', 'm'", partitions=True)},
idx AS (
  SELECT i.indexrelid, i.indrelid, i.indkey, format('%I.%I', t.nspname, ic.relname) AS object, t.qname AS "table",
         t.nspname, t.relname AS tblname, ic.relname AS idxname, ic.relpages, ic.reltuples,
         -- the size the estimate is compared with: relpages (as of the last VACUUM/ANALYZE), no stat() per index
         ic.relpages::bigint * pg_catalog.current_setting('block_size')::int AS bytes,
         coalesce(substring(array_to_string(ic.reloptions, ' ') FROM 'fillfactor=([0-9]+)')::int, 90) AS fillfactor,
         pg_catalog.has_table_privilege(t.oid, 'SELECT') AS can_select
  FROM pg_catalog.pg_index i JOIN t ON t.oid = i.indrelid
  JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
  JOIN pg_catalog.pg_am am ON am.oid = ic.relam
  WHERE am.amname = 'btree' AND ic.relkind = 'i' AND ic.relpages > 0),
large AS (SELECT * FROM idx WHERE idx.bytes >= {{min_bytes}}),
cols AS (
  -- statistics of each index column: the table column's, or (expressions) the index's own
  SELECT idx.indexrelid, st.null_frac, st.avg_width, st.attname IS NOT NULL AS has_stats
  FROM large idx CROSS JOIN LATERAL unnest(idx.indkey) WITH ORDINALITY u(attnum, pos)
  LEFT JOIN pg_catalog.pg_attribute ta ON u.attnum <> 0 AND ta.attrelid = idx.indrelid AND ta.attnum = u.attnum
  LEFT JOIN pg_catalog.pg_attribute ia ON u.attnum = 0 AND ia.attrelid = idx.indexrelid AND ia.attnum = u.pos
  -- a parameterized lookup per column: joining the whole pg_stats view checks privileges on every column
  LEFT JOIN LATERAL (SELECT s.null_frac, s.avg_width, s.attname FROM pg_catalog.pg_stats s
                     WHERE s.schemaname = idx.nspname
                       AND s.tablename = CASE WHEN u.attnum = 0 THEN idx.idxname ELSE idx.tblname END
                       AND s.attname = coalesce(ta.attname, ia.attname)
                     LIMIT 1) st ON true),
agg AS (
  SELECT indexrelid, bool_and(has_stats) AS has_stats, max(coalesce(null_frac, 0)) > 0 AS has_nulls,
         sum((1 - coalesce(null_frac, 0)) * coalesce(avg_width, 1024)) AS data_width
  FROM cols GROUP BY indexrelid)
SELECT {TABLE_COUNT} AS tables,
       pg_catalog.current_setting('block_size')::int AS block_size,
       CASE WHEN version() ~ 'mingw32|64-bit|x86_64|ppc64|ia64|amd64|aarch64|arm64|s390x' THEN 8 ELSE 4 END AS maxalign,
       (SELECT count(*) FROM idx) AS checked, (SELECT max(bytes) FROM idx) AS largest,
       (SELECT coalesce(json_agg(x ORDER BY x.bytes DESC, x.object), '[]') FROM (
          SELECT idx.object, idx."table", idx.bytes, idx.relpages, idx.reltuples, idx.fillfactor, idx.can_select,
                 agg.has_stats AND idx.reltuples >= 0 AS has_stats, agg.has_nulls, agg.data_width
          FROM large idx JOIN agg ON agg.indexrelid = idx.indexrelid
       ) x) AS rows
"""


@pytest.mark.pgready(id="IDX006")
def test_idx006_btree_bloat_below_threshold(pgready_conn, pgready_record, pgready_settings):
    """A bloated btree wastes memory and I/O on every scan; REINDEX CONCURRENTLY gets the space back."""
    s = pgready_settings
    # only indexes above the floor are estimated: the floor is bound into the query as a literal
    query = sql.SQL(IDX006_SQL).format(min_bytes=sql.Literal(int(s.index_bloat_min_bytes)))
    row = fetch_one(pgready_conn, query, pgready_record)
    require_tables(pgready_record, row)
    large = row["rows"]
    no_stats = [r for r in large if not r["has_stats"]]
    judged = []
    for r in large:
        if not r["has_stats"]:
            continue
        est = btree_pages_estimate(r["reltuples"], float(r["data_width"]), r["has_nulls"], r["fillfactor"],
                                   row["block_size"], row["maxalign"])
        ratio = max(r["relpages"] - est, 0) / r["relpages"]
        judged.append({"object": r["object"], "table": r["table"], "bytes": r["bytes"], "size": human_bytes(r["bytes"]),
                       "pages": r["relpages"], "estimated_pages": est, "bloat_pct": round(100 * ratio, 1),
                       "bloat_bytes": max(r["relpages"] - est, 0) * row["block_size"], "ratio": ratio})
    pgready_record.add(btree_indexes=row["checked"], above_floor=len(large), floor_bytes=s.index_bloat_min_bytes,
                       threshold_pct=round(100 * s.index_bloat_ratio, 1),
                       method="statistics-based estimate (pg_class + pg_stats), no pgstattuple")
    if no_stats:
        pgready_record.add(not_estimated=[
            {"object": r["object"],
             "reason": "no SELECT privilege on the table: pg_stats hides its columns" if not r["can_select"]
             else f"no statistics: run ANALYZE {r['table']}"} for r in no_stats])
    if large and not judged:
        hidden = any(not r["can_select"] for r in no_stats)
        pgready_record.na(f"none of the {len(large)} btree indexes above {human_bytes(s.index_bloat_min_bytes)} has "
                          f"column statistics to estimate from: "
                          + ("GRANT SELECT on their tables (or pg_read_all_data) to this role"
                             if hidden else "run ANALYZE on their tables"))
    if judged:
        worst = max(judged, key=lambda j: j["ratio"])
        pgready_record.metric("max_bloat_pct", worst["bloat_pct"])
    bad = sorted((j for j in judged if j["ratio"] >= s.index_bloat_ratio), key=lambda j: -j["ratio"])
    if bad:
        objs = _objects(bad)
        pgready_record.fail(
            f"{count(len(objs), 'btree index', 'btree indexes')} estimated ≥ {100 * s.index_bloat_ratio:.0f} % bloated: "
            + "; ".join(f"{j['object']} {j['bloat_pct']} % of {j['size']}" for j in bad[:5]), objects=objs,
            remedy=[f"REINDEX INDEX CONCURRENTLY {j['object']};" for j in bad],
            bloated=[{k: v for k, v in j.items() if k != "ratio"} for j in bad])
    if not large:
        pgready_record.summary(f"no btree index reaches the {human_bytes(s.index_bloat_min_bytes)} floor "
                               f"(largest {human_bytes(row['largest'] or 0)})")
        return
    pgready_record.summary(f"{len(judged)} btree indexes above {human_bytes(s.index_bloat_min_bytes)} estimated below "
                           f"{100 * s.index_bloat_ratio:.0f} % bloat (worst {worst['object']} {worst['bloat_pct']} %)"
                           + (f"; {len(no_stats)} without statistics listed" if no_stats else ""))


# --------------------------------------------------------------------------------------------- IDX007
IDX007_SQL = f"""
WITH {user_tables('t', kinds="'r', 'm'", partitions=True)}, {STATS_AGE}
SELECT {TABLE_COUNT} AS tables,
       (SELECT since FROM stats) AS stats_since, (SELECT age_s FROM stats) AS stats_age_s,
       (SELECT reset_known FROM stats) AS stats_reset_known, (SELECT track_counts FROM stats) AS track_counts,
       (SELECT coalesce(json_agg(x ORDER BY x.object), '[]') FROM (
          SELECT t.qname AS object, greatest(c.reltuples, s.n_live_tup)::bigint AS rows,
                 s.seq_scan, s.seq_tup_read, coalesce(s.idx_scan, 0) AS idx_scan
          FROM t JOIN pg_catalog.pg_class c ON c.oid = t.oid
          JOIN pg_catalog.pg_stat_all_tables s ON s.relid = t.oid
       ) x) AS rows
"""


@pytest.mark.pgready(id="IDX007")
def test_idx007_large_tables_not_mostly_seq_scanned(pgready_conn, pgready_record, pgready_settings):
    """A large table read mostly by full scans is a missing index: it gets slower with every row."""
    s = pgready_settings
    row = fetch_one(pgready_conn, IDX007_SQL, pgready_record)
    require_tables(pgready_record, row)
    _young_stats_na(pgready_record, row, s.min_stats_age_days, "IDX007")
    large = [r for r in row["rows"] if r["rows"] >= s.seqscan_min_rows]
    bad = []
    for r in large:
        seq, idx = r["seq_scan"] or 0, r["idx_scan"] or 0
        if seq == 0:
            continue
        share = seq / (seq + idx)
        per_scan = (r["seq_tup_read"] or 0) / seq
        # a seq scan that on average reads a "large table" worth of rows is a full scan, not a LIMIT probe
        if share > s.seqscan_ratio and per_scan >= s.seqscan_min_rows:
            bad.append({"object": r["object"], "rows": r["rows"], "seq_scan": seq, "idx_scan": idx,
                        "seq_tup_read": r["seq_tup_read"], "rows_per_seq_scan": round(per_scan),
                        "seq_scan_pct": round(100 * share, 1)})
    pgready_record.add(large_tables=len(large), row_floor=s.seqscan_min_rows,
                       threshold_pct=round(100 * s.seqscan_ratio, 1))
    if bad:
        bad.sort(key=lambda b: -b["seq_tup_read"])
        objs = _objects(bad)
        pgready_record.metric("max_seq_scan_pct", max(b["seq_scan_pct"] for b in bad))
        pgready_record.fail(
            f"{count(len(objs), 'table')} above {s.seqscan_min_rows:,} rows read mostly by sequential scans: "
            + "; ".join(f"{b['object']} {b['seq_scan_pct']} % of {b['seq_scan'] + b['idx_scan']} scans, "
                        f"{b['rows_per_seq_scan']:,} rows each" for b in bad[:5]), objects=objs,
            remedy=["find the queries (pg_stat_statements, EXPLAIN) that scan " + o + " and index their predicates"
                    for o in objs],
            tables=bad)
    if not large:
        pgready_record.summary(f"no table has {s.seqscan_min_rows:,} rows or more")
        return
    pgready_record.summary(f"none of {len(large)} tables above {s.seqscan_min_rows:,} rows is read mostly by "
                           f"sequential scans")
