"""The VendHub example application (examples/) is well formed. No server needed.

The real proof (the files load on PostgreSQL 15 and 18 and the planted findings are exactly the ones
listed) belongs to the integration and e2e tests; these catch an edit that breaks the contract early.
"""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from pytest_pgready import settings as S
from pytest_pgready.catalog import CATALOG

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

REQUIRED_TABLES = {
    "organizations", "users", "roles", "user_roles", "locations", "machines", "machine_models", "products",
    "product_categories", "suppliers", "planograms", "planogram_slots", "inventory", "refills", "refill_items",
    "sales", "payments", "cash_collections", "maintenance_tickets", "ticket_comments", "price_changes",
    "audit_log", "telemetry_events", "api_keys",
}
PLANTED_IDS = {"IDX001", "IDX003", "IDX004", "SCH001", "SCH003", "SCH006", "SCH007", "SEC007"}
BLOCK = re.compile(r"^-- PLANTED FINDINGS\n(?P<body>.*?)^-- END PLANTED FINDINGS$", re.S | re.M)
ENTRY = re.compile(r"^--\s+(?P<id>[A-Z]{3,4}\d{3})\s+(?P<object>\S+)\s+(?P<why>\S.*)$")
# a psql variable reference (:name, :'name', :"name"), not a :: cast
PSQL_VAR = re.compile(r"(?<![:\w]):['\"]?([A-Za-z_]\w*)")


def _read(name: str) -> str:
    return (EXAMPLES / name).read_text(encoding="utf-8")


def _code(sql: str) -> str:
    """The SQL without -- comments (no string in these files contains '--')."""
    return "\n".join(line.split("--", 1)[0] for line in sql.splitlines())


def _planted() -> list[tuple[str, str, str]]:
    m = BLOCK.search(_read("schema.sql"))
    assert m, "schema.sql has no '-- PLANTED FINDINGS' ... '-- END PLANTED FINDINGS' block"
    out = []
    for line in m.group("body").splitlines():
        e = ENTRY.match(line)
        assert e, f"unparsable line in the planted-findings block: {line!r}"
        out.append((e["id"], e["object"], e["why"]))
    return out


# --- schema.sql ---------------------------------------------------------------------------------

def test_schema_has_at_least_22_tables_including_the_required_ones():
    code = _code(_read("schema.sql"))
    tables = re.findall(r"CREATE TABLE\s+vend\.(\w+)\s*\(", code)  # partitions are "PARTITION OF", not "("
    assert len(tables) >= 22, tables
    assert len(tables) == len(set(tables))
    assert REQUIRED_TABLES <= set(tables), REQUIRED_TABLES - set(tables)
    assert re.search(r"^CREATE SCHEMA vend;", code, re.M)


def test_schema_is_plain_sql():
    # applied by psql or by a driver: no psql meta-command may appear
    assert not [line for line in _read("schema.sql").splitlines() if line.lstrip().startswith("\\")]


def test_telemetry_is_partitioned_by_month_with_a_default_partition():
    code = _code(_read("schema.sql"))
    assert re.search(r"\)\s*PARTITION BY RANGE \(created_at\);", code)
    months = re.findall(r"PARTITION OF vend\.telemetry_events\s+FOR VALUES FROM \('(\d{4}-\d{2})-01[^)]*\) TO", code)
    assert len(months) == 3, months
    assert len(re.findall(r"PARTITION OF vend\.telemetry_events DEFAULT", code)) == 1


def test_schema_uses_bigint_keys_numeric_money_and_timestamptz_except_where_planted():
    code = _code(_read("schema.sql"))
    assert code.count("integer GENERATED ALWAYS AS IDENTITY") == 1          # vend.audit_log.id (SCH003)
    assert len(re.findall(r"\bdouble precision\b|\breal\b|\bmoney\b", code)) == 1  # old_price (SCH007)
    assert len(re.findall(r"\btimestamp\b(?! with)", code)) == 1             # exported_at (SCH006)
    assert len(re.findall(r"SECURITY DEFINER", code)) == 2
    assert code.count("SET search_path") == 1                                 # write_audit pins it, close_stale_tickets does not


def test_planted_findings_block_lists_exactly_the_planted_ids():
    planted = _planted()
    ids = [p[0] for p in planted]
    assert set(ids) == PLANTED_IDS
    assert ids.count("IDX001") == 2 and len(ids) == len(PLANTED_IDS) + 1
    for cid in ids:
        assert cid in CATALOG, cid


def test_every_planted_object_exists_in_the_schema():
    code = _code(_read("schema.sql"))
    for cid, obj, _ in _planted():
        assert obj.startswith("vend."), obj
        name = re.match(r"vend\.(\w+)", obj).group(1)
        assert re.search(rf"\bvend\.{name}\b|\b{name}\b ON vend\.", code), (cid, obj)
        col = re.search(r"\((\w+)\)$", obj) or re.search(r"^vend\.\w+\.(\w+)$", obj)
        if col and cid != "SEC007":
            assert re.search(rf"^\s+{col.group(1)}\s", code, re.M), (cid, obj)


