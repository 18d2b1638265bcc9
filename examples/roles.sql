-- VendHub roles: the application's login role and a read-only group role.
--
--   psql -v ON_ERROR_STOP=1 -v vend_app_password='…' -f examples/roles.sql
--
-- Run after examples/schema.sql, as the role that owns schema vend (or a superuser), in the
-- application's database. A psql script (\if, \gexec). Roles are cluster-wide: when they already
-- exist (the example loaded into a second database of the same cluster) they are reused, their
-- attributes and settings are reset, and this database's grants are added.
--
-- psql variable:
--   vend_app_password   the password of vend_app (default: a development-only value, with a warning).
--                       It may also be a pre-computed 'SCRAM-SHA-256$…' verifier, which keeps the
--                       clear text out of server logs that record DDL (log_statement = ddl/all).
--
-- vend_app       LOGIN, not superuser, no CREATEDB/CREATEROLE/REPLICATION/BYPASSRLS, does not own
--                anything: USAGE on schema vend, SELECT/INSERT/UPDATE/DELETE on its tables (the audit
--                log is append-only through vend.write_audit()), statement/lock/idle-in-transaction
--                timeouts of its own.
-- vend_readonly  NOLOGIN group role with SELECT on every vend table: grant it to the login roles of
--                analysts and BI tools.

\set ON_ERROR_STOP on
\if :{?vend_app_password}
\else
\echo 'roles.sql: vend_app_password is not set; using the development-only default (pass -v vend_app_password=...)'
\set vend_app_password 'vend-app-dev-only'
\endif

SELECT 'CREATE ROLE vend_app' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'vend_app') \gexec
SELECT 'CREATE ROLE vend_readonly' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'vend_readonly') \gexec

ALTER ROLE vend_app WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT
    CONNECTION LIMIT 200 PASSWORD :'vend_app_password';
ALTER ROLE vend_readonly WITH NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;

-- Session defaults of the application: a runaway query or a forgotten transaction must not hold
-- locks and connections forever.
ALTER ROLE vend_app SET statement_timeout = '5s';
ALTER ROLE vend_app SET lock_timeout = '2s';
ALTER ROLE vend_app SET idle_in_transaction_session_timeout = '60s';
ALTER ROLE vend_app SET search_path = vend;

SELECT format('GRANT CONNECT ON DATABASE %I TO vend_app', current_database()) \gexec

-- vend_app: DML on the tables it works with, nothing else (no TRUNCATE, REFERENCES, TRIGGER, DDL).
GRANT USAGE ON SCHEMA vend TO vend_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA vend TO vend_app;
REVOKE INSERT, UPDATE, DELETE ON vend.audit_log FROM vend_app;   -- append through vend.write_audit()
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA vend TO vend_app;

REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA vend FROM PUBLIC;
GRANT EXECUTE ON FUNCTION vend.set_updated_at() TO vend_app;
GRANT EXECUTE ON FUNCTION vend.write_audit(bigint, bigint, text, text, bigint, jsonb) TO vend_app;
GRANT EXECUTE ON FUNCTION vend.close_stale_tickets(bigint, interval) TO vend_app;

-- vend_readonly: read everything in vend.
GRANT USAGE ON SCHEMA vend TO vend_readonly;
GRANT SELECT ON ALL TABLES IN SCHEMA vend TO vend_readonly;
GRANT SELECT ON ALL SEQUENCES IN SCHEMA vend TO vend_readonly;

-- Tables and sequences the owner creates later (migrations) get the same grants.
ALTER DEFAULT PRIVILEGES IN SCHEMA vend GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO vend_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA vend GRANT USAGE, SELECT ON SEQUENCES TO vend_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA vend GRANT SELECT ON TABLES TO vend_readonly;
ALTER DEFAULT PRIVILEGES IN SCHEMA vend GRANT SELECT ON SEQUENCES TO vend_readonly;
