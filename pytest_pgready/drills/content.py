"""What "the restored data is identical" means, measured in the server and compared in Python.

A content snapshot of one database holds, per user table, the row count and an order-independent
checksum (the sum of a 64-bit hash of every row's text form), every sequence's last_value/is_called,
the large objects (count + checksum of their contents) and a schema fingerprint (pg_dump
--schema-only, split per object and normalised). Backup, PITR and failover drills all compare
with `compare()`, which is pure and names every differing object.

The row hash is `hashtextextended(row::text, 0)`: the 64-bit hash PostgreSQL keeps stable across
versions for hash partitioning, 2.5x cheaper than md5 and summed as numeric (no overflow). Row
text depends on session settings, so both sides run with the same pinned output settings.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

from ..sqlmark import COMMENT

if TYPE_CHECKING:
    import psycopg

# Output settings that change a row's text form; pinned identically on source and copy.
PINNED_SETTINGS: tuple[tuple[str, str], ...] = (
    ("TimeZone", "UTC"), ("DateStyle", "ISO, MDY"), ("IntervalStyle", "postgres"), ("extra_float_digits", "1"),
    ("bytea_output", "hex"), ("lc_monetary", "C"), ("xmloption", "content"),
)  # not search_path: expression indexes whose functions rely on it would fail to plan

# User tables (leaf tables and populated materialized views; partitions are leaves, so a parent is
# never counted twice), excluding system schemas, temp schemas and extension members. Each object is
# keyed by its name as the server quotes it (format('%I.%I')): unambiguous ("a.b"."c" is not "a"."b.c")
# and the form every other check's evidence uses.
CATALOG_SQL = """
SELECT /* pgready */ 'table' AS kind, n.nspname, c.relname, c.relpersistence = 'u' AS unlogged,
       format('%I.%I', n.nspname, c.relname) AS label
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE (c.relkind = 'r' OR (c.relkind = 'm' AND c.relispopulated))
   AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'
   AND n.nspname NOT LIKE 'pg\\_temp\\_%' AND c.relpersistence <> 't'
   AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                    AND d.deptype = 'e')
UNION ALL
SELECT 'sequence', n.nspname, c.relname, c.relpersistence = 'u', format('%I.%I', n.nspname, c.relname)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'S' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg\\_temp\\_%' AND c.relpersistence <> 't'
   AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                    AND d.deptype = 'e')
