// node-postgres driver scenario (see ../common.py): named queries ({name, text, values}) prepared once per connection.
//
// node-postgres sends Parse for a named query the first time a connection runs it and
// only Bind/Execute afterwards (https://node-postgres.com/features/queries#prepared-statements),
// so through a transaction pooler every later transaction relies on the statement
// existing on whatever server connection it lands on.
'use strict';

const { Client } = require('pg');

const CLIENTS = Number(process.env.DRIVER_CLIENTS || 20);
const TRANSACTIONS = Number(process.env.DRIVER_TRANSACTIONS || 20);
const TABLE = process.env.DRIVER_TABLE || 'drv_node';
const COLUMNS = 'id, client, label, amount, flag, at, payload, tags, note';
const CASTS = ['int8', 'int4', 'text', 'numeric', 'bool', 'timestamptz', 'bytea', 'int4[]', 'text'];
const INSERT = {
  name: 'drv_insert',
  text: `INSERT INTO ${TABLE} (${COLUMNS}) VALUES (${CASTS.map((t, i) => `$${i + 1}::${t}`).join(', ')})`,
};
const SELECT = { name: 'drv_select', text: `SELECT ${COLUMNS} FROM ${TABLE} WHERE id = $1` };
const DIVIDE = { name: 'drv_divide', text: 'SELECT $1::int4 / $2::int4 AS q' };
const ERROR_ID_OFFSET = 999999n;
// JavaScript dates carry milliseconds, so this driver's rows step in milliseconds.
const BASE_TIME = Date.parse('2024-02-29T23:59:58.123Z');

class ScenarioError extends Error {}

function connect() {
  for (const v of ['PGHOST', 'PGPORT', 'PGUSER', 'PGPASSWORD', 'PGDATABASE'])
    if (!process.env[v]) throw new ScenarioError(`environment variable not set: ${v}`);
  // Client() reads PGHOST, PGPORT, PGUSER, PGPASSWORD and PGDATABASE itself.
  const client = new Client({ ssl: false });
  return client.connect().then(() => client);
}

const rowId = (client, k) => String((BigInt(client) + 1n) * 10000000000n + BigInt(k));

// The values of common.py's row(), as node-postgres reads them back: int8 and numeric
// as strings, timestamptz as Date, bytea as Buffer, int4[] as an array of numbers.
function row(client, k) {
  const frac = String((k * 37) % 10000).padStart(4, '0');
  return [
    rowId(client, k),
    client,
    `client ${client} row ${k}: 'quoted' "double" back\\slash é ✓`,
    `${k % 4 === 3 ? '-' : ''}${client * 1000 + k}.${frac}`,
    k % 2 === 0,
    new Date(BASE_TIME + client * 86400000 + k * 1000 + k),
    Buffer.from([0, 255, client, k % 256, 0x27, 0x5c, 0]),
    [client, k, -1],
    k % 3 === 0 ? null : `note ${k}`,
  ];
}

const show = (values) =>
  JSON.stringify(values, (key, v) => (v && v.type === 'Buffer' ? `bytes[${v.data}]` : v));

function checkRow(client, k, result) {
  const want = row(client, k);
  if (result.rows.length !== 1) throw new ScenarioError(`client ${client} transaction ${k}: row not found after inserting it`);
  const r = result.rows[0];
  const got = [r.id, r.client, r.label, r.amount, r.flag, r.at, r.payload, r.tags, r.note];
  const same =
    got[0] === want[0] && got[1] === want[1] && got[2] === want[2] && got[3] === want[3] && got[4] === want[4] &&
    got[5] instanceof Date && got[5].getTime() === want[5].getTime() && Buffer.isBuffer(got[6]) &&
    got[6].equals(want[6]) && JSON.stringify(got[7]) === JSON.stringify(want[7]) && got[8] === want[8];
  if (!same) throw new ScenarioError(`client ${client} transaction ${k}: read back ${show(got)}, wrote ${show(want)}`);
}

