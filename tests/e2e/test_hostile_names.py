"""Hostile names end to end: one real `pytest --pgready` on the embedded cluster whose data is hostile.

The cluster is provisioned with tests/integration/schemas/hostile.sql plus HOSTILE_INIT below: a database
whose name holds a double quote, a space, a semicolon, a single quote, unicode and HTML; schema, table,
column, index, sequence, materialized view, partition, function and role names with the same plus a
63-byte multibyte name and terminal control characters; rows whose text is markup, quotes and
backslashes; large objects. Every suite that reads user objects or builds SQL or command lines from
names runs over it (static checks, the backup and PITR drills, PERF003/PERF005), and:

- no check ends `error` (a quoting bug shows up as an error or as a wrong verdict);
- BKP001 (logical), BKP002 (physical + amcheck over every database, the hostile one included),
  BKP003, BKP005 and PITR001-006 pass: the restored content is identical;
- the planted findings name their objects exactly as the server's quote_ident / format('%I') does;
- readiness.html, readiness.md, the JUnit XML and the terminal show the names as text, never as markup
  or terminal control sequences.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
HOSTILE_SQL = ROOT / "tests" / "integration" / "schemas" / "hostile.sql"

SCHEMA = 'we"ird sch;ema'  # from hostile.sql
SCRIPT = "<script>alert(1)</script>"  # a table of hostile.sql, no primary key
FK_COL = 'ü mlaut "q"'
LONG = "t" * 63
UNICODE_63 = "é" * 31 + "x"  # 63 bytes in UTF-8 (NAMEDATALEN - 1), UNLOGGED
HOSTILE_DB = "pgready \"db\"; DROP'é <b>&amp;"
APP_ROLE = "app \"r|le';<b>x"
MD5_ROLE = "md5 \x1b[31mred\x07 <i>"  # terminal escape sequence and BEL in a role name
TTY_TABLE = "tty \x1b[2J\x1b]0;pwned\x07 \u202etxt.exe"  # printed raw: clears, retitles, reverses
FUNC = "f<img src=x onerror=alert(4)>"
RLS_TABLE = 'rls "t"'
SEQ = 'seq "s";<i>'
IDX = 'ix "n";<b>'
IDX_DUP = 'ix dup "2"'
MV = "mv <u>"
PART = 'part "p"'
PART_A = "part a;b"

HOSTILE_TEXT = ["<script>alert(1)</script>", "it's \"quoted\"; DROP TABLE x; --", "back\\slash\ttab\nnewline",
                "ünï©ødé ✓ 😀", "</textarea><img src=x onerror=alert(2)>", "&amp; &lt;", "| md | _em_ *b* `c` [l](x)"]


def _lit(s: str) -> str:
    """A SQL string literal for the init file (the test writes SQL for psql, like a user would)."""
    return "'" + s.replace("'", "''") + "'"


def _uident(s: str) -> str:
    """A U&"…" identifier: any character but NUL, written with escapes (control characters included)."""
    return 'U&"' + "".join(c if c.isalnum() or c == " " else f"\\{ord(c):04X}" if ord(c) < 0x10000
                           else f"\\+{ord(c):06X}" for c in s) + '"'


def _ident(s: str) -> str:
    return '"' + s.replace('"', '""') + '"'


S = _ident(SCHEMA)
T = f"{S}.{_ident(SCRIPT)}"

HOSTILE_INIT = f"""
-- applied after hostile.sql, with psql -v ON_ERROR_STOP=1 on the database "app"
SET client_encoding = 'UTF8';
INSERT INTO {S}.{_ident(LONG)} DEFAULT VALUES;
INSERT INTO {T} ({_ident(FK_COL)}, note)
SELECT 1, v FROM unnest(ARRAY[{", ".join(_lit(t) for t in HOSTILE_TEXT)}]) v, generate_series(1, 30);
CREATE INDEX {_ident(IDX)} ON {T} (note);
CREATE INDEX {_ident(IDX_DUP)} ON {T} (note);                         -- IDX003: a duplicate
ALTER TABLE {T} SET (autovacuum_enabled = false);                    -- CFG012; keeps HLT007's dead tuples
ANALYZE {T};
DELETE FROM {T} WHERE note <> {_lit(HOSTILE_TEXT[0])};              -- HLT007: 180 of 210 dead
CREATE SEQUENCE {S}.{_ident(SEQ)};
SELECT setval({_lit(S + "." + _ident(SEQ))}, 42);
CREATE MATERIALIZED VIEW {S}.{_ident(MV)} AS SELECT DISTINCT note FROM {T};
CREATE TABLE {S}.{_ident(PART)} (id bigint, k text, PRIMARY KEY (id, k)) PARTITION BY LIST (k);
CREATE TABLE {S}.{_ident(PART_A)} PARTITION OF {S}.{_ident(PART)} FOR VALUES IN ('a''b', '<x>');
INSERT INTO {S}.{_ident(PART)} SELECT g, CASE WHEN g % 2 = 0 THEN 'a''b' ELSE '<x>' END FROM generate_series(1, 50) g;
CREATE TABLE {S}.{_uident(TTY_TABLE)} (note text);                    -- SCH001 too
INSERT INTO {S}.{_uident(TTY_TABLE)} VALUES ({_lit(HOSTILE_TEXT[2])});
SELECT lo_from_bytea(0, convert_to({_lit(HOSTILE_TEXT[0] + HOSTILE_TEXT[1])}, 'UTF8'));
GRANT CREATE ON SCHEMA {S} TO PUBLIC;                                 -- SEC006
CREATE FUNCTION {S}.{_ident(FUNC)}(integer) RETURNS integer
  LANGUAGE sql SECURITY DEFINER AS 'SELECT $1';                       -- SEC007
