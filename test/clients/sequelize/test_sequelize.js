'use strict';
// rollguard with Sequelize 6 and contrib/node (npm package "rollguard",
// installed from the checkout by npm ci), as a Node team uses them:
// migrations written with queryInterface (migrations/*/ here, in
// sequelize-cli's format), run by umzug with SequelizeStorage (the
// SequelizeMeta table sequelize-cli keeps), each migration outside a
// transaction unless it opens one; manifests derived from the models
// (rollguard.manifestFromSequelize) and deploy steps through the package
// over a pg Pool.
//
// The mirror scenario: one database, three deployments, "original",
// "mirror-2", "mirror-3", all on version 41.  Release 42 changes the models
// (models/define.js).  Each scenario has a database of its own:
//   1. the manifest: what manifestFromSequelize() derives ("writes" and
//      "nullable" written out for every column), checked against the
//      INSERTs the real Sequelize sends for Model.create(); two models on
//      one table; omitNull; accepted by register_version;
//   2. the CLI (rollguard-node manifest, deploy, check, register, status; a
//      refused step, bad usage) and the package's version and licence;
//   3. removeColumn, renameColumn, changeColumn to allowNull: false,
//      changeColumn without the defaultValue, dropTable, renameTable, and
//      two statements in sequelize.transaction(): the original registers 42
//      and migrates first: refused (SQLSTATE 55006, naming original,
//      mirror-2, mirror-3), SequelizeMeta and the schema unchanged; the
//      original rolls out 42 (begin_rollout: still refused, 41 still runs
//      there; finish_rollout), mirror-2 deploys 42, mirror-3 begins a
//      rollout of 42 and aborts it: refused naming mirror-3 only, and
//      rollguard.check() of the refused statement says the same; mirror-3
//      deploys 42: the migration goes through, the mirrors find it applied.
//      A refusal of a single call says the statement ran outside a
//      transaction block; one inside sequelize.transaction() or of
//      changeColumn's statements sent as one query string does not;
//   3b. a connection tagged with rollguard.connectionTags() (an old
//      container of mirror-3 on 41) blocks the drop until it disconnects;
//   4. two statements outside a transaction (umzug's default): the first is
//      applied, the second refused, saying so: half applied, SequelizeMeta
//      without it, and running it again fails on the first.
// The SQL Sequelize sent for each migration is printed as "# " lines.
//
// Run by test/scenario/sequelize.sh, which starts the cluster (PGHOST,
// PGPORT, PGUSER) and installs node_modules.  Output: "ok - ..." / "not ok -
// ..." per step, "# N tests, N failed" at the end; exit status 1 on any
// failure.
//     node test_sequelize.js [SUBSTRING ...]   # only the matching scenarios

const path = require('path');
const { execFile } = require('child_process');
const { Pool } = require('pg');
const { Sequelize } = require('sequelize');
const { Umzug, SequelizeStorage } = require('umzug');
const rollguard = require('rollguard');
const define = require('./models/define');

const MIGRATIONS = path.join(__dirname, 'migrations');
const DEPLOYMENTS = ['original', 'mirror-2', 'mirror-3'];
const MIRRORS = ['mirror-2', 'mirror-3'];

// What a refusal outside a transaction block adds (src/report.c): to the
// DETAIL, and to the HINT.  Not there inside one (sequelize.transaction(),
// or the several statements of one changeColumn sent as one query string).
const OUTSIDE_DETAIL = 'The statement ran outside a transaction block: statements that ran before it in the same migration, if any, are committed and stay applied.';
const OUTSIDE_HINT = 'Run migrations in one transaction (BEGIN ... COMMIT, psql --single-transaction, or the tool\'s own setting: see "Migrations outside a transaction" in doc/other-tools.md)';

function saysOutside(e) {
  return Boolean(e && (e.detail || '').includes(OUTSIDE_DETAIL) && (e.hint || '').includes(OUTSIDE_HINT));
}

function mentionsOutside(e) {
  return Boolean(e && /outside a transaction block/.test(`${e.message}\n${e.detail || ''}\n${e.hint || ''}`));
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

// The server's error under Sequelize's and umzug's wrappers.
function pgError(err) {
  for (let e = err, depth = 0; e && depth < 6; depth++) {
    if (typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code)) return e;
    e = e.parent || e.original || e.cause;
  }
  return null;
}