UNION ALL
SELECT 'large_objects', '', '', false, '' WHERE EXISTS (SELECT 1 FROM pg_largeobject_metadata)
ORDER BY 1, 2, 3
"""

# (t.*) is the whole row even when the table has a column named t (a bare t would be that column alone)
ROW_HASH = "coalesce(sum(hashtextextended((t.*)::text, 0)), 0)::text"
LO_HASH = ("coalesce(sum(hashtextextended(m.oid::text || ':' || md5(lo_get(m.oid)), 0)), 0)::text")


class ContentUnreadable(Exception):
    """The connected role cannot read everything: the snapshot would be partial (the check is na)."""


@dataclass(frozen=True)
class TableSum:
    rows: int
    checksum: str


@dataclass
class Snapshot:
    """Everything compared after a restore, for one database."""

    database: str
    tables: dict[str, TableSum] = field(default_factory=dict)  # quoted "schema.table" → rows, checksum
    sequences: dict[str, tuple[int, bool]] = field(default_factory=dict)  # quoted "schema.seq" → last_value, is_called
    large_objects: tuple[int, str] = (0, "0")  # count, checksum
    schema: dict[str, str] | None = None  # "TYPE schema.name" → normalised definition
    unlogged: set[str] = field(default_factory=set)  # UNLOGGED tables/sequences: not in physical copies

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables.values())

    def schema_fingerprint(self) -> str | None:
        if self.schema is None:
            return None
        h = hashlib.sha256()
        for k in sorted(self.schema):
            h.update(k.encode() + b"\0" + self.schema[k].encode() + b"\0")
        return h.hexdigest()[:16]

    def summary(self) -> dict[str, Any]:
        return {"database": self.database, "tables": len(self.tables), "rows": self.rows,
                "sequences": len(self.sequences), "large_objects": self.large_objects[0],
                "schema_objects": len(self.schema) if self.schema is not None else None,
                "schema_fingerprint": self.schema_fingerprint()}


@dataclass(frozen=True)
class Difference:
    kind: str  # missing_table, extra_table, row_count, checksum, sequence, large_objects, schema
    object: str
    detail: str

    def __str__(self) -> str:
        return f"{self.object}: {self.detail}"


# ------------------------------------------------------------------------------------------- measuring
def hash_query(objects: Iterable[tuple[str, ...]]) -> "Any":
    """One UNION ALL over every table, sequence and the large objects: one round trip per database.
    objects: (kind, schema, name[, label]); label (default "schema.name") keys the object in the snapshot."""
    from psycopg import sql

    parts = []
    for kind, schema, name, *rest in objects:
        label = sql.Literal(rest[0] if rest else f"{schema}.{name}")
        if kind == "table":
            parts.append(sql.SQL("SELECT 'table'::text, {}::text, count(*)::bigint, " + ROW_HASH +
                                 " FROM ONLY {} t").format(label, sql.Identifier(schema, name)))
        elif kind == "sequence":
            parts.append(sql.SQL("SELECT 'sequence'::text, {}::text, last_value::bigint, is_called::text "
                                 "FROM {}").format(label, sql.Identifier(schema, name)))
        elif kind == "large_objects":
            parts.append(sql.SQL("SELECT 'large_objects'::text, ''::text, count(*)::bigint, " + LO_HASH +
                                 " FROM pg_catalog.pg_largeobject_metadata m"))
    if not parts:
        return None
    # wrapped so the mark follows the first keyword (kept in pg_stat_statements on every major)
    return (sql.SQL(f"SELECT {COMMENT} * FROM (") + sql.SQL(" UNION ALL ").join(parts)
            + sql.SQL(") pgready_content"))


def pin_settings(conn: "psycopg.Connection") -> None:
    """SET LOCAL the output settings (inside the caller's transaction), in one statement."""
    from psycopg import sql

    calls = [sql.SQL("pg_catalog.set_config({}, {}, true)").format(sql.Literal(n), sql.Literal(v))
             for n, v in PINNED_SETTINGS]
    conn.execute(sql.SQL("SELECT ") + sql.SQL(", ").join(calls))


def read_content(conn: "psycopg.Connection", database: str | None = None) -> Snapshot:
    """Checksum a database inside the caller's open transaction (pass a REPEATABLE READ one, or an
    exported snapshot, to make it consistent with a dump). Raises ContentUnreadable on privileges."""
    import psycopg

    db = database or conn.info.dbname
    snap = Snapshot(db)
    try:
        pin_settings(conn)
        catalog = conn.execute(CATALOG_SQL).fetchall()
        snap.unlogged = {r[4] for r in catalog if r[3]}
        q = hash_query([(r[0], r[1], r[2], r[4]) for r in catalog])
        rows = conn.execute(q).fetchall() if q is not None else []
    except psycopg.errors.InsufficientPrivilege as e:
        raise ContentUnreadable(f"{db}: {str(e).strip().splitlines()[0]}") from None
    for kind, name, n, chk in rows:
        if kind == "table":
            snap.tables[name] = TableSum(int(n), str(chk))
        elif kind == "sequence":
            snap.sequences[name] = (int(n), chk == "true")
        else:
            snap.large_objects = (int(n), str(chk))
    return snap


def snapshot_database(node: Any, dbname: str) -> Snapshot:
    """A consistent snapshot of one database in its own REPEATABLE READ, READ ONLY transaction."""
    with node.connect(dbname=dbname, autocommit=True) as conn:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        try:
            return read_content(conn, dbname)
        finally:
            conn.execute("ROLLBACK")


# ------------------------------------------------------------------------------------------- schema
_HEADER = re.compile(r"^-- (?:Data for )?Name: (?P<name>.*?); Type: (?P<type>[^;]*); Schema: (?P<schema>[^;]*);")
_VOLATILE_TYPES = {"STATISTICS DATA"}  # planner statistics (pg_dump 18): they differ after any restore
_DROP = (re.compile(r"^SET \w+ = "), re.compile(r"^SELECT pg_catalog\.set_config\('search_path'"),
         re.compile(r"^\\(un)?restrict\b"), re.compile(r"^--"))


def normalise_schema(dump_text: str) -> dict[str, str]:
    """Split a pg_dump --schema-only text into objects keyed "TYPE schema.name" (from the TOC headers),
    dropping what legitimately differs: comments, SET lines, version headers, \\restrict keys."""
    out: dict[str, str] = {}
    key: str | None = None
    body: list[str] = []

    def flush() -> None:
        if key is not None:
            k, i = key, 2
            while k in out:  # the same name twice (e.g. an overloaded COMMENT): keep both
                k, i = f"{key} #{i}", i + 1
            out[k] = "\n".join(body).strip()

    for line in dump_text.splitlines():
        m = _HEADER.match(line)
        if m:
            flush()
            key, body = f"{m['type']} {m['schema']}.{m['name']}", []
            if m["type"] in _VOLATILE_TYPES:
                key = None
            continue
        if key is None or not line.strip() or any(p.match(line) for p in _DROP):
            continue
        body.append(line.rstrip())
    flush()
    return out


def schema_differences(source: dict[str, str], restored: dict[str, str], limit: int = 50) -> list[Difference]:
    out = []
    for k in sorted(set(source) | set(restored)):
        a, b = source.get(k), restored.get(k)
        if a == b:
            continue
        if b is None:
            out.append(Difference("schema", k, "missing after restore"))
        elif a is None:
            out.append(Difference("schema", k, "present only after restore"))
        else:
            diff = [ln for ln in difflib.unified_diff(a.splitlines(), b.splitlines(), lineterm="", n=0)
                    if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]
            out.append(Difference("schema", k, "definition differs: " + " | ".join(diff[:4])[:300]))
        if len(out) >= limit:
            break
    return out


# ------------------------------------------------------------------------------------------- comparing
def compare(source: Snapshot, restored: Snapshot, *, tables: Iterable[str] | None = None) -> list[Difference]:
    """Every difference between two snapshots, each naming its object. `tables` limits the table
    comparison (e.g. to tables that did not change while a physical backup ran)."""
    out: list[Difference] = []
    only = set(tables) if tables is not None else None
    for name in sorted(set(source.tables) | set(restored.tables)):
        if only is not None and name not in only:
            continue
        a, b = source.tables.get(name), restored.tables.get(name)
        if b is None:
            out.append(Difference("missing_table", name, f"table missing after restore ({a.rows} rows in source)"))
        elif a is None:
            out.append(Difference("extra_table", name, f"table only in the restored copy ({b.rows} rows)"))
        elif a.rows != b.rows:
            out.append(Difference("row_count", name, f"{a.rows} rows in source, {b.rows} restored"))
        elif a.checksum != b.checksum:
            out.append(Difference("checksum", name, f"content differs with the same row count ({a.rows})"))
    for name in sorted(set(source.sequences) | set(restored.sequences)):
        a2, b2 = source.sequences.get(name), restored.sequences.get(name)
        if a2 != b2:
            fmt = lambda v: "missing" if v is None else f"last_value={v[0]} is_called={str(v[1]).lower()}"
            out.append(Difference("sequence", name, f"source {fmt(a2)}, restored {fmt(b2)}"))
    if source.large_objects != restored.large_objects:
        (na, _), (nb, _) = source.large_objects, restored.large_objects
        detail = f"{na} in source, {nb} restored" if na != nb else f"contents differ ({na} objects)"
        out.append(Difference("large_objects", "pg_largeobject", detail))
    if source.schema is not None and restored.schema is not None:
        out += schema_differences(source.schema, restored.schema)
    return out