CREATE TABLE {S}.{_ident(RLS_TABLE)} (id bigint PRIMARY KEY);
ALTER TABLE {S}.{_ident(RLS_TABLE)} ENABLE ROW LEVEL SECURITY;        -- SEC008: no policy
CREATE ROLE {_ident(APP_ROLE)} LOGIN;
ALTER SCHEMA {S} OWNER TO {_ident(APP_ROLE)};                         -- SEC004: the app role owns it
ALTER ROLE {_ident(APP_ROLE)} SET statement_timeout = '5s';           -- CFG009 passes through role settings
ALTER ROLE {_ident(APP_ROLE)} SET idle_in_transaction_session_timeout = '60s';
SET password_encryption = 'md5';
CREATE ROLE {_uident(MD5_ROLE)} LOGIN PASSWORD 'md5-pw';              -- SEC002
RESET password_encryption;

CREATE DATABASE {_ident(HOSTILE_DB)};
\\connect {_ident(HOSTILE_DB)}
SET client_encoding = 'UTF8';
CREATE SCHEMA {S};
CREATE TABLE {T} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, {_ident(FK_COL)} text, note text);
CREATE INDEX {_ident(IDX)} ON {T} (note, {_ident(FK_COL)});
INSERT INTO {T} ({_ident(FK_COL)}, note)
SELECT v, v || g FROM unnest(ARRAY[{", ".join(_lit(t) for t in HOSTILE_TEXT)}]) v, generate_series(1, 100) g;
CREATE SEQUENCE {S}.{_ident(SEQ)};
SELECT setval({_lit(S + "." + _ident(SEQ))}, 7, false);
SELECT lo_from_bytea(0, convert_to({_lit(HOSTILE_TEXT[4])}, 'UTF8'));
"""


def _toml(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)  # a JSON string is a TOML basic string


CRITICAL_QUERY = f"SELECT note FROM {T} WHERE note <> 'x'"
CONFIG = f"""
replicas = 0
app_role = {_toml(APP_ROLE)}
critical_queries = [{_toml(CRITICAL_QUERY)}]
seqscan_min_rows = 10
bloat_min_rows = 10
cache_sample_seconds = 0.5
archive_rpo_window_s = 1

