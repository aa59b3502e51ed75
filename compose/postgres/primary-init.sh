#!/usr/bin/env bash
# First-start setup of the primary: the bench users, the replication role and pg_hba.conf.
#
# The postgres image runs this once, from /docker-entrypoint-initdb.d, while its
# temporary socket-only server is up after initdb (it is sourced when not
# executable, so no `set -u` and no `exit` here). POSTGRES_USER (sluice_admin),
# POSTGRES_PASSWORD and POSTGRES_DB (sluice) have already been created by then.
#
# Users and passwords are those of the local stack (bench/cluster.hpp, cluster_spec):
#   sluice_admin / admin-secret   superuser, owns database sluice   SCRAM-SHA-256
#   sluice_scram / scram-secret   ordinary user                       SCRAM-SHA-256
#   sluice_md5   / md5-secret     ordinary user                       MD5
# The SCRAM users get fixed verifiers (same salt on every start) so that the
# PgBouncer userlist and the pgsluice config can hold the very same secrets:
# a pooler that only has a verifier logs in to the server with the keys of the
# client's own SCRAM exchange, which works only if the server stores the same
# verifier. https://www.postgresql.org/docs/15/auth-password.html
# The verifiers are for exactly the passwords above; to change a password,
# regenerate the verifier (e.g. ALTER ROLE ... PASSWORD 'new' on any PostgreSQL
# 15, then SELECT rolpassword FROM pg_authid) and update pgbouncer/userlist.txt
# and pgsluice/pgsluice.toml as well.
set -e

: "${REPLICATION_USER:=replicator}"
: "${REPLICATION_PASSWORD:?REPLICATION_PASSWORD must be set for the primary}"

psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v repl_user="$REPLICATION_USER" -v repl_password="$REPLICATION_PASSWORD" <<'EOSQL'
-- Same secret as POSTGRES_PASSWORD (admin-secret), with a fixed salt.
ALTER ROLE sluice_admin PASSWORD 'SCRAM-SHA-256$4096:EUtElTVmOHn5h7P9+t8sgg==$3HdtciAHMGgKAeMRyyxihWlAZ4E/ZMv0a2rVXP8Ukvc=:q0VoEWAgQYWjTg156msSiljDG3rxJUbXevc+dnNQEDs=';

-- scram-secret
CREATE ROLE sluice_scram LOGIN PASSWORD 'SCRAM-SHA-256$4096:Q8v2VFsarzm8GrqG/ElLNg==$vcIvtzwfDF1uRQEC9FVpD3SjixVK0lHK66s3F1Ch60A=:S2HIO+1EWrAfCrvzOMjiS8RH0TOkoO/I8XeunpB5Av0=';

-- An MD5-stored password needs password_encryption = md5 when it is set.
-- https://www.postgresql.org/docs/15/runtime-config-connection.html#GUC-PASSWORD-ENCRYPTION
SET password_encryption = 'md5';
CREATE ROLE sluice_md5 LOGIN PASSWORD 'md5-secret';
RESET password_encryption;

-- Every user may create tables in the bench database, as in the local stack
-- (PostgreSQL 15 no longer grants CREATE on schema public to PUBLIC).
GRANT ALL ON SCHEMA public TO PUBLIC;

-- Streaming replication: the replicas run pg_basebackup and stream as this role.
CREATE ROLE :"repl_user" LOGIN REPLICATION PASSWORD :'repl_password';
EOSQL

# Replace the image's pg_hba.conf (which ends in "host all all all scram-sha-256")
# with an explicit one. "all" in the database column does not match replication
# connections, so they get their own line; the MD5 user's line must come before
# the SCRAM catch-all, since the first matching line decides.
# https://www.postgresql.org/docs/15/auth-pg-hba-conf.html
# The file is read when the real server starts, after this script.
{
  echo "# pg_hba.conf of the pgsluice compose stack (written by primary-init.sh;"
  echo "# the replicas get a copy through pg_basebackup)."
  row() { printf '%-7s %-12s %-20s %-8s %s\n' "$@"; }
  row '# TYPE' DATABASE USER ADDRESS METHOD
  row local all all '' trust
  row host replication "$REPLICATION_USER" all scram-sha-256
  row host all sluice_md5 all md5
  row host all all all scram-sha-256
} > "$PGDATA/pg_hba.conf"
