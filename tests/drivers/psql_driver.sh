#!/usr/bin/env bash
# psql driver scenario (see common.py): DRIVER_CLIENTS psql processes at once, each running psql_client.sql.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
table=${DRIVER_TABLE:-drv_psql}
clients=${DRIVER_CLIENTS:-20}
transactions=${DRIVER_TRANSACTIONS:-20}
for v in PGHOST PGPORT PGUSER PGPASSWORD PGDATABASE; do
  if [ -z "${!v:-}" ]; then echo "FAIL psql: environment variable not set: $v" >&2; exit 1; fi
done
command -v psql >/dev/null || { echo "FAIL psql: psql not found in PATH" >&2; exit 1; }
export PGSSLMODE=disable PGAPPNAME=pgsluice-driver-psql
psql_run() { psql -X -q -v ON_ERROR_STOP=1 -v table="$table" "$@"; }

# The table and the check function the clients call (a mismatch raises naming what differed).
psql_run <<SQL || { echo "FAIL psql: setup" >&2; exit 1; }
DROP TABLE IF EXISTS "$table";
CREATE TABLE "$table" (id int8 PRIMARY KEY, client int4 NOT NULL, label text NOT NULL,
  amount numeric(18,4) NOT NULL, flag bool NOT NULL, at timestamptz NOT NULL, payload bytea NOT NULL,
  tags int4[] NOT NULL, note text);
CREATE OR REPLACE FUNCTION "${table}_expect"(got text, want text, what text) RETURNS void LANGUAGE plpgsql AS \$\$
BEGIN
  IF got IS DISTINCT FROM want THEN
    RAISE EXCEPTION 'psql scenario mismatch: %: got %, expected %', what, coalesce(got, 'NULL'), coalesce(want, 'NULL');
  END IF;
END \$\$;
SQL

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
pids=()
for ((c = 0; c < clients; c++)); do
  psql_run -v client="$c" -v transactions="$transactions" -v table_expect="${table}_expect" \
    -f "$here/psql_client.sql" >"$out/$c.log" 2>&1 &
  pids+=($!)
done
failed=0
for ((c = 0; c < clients; c++)); do
  if ! wait "${pids[$c]}"; then
    echo "FAIL psql: client $c exited with an error:" >&2
    sed 's/^/  /' "$out/$c.log" >&2
    failed=1
  fi
done
[ "$failed" = 0 ] || exit 1

nulls=$(( (transactions + 2) / 3 * clients ))
psql_run -o /dev/null -v expect="${table}_expect" <<SQL || { echo "FAIL psql: final table check" >&2; exit 1; }
SELECT :"expect"(
  (SELECT format('count=%s clients=%s null_notes=%s rolled_back_rows=%s', count(*), count(DISTINCT client),
                 count(*) - count(note), count(*) FILTER (WHERE id % 10000000000 = 999999)) FROM :"table"),
  'count=$((clients * transactions)) clients=$clients null_notes=$nulls rolled_back_rows=0', 'final table');
SQL
echo "OK psql: $clients concurrent clients x $transactions transactions with literal queries, 22012 and 23505 recovered"