[[waivers]]
id = {_toml("SCH010:" + _ident(SCHEMA) + "." + _ident(UNICODE_63))}
reason = "disposable <cache> & \\"quoted\\" reason"
"""
SUITES = "schema,indexes,config,security,health,backup,pitr,performance"
NO_LOAD = "not perf001 and not perf002 and not perf004 and not perf006 and not rep002"  # Locust: pgready's own tables


# ----------------------------------------------------------------------------------------------- the run
class Run:
    def __init__(self, exit_code: int, output: str, report: dict[str, Any] | None, report_dir: Path, junit: Path,
                 seconds: float) -> None:
        self.exit_code, self.output, self.report, self.report_dir, self.junit = exit_code, output, report, report_dir, junit
        self.seconds = seconds

    def check(self, cid: str) -> dict[str, Any]:
        assert self.report is not None, f"no readiness.json; output:\n{self.output[-4000:]}"
        for c in self.report["checks"]:
            if c["id"] == cid:
                return c
        raise KeyError(cid)

    def objects(self, cid: str) -> list[str]:
        return [str(o) for o in self.check(cid)["evidence"].get("objects", [])]


@pytest.fixture(scope="module")
def hostile_run(pg_bins, tmp_path_factory) -> Run:
    tmp = tmp_path_factory.mktemp(f"hostile-pg{pg_bins.major}")
    init = tmp / "hostile_init.sql"
    init.write_text(HOSTILE_INIT, encoding="utf-8")
    cfg = tmp / "pgready.toml"
    cfg.write_text(CONFIG, encoding="utf-8")
    report_dir, junit = tmp / "report", tmp / "junit.xml"
    argv = [sys.executable, "-m", "pytest", "--pgready", "-p", "no:cacheprovider", "-q", "-rN", "--color=no",
            "--pgready-report-dir", str(report_dir), "--pgready-config", str(cfg),
            "--pgready-pg-bin", str(pg_bins.bindir), "--pgready-suite", SUITES, "-k", NO_LOAD,
            "--pgready-init-sql", str(HOSTILE_SQL), "--pgready-init-sql", str(init), "--junitxml", str(junit)]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_XDIST_WORKER", "PYTEST_ADDOPTS")}
    t0 = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=str(tmp), env=env,
                          stdin=subprocess.DEVNULL, encoding="utf-8", errors="surrogateescape")
    (tmp / "output.txt").write_text(proc.stdout + proc.stderr, encoding="utf-8", errors="surrogateescape")
    path = report_dir / "readiness.json"
    report = json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
    return Run(proc.returncode, proc.stdout + proc.stderr, report, report_dir, junit, time.monotonic() - t0)


@pytest.fixture(scope="module")
def quoted(pg_cluster) -> dict[str, str]:
    """The expected object strings, quoted by the server itself (quote_ident / format('%I'))."""
    names = {"schema": SCHEMA, "script": SCRIPT, "fk_col": FK_COL, "unicode": UNICODE_63, "tty": TTY_TABLE,
             "func": FUNC, "rls": RLS_TABLE, "idx": IDX, "idx_dup": IDX_DUP, "app_role": APP_ROLE,
             "md5_role": MD5_ROLE, "db": HOSTILE_DB}
    with pg_cluster.primary.connect(dbname="postgres") as c:
        out = {k: c.execute("SELECT quote_ident(%s)", (v,)).fetchone()[0] for k, v in names.items()}
        out["table"] = c.execute("SELECT format('%%I.%%I', %s::text, %s::text)", (SCHEMA, SCRIPT)).fetchone()[0]
    return out


def test_no_check_errors_and_the_drills_pass(hostile_run: Run):
    run = hostile_run
    assert run.report is not None, run.output[-4000:]
    errors = {c["id"]: c["summary"] for c in run.report["checks"] if c["status"] == "error"}
    assert not errors, errors
    statuses = {c["id"]: c["status"] for c in run.report["checks"]}
    must_pass = ["BKP001", "BKP002", "BKP003", "BKP005", "PITR001", "PITR002", "PITR003", "PITR004", "PITR005",
                 "PITR006", "CFG009", "HLT001"]
    bad = {cid: (statuses.get(cid), run.check(cid)["summary"]) for cid in must_pass if statuses.get(cid) != "pass"}
    assert not bad, bad
    # every suite asked for took part; the deselected load checks are listed as not run
    assert set(SUITES.split(",")) <= {c["category"] for c in run.report["checks"]}
    assert {statuses[c] for c in ("PERF001", "PERF002", "PERF004", "PERF006")} == {"na"}
    print(f"hostile run: {run.seconds:.1f}s, {len(statuses)} checks")


def test_backups_restore_the_hostile_objects_exactly(hostile_run: Run, quoted):
    bkp1 = hostile_run.check("BKP001")["evidence"]
    src, restored = bkp1["source"], bkp1["restored"]
    assert {**src, "database": "-"} == {**restored, "database": "-"}, (src, restored)
    # hostile.sql (3 tables) + the rows table, mv, partition, rls, tty table: all compared; the large object too
    assert src["tables"] >= 8 and src["rows"] >= 30 + 1 + 50 + 1 and src["large_objects"] == 1
    assert src["sequences"] >= 3 and src["schema_objects"] > 10
    bkp2 = hostile_run.check("BKP002")["evidence"]
    compared = bkp2["compared_tables"]
    assert compared.get(HOSTILE_DB) == 1 and compared.get("app", 0) >= 7, compared  # the hostile database too
    assert bkp2["amcheck"]["btree_indexes"] > 0 and not bkp2.get("tables_changing_during_backup")


def test_planted_findings_name_objects_like_quote_ident(hostile_run: Run, quoted):
    run, q = hostile_run, quoted
    schema, table = q["schema"], q["table"]
    assert table == f"{schema}.{q['script']}" and schema == '"we""ird sch;ema"'
    tty = f"{schema}.{q['tty']}"
    assert "\x1b" in tty  # quote_ident keeps control characters: they are data
    assert {table, tty} <= set(run.objects("SCH001")), run.objects("SCH001")
    assert f"{table}({q['fk_col']})" in run.objects("IDX001")
    assert f"CREATE INDEX CONCURRENTLY ON {table} ({q['fk_col']});" in run.check("IDX001")["evidence"]["remedy"]
    assert any(f"{schema}.{q['idx']}" in o or f"{schema}.{q['idx_dup']}" in o for o in run.objects("IDX003")), \
        run.objects("IDX003")
    # the waiver written with the quoted name matched it
    sch010 = run.check("SCH010")
    assert sch010["status"] == "waived", sch010
    assert any(o.startswith(f"{schema}.{q['unicode']} — waived") for o in sch010["evidence"]["waived_objects"])
    assert run.objects("SEC006") == [schema]
    assert run.check("SEC006")["evidence"]["remedy"] == [f"REVOKE CREATE ON SCHEMA {schema} FROM PUBLIC;"]
    assert run.objects("SEC007") == [f"{schema}.{q['func']}(integer)"]
    assert f"{schema}.{q['rls']}: row level security enabled without any policy" in run.objects("SEC008")
    assert f"{q['app_role']} owns schema {schema}" in run.objects("SEC004"), run.objects("SEC004")
    assert f"ALTER ROLE {q['app_role']} NOSUPERUSER NOREPLICATION;" in run.check("SEC004")["evidence"]["remedy"]
    assert f"role {q['md5_role']} has an MD5 password hash" in run.objects("SEC002"), run.objects("SEC002")
    assert table in run.objects("CFG012"), run.objects("CFG012")
    assert f"ALTER TABLE {table} RESET (autovacuum_enabled);" in run.check("CFG012")["evidence"]["remedy"]
    assert any(o.startswith(f"{table}: ") and "dead of" in o for o in run.objects("HLT007")), run.objects("HLT007")
    assert any(o.startswith(f"{table} (~") and o.endswith("in query 1") for o in run.objects("PERF003")), \
        run.objects("PERF003")
    # CFG009 found the timeouts through the role's own settings, and says where they come from, quoted
    timeouts = run.check("CFG009")["evidence"]["timeouts"]
    assert timeouts["statement_timeout"] == {"value": "5s", "from": f"ALTER ROLE {q['app_role']}"}, timeouts
    hlt001 = run.check("HLT001")["evidence"]
    assert hlt001["databases"] >= 5  # template0/1, postgres, app and the hostile one
    assert not [o for o in hlt001["oldest"] if o.startswith(f"database {HOSTILE_DB}")]  # quoted when listed


# ------------------------------------------------------------------------------------------------ reports
class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse_html(text: str) -> _Tags:
    p = _Tags()
    p.feed(text)
    p.close()
    return p


PLANTED_MARKUP = ("script", "img", "textarea", "u", "i")  # the page's own markup has <b> (counts) only


def test_html_report_shows_names_as_text(hostile_run: Run, quoted):
    html = (hostile_run.report_dir / "readiness.html").read_text(encoding="utf-8")
    page = _parse_html(html)
    tags = {t for t, _ in page.tags}
    assert not tags & set(PLANTED_MARKUP), tags & set(PLANTED_MARKUP)
    assert not [a for _, attrs in page.tags for a, _ in attrs if a.startswith("on")], "an event handler attribute"
    assert "\x1b" not in html and "\x07" not in html  # control characters are not text a page may hold
    assert "\u202e" not in html and "\\u202etxt.exe" in html  # nor a bidi override: shown as an escape
    text = " ".join(" ".join(page.text).split())
    q = quoted
    for shown in (q["table"], f"{q['table']}({q['fk_col']})", f"REVOKE CREATE ON SCHEMA {q['schema']} FROM PUBLIC;",
                  f"{q['schema']}.{q['func']}(integer)", f"{q['app_role']} owns schema {q['schema']}"):
        assert " ".join(shown.split()) in text, shown
    # BKP002's evidence (shown as JSON): the hostile database's name is text, its "<b>&amp;" no markup
    assert json.dumps(HOSTILE_DB, ensure_ascii=False) in text
    assert "<b>&amp;" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_markdown_report_escapes_names(hostile_run: Run, quoted):
    md = (hostile_run.report_dir / "readiness.md").read_text(encoding="utf-8")
    # GitHub renders the HTML inside Markdown: only the writer's own tags may appear
    assert {t for t, _ in _parse_html(md).tags} <= {"details", "summary", "sub"}, \
        {t for t, _ in _parse_html(md).tags}
    assert "\x1b" not in md and "\x07" not in md and "\u202e" not in md
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in md
    # a name's `|` never breaks a table row into more cells
    for block in md.split("\n\n"):
        rows = [ln for ln in block.splitlines() if ln.startswith("|")]
        if not rows:
            continue
        widths = {len(re.split(r"(?<!\\)\|", r)) for r in rows}
        assert len(widths) == 1, rows
    assert "SEC006" in md and "\\\"we\"\"ird sch;ema\\\"" not in md


def test_junit_xml_is_well_formed_and_holds_names_safely(hostile_run: Run, quoted):
    raw = hostile_run.junit.read_bytes()
    tree = ET.fromstring(raw)  # raises on a control character or broken markup
    cases = tree.findall(".//testcase")
    assert len(cases) >= 40
    messages = [f.get("message") or "" for c in cases for f in c.findall("failure")]
    want = f"role {quoted['md5_role']} has an MD5 password hash".replace("\x1b", "\\x1b").replace("\x07", "\\x07")
    assert [m for m in messages if want in m], messages  # SEC002's summary, control characters shown as \xNN
    props = {p.get("name"): p.get("value") for p in tree.iter("property")}
    assert props.get("pgready.gate") in ("passed", "failed") and props.get("pgready.score")
    assert b"<script>" not in raw and b"\x1b" not in raw and "\u202e".encode() not in raw


def test_terminal_output_has_no_control_sequences_from_names(hostile_run: Run):
    out = hostile_run.output
    assert "\x1b" not in out and "\x07" not in out, repr(out[max(0, out.find("\x1b") - 200):out.find("\x1b") + 50])
    assert "\u202e" not in out
    assert "pgready: score" in out


def test_content_checksum_covers_the_whole_row_when_a_column_is_named_t(scratch_db):
    """The row hash aliases each table as t: a column named t must not replace the row (it once did)."""
    from pytest_pgready.drills.content import snapshot_database

    scratch_db.execute('CREATE TABLE "T t" (t int, u text); INSERT INTO "T t" VALUES (1, \'a\'), (2, \'b\')')
    before = snapshot_database(scratch_db.cluster.primary, scratch_db.name)
    scratch_db.execute('UPDATE "T t" SET u = u || \'!\'')
    after = snapshot_database(scratch_db.cluster.primary, scratch_db.name)
    assert list(before.tables) == ['public."T t"']  # keyed as format('%I.%I') quotes it
    assert before.tables['public."T t"'].rows == 2
    assert before.tables['public."T t"'].checksum != after.tables['public."T t"'].checksum
