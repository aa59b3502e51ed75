#!/usr/bin/python3
# psycopg 3 driver scenario (see common.py): server-side named prepared statements forced with prepare_threshold=0.
import psycopg
from psycopg import errors

import common as s

TABLE = s.table("drv_psycopg3")
INSERT, SELECT, DIVIDE = s.statements(TABLE, lambda i: "%s")


def connect():
    # prepare_threshold=0: every parameterised query becomes a named server-side statement
    # (_pg3_N) on its first execution and is reused by name afterwards.
    # https://www.psycopg.org/psycopg3/docs/advanced/prepare.html
    return psycopg.connect(**s.conninfo_parts(), autocommit=True, prepare_threshold=0)


def client(c):
    with connect() as conn:
        for k in range(s.TRANSACTIONS):
            with conn.transaction():
                conn.execute(INSERT, s.row(c, k))
                s.check_row(c, k, conn.execute(SELECT, (s.row_id(c, k),)).fetchone())
        # psycopg's own record of what it prepared (private, hence the guard): proves
        # that the statements above really went out as named server-side statements.
        names = list(getattr(getattr(conn, "_prepared", None), "_names", {}).values())
        if hasattr(conn, "_prepared") and len(names) != 2:
            raise s.scenario_error(f"client {c}: expected 2 named statements, psycopg prepared {names}")

        # An error inside a transaction: the driver raises with the SQLSTATE, the
        # transaction rolls back, the connection and its prepared statements keep working.
        error_id = s.row_id(c, s.ERROR_ID_OFFSET)
        try:
            with conn.transaction():
                conn.execute(INSERT, (error_id,) + s.row(c, 0)[1:])
                conn.execute(DIVIDE, (1, 0))
            raise s.scenario_error(f"client {c}: 1/0 did not fail")
        except errors.DivisionByZero as e:
            s.expect_sqlstate(f"client {c}: 1/0", e.sqlstate, "22012")
        if conn.execute(SELECT, (error_id,)).fetchone() is not None:
            raise s.scenario_error(f"client {c}: the row of the rolled-back transaction is visible")
        if conn.execute(DIVIDE, (10, 2)).fetchone() != (5,):
            raise s.scenario_error(f"client {c}: 10/2 after the error")

        try:
            with conn.transaction():
                conn.execute(INSERT, s.row(c, 0))
            raise s.scenario_error(f"client {c}: duplicate id accepted")
        except errors.UniqueViolation as e:
            s.expect_sqlstate(f"client {c}: duplicate id", e.sqlstate, "23505")
        s.check_row(c, 0, conn.execute(SELECT, (s.row_id(c, 0),)).fetchone())


def run():
    with connect() as conn:
        conn.execute(s.create_table_sql(TABLE), prepare=False)
    s.run_clients(client)
    with connect() as conn:
        s.check_totals(conn.execute(s.totals_sql(TABLE)).fetchone())


if __name__ == "__main__":
    s.main(run, "psycopg3")
