"""What the static schema and indexes checks share: the catalog filter for user objects, running a
check's one query, and the pure rules that read names and constraint text.

Object names in evidence are quoted by the server (format('%I') / quote_ident), never here: only
PostgreSQL knows its keyword list, so only it can quote exactly like PostgreSQL.

Object strings (stable: waivers match them with fnmatch):
  table                `schema.table`
  column               `schema.table.column`
  foreign key (IDX001) `schema.table(col1, col2)` — the FK's columns in constraint order
  index                `schema.index`
  constraint (SCH004)  `schema.table.constraint` (a domain's: `schema.domain.constraint`)
  trigger (SCH009)     `schema.table.trigger`; FK enforcement triggers: `schema.table.fk_constraint`
"""

from __future__ import annotations

import fnmatch
import functools
import re
from typing import Any, Iterable

# ------------------------------------------------------------------------------------------ SQL pieces
# pg_catalog, information_schema, pg_toast*, pg_temp_* and pg_toast_temp_* are the system's.
USER_SCHEMA = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_)'"

# a relation created by CREATE EXTENSION is the extension's business, not the application's
NOT_EXTENSION_MEMBER = ("NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e WHERE e.classid = 'pg_catalog.pg_class'::regclass"
                        " AND e.objid = c.oid AND e.deptype = 'e')")


def user_tables(name: str = "t", kinds: str = "'r', 'p'", partitions: bool = False) -> str:
    """A CTE `name(oid, relname, nspname, relkind, relispartition, relpersistence, qname)` of the
    application's relations. `partitions=False` judges partitioned tables at the parent."""
    part = "" if partitions else " AND NOT c.relispartition"
    return f"""{name} AS (
  SELECT c.oid, c.relname, n.nspname, c.relkind, c.relispartition, c.relpersistence,
         format('%I.%I', n.nspname, c.relname) AS qname
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ({kinds}){part} AND {USER_SCHEMA} AND {NOT_EXTENSION_MEMBER})"""


# the number of application tables: with none, a check has nothing to judge (wrong database?)
TABLE_COUNT = f"""(SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind IN ('r', 'p') AND {USER_SCHEMA} AND {NOT_EXTENSION_MEMBER})"""

# domains resolved to their final base type: domain_base(typid, base)
DOMAIN_BASE = """domain_base(typid, base) AS (
  SELECT t.oid, t.typbasetype FROM pg_catalog.pg_type t WHERE t.typtype = 'd'
  UNION ALL
  SELECT d.typid, t.typbasetype FROM domain_base d JOIN pg_catalog.pg_type t ON t.oid = d.base AND t.typtype = 'd'
), final_base AS (
  SELECT d.typid, d.base FROM domain_base d JOIN pg_catalog.pg_type t ON t.oid = d.base WHERE t.typtype <> 'd')"""

# columns fed by a sequence: a DEFAULT that depends on a sequence (serial, nextval) or an identity
SEQUENCE_FED = """fed(relid, attnum, seqid, how) AS (
  SELECT ad.adrelid, ad.adnum, d.refobjid, 'default'
  FROM pg_catalog.pg_attrdef ad
  JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_attrdef'::regclass AND d.objid = ad.oid
       AND d.refclassid = 'pg_catalog.pg_class'::regclass
  JOIN pg_catalog.pg_class s ON s.oid = d.refobjid AND s.relkind = 'S'
  UNION
  SELECT d.refobjid, d.refobjsubid, d.objid, 'identity'
  FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S'
  WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.refclassid = 'pg_catalog.pg_class'::regclass
    AND d.deptype = 'i' AND d.refobjsubid > 0)"""

# usage statistics: since when they are counted, and whether they are counted at all
STATS_AGE = """stats AS (
  SELECT coalesce(d.stats_reset, pg_catalog.pg_postmaster_start_time()) AS since,
         d.stats_reset IS NOT NULL AS reset_known,
         extract(epoch FROM now() - coalesce(d.stats_reset, pg_catalog.pg_postmaster_start_time()))::float8 AS age_s,
         pg_catalog.current_setting('track_counts')::bool AS track_counts
  FROM pg_catalog.pg_stat_database d WHERE d.datname = pg_catalog.current_database())"""


# ------------------------------------------------------------------------------------------ running
def fetch_one(conn: Any, query: Any, record: Any) -> dict[str, Any]:
    """Run a check's one query (a single-row result, no parameters: its format('%I') stays literal) and
    return it as a dict. A catalog the role may not read makes the check `na` with what to grant."""
    import psycopg
    from psycopg.rows import dict_row

    try:
        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute(query)
            row = cur.fetchone()
    except psycopg.errors.InsufficientPrivilege as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else "permission denied"
        record.na(f"the role cannot read the catalog this check needs ({msg}): grant it pg_monitor "
                  "(or pg_read_all_stats) and SELECT on the application's tables")
    assert row is not None, "the check query returned no row"
    return row


def require_tables(record: Any, row: dict[str, Any]) -> None:
    """No application table at all: nothing to judge, and most likely the wrong database."""
    if not row.get("tables"):
        record.na("the database has no application tables (only system or extension objects): point "
                  "--pgready-dsn at the application's database, or load the schema with --pgready-init-sql")


# ----------------------------------------------------------------------------------- reading names
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_GLOB = re.compile(r"[*?\[]")


def name_words(name: str) -> list[str]:
    """A column name's words: split at anything not a letter or digit and at camelCase humps, lower-cased.

    Matching words (not substrings) is what keeps `account_id` from being a `count`."""
    return [w for w in re.split(r"[^0-9a-z]+", _CAMEL.sub("_", name).lower()) if w]


