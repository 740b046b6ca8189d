'use strict';
// rollguard with knex 3 (and the pg driver), as a Node team uses it:
// migrations written with knex's schema builder (migrations/*/ here), run by
// knex's migrator (knex.migrate.latest(), default settings: the batch -- one
// migration here -- in one transaction, recorded in knex_migrations);
// manifests written by hand and deploy steps in plain SQL
// (rollguard.register_version, rollguard.deploy).
//
// Each scenario has a database of its own.  orders (id serial, status
// varchar(20) NOT NULL DEFAULT 'new', code varchar(20) NOT NULL, note
// varchar(20)) is created by a knex migration before any deployment is
// registered; then mirror-2 and mirror-3 run version 41, whose manifest
// lists every column of orders (status "writes": false: its code relies on
// the default; code and note: "nullable" left at true).
//   1. .alter() widening status WITH its default: allowed (net effect).
//   2. .alter() widening the NOT NULL code WITHOUT a default: allowed.
//   3. dropColumn, renameColumn, dropNullable, and an .alter() that leaves
//      note NOT NULL: refused (SQLSTATE 55006, naming the deployments; the
//      schema, the rows and knex_migrations unchanged) ...
//   4. ... still refused while one mirror runs 41, allowed once both run 42,
//      whose manifest no longer uses note (for the two NOT NULL changes:
//      always writes it).
// The SQL knex sent for each migration is printed as "# " lines.
//
// Run by test/scenario/knex.sh, which starts the cluster (PGHOST, PGPORT,
// PGUSER) and installs node_modules.  Output: "ok - ..." / "not ok - ..."
// per step, "# N tests, N failed" at the end; exit status 1 on any failure.
//     node test_knex.js [SUBSTRING ...]   # only the scenarios whose name has one

const path = require('path');
const knexFactory = require('knex');

const MIGRATIONS = path.join(__dirname, 'migrations');
const BASE = path.join(MIGRATIONS, 'base');
const DEPLOYMENTS = ['mirror-2', 'mirror-3'];

// What version 41's code uses (written by hand, as a team without an ORM
// manifest generator does).
const MANIFEST_41 = {
  relations: {
    'public.orders': {
      id: { writes: false, nullable: false },
      status: { writes: false, nullable: false },
      code: {},
      note: {},
    },
  },
};

// Version 42: no longer uses note (note === undefined: for dropColumn and
// renameColumn), or always writes a value to it ({nullable: false}: for the
// two NOT NULL changes -- a version that inserts orders without note would
// break on a NOT NULL note without a default, and rollguard says so).
function manifest42(note) {
  const columns = {
    id: { writes: false, nullable: false },
    status: { writes: false, nullable: false },
    code: {},
  };
  if (note) columns.note = note;
  return { relations: { 'public.orders': columns } };
}

// ---------------------------------------------------------------- output

let tests = 0;
let failures = 0;

function diag(text) {
  for (const line of String(text).split('\n')) console.log('# ' + line);
}

function ok(cond, name, why) {
  tests++;
  if (cond) {
    console.log('ok - ' + name);
  } else {
    failures++;
    console.log('not ok - ' + name);
    if (why) diag('  ' + String(why).split('\n').join('\n  '));
  }
  return cond;
}

function describeError(err) {
  if (!err) return 'no error';
  const lines = [`${err.code ? 'SQLSTATE ' + err.code + ': ' : ''}${err.message}`];
  if (err.detail) lines.push('DETAIL:  ' + err.detail);
  if (err.hint) lines.push('HINT:  ' + err.hint);
  return lines.join('\n');
}

// ---------------------------------------------------------------- database

function connect(database) {
  const logger = (what) => (message) => diag(`knex ${what}: ${message}`);
  return knexFactory({
    client: 'pg',
    connection: {
      host: process.env.PGHOST,
      port: Number(process.env.PGPORT || 5432),
      user: process.env.PGUSER || 'postgres',
      database,
    },
    pool: { min: 0, max: 2 },
    migrations: { directory: BASE, loadExtensions: ['.js'] },
    log: { warn: logger('warning'), error: logger('error'), deprecate: logger('deprecation'), debug() {} },
  });
}

