#!/bin/sh
# pytest-pgready: write PgBouncer's auth file from the environment (so no password is in any file of the
# repository or the image), then run PgBouncer with the pgbouncer.ini rendered by config.py.
# Environment: PGREADY_PGBOUNCER_USER (default postgres), PGREADY_PGBOUNCER_PASSWORD.
set -eu
umask 077
user="${PGREADY_PGBOUNCER_USER:-postgres}"
pw=$(printf '%s' "${PGREADY_PGBOUNCER_PASSWORD:?}" | sed 's/"/""/g')
printf '"%s" "%s"\n' "$user" "$pw" > /tmp/userlist.txt
exec pgbouncer /etc/pgready/pgbouncer.ini
