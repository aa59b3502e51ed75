#!/usr/bin/python3
# psycopg2 driver scenario (see common.py): psycopg2 binds parameters client-side and sends simple queries.
#
# psycopg2 has no protocol-level prepared statements (SQL PREPARE would be session state,
# which transaction pooling pins), so this script covers the simple-query path with the
# same values, transactions and errors as the other drivers.
import psycopg2
import psycopg2.errorcodes
import psycopg2.extensions

import common as s

TABLE = s.table("drv_psycopg2")
INSERT, SELECT, DIVIDE = s.statements(TABLE, lambda i: "%s")


def connect():
    conn = psycopg2.connect(**s.conninfo_parts())
    conn.autocommit = True
    return conn


def fetch_row(cur, row_id):
    cur.execute(SELECT, (row_id,))
    got = cur.fetchone()
    # bytea comes back as memoryview, numeric as Decimal, timestamptz as aware datetime.
    return None if got is None else tuple(bytes(v) if isinstance(v, memoryview) else v for v in got)


def adapt(values):
    # psycopg2 sends bytes as bytea literals only when wrapped in Binary.
    return tuple(psycopg2.Binary(v) if isinstance(v, bytes) else v for v in values)


def client(c):
    conn = connect()
    try:
        cur = conn.cursor()
        for k in range(s.TRANSACTIONS):
            cur.execute("BEGIN")
            cur.execute(INSERT, adapt(s.row(c, k)))
            s.check_row(c, k, fetch_row(cur, s.row_id(c, k)))
            cur.execute("COMMIT")

        error_id = s.row_id(c, s.ERROR_ID_OFFSET)
        cur.execute("BEGIN")
        cur.execute(INSERT, adapt((error_id,) + s.row(c, 0)[1:]))
        try:
            cur.execute(DIVIDE, (1, 0))
            raise s.scenario_error(f"client {c}: 1/0 did not fail")
        except psycopg2.Error as e:
            s.expect_sqlstate(f"client {c}: 1/0", e.pgcode, psycopg2.errorcodes.DIVISION_BY_ZERO)
        if conn.info.transaction_status != psycopg2.extensions.TRANSACTION_STATUS_INERROR:
            raise s.scenario_error(f"client {c}: transaction status {conn.info.transaction_status} after 1/0")
        cur.execute("ROLLBACK")
        if fetch_row(cur, error_id) is not None:
            raise s.scenario_error(f"client {c}: the row of the rolled-back transaction is visible")
        cur.execute(DIVIDE, (10, 2))
        if cur.fetchone() != (5,):
            raise s.scenario_error(f"client {c}: 10/2 after the error")

        cur.execute("BEGIN")
        try:
            cur.execute(INSERT, adapt(s.row(c, 0)))
            raise s.scenario_error(f"client {c}: duplicate id accepted")
        except psycopg2.Error as e:
            s.expect_sqlstate(f"client {c}: duplicate id", e.pgcode, psycopg2.errorcodes.UNIQUE_VIOLATION)
        cur.execute("ROLLBACK")
        s.check_row(c, 0, fetch_row(cur, s.row_id(c, 0)))
    finally:
        conn.close()


def run():
    conn = connect()
    conn.cursor().execute(s.create_table_sql(TABLE))
    conn.close()
    s.run_clients(client)
    conn = connect()
    cur = conn.cursor()
    cur.execute(s.totals_sql(TABLE))
    s.check_totals(cur.fetchone())
    conn.close()


if __name__ == "__main__":
    s.main(run, "psycopg2", "client-side parameters")