function describeError(err) {
  if (!err) return 'no error';
  const e = pgError(err);
  if (!e) return String(err && err.stack ? err.stack : err);
  const lines = [`SQLSTATE ${e.code}: ${e.message}`];
  if (e.detail) lines.push('DETAIL:  ' + e.detail);
  if (e.hint) lines.push('HINT:  ' + e.hint);
  return lines.join('\n');
}

// ---------------------------------------------------------------- database

const connection = (database) => ({
  host: process.env.PGHOST,
  port: Number(process.env.PGPORT || 5432),
  user: process.env.PGUSER || 'postgres',
  database,
});

// A Sequelize instance of one deployment's code; its statements are
// recorded in rec.queries while rec.on.
function sequelizeFor(database) {
  const rec = { on: false, queries: [] };
  const c = connection(database);
  const sequelize = new Sequelize(c.database, c.user, null, {
    host: c.host,
    port: c.port,
    dialect: 'postgres',
    logging: (sql) => {
      if (rec.on) rec.queries.push(sql.replace(/^Executing \([^)]*\): /, ''));
    },
    pool: { max: 2, min: 0 },
  });
  return { sequelize, rec };
}

// umzug over the base migration and one scenario's (sequelize-cli's format:
// up(queryInterface, Sequelize)), recorded in SequelizeMeta.
function migrator(sequelize, dir) {
  const files = ['base', dir].filter(Boolean).flatMap((d) => {
    const full = path.join(MIGRATIONS, d);
    return require('fs').readdirSync(full).filter((f) => f.endsWith('.js')).map((f) => path.join(full, f));
  });
  files.sort((a, b) => path.basename(a).localeCompare(path.basename(b)));
  return new Umzug({
    migrations: files.map((file) => ({
      name: path.basename(file),
      path: file,
      up: ({ context }) => require(file).up(context, Sequelize),
      down: ({ context }) => require(file).down(context, Sequelize),
    })),
    context: sequelize.getQueryInterface(),
    storage: new SequelizeStorage({ sequelize }),
    logger: undefined,
  });
}

// umzug.up(): prints what Sequelize sent (the failed statement marked).
async function migrate(app, dir, label) {
  const { sequelize, rec } = app;
  rec.queries = [];
  rec.on = true;
  let error = null;
  try {
    await migrator(sequelize, dir).up();
  } catch (e) {
    error = e;
  }
  rec.on = false;
  const shown = rec.queries.filter((q) => !/FROM information_schema\.tables|FROM "SequelizeMeta"|CREATE TABLE IF NOT EXISTS "SequelizeMeta"|pg_index ix/.test(q));
  diag(`${label}: Sequelize sent:`);
  // Sequelize logs a statement before it sends it: the failed one is the
  // last, or the one before the ROLLBACK of sequelize.transaction().
  let failedAt = -1;
  if (error) {
    failedAt = shown.length - 1;
    if (failedAt > 0 && /^ROLLBACK/.test(shown[failedAt])) failedAt--;
  }
  const short = (q) => (q.length > 200 ? q.slice(0, 200) + ' ...' : q);
  shown.forEach((q, i) => diag('    ' + short(q) + (i === failedAt ? '    <-- failed here' : '')));
  diag(`${label}: ${error ? 'the migration failed:\n    ' + describeError(error).split('\n').join('\n    ') : 'the migration went through'}`);
  return { error, failed: failedAt >= 0 ? shown[failedAt] : null, queries: shown };
}

async function describe(pool) {
  const cols = await pool.query(`
    SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull,
           pg_get_expr(d.adbin, d.adrelid) AS def
      FROM pg_class c
      JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
     WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' AND c.relname <> 'SequelizeMeta'
     ORDER BY c.relname, a.attnum`);
  const out = {};
  for (const r of cols.rows) {
    (out[r.relname] = out[r.relname] || {})[r.attname] =
      r.type + (r.attnotnull ? ' NOT NULL' : '') + (r.def ? ' DEFAULT ' + r.def : '');
  }
  return out;
}

// The schema and the rows of orders and tags (whatever they are called now).
async function snapshot(pool) {
  const schema = await describe(pool);
  const rows = {};
  for (const t of Object.keys(schema).sort()) {
    const cols = Object.keys(schema[t]).filter((c) => !/^(createdAt|updatedAt)$/.test(c)).map((c) => `"${c}"`);
    rows[t] = (await pool.query(`SELECT ${cols.join(', ')} FROM "${t}" ORDER BY id`)).rows;
  }
  return JSON.stringify({ schema, rows }, null, 1);
}

