"""security suite: authentication, encryption, privileges and secrets (SEC001–SEC010).

Several sources are superuser-only (pg_hba_file_rules, pg_authid); a role that cannot read them gets `na`
with the grant that would let it, never a pass. Evidence never carries a password or a hash: only setting
names, rule lines and role names.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

import psycopg
import pytest

LOOPBACK = ("127.0.0.1", "::1", "localhost", "samehost")


def _superuser(conn: Any) -> bool:
    return conn.execute("SELECT current_setting('is_superuser')").fetchone()[0] == "on"


def _app_role(conn: Any, settings: Any) -> str:
    return settings.app_role or conn.info.user


# --------------------------------------------------------------------------------------------- pg_hba
HBA_SQL = """
SELECT line_number, type, database, user_name, address, netmask, auth_method, error
FROM pg_hba_file_rules ORDER BY line_number
"""


def _hba_rules(conn: Any, record: Any, check: str) -> list[dict[str, Any]]:
    try:
        cur = conn.execute(HBA_SQL)
    except psycopg.errors.InsufficientPrivilege:
        record.na(f"this role cannot read pg_hba_file_rules: GRANT SELECT ON pg_hba_file_rules TO it and GRANT "
                  f"EXECUTE ON FUNCTION pg_hba_file_rules() TO it, or run as a superuser ({check} reads the rules)")
    cols = [d.name for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def hba_label(rule: dict[str, Any]) -> str:
    """A rule as a person reads it in pg_hba.conf: 'line 7: host all all 0.0.0.0/0 trust'."""
    addr = rule.get("address") or ""
    if rule.get("netmask") and addr:
        addr = f"{addr}/{_prefix_len(rule['netmask'])}"
    dbs = ",".join(rule.get("database") or [])
    users = ",".join(rule.get("user_name") or [])
    return f"line {rule['line_number']}: {rule['type']} {dbs} {users} {addr} {rule['auth_method']}".replace("  ", " ")


def _prefix_len(mask: str) -> str:
    try:
        return str(ipaddress.ip_network(f"0.0.0.0/{mask}").prefixlen) if "." in mask else \
            str(ipaddress.ip_network(f"::/{mask}").prefixlen)
    except ValueError:
        return mask


def is_loopback(address: str | None) -> bool:
    if not address:
        return False
    if address in LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


@pytest.mark.pgready(id="SEC001")
def test_no_trust_over_network(pgready_conn, pgready_record):
    """trust lets anyone who reaches the port in as any role; password sends it in clear text."""
    rules = _hba_rules(pgready_conn, pgready_record, "SEC001")
    errors = [f"line {r['line_number']}: {r['error']}" for r in rules if r.get("error")]
    bad = [hba_label(r) for r in rules
           if r["type"] != "local" and r["auth_method"] in ("trust", "password") and not r.get("error")]
    pgready_record.add(rules=len(rules), hba_errors=errors)
    if bad:
        pgready_record.fail(f"{len(bad)} pg_hba rules admit TCP connections without a real password check",
                            objects=bad, remedy="use scram-sha-256 (or cert) for every host/hostssl rule")
    if not rules:
        pgready_record.na("pg_hba_file_rules returned no rules: check that the server's hba_file is readable")
    pgready_record.summary(f"no trust or password rule among {len(rules)} pg_hba rules for TCP connections")


# --------------------------------------------------------------------------------------------- SEC002
MD5_SQL = "SELECT quote_ident(rolname) FROM pg_authid WHERE rolpassword LIKE 'md5%' ORDER BY rolname"


@pytest.mark.pgready(id="SEC002")
def test_scram_only(pgready_conn, pgready_record):
    """MD5 hashes are replayable password equivalents; scram-sha-256 is the only sound choice."""
    enc = pgready_conn.execute("SELECT current_setting('password_encryption')").fetchone()[0]
    pgready_record.add(password_encryption=enc)
    problems = [] if enc == "scram-sha-256" else [f"password_encryption = {enc}"]
    try:
        md5_roles = [r[0] for r in pgready_conn.execute(MD5_SQL).fetchall()]
    except psycopg.errors.InsufficientPrivilege:
        md5_roles = None
        pgready_record.add(superuser_would_see="which roles still keep an MD5 hash (pg_authid is superuser-only; "
                                               "no predefined role grants it, nor pg_shadow)")
    if md5_roles:
        problems += [f"role {r} has an MD5 password hash" for r in md5_roles]
    if problems:
        pgready_record.fail("; ".join(problems[:3]) + (f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""),
                            objects=problems, remedy="password_encryption = 'scram-sha-256', then have every "
                                                     "listed role set its password again (ALTER ROLE … PASSWORD)")
    if md5_roles is None:
        pgready_record.na("password_encryption is scram-sha-256, but only a superuser can read pg_authid to see "
                          "whether a role still keeps an MD5 hash: run this check as a superuser")
    pgready_record.summary("password_encryption = scram-sha-256 and no role keeps an MD5 hash")


# --------------------------------------------------------------------------------------------- SEC003
@pytest.mark.pgready(id="SEC003")
def test_tls_required(pgready_conn, pgready_record):
    """Without TLS, passwords' challenges and all data cross the network readable and alterable."""
    ssl = pgready_conn.execute("SELECT current_setting('ssl')").fetchone()[0]
    pgready_record.add(ssl=ssl)
    if ssl != "on":
        pgready_record.fail("ssl = off: no client can encrypt its connection", objects=["ssl=off"],
                            remedy="ssl = on with ssl_cert_file/ssl_key_file (a server built without OpenSSL cannot)")
    rules = _hba_rules(pgready_conn, pgready_record, "SEC003")
    plain = [hba_label(r) for r in rules
             if r["type"] in ("host", "hostnossl") and r["auth_method"] != "reject" and not r.get("error")
             and not is_loopback(r.get("address"))]
    loop = [hba_label(r) for r in rules if r["type"] in ("host", "hostnossl") and is_loopback(r.get("address"))]
    if loop:
        pgready_record.add(loopback_rules_without_tls=loop)  # never leave the host: listed, not failed
    if plain:
        pgready_record.fail(f"{len(plain)} pg_hba rules accept remote connections without TLS", objects=plain,
                            remedy="turn every remote host rule into hostssl")
    pgready_record.summary("ssl = on and every remote pg_hba rule is hostssl")