// Runs `body`, which must fail with `sqlstate`.
async function expectError(what, sqlstate, body) {
  try {
    await body();
  } catch (e) {
    if (e instanceof ScenarioError) throw e;
    if (e.code !== sqlstate) throw new ScenarioError(`${what}: expected SQLSTATE ${sqlstate}, got ${e.code} (${e.message})`);
    return;
  }
  throw new ScenarioError(`${what}: did not fail`);
}

async function runClient(c) {
  const conn = await connect();
  try {
    for (let k = 0; k < TRANSACTIONS; ++k) {
      await conn.query('BEGIN');
      await conn.query({ ...INSERT, values: row(c, k) });
      checkRow(c, k, await conn.query({ ...SELECT, values: [rowId(c, k)] }));
      await conn.query('COMMIT');
    }

    const errorId = String((BigInt(c) + 1n) * 10000000000n + ERROR_ID_OFFSET);
    await conn.query('BEGIN');
    await conn.query({ ...INSERT, values: [errorId, ...row(c, 0).slice(1)] });
    await expectError(`client ${c}: 1/0`, '22012', () => conn.query({ ...DIVIDE, values: [1, 0] }));
    await conn.query('ROLLBACK');
    if ((await conn.query({ ...SELECT, values: [errorId] })).rows.length !== 0)
      throw new ScenarioError(`client ${c}: the row of the rolled-back transaction is visible`);
    const q = (await conn.query({ ...DIVIDE, values: [10, 2] })).rows[0].q;
    if (q !== 5) throw new ScenarioError(`client ${c}: 10/2 after the error gave ${q}`);

    await conn.query('BEGIN');
    await expectError(`client ${c}: duplicate id`, '23505', () => conn.query({ ...INSERT, values: row(c, 0) }));
    await conn.query('ROLLBACK');
    checkRow(c, 0, await conn.query({ ...SELECT, values: [rowId(c, 0)] }));
  } finally {
    await conn.end();
  }
}

async function run() {
  let conn = await connect();
  await conn.query(`DROP TABLE IF EXISTS ${TABLE}`);
  await conn.query(
    `CREATE TABLE ${TABLE} (id int8 PRIMARY KEY, client int4 NOT NULL, label text NOT NULL, ` +
      'amount numeric(18,4) NOT NULL, flag bool NOT NULL, at timestamptz NOT NULL, payload bytea NOT NULL, ' +
      'tags int4[] NOT NULL, note text)');
  await conn.end();

  const results = await Promise.allSettled(Array.from({ length: CLIENTS }, (_, c) => runClient(c)));
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;

  conn = await connect();
  const t = (await conn.query(
    `SELECT count(*)::int AS count, count(DISTINCT client)::int AS clients, (count(*) - count(note))::int AS nulls, ` +
      `(count(*) FILTER (WHERE id % 10000000000 = ${ERROR_ID_OFFSET}))::int AS error_rows FROM ${TABLE}`)).rows[0];
  await conn.end();
  let nulls = 0;
  for (let k = 0; k < TRANSACTIONS; ++k) if (k % 3 === 0) nulls += CLIENTS;
  if (t.count !== CLIENTS * TRANSACTIONS || t.clients !== CLIENTS || t.nulls !== nulls || t.error_rows !== 0)
    throw new ScenarioError(`final table: ${JSON.stringify(t)}, expected count=${CLIENTS * TRANSACTIONS} ` +
      `clients=${CLIENTS} nulls=${nulls} error_rows=0`);
}

run().then(
  () => console.log(`OK node-postgres: ${CLIENTS} concurrent clients x ${TRANSACTIONS} transactions with named statements, ` +
    '22012 and 23505 recovered'),
  (e) => {
    if (e instanceof ScenarioError) console.error(`FAIL node-postgres: ${e.message}`);
    else console.error(`FAIL node-postgres: unexpected ${e.constructor.name} (SQLSTATE ${e.code}): ${e.message}\n${e.stack}`);
    process.exit(1);
  });