async function recorded(pool) {
  const r = await pool.query('SELECT name FROM "SequelizeMeta" ORDER BY name');
  return r.rows.map((x) => x.name);
}

// A Sequelize instance with the models of one code version defined.
function appOf(database, variant) {
  const app = sequelizeFor(database);
  define(variant)(app.sequelize);
  return app;
}

// ------------------------------------------------------ 1. the manifest

// Model.create() as version 41's code and version 42's (note required)
// call it: the columns of the INSERT Sequelize sends, and those it sends as
// DEFAULT, next to what manifestFromSequelize() says.
async function manifestScenario(admin) {
  const db = 'seq_manifest';
  await admin.query(`CREATE DATABASE ${db}`);
  const pool = new Pool(connection(db));
  const base = sequelizeFor(db);
  try {
    await migrator(base.sequelize, null).up();
    const expected41 = {
      relations: {
        'public.orders': {
          code: { nullable: false, writes: true },
          createdAt: { nullable: false, writes: true },
          id: { nullable: false, writes: false },
          note: { nullable: true, writes: false },
          status: { nullable: true, writes: false },
          updatedAt: { nullable: false, writes: true },
        },
        'public.tags': {
          createdAt: { nullable: false, writes: true },
          id: { nullable: false, writes: false },
          name: { nullable: false, writes: true },
          updatedAt: { nullable: false, writes: true },
        },
      },
    };
    const cases = [
      { label: '41', variant: {}, expected: expected41, values: { code: 'M-1' } },
      {
        label: "42 (note allowNull: false, status defaultValue 'new')",
        variant: { note: 'required', statusDefault: true },
        values: { code: 'M-2', note: 'n' },
        expected: {
          relations: {
            'public.orders': {
              ...expected41.relations['public.orders'],
              note: { nullable: false, writes: true },
              status: { nullable: false, writes: true },
            },
            'public.tags': expected41.relations['public.tags'],
          },
        },
      },
    ];
    for (const c of cases) {
      const app = appOf(db, c.variant);
      try {
        const manifest = await rollguard.manifestFromSequelize(app.sequelize);
        ok(JSON.stringify(manifest) === JSON.stringify(c.expected),
          `manifest ${c.label}: manifestFromSequelize() gives writes and nullable for every column, schema-qualified`,
          `got ${rollguard.manifestJson(manifest)}\nwant ${rollguard.manifestJson(c.expected)}`);
        const everyExplicit = Object.values(manifest.relations).every((cols) =>
          Object.values(cols).every((p) => typeof p.writes === 'boolean' && typeof p.nullable === 'boolean'));
        ok(everyExplicit, `manifest ${c.label}: "writes" and "nullable" written out for every column`);
        // What Sequelize really sends for Model.create().
        for (const [modelName, values, table] of [['Order', c.values, 'public.orders'], ['Tag', { name: 't' }, 'public.tags']]) {
          app.rec.queries = [];
          app.rec.on = true;
          await app.sequelize.models[modelName].create(values);
          app.rec.on = false;
          const insert = app.rec.queries.find((q) => /^INSERT INTO/.test(q));
          const m = /^INSERT INTO "[^"]+" \(([^)]*)\) VALUES \((.*?)\) RETURNING/.exec(insert || '');
          diag(`${c.label}: ${modelName}.create(${JSON.stringify(values)}) sent: ${insert}`);
          if (!ok(m, `manifest ${c.label}: ${modelName}.create() sends one INSERT`, insert)) continue;
          const names = m[1].split(',').map((s) => s.replace(/"/g, ''));
          const vals = m[2].split(',');
          const sent = names.filter((n, i) => vals[i] !== 'DEFAULT').sort();
          const writes = Object.entries(manifest.relations[table]).filter(([, p]) => p.writes).map(([col]) => col).sort();
          ok(JSON.stringify(sent) === JSON.stringify(writes),
            `manifest ${c.label}: the columns ${modelName}.create() sends a value for are the "writes": true ones (${writes.join(', ')})`,
            `sent ${sent.join(', ')}; writes ${writes.join(', ')}`);
        }
      } finally {
        await app.sequelize.close();
      }
    }
    // A second model on one table: written only if both write it.
    const two = sequelizeFor(db);
    try {
      define({})(two.sequelize);
      two.sequelize.define('OrderStatus', {
        status: { type: Sequelize.STRING(20), allowNull: false, defaultValue: 'new' },
        code: { type: Sequelize.STRING(20), allowNull: false },
      }, { tableName: 'orders', timestamps: false });
      const m = await rollguard.manifestFromSequelize(two.sequelize, { exclude: ['Tag'] });
      ok(m.relations['public.orders'].status.writes === false && m.relations['public.orders'].status.nullable === true &&
        m.relations['public.orders'].code.writes === true && !m.relations['public.tags'],
      'manifest: two models on one table: written only where both write it; exclude leaves a model out',
      JSON.stringify(m));
      const strict = await rollguard.manifestFromSequelize(two.sequelize, { trustModelDefaults: false, schema: 'app' });
      ok(strict.relations['app.orders'] && strict.relations['app.orders'].status.writes === false,
        'manifest: {trustModelDefaults: false} counts defaultValue attributes as not written; {schema} names the schema',
        JSON.stringify(strict));
    } finally {
      await two.sequelize.close();
    }
    // omitNull: true leaves an attribute set to NULL out of the INSERT: a
    // defaultValue attribute that allows NULL then relies on the database.
    for (const omitNull of [false, true]) {
      const c = connection(db);
      const q = new Sequelize(c.database, c.user, null, {
        host: c.host, port: c.port, dialect: 'postgres', logging: false, omitNull,
      });
      try {
        q.define('Flag', {
          flag: { type: Sequelize.BOOLEAN, defaultValue: true },
          kind: { type: Sequelize.STRING(10), allowNull: false, defaultValue: 'a' },
        }, { tableName: 'flags', timestamps: false });
        const m = await rollguard.manifestFromSequelize(q, { schema: 'public' });
        const f = m.relations['public.flags'];
        ok(f.flag.writes === !omitNull && f.flag.nullable === true && f.kind.writes === true && f.kind.nullable === false,
          `manifest: omitNull: ${omitNull}: a nullable defaultValue attribute is ${omitNull ? 'not ' : ''}written; an allowNull: false one is`,
          JSON.stringify(f));
      } finally {
        await q.close();
      }
    }
    // The manifest is accepted by the extension as it is.
    await pool.query('CREATE EXTENSION rollguard');
    const rg = rollguard(pool);
    let err = null;
    try {
      await rg.registerVersion('41', expected41);
      await rg.registerVersion('41', expected41);
    } catch (e) {
      err = e;
    }
    ok(!err, 'manifest: rollguard.register_version() takes it (twice: idempotent)', describeError(err));
  } finally {
    await base.sequelize.close();
    await pool.end();
  }
}

// ------------------------------------------------------------ 2. the CLI

function cli(args, env) {
  return new Promise((resolve) => {
    execFile(path.join(__dirname, 'node_modules', '.bin', 'rollguard-node'), args,
      { cwd: __dirname, env: { ...process.env, ...env } },
      (error, stdout, stderr) => resolve({ status: error ? error.code : 0, stdout, stderr }));
  });
}

async function cliScenario(admin) {
  // The package is the extension's: its version and licence.
  const fs = require('fs');
  const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '../../../contrib/node/package.json'), 'utf8'));
  const control = /default_version\s*=\s*'([^']+)'/.exec(fs.readFileSync(path.join(__dirname, '../../../rollguard.control'), 'utf8'));
  ok(control && pkg.version === `${control[1]}.0` && pkg.license === 'PostgreSQL',
    `contrib/node/package.json: version ${pkg.version} is the extension's (${control && control[1]}), licence PostgreSQL`);

  const db = 'seq_cli';
  await admin.query(`CREATE DATABASE ${db}`);
  const pool = new Pool(connection(db));
  const base = sequelizeFor(db);
  try {
    await pool.query('CREATE EXTENSION rollguard');
    await migrator(base.sequelize, null).up();
    const env = { PGDATABASE: db };
    const app = appOf(db, {});
    const want = rollguard.manifestJson(await rollguard.manifestFromSequelize(app.sequelize));
    await app.sequelize.close();
    const m = await cli(['manifest', '--models', 'models/v41.js'], env);
    ok(m.status === 0 && m.stdout.trim() === want, 'cli: rollguard-node manifest --models models/v41.js prints the manifest',
      `status ${m.status}\n${m.stdout}${m.stderr}`);
    const mi = await cli(['manifest', '--models', 'models/index.js'], env);
    ok(mi.status === 0 && mi.stdout.trim() === want, 'cli: --models takes sequelize-cli\'s models/index.js ({sequelize, ...models}) as well',
      `status ${mi.status}\n${mi.stdout}${mi.stderr}`);
    const d = await cli(['deploy', '--deployment', 'mirror-2', '--version', '41', '--models', 'models/v41.js'], env);
    const live = (await pool.query("SELECT version, declared_contract FROM rollguard.deployments WHERE deployment = 'mirror-2'")).rows;
    ok(d.status === 0 && live.length === 1 && live[0].version === '41' && live[0].declared_contract === true,
      'cli: rollguard-node deploy registers 41 with its manifest and records mirror-2 on it',
      `status ${d.status}\n${d.stdout}${d.stderr}\n${JSON.stringify(live)}`);
    const sqlFile = path.join(require('os').tmpdir(), `rollguard-seq-${process.pid}.sql`);
    require('fs').writeFileSync(sqlFile, 'ALTER TABLE "orders" DROP COLUMN "note";\n');
    const c = await cli(['check', sqlFile], env);
    ok(c.status === 1 && /compatibility: drop column public\.orders\.note \(deployment "mirror-2", version "41"\)/.test(c.stdout),
      'cli: rollguard-node check names the blocker and exits 1', `status ${c.status}\n${c.stdout}${c.stderr}`);
    require('fs').unlinkSync(sqlFile);
    // A refused step: mirror-2 is removed, note dropped; version 41 uses it.
    await rollguard(pool).removeDeployment('mirror-2');
    await pool.query('ALTER TABLE orders DROP COLUMN note');
    const r = await cli(['deploy', '--deployment', 'mirror-3', '--version', '41'], env);
    ok(r.status === 1 && /^ERROR: {2}.*\n(DETAIL|HINT): {2}/m.test(r.stderr),
      'cli: a refused deploy step prints the server\'s message with DETAIL or HINT and exits 1',
      `status ${r.status}\n${r.stdout}${r.stderr}`);
    const g2 = await cli(['register', '--version', '43'], env);
    const v43 = (await pool.query("SELECT contract FROM rollguard.versions WHERE version = '43'")).rows;
    ok(g2.status === 0 && /inferred contract/.test(g2.stdout) && v43.length === 1 && v43[0].contract === 'inferred',
      'cli: register without a manifest registers 43 with an inferred contract', `status ${g2.status}\n${g2.stdout}${g2.stderr}\n${JSON.stringify(v43)}`);
    const st = await cli(['status'], env);
    ok(st.status === 0 && /^0 deployments live:$/m.test(st.stdout) && /refused/.test(st.stdout),
      'cli: rollguard-node status prints rollguard.status() (no deployment live: mirror-2 removed, mirror-3 refused)', `status ${st.status}\n${st.stdout}${st.stderr}`);
    const u = await cli(['deploy', '--version', '41'], env);
    ok(u.status === 2 && /--deployment is required/.test(u.stderr), 'cli: bad usage exits 2', `status ${u.status}\n${u.stderr}`);
  } finally {
    await base.sequelize.close();
    await pool.end();
  }
}