# --------------------------------------------------------------------------------------------- SEC004
APP_ROLE_SQL = """
SELECT r.rolsuper, r.rolreplication, r.rolbypassrls,
       ARRAY(SELECT quote_ident(n.nspname) || CASE WHEN n.nspowner = to_regrole('pg_database_owner')
                 THEN ' (through pg_database_owner: it owns the database)' ELSE '' END
              FROM pg_namespace n
              WHERE pg_has_role(r.oid, n.nspowner, 'MEMBER')
                AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
                AND n.nspname NOT LIKE 'pg\\_temp\\_%%' AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%%'
              ORDER BY n.nspname),
       quote_ident(r.rolname)
FROM pg_roles r WHERE r.rolname = %s
"""


@pytest.mark.pgready(id="SEC004")
def test_app_role_least_privilege(pgready_conn, pgready_record, pgready_settings):
    """An application role that is superuser or owns its schema turns any SQL injection into full control."""
    app = _app_role(pgready_conn, pgready_settings)
    row = pgready_conn.execute(APP_ROLE_SQL, (app,)).fetchone()
    if row is None:
        pgready_record.na(f"app_role {app!r} does not exist: set app_role to the application's login role")
    sup, repl, bypass, schemas, app_q = row  # names as the server quotes them (quote_ident)
    pgready_record.add(app_role=app, superuser=sup, replication=repl, bypassrls=bypass, owns_schemas=schemas,
                       app_role_owns_schema_declared=pgready_settings.app_role_owns_schema)
    problems = []
    if sup:
        problems.append(f"{app_q} is a superuser")
    if repl:
        problems.append(f"{app_q} has REPLICATION")
    if schemas and not sup and not pgready_settings.app_role_owns_schema:
        problems += [f"{app_q} owns schema {s}" for s in schemas]
    if problems:
        pgready_record.fail("; ".join(problems[:3]), objects=problems,
                            remedy=[f"ALTER ROLE {app_q} NOSUPERUSER NOREPLICATION;",
                                    "let a migration role own the schema and GRANT the app role what it needs "
                                    "(or declare app_role_owns_schema = true)"])
    pgready_record.summary(f"{app_q} is not superuser nor replication"
                           f"{'' if not schemas else ' and owns ' + ', '.join(schemas) + ' as declared'}")