// Every statement knex sends while `on`, and the one that failed.
function recorder(knex) {
  const rec = { on: false, queries: [], failed: null };
  knex.on('query', (q) => {
    if (rec.on) rec.queries.push(q);
  });
  knex.on('query-error', (err, q) => {
    if (rec.on && !rec.failed) rec.failed = q;
  });
  return rec;
}

function showQuery(q) {
  const bindings = q.bindings && q.bindings.length ? `    -- bindings ${JSON.stringify(q.bindings)}` : '';
  return q.sql + bindings;
}

// knex.migrate.latest() over the base migration and one scenario's; prints
// what knex sent in the migration's transaction (BEGIN ... COMMIT/ROLLBACK:
// its lock, the DDL, the row in knex_migrations).
async function migrate(knex, rec, dir, label) {
  rec.queries = [];
  rec.failed = null;
  rec.on = true;
  let error = null;
  try {
    await knex.migrate.latest({ directory: [BASE, path.join(MIGRATIONS, dir)] });
  } catch (e) {
    error = e;
  }
  rec.on = false;
  const queries = rec.queries;
  const begin = queries.findIndex((q) => /^BEGIN/i.test(q.sql));
  const shown = begin >= 0 ? queries.slice(begin) : queries;
  diag(`${label}: knex sent${begin > 0 ? ` (after ${begin} look-ups of knex_migrations)` : ''}:`);
  let failedAt = -1;
  if (rec.failed) {
    shown.forEach((q, i) => {
      if (q.sql === rec.failed.sql) failedAt = i;
    });
  }
  shown.forEach((q, i) => diag('    ' + showQuery(q) + (i === failedAt ? '    <-- failed here' : '')));
  if (rec.failed && failedAt < 0) diag('    failed: ' + showQuery(rec.failed));
  if (error) {
    diag(`${label}: the migration failed:`);
    diag('    ' + describeError(error).split('\n').join('\n    '));
  } else {
    diag(`${label}: the migration went through`);
  }
  return { error, queries, failed: rec.failed };
}

async function register(knex, version, manifest) {
  await knex.raw('SELECT rollguard.register_version(?, ?::jsonb)', [version, JSON.stringify(manifest)]);
}

async function deploy(knex, deployment, version) {
  await knex.raw('SELECT rollguard.deploy(?, ?)', [deployment, version]);
}

// orders' columns, one line each: name, type, NOT NULL, default.
async function columns(knex) {
  const r = await knex.raw(`
    SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull,
           pg_get_expr(d.adbin, d.adrelid) AS def
      FROM pg_attribute a
      LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
     WHERE a.attrelid = 'public.orders'::regclass AND a.attnum > 0 AND NOT a.attisdropped
     ORDER BY a.attnum`);
  const out = {};
  for (const row of r.rows) {
    out[row.attname] = row.type + (row.attnotnull ? ' NOT NULL' : '') + (row.def ? ' DEFAULT ' + row.def : '');
  }
  return out;
}

async function snapshot(knex) {
  const cols = await columns(knex);
  const rows = await knex('orders').select('*').orderBy('id');
  return JSON.stringify({ cols, rows }, null, 1);
}

async function recorded(knex) {
  const rows = await knex('knex_migrations').select('name').orderBy('id');
  return rows.map((r) => r.name);
}

async function lockFree(knex) {
  const rows = await knex('knex_migrations_lock').select('is_locked');
  return rows.length === 1 && rows[0].is_locked === 0;
}