// ---------------------------------------------------- 3. the mirror scenario

// A database with orders and tags (by the base migration, before any
// deployment), rows inserted by version 41's code, every deployment on 41.
async function setUp(admin, db) {
  await admin.query(`CREATE DATABASE ${db}`);
  const pool = new Pool({ ...connection(db), max: 2 });
  await pool.query('CREATE EXTENSION rollguard');
  const original = sequelizeFor(db);
  await migrator(original.sequelize, null).up();
  const app41 = appOf(db, {});
  await app41.sequelize.models.Order.create({ code: 'A-1', note: 'fragile' });
  await app41.sequelize.models.Order.create({ code: 'A-2', note: 'ring twice' });
  await app41.sequelize.models.Tag.create({ name: 'urgent' });
  const manifest41 = await rollguard.manifestFromSequelize(app41.sequelize);
  await app41.sequelize.close();
  const rg = rollguard(pool);
  for (const d of DEPLOYMENTS) await rg.deploy(d, '41', manifest41);
  return { pool, rg, original };
}

const REFUSED = [
  {
    name: "removeColumn('orders', 'note')",
    db: 'seq_remove_note',
    dir: 'remove_note',
    outside: true,
    variant: { note: 'gone' },
    after: (s) => s.orders && !('note' in s.orders),
    afterText: 'orders.note is gone',
  },
  {
    name: "renameColumn('orders', 'note', 'remark')",
    db: 'seq_rename_note',
    dir: 'rename_note',
    outside: true,
    variant: { note: 'gone' },
    after: (s) => s.orders && !('note' in s.orders) && s.orders.remark === 'character varying(20)',
    afterText: 'orders.note is now remark',
  },
  {
    name: "changeColumn('orders', 'note', {allowNull: false})",
    db: 'seq_note_not_null',
    dir: 'note_not_null',
    inside: 'SET NOT NULL; DROP DEFAULT; TYPE sent as one query string (an implicit transaction block)',
    variant: { note: 'required' },
    after: (s) => s.orders && s.orders.note === 'character varying(20) NOT NULL',
    afterText: 'orders.note is NOT NULL',
  },
  {
    name: "changeColumn('orders', 'status', ...) without its defaultValue",
    db: 'seq_status_drop_default',
    dir: 'status_drop_default',
    inside: 'SET NOT NULL; DROP DEFAULT; TYPE sent as one query string (an implicit transaction block)',
    variant: { statusDefault: true },
    after: (s) => s.orders && s.orders.status === 'character varying(20) NOT NULL',
    afterText: 'orders.status has no default',
  },
  {
    name: "dropTable('tags')",
    db: 'seq_drop_tags',
    dir: 'drop_tags',
    outside: true,
    variant: { tags: false },
    after: (s) => !s.tags,
    afterText: 'tags is gone',
  },
  {
    name: "renameTable('tags', 'labels')",
    db: 'seq_rename_tags',
    dir: 'rename_tags',
    outside: true,
    variant: { tags: false },
    after: (s) => !s.tags && s.labels,
    afterText: 'tags is now labels',
  },
  {
    name: 'addColumn + removeColumn in sequelize.transaction()',
    db: 'seq_note_to_remark_tx',
    dir: 'note_to_remark_tx',
    inside: 'one transaction',
    refusedState: (s) => s.orders && !('remark' in s.orders) && s.orders.note === 'character varying(20)',
    refusedText: 'atomic: addColumn rolled back with it, no orders.remark, orders.note kept',
    variant: { note: 'gone' },
    after: (s) => s.orders && !('note' in s.orders) && s.orders.remark === 'character varying(20)',
    afterText: 'orders.note is gone, remark added',
  },
];