# --------------------------------------------------------------------------------------------- SEC005
SUPERUSERS_SQL = "SELECT quote_ident(rolname), rolcanlogin FROM pg_roles WHERE rolsuper ORDER BY rolname"


@pytest.mark.pgready(id="SEC005")
def test_few_superusers(pgready_conn, pgready_record, pgready_settings):
    """Every superuser is a key to everything; their number should be small and known."""
    rows = pgready_conn.execute(SUPERUSERS_SQL).fetchall()
    names = [f"{r[0]}{'' if r[1] else ' (NOLOGIN)'}" for r in rows]
    pgready_record.add(superusers=names, limit=pgready_settings.max_superusers)
    pgready_record.metric("superusers", len(rows))
    if len(rows) > pgready_settings.max_superusers:
        pgready_record.fail(f"{len(rows)} superusers (at most {pgready_settings.max_superusers})", objects=names,
                            remedy="ALTER ROLE … NOSUPERUSER for roles that do not need it (pg_monitor, "
                                   "pg_read_all_data, pg_checkpoint … cover most needs)")
    pgready_record.summary(f"{len(rows)} superusers: {', '.join(names)}")


# --------------------------------------------------------------------------------------------- SEC006
PUBLIC_CREATE_SQL = """
SELECT quote_ident(nspname) FROM pg_namespace
WHERE has_schema_privilege('public', oid, 'CREATE')
  AND nspname NOT LIKE 'pg\\_temp\\_%' AND nspname NOT LIKE 'pg\\_toast\\_temp\\_%'
ORDER BY nspname
"""


@pytest.mark.pgready(id="SEC006")
def test_public_cannot_create(pgready_conn, pgready_record):
    """With CREATE for PUBLIC any role can plant a function or operator that shadows one on others' search_path."""
    schemas = [r[0] for r in pgready_conn.execute(PUBLIC_CREATE_SQL).fetchall()]
    if schemas:
        pgready_record.fail(f"PUBLIC can CREATE in {len(schemas)} schemas", objects=schemas,
                            remedy=[f"REVOKE CREATE ON SCHEMA {s} FROM PUBLIC;" for s in schemas])
    pgready_record.summary("PUBLIC cannot CREATE in any schema of this database")


# --------------------------------------------------------------------------------------------- SEC007
SECDEF_SQL = """
SELECT format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid))
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE p.prosecdef
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d
                  WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
  AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search\\_path=%')
ORDER BY 1
"""


@pytest.mark.pgready(id="SEC007")
def test_security_definer_search_path(pgready_conn, pgready_record):
    """A SECURITY DEFINER function resolving names through the caller's search_path runs the caller's objects
    with the owner's rights."""
    funcs = [r[0] for r in pgready_conn.execute(SECDEF_SQL).fetchall()]
    if funcs:
        pgready_record.fail(f"{len(funcs)} SECURITY DEFINER functions do not pin search_path", objects=funcs,
                            remedy=[f"ALTER FUNCTION {f} SET search_path = pg_catalog, pg_temp;" for f in funcs])
    pgready_record.summary("every SECURITY DEFINER function (outside extensions) pins search_path")