// A database with orders (by the base migration, before any deployment),
// two rows inserted as version 41's code does (without status), and
// mirror-2 and mirror-3 on version 41.
async function setUp(admin, db) {
  await admin.raw('CREATE DATABASE ??', [db]);
  const knex = connect(db);
  const rec = recorder(knex);
  await knex.raw('CREATE EXTENSION rollguard');
  await knex.migrate.latest({ directory: BASE });
  await knex('orders').insert([
    { code: 'A-1', note: 'fragile' },
    { code: 'A-2', note: 'ring twice' },
  ]);
  await register(knex, '41', MANIFEST_41);
  for (const d of DEPLOYMENTS) await deploy(knex, d, '41');
  return { knex, rec };
}

const MIGRATION_NAME = '20250102000000_%s.js';

// ---------------------------------------------------------------- scenarios

// 1 and 2: allowed, whatever the statements on the way do.
const ALLOWED = [
  {
    name: "1 widen status with its default: t.string('status', 40).notNullable().defaultTo('new').alter()",
    db: 'knex_widen_status',
    dir: 'widen_status',
    column: 'status',
    expect: "character varying(40) NOT NULL DEFAULT 'new'::character varying",
    // version 41's code inserts without status, relying on the default
    insert: { code: 'A-3', note: null },
    inserted: (row) => row.status === 'new',
  },
  {
    name: "2 widen the NOT NULL code without a default: t.string('code', 40).notNullable().alter()",
    db: 'knex_widen_code',
    dir: 'widen_code',
    column: 'code',
    expect: 'character varying(40) NOT NULL',
    insert: { code: 'A-3', note: null },
    inserted: (row) => row.code === 'A-3' && row.status === 'new',
  },
];

// 3 and 4: refused while a deployment runs 41, allowed once both run 42.
const REFUSED = [
  {
    name: "3/4 drop a column: t.dropColumn('note')",
    db: 'knex_drop_note',
    dir: 'drop_note',
    note42: undefined,
    after: (cols) => !('note' in cols),
    afterText: 'orders.note is gone',
  },
  {
    name: "3/4 rename a column: t.renameColumn('note', 'remark')",
    db: 'knex_rename_note',
    dir: 'rename_note',
    note42: undefined,
    after: (cols) => !('note' in cols) && cols.remark === 'character varying(20)',
    afterText: 'orders.note is now remark',
  },
  {
    name: "3/4 SET NOT NULL: t.dropNullable('note')",
    db: 'knex_note_not_null',
    dir: 'note_not_null',
    note42: { nullable: false },
    after: (cols) => cols.note === 'character varying(20) NOT NULL',
    afterText: 'orders.note is varchar(20) NOT NULL',
  },
  {
    name: "3/4 .alter() that leaves the column tightened: t.string('note', 40).notNullable().alter()",
    db: 'knex_tighten_note',
    dir: 'tighten_note',
    note42: { nullable: false },
    after: (cols) => cols.note === 'character varying(40) NOT NULL',
    afterText: 'orders.note is varchar(40) NOT NULL',
  },
];

async function allowed(admin, s) {
  const { knex, rec } = await setUp(admin, s.db);
  try {
    const before = await columns(knex);
    const rows = await knex('orders').select('*').orderBy('id');
    const name = MIGRATION_NAME.replace('%s', s.dir);
    const r = await migrate(knex, rec, s.dir, s.dir);
    ok(!r.error, `${s.name}: knex.migrate.latest() goes through while mirror-2 and mirror-3 run 41`,
      describeError(r.error));
    const cols = await columns(knex);
    ok(cols[s.column] === s.expect, `${s.name}: orders.${s.column} is ${s.expect}`,
      `orders.${s.column} is ${cols[s.column]} (was ${before[s.column]})`);
    const names = await recorded(knex);
    ok(names.includes(name), `${s.name}: knex_migrations records ${name}`, `knex_migrations: ${names.join(', ')}`);
    const now = await knex('orders').select('*').orderBy('id');
    ok(JSON.stringify(now) === JSON.stringify(rows), `${s.name}: the rows are intact`,
      `before ${JSON.stringify(rows)}\nafter ${JSON.stringify(now)}`);
    let row = null;
    let err = null;
    try {
      [row] = await knex('orders').insert(s.insert).returning('*');
    } catch (e) {
      err = e;
    }
    ok(row && s.inserted(row), `${s.name}: version 41's insert ${JSON.stringify(s.insert)} still works`,
      err ? describeError(err) : JSON.stringify(row));
  } finally {
    await knex.destroy();
  }
}