async function refused(admin, s) {
  const { pool, rg, original } = await setUp(admin, s.db);
  const name = fileOf(s.dir);
  try {
    const before = await snapshot(pool);
    const app42 = appOf(s.db, s.variant);
    const manifest42 = await rollguard.manifestFromSequelize(app42.sequelize);
    await app42.sequelize.close();
    // Step 0 of the original's release 42: say what the build uses.
    await rg.registerVersion('42', manifest42);

    let lastFailed = null;
    const blocked = async (label, blockers) => {
      const r = await migrate(original, s.dir, label);
      const e = pgError(r.error);
      ok(e && e.code === '55006', `${s.name}: refused with SQLSTATE 55006 (${label})`, describeError(r.error));
      const text = e ? `${e.message}\n${e.detail || ''}` : '';
      const others = DEPLOYMENTS.filter((d) => !blockers.includes(d));
      ok(e && blockers.every((d) => text.includes(`"${d}"`)) && others.every((d) => !text.includes(`"${d}"`)),
        `${s.name}: the error names ${blockers.join(', ')}${others.length ? ', not ' + others.join(', ') : ''} (${label})`,
        describeError(r.error));
      if (s.outside) {
        ok(saysOutside(e), `${s.name}: the refusal says the statement ran outside a transaction block, and how to run it in one (${label})`,
          describeError(r.error));
      } else {
        ok(e && !mentionsOutside(e), `${s.name}: ${s.inside}: the refusal does not speak of a statement outside a transaction block (${label})`,
          describeError(r.error));
      }
      const after = await snapshot(pool);
      ok(after === before, `${s.name}: schema and rows unchanged (${label})`, `before ${before}\nafter ${after}`);
      if (s.refusedState) {
        const schema = await describe(pool);
        ok(s.refusedState(schema), `${s.name}: ${s.refusedText} (${label})`, JSON.stringify(schema.orders));
      }
      const names = await recorded(pool);
      ok(!names.includes(name), `${s.name}: SequelizeMeta does not record ${name} (${label})`, `SequelizeMeta: ${names.join(', ')}`);
      lastFailed = r.failed;
      return r;
    };

    // Every deployment runs 41; the original migrates first.
    await blocked('original, mirror-2 and mirror-3 run 41', DEPLOYMENTS);

    // The original rolls 42 out: while its 41 instances still serve, 41 is
    // still live there.
    await rg.beginRollout('original', '42');
    await blocked('original rolling out 42, mirrors on 41', DEPLOYMENTS);
    await rg.finishRollout('original', '42');
    await rg.deploy('mirror-2', '42');
    await rg.beginRollout('mirror-3', '42');
    await rg.abortRollout('mirror-3', '42');
    await blocked('original and mirror-2 run 42, mirror-3 aborted its rollout and runs 41', ['mirror-3']);

    // The dry run of the refused statement says the same.
    const rows = await rg.check(lastFailed || '');
    const compat = rows.filter((r) => r.family === 'compatibility');
    ok(compat.length > 0 && compat.every((r) => r.deployment === 'mirror-3' && r.version === '41'),
      `${s.name}: rg.check() of the refused statement: blockers on mirror-3 (41) only`,
      `${lastFailed}\n${JSON.stringify(rows, null, 1)}`);

    await rg.deploy('mirror-3', '42');
    const clear = await rg.check(lastFailed || '', { family: 'compatibility' });
    ok(clear.length === 0, `${s.name}: rg.check() finds no blocker once every deployment runs 42`, JSON.stringify(clear));
    const r = await migrate(original, s.dir, 'every deployment runs 42');
    ok(!r.error, `${s.name}: goes through once original, mirror-2 and mirror-3 run 42`, describeError(r.error));
    const schema = await describe(pool);
    ok(s.after(schema), `${s.name}: ${s.afterText}`, JSON.stringify(schema));
    const names = await recorded(pool);
    ok(names.includes(name), `${s.name}: SequelizeMeta records ${name}`, `SequelizeMeta: ${names.join(', ')}`);
    // The mirrors' release commands run the same migrations: nothing pending.
    for (const m of MIRRORS) {
      const mirror = sequelizeFor(s.db);
      try {
        const pending = await migrator(mirror.sequelize, s.dir).pending();
        ok(pending.length === 0, `${s.name}: ${m} finds the migration applied`, JSON.stringify(pending.map((p) => p.name)));
      } finally {
        await mirror.sequelize.close();
      }
    }
  } finally {
    await original.sequelize.close();
    await pool.end();
  }
}

