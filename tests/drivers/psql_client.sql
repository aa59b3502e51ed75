-- psql driver scenario, one client (see common.py): plain queries in explicit transactions, generated with \gexec.
--
-- Variables: table, client, transactions (set by psql_driver.sh with -v). SQL PREPARE is
-- session state that transaction pooling pins, so psql sends literals; :table_expect()
-- (created by psql_driver.sh) raises a clear error on any mismatch, and ON_ERROR_STOP
-- turns that into a non-zero exit.
\set ON_ERROR_STOP on
\set QUIET on
\o /dev/null

-- One row of \gexec output per transaction: each column is sent as its own query,
-- BEGIN / INSERT / read-back check / COMMIT. The values are those of common.py's row().
SELECT 'BEGIN',
       format('INSERT INTO %I VALUES (%s)', :'table', v.literals),
       format('SELECT %I((SELECT t::text FROM %I t WHERE id = %s), (ROW(%s)::%I)::text, %L)',
              :'table' || '_expect', :'table', v.id, v.literals, :'table', 'client ' || :client || ' transaction ' || k),
       'COMMIT'
FROM generate_series(0, :transactions - 1) AS k,
     LATERAL (SELECT (:client + 1) * 10000000000 + k AS id) AS i,
     LATERAL (SELECT concat_ws(', ',
         i.id::text || '::int8',
         :client || '::int4',
         quote_literal(format('client %s row %s: ''quoted'' "double" back\slash é ✓', :client, k)),
         quote_literal(CASE WHEN k % 4 = 3 THEN '-' ELSE '' END || (:client * 1000 + k) || '.'
                       || lpad(((k * 37) % 10000)::text, 4, '0')) || '::numeric',
         (k % 2 = 0)::text,
         quote_literal((timestamptz '2024-02-29 23:59:58.123456+00' + make_interval(days => :client, secs => k)
                        + k * interval '1 microsecond')::text) || '::timestamptz',
         quote_literal('\x00ff' || lpad(to_hex(:client), 2, '0') || lpad(to_hex(k % 256), 2, '0') || '275c00') || '::bytea',
         quote_literal(ARRAY[:client, k, -1]::text) || '::int4[]',
         coalesce(quote_literal(CASE WHEN k % 3 = 0 THEN NULL ELSE 'note ' || k END), 'NULL')) AS literals,
         i.id) AS v
ORDER BY k
\gexec

-- An error inside a transaction: 22012, ROLLBACK, and the connection keeps working.
SELECT (:client + 1) * 10000000000 + 999999 AS error_id \gset
\set ON_ERROR_STOP off
BEGIN;
INSERT INTO :"table" SELECT :error_id, client, label, amount, flag, at, payload, tags, note
FROM :"table" WHERE id = (:client + 1) * 10000000000;
SELECT 1 / 0;
ROLLBACK;
\set ON_ERROR_STOP on
SELECT :"table_expect"(:'LAST_ERROR_SQLSTATE', '22012', 'client ' || :client || ': SQLSTATE of 1/0');
SELECT :"table_expect"((SELECT count(*) FROM :"table" WHERE id = :error_id)::text, '0',
                       'client ' || :client || ': rows of the rolled-back transaction');

-- A unique violation inside a transaction: 23505, ROLLBACK, still working.
\set ON_ERROR_STOP off
BEGIN;
INSERT INTO :"table" SELECT * FROM :"table" WHERE id = (:client + 1) * 10000000000;
ROLLBACK;
\set ON_ERROR_STOP on
SELECT :"table_expect"(:'LAST_ERROR_SQLSTATE', '23505', 'client ' || :client || ': SQLSTATE of a duplicate id');
SELECT :"table_expect"((10 / 2)::text, '5', 'client ' || :client || ': a query after the errors');