# --------------------------------------------------------------------------------------------- SEC008
RLS_SQL = """
SELECT format('%I.%I', n.nspname, c.relname), c.relrowsecurity, count(p.oid)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_policy p ON p.polrelid = c.oid
WHERE c.relkind IN ('r', 'p')
  AND c.relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
GROUP BY c.oid, n.nspname, c.relname, c.relrowsecurity
HAVING (count(p.oid) > 0 AND NOT c.relrowsecurity) OR (count(p.oid) = 0 AND c.relrowsecurity)
ORDER BY 1
"""


@pytest.mark.pgready(id="SEC008")
def test_rls_hygiene(pgready_conn, pgready_record):
    """Policies on a table without RLS enabled protect nothing; RLS without a policy hides every row."""
    rows = pgready_conn.execute(RLS_SQL).fetchall()
    objects = [f"{t}: {n} policies but row level security disabled" if not rls else
               f"{t}: row level security enabled without any policy" for t, rls, n in rows]
    if objects:
        pgready_record.fail(f"{len(objects)} tables with inconsistent row level security", objects=objects,
                            remedy="ALTER TABLE … ENABLE ROW LEVEL SECURITY where policies exist; add a policy "
                                   "(or disable RLS) where none does")
    pgready_record.summary("every table with policies has RLS enabled and every RLS table has a policy")


# --------------------------------------------------------------------------------------------- SEC009
SECRET_SETTINGS = ("primary_conninfo", "archive_command", "restore_command", "archive_cleanup_command",
                   "recovery_end_command")
SECRET_RE = re.compile(r"(?i)(\bpassword\s*=|\bPGPASSWORD\s*=|\bsslpassword\s*=|--password[= ]|"
                       r"postgres(?:ql)?://[^:/@\s]+:[^@/\s]+@|\bAWS_SECRET_ACCESS_KEY\s*=|\bpassphrase\s*=)")
SECRETS_SQL = """
SELECT name, setting FROM pg_settings WHERE name = ANY(%s)
"""
READERS_SQL = """
SELECT quote_ident(rolname) FROM pg_roles
WHERE NOT rolsuper AND rolcanlogin AND pg_has_role(oid, 'pg_read_all_settings', 'USAGE')
ORDER BY rolname
"""


def secret_kind(value: str | None) -> str | None:
    """What kind of secret a setting value carries ('password=' …), never the secret itself."""
    m = SECRET_RE.search(value or "")
    if not m:
        return None
    k = m.group(1).lower()
    return "user:password@ in a URI" if "://" in k else k.strip().rstrip("= ").strip() + "="


@pytest.mark.pgready(id="SEC009")
def test_no_visible_secrets(pgready_conn, pgready_cluster, pgready_record):
    """Settings are readable by every pg_monitor/pg_read_all_settings member: a password there is not secret."""
    nodes = [pgready_cluster.primary, *pgready_cluster.replicas]
    sup = _superuser(pgready_conn)
    found, hidden, unreachable = [], [], []
    for node in nodes:
        try:
            conn = pgready_conn if node is pgready_cluster.primary else node.connect()
        except psycopg.Error as e:
            unreachable.append(f"{node.name}: {e.__class__.__name__}")
            continue
        try:
            rows = dict(conn.execute(SECRETS_SQL, (list(SECRET_SETTINGS),)).fetchall())
        finally:
            if conn is not pgready_conn:
                conn.close()
        for name in SECRET_SETTINGS:
            if name not in rows:
                if name in ("primary_conninfo", "archive_command", "restore_command"):
                    hidden.append(f"{node.name}:{name}")
                continue
            kind = secret_kind(rows[name])
            if kind:
                found.append(f"{node.name}: {name} contains {kind}")
    readers = [r[0] for r in pgready_conn.execute(READERS_SQL).fetchall()]
    if not sup:
        readers = sorted(set(readers) | {pgready_conn.execute("SELECT quote_ident(session_user)").fetchone()[0]})
    pgready_record.add(nodes=[n.name for n in nodes], non_superuser_readers=readers, unreachable=unreachable)
    if found and readers:
        pgready_record.fail(f"{len(found)} settings carry a secret readable by non-superusers "
                            f"({', '.join(readers[:5])})", objects=found,
                            remedy="move passwords to a passfile (~/.pgpass or passfile= in primary_conninfo) "
                                   "or the tool's own credential store")
    if hidden:
        pgready_record.na(f"this role cannot read {', '.join(hidden)}: GRANT pg_read_all_settings (or pg_monitor) "
                          f"TO it, or run as a superuser")
    if unreachable:
        pgready_record.na(f"could not read the settings of {', '.join(unreachable)}")
    if found:
        pgready_record.add(note="secrets present but only superusers can read them: " + "; ".join(found))
    pgready_record.summary(f"no password in primary_conninfo/archive/restore commands visible to non-superusers "
                           f"on {len(nodes)} nodes")