def matching_pattern(name: str, patterns: Iterable[str]) -> str | None:
    """The first pattern a column name matches, else None.

    A plain pattern matches a whole word of the name, or the word plus a plural `s`/`es`
    (`price` matches unit_price, prices, PriceUSD; `count` does not match account_id). A pattern with
    glob characters (* ? [) matches the whole lower-cased name with fnmatch."""
    pats = tuple(patterns)
    words, globs = _compiled(pats)
    hits = {words[w] for w in name_words(name) if w in words}
    low = name.lower()
    hits.update(p for g, p in globs if fnmatch.fnmatchcase(low, g))
    return next((p for p in pats if p in hits), None)


@functools.lru_cache(maxsize=32)
def _compiled(patterns: tuple[str, ...]) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """word (and its plurals) → the pattern it came from; the glob patterns apart."""
    words: dict[str, str] = {}
    globs: list[tuple[str, str]] = []
    for p in patterns:
        pl = p.strip().lower()
        if not pl:
            continue
        if _GLOB.search(pl):
            globs.append((pl, p))
        else:
            for w in (pl, pl + "s", pl + "es"):
                words.setdefault(w, p)
    return words, globs


def allowed_by(globs: Iterable[str], raw: str, quoted: str) -> str | None:
    """The allow-list glob matching an object, tried on its plain dotted name (`audit.events.at`) and
    on its quoted form (`audit."Events".at`); None when not allowed."""
    for g in globs:
        if fnmatch.fnmatchcase(raw, g) or fnmatch.fnmatchcase(quoted, g):
            return g
    return None


# ----------------------------------------------------------------------- reading constraint text
_CAST = re.compile(r"::\s*(\"[^\"]+\"|[a-z_][\w.]*)(\s+(precision|varying|with(out)?\s+time\s+zone))?"
                   r"(\(\d+(,\s*\d+)?\))?(\[\])?", re.I)
_NUM = r"(-?\d+(?:\.\d+)?)"


def forbids_negatives(definitions: Iterable[str], column: str) -> bool:
    """Does any CHECK definition (pg_get_constraintdef text) keep `column` from going negative?

    Loose by design: it looks for `column >= N` / `column > N` (or `N <= column` / `N < column`) with
    N >= 0, after dropping casts and parentheses. `column` is the quoted name as PostgreSQL prints it,
    or VALUE for a domain's CHECK. BETWEEN is printed by PostgreSQL as >= … AND <=, so it is covered."""
    fwd, rev = _bounds(column)
    for d in definitions:
        if not d:
            continue
        text = _CAST.sub("", d).replace("(", " ").replace(")", " ")
        text = re.sub(r"\s+", " ", text)
        for m in fwd.finditer(text):
            if float(m.group(2)) >= 0:
                return True
        for m in rev.finditer(text):
            if float(m.group(1)) >= 0:
                return True
    return False


@functools.lru_cache(maxsize=1024)
def _bounds(column: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    col = re.escape(column)
    return (re.compile(rf"(?<![\w\"]){col}(?![\w\"])\s*(>=|>)\s*'?{_NUM}'?"),
            re.compile(rf"'?{_NUM}'?\s*(<=|<)\s*(?<![\w\"]){col}(?![\w\"])"))


# ------------------------------------------------------------------------------------------ figures
def human_bytes(n: float | int | None) -> str:
    if n is None:
        return "?"
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def days(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds / 60:.1f} minutes" if seconds >= 60 else f"{seconds:.0f} seconds"


def overflow_eta(remaining_values: float, values_per_insert: float, inserts: float | None,
                 stats_age_s: float | None) -> tuple[float | None, str]:
    """How long until a sequence-fed column runs out, from the table's insert rate since the statistics
    started. Returns (days or None, a sentence saying what was measured or why it cannot be estimated)."""
    if remaining_values <= 0:
        return 0.0, "exhausted: the next insert fails"
    if not inserts or inserts <= 0:
        return None, "cannot be estimated: no inserts counted since the statistics started"
    if not stats_age_s or stats_age_s < 1:
        return None, "cannot be estimated: the statistics are less than a second old"
    rate = inserts / stats_age_s  # rows per second
    per_day = rate * 86400 * max(values_per_insert, 1)
    eta = remaining_values / per_day
    return eta, (f"about {eta:,.0f} days at {rate * 86400:,.0f} inserts/day "
                 f"(n_tup_ins over {days(stats_age_s)} of statistics; one sequence value per insert assumed)")


def btree_pages_estimate(reltuples: float, data_width: float, has_nulls: bool, fillfactor: int,
                         block_size: int = 8192, maxalign: int = 8) -> int:
    """Pages a freshly built btree would need, from statistics alone (the classic estimate of
    ioguix/pgsql-bloat-estimation, btree_bloat.sql): tuples of (aligned header + aligned average data
    width + 4-byte line pointer) packed to the fillfactor, plus the metapage.

    No pgstattuple needed; deduplication (PG13+) only makes real indexes smaller than this, so it
    errs towards reporting less bloat, never more."""
    page_header, btree_opaque, item_id = 24, 16, 4
    header = 8 + (4 if has_nulls else 0)  # IndexTupleData (+ null bitmap, rounded like the original)
    header += maxalign - (header % maxalign or maxalign)
    if data_width <= 0:
        data = maxalign
    else:
        data = data_width + maxalign - (int(data_width + 0.5) % maxalign or maxalign)
    per_page = int(((block_size - btree_opaque - page_header) * fillfactor) // (100 * (item_id + header + data)))
    per_page = max(per_page, 1)
    return 1 + int(-(-max(reltuples, 0) // per_page))  # metapage + ceil(tuples / per page)


def count(n: int, noun: str, plural: str | None = None) -> str:
    """'1 index', '2 indexes': summaries read right for one finding too."""
    return f"{n} {noun if n == 1 else (plural or noun + 's')}"
