#!/usr/bin/env bash
# First-start setup of the Citus coordinator: register itself and the workers.
#
# The image runs this once, from /docker-entrypoint-initdb.d, after
# ../postgres/primary-init.sh (users, replication role, pg_hba.conf) while its
# temporary socket-only server is up; it is sourced, so no `exit` here. The
# workers are healthy by then (compose.yaml: depends_on). Roles created before
# citus_add_node are propagated to the workers by Citus.
# https://docs.citusdata.com/en/stable/develop/api_udf.html#citus-add-node
set -e

: "${CITUS_WORKERS:?CITUS_WORKERS must list the worker host names}"

# The coordinator's own name as the workers reach it (for reference tables and metadata).
psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -c "SELECT citus_set_coordinator_host('coordinator_primary', 5432)"
for worker in $CITUS_WORKERS; do
  psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v worker="$worker" -c "SELECT citus_add_node(:'worker', 5432)"
done