# --------------------------------------------------------------------------------------------- SEC010
LOOPBACK_NETS = ("127.0.0.0/8", "::1/128")
SSL_SQL = """
SELECT a.pid, a.usename, a.application_name, host(a.client_addr), a.backend_type, s.ssl,
       a.backend_type IS NULL AND a.query = '<insufficient privilege>'
FROM pg_stat_activity a LEFT JOIN pg_stat_ssl s ON s.pid = a.pid
WHERE a.pid <> pg_backend_pid() AND a.usesysid IS NOT NULL
  AND a.application_name IS DISTINCT FROM 'pytest-pgready'  -- pgready's own, from every xdist worker
  AND (a.backend_type IN ('client backend', 'walsender') OR a.backend_type IS NULL)
"""


@pytest.mark.pgready(id="SEC010")
def test_clients_use_tls(pgready_cluster, pgready_conn, pgready_record, pgready_settings):
    """A client that connects without TLS exposes its queries and results on the wire. One on the same host
    as an external target (loopback, or a network listed in tls_exempt_networks) is not judged: its traffic
    never leaves the kernel, and a pooler or sidecar there commonly talks plain TCP. On a provisioned cluster
    every link is loopback only because the cluster is embedded, so by default none is exempt there."""
    nets = pgready_settings.tls_exempt_networks
    if nets is None:
        nets = list(LOOPBACK_NETS) if pgready_cluster.provider == "external" else []
    exempt = [ipaddress.ip_network(n, strict=False) for n in nets]
    rows = pgready_conn.execute(SSL_SQL).fetchall()
    local, remote = [], []
    for r in rows:
        if r[3] is not None:  # a Unix-socket session has no client_addr
            (local if any(ipaddress.ip_address(r[3]) in net for net in exempt) else remote).append(r)
    hidden = [r for r in rows if r[6]]

    def named(rs: list) -> list[str]:
        return [f"pid {pid} {user}@{addr} ({app or backend})" for pid, user, app, addr, backend, ssl, _ in rs
                if not ssl]

    plain = named(remote)
    pgready_record.add(remote_connections=len(remote), without_tls=len(plain), invisible_sessions=len(hidden),
                       exempt_connections=len(local), exempt_without_tls=named(local)[:20],
                       tls_exempt_networks=nets)
    if plain:
        pgready_record.fail(f"{len(plain)} of {len(remote)} remote TCP client connections do not use TLS",
                            objects=plain, remedy="sslmode=require (or verify-full) in every client DSN, "
                                                  "and hostssl rules")
    if hidden:
        pgready_record.na(f"{len(hidden)} sessions are invisible to this role, so their TLS use is unknown: "
                          f"GRANT pg_read_all_stats (or pg_monitor) TO it")
    if not remote:
        also = f" ({len(local)} from exempt networks {', '.join(map(str, exempt))})" if local else ""
        pgready_record.na(f"no remote TCP client connection other than pgready's own to judge{also}: run while "
                          f"the application is connected")
    pgready_record.summary(f"all {len(remote)} remote TCP client connections use TLS")
