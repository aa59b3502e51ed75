#!/usr/bin/python3
# asyncpg driver scenario (see common.py): explicit named prepared statements (__asyncpg_stmt_N__) on concurrent tasks.
import asyncio

import asyncpg

import common as s

TABLE = s.table("drv_asyncpg")
INSERT, SELECT, DIVIDE = s.statements(TABLE, lambda i: f"${i + 1}")


async def connect():
    p = s.conninfo_parts()
    return await asyncpg.connect(host=p["host"], port=p["port"], user=p["user"], password=p["password"],
                                 database=p["dbname"], ssl=False)


def as_tuple(record):
    return None if record is None else tuple(record.values())


async def client(c):
    conn = await connect()
    try:
        # Connection.prepare() creates a named server-side statement, reused below by name
        # in every transaction. https://magicstack.github.io/asyncpg/current/api/index.html
        insert = await conn.prepare(INSERT)
        select = await conn.prepare(SELECT)
        divide = await conn.prepare(DIVIDE)
        names = {st.get_name() for st in (insert, select, divide)}
        if len(names) != 3 or not all(n for n in names):
            raise s.scenario_error(f"client {c}: statements are not named: {names}")
        for k in range(s.TRANSACTIONS):
            async with conn.transaction():
                await insert.fetch(*s.row(c, k))
                s.check_row(c, k, as_tuple(await select.fetchrow(s.row_id(c, k))))

        error_id = s.row_id(c, s.ERROR_ID_OFFSET)
        try:
            async with conn.transaction():
                await insert.fetch(error_id, *s.row(c, 0)[1:])
                await divide.fetchval(1, 0)
            raise s.scenario_error(f"client {c}: 1/0 did not fail")
        except asyncpg.DivisionByZeroError as e:
            s.expect_sqlstate(f"client {c}: 1/0", e.sqlstate, "22012")
        if await select.fetchrow(error_id) is not None:
            raise s.scenario_error(f"client {c}: the row of the rolled-back transaction is visible")
        if await divide.fetchval(10, 2) != 5:
            raise s.scenario_error(f"client {c}: 10/2 after the error")

        try:
            async with conn.transaction():
                await insert.fetch(*s.row(c, 0))
            raise s.scenario_error(f"client {c}: duplicate id accepted")
        except asyncpg.UniqueViolationError as e:
            s.expect_sqlstate(f"client {c}: duplicate id", e.sqlstate, "23505")
        s.check_row(c, 0, as_tuple(await select.fetchrow(s.row_id(c, 0))))
    finally:
        await conn.close(timeout=10)


async def scenario():
    conn = await connect()
    await conn.execute(s.create_table_sql(TABLE))
    await conn.close()
    # The first failure ends the run (asyncio.run cancels the other clients).
    await asyncio.gather(*(client(c) for c in range(s.CLIENTS)))
    conn = await connect()
    s.check_totals(as_tuple(await conn.fetchrow(s.totals_sql(TABLE))))
    await conn.close()


if __name__ == "__main__":
    s.main(lambda: asyncio.run(scenario()), "asyncpg")