def test_readme_lists_the_same_planted_findings():
    readme = _read("README.md")
    rows = set(re.findall(r"^\| ([A-Z]{3,4}\d{3}) \| `([^`]+)` \|", readme, re.M))
    assert rows == {(cid, obj) for cid, obj, _ in _planted()}


# --- settings files -----------------------------------------------------------------------------

def _toml(name: str) -> dict:
    return tomllib.loads(_read(name))


@pytest.mark.parametrize("name", ["pgready.toml", "critical_queries.toml"])
def test_settings_files_use_only_known_keys_and_validate(name):
    data = _toml(name)
    unknown = set(data) - set(S.SPEC_BY_NAME)
    assert not unknown, unknown
    values = {k.name: k.default for k in S.SPEC}
    S.apply_table(values, {}, data, name, EXAMPLES)   # the plugin's own validation: types, ranges, waivers


def test_pgready_toml_declares_the_demo_settings():
    data = _toml("pgready.toml")
    assert data["fail_under"] == 80
    assert data["app_role"] == "vend_app"
    assert data["declared_ram"] == "16GB"
    assert data["rto_seconds"] == 3600 and data["rpo_seconds"] == 300
    [waiver] = data["waivers"]
    assert waiver["id"] == "SCH006:vend.legacy_imports.*"
    assert waiver["reason"].strip()
    assert isinstance(waiver["expires"], dt.date)
    # the waiver covers exactly the planted SCH006 object
    assert [obj for cid, obj, _ in _planted() if cid == "SCH006"] == ["vend.legacy_imports.exported_at"]


def test_critical_queries_are_literal_selects_and_the_same_in_both_files():
    queries = _toml("critical_queries.toml")["critical_queries"]
    assert len(queries) == 3
    assert _toml("pgready.toml")["critical_queries"] == queries
    for q in queries:
        assert q.startswith("SELECT ") and ";" not in q
        assert not PSQL_VAR.search(q) and not re.search(r"\$\d|%s|%\(", q), q
        assert "vend." in q


# --- psql scripts -------------------------------------------------------------------------------

def test_seed_is_deterministic_scaled_and_analyzed():
    seed = _read("seed.sql")
    code = _code(seed)
    assert re.search(r"^\\if :\{\?scale\}\n\\else\n\\set scale 1\n\\endif$", seed, re.M)
    assert ":scale" in code and "generate_series" in code and "hashint8extended" in code
    assert not re.search(r"\b(random|setseed|now|clock_timestamp|gen_random_uuid)\s*\(", code, re.I)
    assert "setval(" in code and "VACUUM (ANALYZE)" in code
    assert "OVERRIDING SYSTEM VALUE" in code


def test_roles_creates_a_non_superuser_app_role_with_timeouts_and_a_readonly_role():
    code = _code(_read("roles.sql"))
    assert re.search(r"ALTER ROLE vend_app WITH LOGIN NOSUPERUSER\b", code)
    assert "PASSWORD :'vend_app_password'" in code
    assert not re.search(r"(?<!NO)SUPERUSER", code.replace("NOSUPERUSER", ""))
    assert re.search(r"ALTER ROLE vend_app SET statement_timeout = '\d+s';", code)
    assert "GRANT USAGE ON SCHEMA vend TO vend_app;" in code
    assert "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA vend TO vend_app;" in code
    assert "GRANT SELECT ON ALL TABLES IN SCHEMA vend TO vend_readonly;" in code
    assert "OWNER TO vend_app" not in code


def test_workload_documents_every_variable_it_reads():
    text = _read("workload.sql")
    header = text.split("\\set ON_ERROR_STOP", 1)[0]
    documented = set(re.findall(r"^--\s+:(\w+)\s", header, re.M))
    code = _code(text)
    produced = set()  # values a \gset in the script itself produces
    gset_statements = [stmt for piece in code.split(";") for stmt in piece.split("\\gset")[:-1]]
    for stmt in gset_statements:
        produced |= set(re.findall(r"\bAS\s+(\w+)", stmt))
        ret = re.search(r"RETURNING\s+(.*)$", stmt, re.S)
        if ret:
            produced |= {c.strip().split()[-1] for c in ret.group(1).split(",")}
    used = set(PSQL_VAR.findall(code))
    assert used, "no :variables found"
    assert used <= documented | produced, used - documented - produced
    assert {"org_id", "machine_id", "location_id", "since"} <= documented
    for n in range(1, 8):
        assert f"-- W{n}." in text
