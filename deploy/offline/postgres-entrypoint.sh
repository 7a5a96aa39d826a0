#!/bin/sh
# Make the cluster on first start (an empty volume), then run PostgreSQL in the foreground
# as PID 1: it reaps its own children and shuts down fast on SIGINT (STOPSIGNAL).
set -eu
: "${POSTGRES_USER:=postgres}" "${POSTGRES_DB:=$POSTGRES_USER}"
: "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}"
port=${PGPORT:-5432}
sockets=$(mktemp -d)
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" -E UTF8 --locale=C.UTF-8 \
         --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  # Password logins from anywhere the server listens (PG_LISTEN decides where that is).
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  if [ "$POSTGRES_DB" != postgres ]; then
    pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -c unix_socket_directories=$sockets" \
           -w start >/dev/null
    createdb -h "$sockets" -U "$POSTGRES_USER" "$POSTGRES_DB"
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  fi
  echo "postgres-entrypoint: created the cluster with database $POSTGRES_DB"
fi
exec postgres -D "$PGDATA" -c listen_addresses="${PG_LISTEN:-*}" -c port="$port" \
     -c unix_socket_directories="$sockets" "$@"