function fileOf(dir) {
  return require('fs').readdirSync(path.join(MIGRATIONS, dir)).find((f) => f.endsWith('.js'));
}

// ---------------------------------------------- 3b. a tagged connection

// Every deployment's deploy step says 42, but a container of mirror-3 still
// runs 41 and is connected, tagged with rollguard.connectionTags() in
// Sequelize's dialectOptions: the drop is refused on its account until it
// disconnects.
async function tagged(admin, s) {
  const { pool, rg, original } = await setUp(admin, s.db);
  try {
    const app42 = appOf(s.db, { note: 'gone' });
    const manifest42 = await rollguard.manifestFromSequelize(app42.sequelize);
    await app42.sequelize.close();
    for (const d of DEPLOYMENTS) await rg.deploy(d, '42', manifest42);
    const tags = rollguard.connectionTags({ env: { SITE_ID: '3', VERSION: '41' } });
    ok(tags.options === '-c rollguard.deployment=mirror-3 -c rollguard.version=41',
      `${s.name}: connectionTags() from SITE_ID and VERSION: ${JSON.stringify(tags)}`);
    const c = connection(s.db);
    const old = new Sequelize(c.database, c.user, null, {
      host: c.host, port: c.port, dialect: 'postgres', logging: false, dialectOptions: tags,
    });
    define({})(old);
    try {
      await old.models.Order.findAll();
      const sessions = (await pool.query('SELECT deployment, version, trusted FROM rollguard.sessions')).rows;
      ok(sessions.length >= 1 && sessions.every((x) => x.deployment === 'mirror-3' && x.version === '41' && x.trusted),
        `${s.name}: rollguard.sessions lists the old container's connection (mirror-3, 41, trusted)`, JSON.stringify(sessions));
      const r = await migrate(original, 'remove_note', 'every deploy step says 42, a mirror-3 container on 41 connected');
      const e = pgError(r.error);
      ok(e && e.code === '55006' && /"mirror-3"/.test(`${e.message}\n${e.detail}`) && !/"original"|"mirror-2"/.test(`${e.message}\n${e.detail}`),
        `${s.name}: removeColumn refused on account of the connected mirror-3 session only`, describeError(r.error));
    } finally {
      await old.close();
    }
    // pg's backend ends a moment after the client closes.
    for (let i = 0; i < 50; i++) {
      if (!(await pool.query('SELECT 1 FROM rollguard.sessions')).rows.length) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    const r = await migrate(original, 'remove_note', 'the old container disconnected');
    ok(!r.error, `${s.name}: removeColumn goes through once it disconnected`, describeError(r.error));
  } finally {
    await original.sequelize.close();
    await pool.end();
  }
}

// ------------------------------------- 4. outside a transaction: half applied

async function halfApplied(admin, s) {
  const { pool, rg, original } = await setUp(admin, s.db);
  const name = fileOf(s.dir);
  try {
    const before = await describe(pool);
    const r = await migrate(original, s.dir, 'every deployment runs 41');
    const e = pgError(r.error);
    ok(e && e.code === '55006' && /DROP COLUMN "note"/.test(r.failed || ''),
      `${s.name}: removeColumn refused with SQLSTATE 55006`, `${r.failed}\n${describeError(r.error)}`);
    const text = e ? `${e.message}\n${e.detail || ''}` : '';
    ok(e && DEPLOYMENTS.every((d) => text.includes(`"${d}"`)), `${s.name}: the error names ${DEPLOYMENTS.join(', ')}`,
      describeError(r.error));
    ok(saysOutside(e), `${s.name}: the refusal says the statement ran outside a transaction block, what ran before it stays applied, and how to run it in one`,
      describeError(r.error));
    const after = await describe(pool);
    ok(after.orders.remark === 'character varying(20)' && !before.orders.remark,
      `${s.name}: addColumn was applied and stays: orders.remark exists (half applied)`, JSON.stringify(after.orders));
    ok(after.orders.note === before.orders.note, `${s.name}: orders.note is still there`, JSON.stringify(after.orders));
    const names = await recorded(pool);
    ok(!names.includes(name), `${s.name}: SequelizeMeta does not record ${name}`, `SequelizeMeta: ${names.join(', ')}`);
    // Running it again, even once every deployment runs 42, stops at the
    // first statement: the migration is not idempotent.
    const app42 = appOf(s.db, s.variant);
    const manifest42 = await rollguard.manifestFromSequelize(app42.sequelize);
    await app42.sequelize.close();
    for (const d of DEPLOYMENTS) await rg.deploy(d, '42', manifest42);
    const again = await migrate(original, s.dir, 'again, every deployment runs 42');
    const e2 = pgError(again.error);
    ok(e2 && e2.code === '42701' && /ADD COLUMN "remark"/.test(again.failed || ''),
      `${s.name}: running it again fails on addColumn (SQLSTATE 42701, column "remark" already exists)`,
      `${again.failed}\n${describeError(again.error)}`);
    ok(!(await recorded(pool)).includes(name), `${s.name}: still not recorded in SequelizeMeta`);
  } finally {
    await original.sequelize.close();
    await pool.end();
  }
}

const HALF = [
  {
    name: 'addColumn + removeColumn outside a transaction (umzug default)',
    db: 'seq_note_to_remark',
    dir: 'note_to_remark',
    variant: { note: 'gone' },
  },
];

async function main() {
  const only = process.argv.slice(2);
  const all = [
    [manifestScenario, [{ name: 'manifest from the models', db: 'seq_manifest' }]],
    [cliScenario, [{ name: 'rollguard-node CLI', db: 'seq_cli' }]],
    [refused, REFUSED],
    [tagged, [{ name: 'a tagged connection of an old container', db: 'seq_tagged' }]],
    [halfApplied, HALF],
  ];
  const wanted = (s) => !only.length || only.some((o) => s.name.includes(o) || s.db.includes(o));
  const admin = new Pool(connection('postgres'));
  const started = Date.now();
  try {
    for (const [run, list] of all) {
      for (const s of list.filter(wanted)) {
        diag(`scenario ${s.name} (database ${s.db})`);
        const t0 = Date.now();
        try {
          await (run === manifestScenario || run === cliScenario ? run(admin) : run(admin, s));
        } catch (e) {
          ok(false, `${s.name}: unexpected error`, `${describeError(e)}\n${e && e.stack ? e.stack : ''}`);
        }
        diag(`(${((Date.now() - t0) / 1000).toFixed(1)} s)`);
      }
    }
  } finally {
    await admin.end();
  }
  console.log(`# ${tests} tests, ${failures} failed (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  process.exitCode = failures || !tests ? 1 : 0;
}

main().catch((e) => {
  console.log('not ok - ' + (e && e.stack ? e.stack.split('\n').join('\n# ') : String(e)));
  process.exitCode = 1;
});
