#!/usr/bin/env bash
# pytest-pgready: run once by the official postgres image's entrypoint, on a fresh data directory.
# It gives the container what the local provider's initdb template has: the include chain of the
# configuration rendered by pytest_pgready/cluster/config.py, a replication role, replication over
# the private network, pg_stat_statements, and a WAL archive directory.
set -euo pipefail
{
  printf '\n# pytest-pgready: defaults, then your config, then what the container must own\n'
  for f in /etc/pgready/pgready.base.conf /etc/pgready/pgready.user.conf /etc/pgready/pgready.node.conf; do
    printf "include_if_exists = '%s'\n" "$f"
  done
} >> "$PGDATA/postgresql.conf"
printf 'host replication all all scram-sha-256\n' >> "$PGDATA/pg_hba.conf"
mkdir -p /var/lib/postgresql/archive
chmod 700 /var/lib/postgresql/archive
psql -v ON_ERROR_STOP=1 -X -q --username "$POSTGRES_USER" --dbname postgres --set "pw=$POSTGRES_PASSWORD" <<'SQL'
CREATE ROLE replicator WITH LOGIN REPLICATION PASSWORD :'pw';
SQL
psql -v ON_ERROR_STOP=1 -X -q --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
     -c 'CREATE EXTENSION IF NOT EXISTS pg_stat_statements'
