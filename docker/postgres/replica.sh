#!/usr/bin/env bash
# pytest-pgready: a streaming replica. On a fresh container: wait for the primary, pg_basebackup from it
# (with a replication slot named after the node), mark the data directory as a standby; then hand over
# to the official entrypoint, which starts postgres. Streaming then goes where primary_conninfo in
# pgready.node.conf says (through Toxiproxy when there is one). Runs as the postgres user.
# Environment: PGREADY_NODE_NAME, PGREADY_PRIMARY_HOST, PGREADY_PRIMARY_PORT, PGREADY_REPLICATION_PASSWORD.
set -euo pipefail
name="${PGREADY_NODE_NAME:?}"
host="${PGREADY_PRIMARY_HOST:-primary}"
port="${PGREADY_PRIMARY_PORT:-5432}"
pw="${PGREADY_REPLICATION_PASSWORD:?}"
pw="${pw//\\/\\\\}"
pw="${pw//:/\\:}"
umask 077
printf '*:*:*:replicator:%s\n' "$pw" > /tmp/pgready.pgpass
export PGPASSFILE=/tmp/pgready.pgpass
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  until pg_isready -q -h "$host" -p "$port"; do sleep 0.5; done
  mkdir -p "$PGDATA"
  chmod 700 "$PGDATA"
  pg_basebackup -h "$host" -p "$port" -U replicator -D "$PGDATA" -X stream -C -S "${name//-/_}" -c fast
  touch "$PGDATA/standby.signal"
fi
exec docker-entrypoint.sh postgres
