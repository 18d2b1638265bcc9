"""Pure helpers of the config/security/health suites and the dated version table (CFG007), without a server."""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path

import pytest

from pytest_pgready import versions

SUITES = Path(__file__).resolve().parents[2] / "suites"


def _suite(name: str):
    spec = importlib.util.spec_from_file_location(f"pgready_unit_{name}", SUITES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


config = _suite("test_config")
security = _suite("test_security")
health = _suite("test_health")


# ------------------------------------------------------------------------------------------ versions
def test_version_table_covers_the_tested_binaries():
    assert versions.BRANCHES[15].newest_minor >= 18 and versions.BRANCHES[18].newest_minor >= 6
    assert versions.split_version_num(150018) == (15, 18) and versions.split_version_num(180006) == (18, 6)


def test_current_minor_passes():
    v = versions.judge(18, 6, 2, today=dt.date(2026, 12, 1))
    assert v.status == "pass" and v.evidence["end_of_life"] == "2030-11-14"


def test_minor_too_far_behind_fails():
    v = versions.judge(15, 15, 2, today=dt.date(2026, 12, 1))
    assert v.status == "fail" and "3 minor releases behind 15.18" in v.summary


def test_minor_within_tolerance_passes():
    assert versions.judge(15, 16, 2, today=dt.date(2026, 12, 1)).status == "pass"


def test_end_of_life_major_fails():
    v = versions.judge(14, 23, 2, today=dt.date(2026, 11, 22))  # EOL 2026-11-12
    assert v.status == "fail" and "end of life on 2026-11-12" in v.summary
    assert versions.judge(12, 22, 2).status == "fail"  # older than the table: long gone


def test_unknown_newer_major_is_na_not_pass():
    assert versions.judge(19, 1, 2, today=versions.TABLE_DATE).status == "na"


def test_stale_table_says_so():
    fresh = versions.judge(18, 6, 2, today=versions.TABLE_DATE)
    stale = versions.judge(18, 6, 2, today=versions.TABLE_DATE + dt.timedelta(days=200))
    assert "table_stale" not in fresh.evidence and "200 days old" in stale.evidence["table_stale"]


# ------------------------------------------------------------------------------------------ config
@pytest.mark.parametrize("raw,unit,expected", [
    ("4GB", 8192, 4 * 1024 ** 3), ("512 MB", 8192, 512 * 1024 ** 2), ("1.5GB", 1, int(1.5 * 1024 ** 3)),
    ("16384", 8192, 16384 * 8192), ("'256MB'", 8192, 256 * 1024 ** 2), ("16gb", 1, 16 * 1024 ** 3),
    ("64kB", 1024, 65536), ("lots", 1, None), ("", 1, None), (None, 1, None), ("4 GiB", 1, None),
])
def test_parse_size(raw, unit, expected):
    assert config.parse_size(raw, unit) == expected


def test_unit_bytes():
    assert config.unit_bytes("8kB") == 8192 and config.unit_bytes("kB") == 1024 and config.unit_bytes("ms") is None


@pytest.mark.parametrize("cmd", ["", "  ", "/bin/true", "true", "exit 0", ":", "/usr/bin/true", "true;", "true %p"])
def test_noop_archive_commands(cmd):
    assert config.is_noop_archive(cmd)


@pytest.mark.parametrize("cmd", ["cp %p /archive/%f", "pgbackrest --stanza=main archive-push %p",
                                 "test ! -f /a/%f && cp %p /a/%f", "false", "wal-g wal-push %p"])
def test_real_archive_commands(cmd):
    assert not config.is_noop_archive(cmd)


def test_segment_numbers():
    seg = 16 * 1024 * 1024
    assert config._segno("000000010000000000000003", seg) == 3
    assert config._segno("000000010000000100000000", seg) == 256
    assert config._segno("00000002.history", seg) is None


def test_effective_timeouts_precedence():
    rows = [("0", "statement_timeout", [["app", "mydb", "statement_timeout=5s", "app", "mydb"],
                                        ["app", "", "statement_timeout=30s", "app", ""]], "postgres"),
            ("1min", "idle_in_transaction_session_timeout", None, "postgres"),
            ("0", "lock_timeout", [["", "mydb", "lock_timeout=2s", "", "mydb"]], "postgres")]
    eff = config.effective_timeouts(rows, "app")
    assert eff["statement_timeout"][0] == "5s" and "IN DATABASE mydb" in eff["statement_timeout"][1]
    assert eff["idle_in_transaction_session_timeout"] == ("1min", "server")
    assert eff["lock_timeout"][0] == "2s"


def test_effective_timeouts_unknown_when_connected_role_masks_server_value():
    rows = [("10s", "statement_timeout", [["monitor", "", "statement_timeout=10s"]], "monitor")]
    assert config.effective_timeouts(rows, "app")["statement_timeout"][0] is None
    assert config.effective_timeouts(rows, "monitor")["statement_timeout"][0] == "10s"


def test_effective_timeouts_hostile_role_and_database_names():
    """Names are compared raw ('|' and '=' are no separators) and shown as the server quoted them."""
    role, db = 'app "r|le\';x', "my|db=1"
    rows = [("0", "statement_timeout", [[role, db, "statement_timeout=5s", '"app ""r|le\';x"', '"my|db=1"'],
                                        [role, "", "statement_timeout=30s", '"app ""r|le\';x"', ""]], "postgres")]
    eff = config.effective_timeouts(rows, role)
    assert eff["statement_timeout"] == ("5s", 'ALTER ROLE "app ""r|le\';x" IN DATABASE "my|db=1"')
    assert config.effective_timeouts(rows, "app")["statement_timeout"] == ("0", "server")


# ------------------------------------------------------------------------------------------ security
@pytest.mark.parametrize("value,kind", [
    ("host=db user=rep password=s3cret", "password="), ("PGPASSWORD=x pg_receivewal", "pgpassword="),
    ("rsync postgresql://u:pw@h/db", "user:password@ in a URI"),
    ("user=rep passfile=/etc/pgpass host=db", None), ("cp %p /a/%f", None), ("", None),
])
def test_secret_kind_never_returns_the_secret(value, kind):
    got = security.secret_kind(value)
    assert got == kind
    assert got is None or "s3cret" not in got


def test_hba_label_and_loopback():
    rule = {"line_number": 7, "type": "host", "database": ["all"], "user_name": ["all"], "address": "0.0.0.0",
            "netmask": "0.0.0.0", "auth_method": "trust"}
    assert security.hba_label(rule) == "line 7: host all all 0.0.0.0/0 trust"
    assert security.is_loopback("127.0.0.1") and security.is_loopback("::1") and security.is_loopback("samehost")
    assert not security.is_loopback("10.0.0.1") and not security.is_loopback(None) and not security.is_loopback("all")


# ------------------------------------------------------------------------------------------ health
def test_mask_query_hides_literals():
    q = health.mask_query("ALTER ROLE app PASSWORD 'hunter2'; SELECT $x$secret$x$, 'it''s'")
    assert "hunter2" not in q and "secret" not in q and "it" not in q.split("SELECT")[1].replace("'…'", "")
    assert health.mask_query(None) is None and len(health.mask_query("x" * 500)) <= 161


def test_analyze_threshold_handles_never_analyzed():
    assert health.analyze_threshold(-1, 50, 0.1) == 50
    assert health.analyze_threshold(10_000, 50, 0.1) == 1050


def test_archive_command_with_a_secret_is_not_shown():
    assert "hunter2" not in config._describe_command("PGPASSWORD=hunter2 pg_receivewal -h backup")
    assert "pw" not in config._describe_command("rsync %p postgresql://u:pw@host/x")
    assert config._describe_command("cp %p /a/%f") == "cp %p /a/%f"