async function refused(admin, s) {
  const { knex, rec } = await setUp(admin, s.db);
  const name = MIGRATION_NAME.replace('%s', s.dir);
  try {
    const before = await snapshot(knex);
    const blocked = async (label, blockers, others) => {
      const r = await migrate(knex, rec, s.dir, label);
      const e = r.error;
      ok(e && e.code === '55006', `${s.name}: refused with SQLSTATE 55006 (${label})`,
        e ? describeError(e) : 'the migration went through');
      const text = e ? `${e.message}\n${e.detail || ''}` : '';
      ok(e && blockers.every((d) => text.includes(`"${d}"`)) && others.every((d) => !text.includes(`"${d}"`)),
        `${s.name}: the error names ${blockers.join(' and ')}${others.length ? ', not ' + others.join(', ') : ''} (${label})`,
        describeError(e));
      const after = await snapshot(knex);
      ok(after === before, `${s.name}: orders unchanged: columns, types, NOT NULL, defaults, rows (${label})`,
        `before ${before}\nafter ${after}`);
      const names = await recorded(knex);
      ok(!names.includes(name), `${s.name}: knex_migrations does not record it (${label})`,
        `knex_migrations: ${names.join(', ')}`);
      ok(await lockFree(knex), `${s.name}: knex's migration lock is free again (${label})`);
    };

    // 3: both mirrors run 41
    await blocked('mirror-2 and mirror-3 run 41', DEPLOYMENTS, []);

    // 4: one mirror on 42 is not enough; both are
    await register(knex, '42', manifest42(s.note42));
    await deploy(knex, 'mirror-2', '42');
    await blocked('mirror-2 runs 42, mirror-3 41', ['mirror-3'], ['mirror-2']);

    await deploy(knex, 'mirror-3', '42');
    const r = await migrate(knex, rec, s.dir, 'both run 42');
    ok(!r.error, `${s.name}: goes through once mirror-2 and mirror-3 run 42`, describeError(r.error));
    const cols = await columns(knex);
    ok(s.after(cols), `${s.name}: ${s.afterText}`, JSON.stringify(cols));
    const names = await recorded(knex);
    ok(names.includes(name), `${s.name}: knex_migrations records ${name}`, `knex_migrations: ${names.join(', ')}`);
  } finally {
    await knex.destroy();
  }
}

async function main() {
  const only = process.argv.slice(2);
  const wanted = (s) => !only.length || only.some((o) => s.name.includes(o) || s.db.includes(o));
  const admin = connect('postgres');
  const started = Date.now();
  try {
    for (const [run, list] of [[allowed, ALLOWED], [refused, REFUSED]]) {
      for (const s of list.filter(wanted)) {
        diag(`scenario ${s.name} (database ${s.db})`);
        const t0 = Date.now();
        try {
          await run(admin, s);
        } catch (e) {
          ok(false, `${s.name}: unexpected error`, e && e.stack ? e.stack : String(e));
        }
        diag(`(${((Date.now() - t0) / 1000).toFixed(1)} s)`);
      }
    }
  } finally {
    await admin.destroy();
  }
  console.log(`# ${tests} tests, ${failures} failed (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  process.exitCode = failures || !tests ? 1 : 0;
}

main().catch((e) => {
  console.log('not ok - ' + (e && e.stack ? e.stack.split('\n').join('\n# ') : String(e)));
  process.exitCode = 1;
});
