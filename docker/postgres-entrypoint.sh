#!/bin/sh
# PostgreSQL from Debian's packages, configured like the upstream image: POSTGRES_PASSWORD
# (required), POSTGRES_USER (default postgres), POSTGRES_DB (default: the user); on an empty data
# directory, initdb, then /docker-entrypoint-initdb.d/*.sql and *.sh once, on a server that
# listens on its socket only (so nobody connects before they ran). Password (scram-sha-256) for
# every TCP connection; trust only on the local socket inside the container.
set -eu
: "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set (make stack writes one into .env)}"
user="${POSTGRES_USER:-postgres}"
db="${POSTGRES_DB:-$user}"
PGDATA="${PGDATA:-/var/lib/postgresql/data}"
export PGDATA

if [ "$(id -u)" = 0 ]; then  # fix the volume's ownership, then run as postgres
  mkdir -p "$PGDATA" /run/postgresql
  chown postgres:postgres "$PGDATA" /run/postgresql
  chmod 700 "$PGDATA"
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pwfile="$(mktemp)"
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  initdb -D "$PGDATA" -U "$user" --pwfile="$pwfile" -E UTF8 --locale=C.UTF-8 \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  if [ "$db" != postgres ]; then
    psql -v ON_ERROR_STOP=1 -U "$user" -d postgres -qc "CREATE DATABASE \"$db\""
  fi
  for f in /docker-entrypoint-initdb.d/*; do
    # shellcheck disable=SC1090  # the init scripts are the deployment's
    case "$f" in
      *.sql) echo "postgres-entrypoint: $f"; psql -v ON_ERROR_STOP=1 -U "$user" -d "$db" -qf "$f" ;;
      *.sh) echo "postgres-entrypoint: $f"; . "$f" ;;
    esac
  done
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  echo "postgres-entrypoint: initialised $PGDATA (user $user, database $db)"
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' "$@"
