# The driver-compatibility scenario shared by the Python drivers: settings, the rows each client writes, and checks.
#
# Every driver script (psycopg2_driver.py, psycopg3_driver.py, asyncpg_driver.py, and the JDBC, node and
# psql ones in their own languages) runs the same scenario against whatever PG* points to:
#   1. one connection (re)creates the table DRIVER_TABLE;
#   2. DRIVER_CLIENTS connections at once (more than the proxy's pool) each prepare named
#      statements and reuse them across DRIVER_TRANSACTIONS explicit transactions, writing
#      one row of every parameter type and reading it back;
#   3. each connection runs one transaction that fails with division_by_zero (22012) and
#      one that fails with unique_violation (23505), rolls back, and keeps working;
#   4. a fresh connection checks the totals on the server.
# Any mismatch raises scenario_error; the scripts print it and exit 1.
import datetime
import decimal
import os
import sys
import threading
import traceback

CLIENTS = int(os.environ.get("DRIVER_CLIENTS", "20"))
TRANSACTIONS = int(os.environ.get("DRIVER_TRANSACTIONS", "20"))


def table(default):
    """The table this run owns (the test gives each driver and target its own)."""
    return os.environ.get("DRIVER_TABLE", default)


def conninfo_parts():
    """libpq-style settings from the standard environment variables."""
    missing = [v for v in ("PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE") if v not in os.environ]
    if missing:
        raise scenario_error("environment variables not set: " + ", ".join(missing))
    return {
        "host": os.environ["PGHOST"],
        "port": int(os.environ["PGPORT"]),
        "user": os.environ["PGUSER"],
        "password": os.environ["PGPASSWORD"],
        "dbname": os.environ["PGDATABASE"],
    }


class scenario_error(Exception):
    pass


def create_table_sql(name):
    return (
        f"DROP TABLE IF EXISTS {name}; "
        f"CREATE TABLE {name} (id int8 PRIMARY KEY, client int4 NOT NULL, label text NOT NULL, "
        "amount numeric(18,4) NOT NULL, flag bool NOT NULL, at timestamptz NOT NULL, payload bytea NOT NULL, "
        "tags int4[] NOT NULL, note text)"
    )


INSERT_COLUMNS = "id, client, label, amount, flag, at, payload, tags, note"
INSERT_CASTS = ["int8", "int4", "text", "numeric", "bool", "timestamptz", "bytea", "int4[]", "text"]


def statements(name, placeholder):
    """(insert, select, divide) SQL for table `name`; placeholder(i) spells parameter i (0-based): %s or $n."""
    values = ", ".join(f"{placeholder(i)}::{t}" for i, t in enumerate(INSERT_CASTS))
    return (
        f"INSERT INTO {name} ({INSERT_COLUMNS}) VALUES ({values})",
        f"SELECT {INSERT_COLUMNS} FROM {name} WHERE id = {placeholder(0)}",
        f"SELECT {placeholder(0)}::int4 / {placeholder(1)}::int4",
    )


def run_clients(client):
    """Runs client(c) for every client on its own thread at once; re-raises the first failure."""
    failures = []

    def guarded(c):
        try:
            client(c)
        except Exception as e:  # reported by the main thread
            failures.append(e)

    threads = [threading.Thread(target=guarded, args=(c,)) for c in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise failures[0]

BASE_TIME = datetime.datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=datetime.timezone.utc)
ERROR_ID_OFFSET = 999_999  # a row id that a rolled-back transaction inserts


def row_id(client, k):
    # Above 2^32 so that int8 really is needed.
    return (client + 1) * 10_000_000_000 + k


def row(client, k):
    """The values client `client` writes in its transaction `k`, as Python objects."""
    return (
        row_id(client, k),
        client,
        f"client {client} row {k}: 'quoted' \"double\" back\\slash é ✓",
        decimal.Decimal(f"{'-' if k % 4 == 3 else ''}{client * 1000 + k}.{(k * 37) % 10000:04d}"),
        k % 2 == 0,
        BASE_TIME + datetime.timedelta(days=client, seconds=k, microseconds=k),
        bytes([0, 255, client, k % 256, 0x27, 0x5C, 0]),
        [client, k, -1],
        None if k % 3 == 0 else f"note {k}",
    )


def check_row(client, k, got):
    want = row(client, k)
    if got is None:
        raise scenario_error(f"client {client} transaction {k}: row {want[0]} not found after inserting it")
    got = tuple(bytes(v) if isinstance(v, memoryview) else v for v in got)
    if tuple(got) != want:
        raise scenario_error(f"client {client} transaction {k}: read back {got!r}, wrote {want!r}")


def expect_sqlstate(what, got, want):
    if got != want:
        raise scenario_error(f"{what}: expected SQLSTATE {want}, got {got!r}")


def expected_totals():
    """(count, number of distinct clients, NULL notes) the table must hold at the end."""
    nulls = sum(1 for k in range(TRANSACTIONS) if k % 3 == 0) * CLIENTS
    return CLIENTS * TRANSACTIONS, CLIENTS, nulls


def totals_sql(name):
    return (
        f"SELECT count(*), count(DISTINCT client), count(*) - count(note), "
        f"count(*) FILTER (WHERE id % 10000000000 = {ERROR_ID_OFFSET}) FROM {name}"
    )


def check_totals(got):
    count, clients, nulls, error_rows = (int(v) for v in got)
    want = expected_totals()
    if (count, clients, nulls) != want or error_rows != 0:
        raise scenario_error(
            f"final table: count={count} clients={clients} null_notes={nulls} rolled_back_rows={error_rows}, "
            f"expected count={want[0]} clients={want[1]} null_notes={want[2]} rolled_back_rows=0"
        )


def main(run, driver, statements="named statements"):
    """Runs `run()` and turns the outcome into an exit code with a one-line verdict."""
    try:
        run()
    except scenario_error as e:
        print(f"FAIL {driver}: {e}", file=sys.stderr)
        sys.exit(1)
    except Exception as e:  # a driver error nobody expected: show its class and SQLSTATE
        state = getattr(e, "sqlstate", None) or getattr(e, "pgcode", None)
        print(f"FAIL {driver}: unexpected {type(e).__module__}.{type(e).__name__} (SQLSTATE {state}): {e}",
              file=sys.stderr)
        traceback.print_exc()
        sys.exit(1)
    print(f"OK {driver}: {CLIENTS} concurrent clients x {TRANSACTIONS} transactions with {statements}, "
          f"22012 and 23505 recovered")
