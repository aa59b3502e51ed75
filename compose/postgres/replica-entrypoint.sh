#!/usr/bin/env bash
# Entrypoint of a replica: clone the primary with pg_basebackup -R into an empty data directory, then start as a streaming standby.
#
# Runs as root in the official postgres image, before its own entrypoint
# (docker-entrypoint.sh), which it then execs with the same arguments. That
# entrypoint skips initdb because PGDATA already holds PG_VERSION, fixes
# ownership and drops to the postgres user. On later starts the data directory
# is kept and the standby resumes streaming from where it was.
#
# pg_basebackup: https://www.postgresql.org/docs/15/app-pgbasebackup.html
#   -R writes standby.signal and primary_conninfo (with the password it used)
#      into postgresql.auto.conf; with -S also primary_slot_name.
#   -C -S creates the physical replication slot that keeps the primary from
#      recycling WAL the standby still needs.
#   -d application_name=... goes into primary_conninfo too: the standby then
#      shows up under its own name in the primary's pg_stat_replication, which
#      is where Pgpool-II (backend_application_name) looks for its state.
#   -X stream copies the WAL written during the backup over a second connection.
#
# Environment:
#   PRIMARY_HOST, PRIMARY_PORT (5432)   the primary to clone and follow
#   REPLICATION_USER, REPLICATION_PASSWORD
#   REPLICA_NAME                        this replica's application_name and slot name on the primary
set -Eeuo pipefail

: "${PRIMARY_HOST:?PRIMARY_HOST must be set}"
: "${PRIMARY_PORT:=5432}"
: "${REPLICATION_USER:?REPLICATION_USER must be set}"
: "${REPLICATION_PASSWORD:?REPLICATION_PASSWORD must be set}"
: "${REPLICA_NAME:?REPLICA_NAME must be set}"
: "${PGDATA:=/var/lib/postgresql/data}"

log() { printf 'replica-entrypoint: %s\n' "$*" >&2; }

as_postgres() {
  if [ "$(id -u)" = 0 ]; then gosu postgres "$@"; else "$@"; fi
}

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  mkdir -p "$PGDATA"
  chmod 0700 "$PGDATA"
  if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$PGDATA"; fi
  # A half-written clone from an interrupted first start would make
  # pg_basebackup refuse the directory: start from empty again.
  find "$PGDATA" -mindepth 1 -delete

  export PGPASSWORD="$REPLICATION_PASSWORD"

  # compose starts replicas once the primary's health check passes; keep a
  # bounded wait anyway so a replica started on its own still works.
  for attempt in $(seq 1 60); do
    if pg_isready -q -h "$PRIMARY_HOST" -p "$PRIMARY_PORT" -U "$REPLICATION_USER" -d postgres; then
      break
    fi
    if [ "$attempt" = 60 ]; then
      log "primary $PRIMARY_HOST:$PRIMARY_PORT did not answer within 120 s"
      exit 1
    fi
    sleep 2
  done

  # A slot left on the primary by an earlier replica with the same name (its
  # volume was removed, the primary's was not) would make -C fail: drop it first.
  # Dropping a slot that does not exist is the common case and not an error here.
  if as_postgres pg_receivewal -h "$PRIMARY_HOST" -p "$PRIMARY_PORT" -U "$REPLICATION_USER" -w \
      --drop-slot --slot="$REPLICA_NAME" 2>/dev/null; then
    log "dropped the stale replication slot $REPLICA_NAME on the primary"
  fi

  log "cloning $PRIMARY_HOST:$PRIMARY_PORT into $PGDATA (slot $REPLICA_NAME)"
  as_postgres pg_basebackup -d "application_name=$REPLICA_NAME" \
    -h "$PRIMARY_HOST" -p "$PRIMARY_PORT" -U "$REPLICATION_USER" -w \
    -D "$PGDATA" -R -X stream -C -S "$REPLICA_NAME" --checkpoint=fast
  unset PGPASSWORD
  log "clone complete; starting as a standby"
fi

exec docker-entrypoint.sh "$@"
