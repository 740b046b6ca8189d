#!/usr/bin/env node
'use strict';
// rollguard-node: the deploy steps of a Node application, from a shell.
//
//   rollguard-node manifest --models ./models                # print the manifest
//   rollguard-node register --version 42 --models ./models   # before migrating
//   rollguard-node deploy --deployment mirror-2 --version 42 --models ./models
//   rollguard-node deploy --deployment web --version 43 --rollout begin|finish|abort
//   rollguard-node check migration.sql                       # the dry run ("-": stdin)
//   rollguard-node status
//
// --models names a module that exports a Sequelize instance with its models
// defined, an object with one as .sequelize (sequelize-cli's models/index.js),
// or a function (sequelize) => {...} that defines them on a Sequelize
// instance made from DATABASE_URL (or the PG* variables).  --manifest FILE
// reads a manifest written by hand instead.  The connection: DATABASE_URL, or
// libpq's PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD.  pg (and
// sequelize) are taken from the application's node_modules.
// ROLLGUARD_KEY, when set, is presented with rollguard.use_key() first.
//
// Exit status: 0; 1 when the server refuses a step (its message, DETAIL and
// HINT are printed) or check finds a compatibility blocker; 2 on bad usage.

const fs = require('fs');
const path = require('path');
const rollguard = require('..');

const USAGE = `usage: rollguard-node manifest --models PATH [--schema S] [--no-trust-model-defaults]
       rollguard-node register --version V [--models PATH | --manifest FILE]
       rollguard-node deploy --deployment D --version V [--models PATH | --manifest FILE] [--rollout begin|finish|abort]
       rollguard-node check FILE|-
       rollguard-node status`;

class UsageError extends Error {}

function parse(argv) {
  const [command, ...rest] = argv;
  const opts = { _: [] };
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    if (a === '--no-trust-model-defaults') opts.trustModelDefaults = false;
    else if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
      if (!['models', 'manifest', 'schema', 'version', 'deployment', 'rollout'].includes(name)) {
        throw new UsageError(`unknown option ${a}`);
      }
      const value = eq > 0 ? a.slice(eq + 1) : rest[++i];
      if (value === undefined) throw new UsageError(`${a} needs a value`);
      opts[name] = value;
    } else opts._.push(a);
  }
  return { command, opts };
}

// A module of the application's (pg, sequelize): from the working directory
// first, then from wherever this package is installed.
function appRequire(name) {
  return require(require.resolve(name, { paths: [process.cwd(), __dirname] }));
}

function connectionConfig() {
  return process.env.DATABASE_URL ? { connectionString: process.env.DATABASE_URL } : {};
}

async function loadSequelize(modelsPath) {
  const mod = require(path.resolve(modelsPath));
  if (mod && typeof mod.getDialect === 'function') return { sequelize: mod, own: false };
  if (mod && mod.sequelize && typeof mod.sequelize.getDialect === 'function') return { sequelize: mod.sequelize, own: false };
  const define = typeof mod === 'function' ? mod : mod && typeof mod.default === 'function' ? mod.default : null;
  if (!define) {
    throw new UsageError(`${modelsPath} exports neither a Sequelize instance, nor {sequelize}, nor a function (sequelize) => {...}`);
  }
  const { Sequelize } = appRequire('sequelize');
  const options = { dialect: 'postgres', logging: false };
  const sequelize = process.env.DATABASE_URL
    ? new Sequelize(process.env.DATABASE_URL, options)
    : new Sequelize(process.env.PGDATABASE || process.env.PGUSER || process.env.USER, process.env.PGUSER || process.env.USER,
      process.env.PGPASSWORD || null, { ...options, host: process.env.PGHOST || 'localhost', port: Number(process.env.PGPORT || 5432) });
  await define(sequelize);
  return { sequelize, own: true };
}

async function manifestOf(opts, required) {
  if (opts.models && opts.manifest) throw new UsageError('give --models or --manifest, not both');
  if (opts.manifest) return JSON.parse(fs.readFileSync(opts.manifest === '-' ? 0 : opts.manifest, 'utf8'));
  if (!opts.models) {
    if (required) throw new UsageError('--models PATH (or --manifest FILE) is required');
    return undefined;
  }
  const { sequelize } = await loadSequelize(opts.models);
  try {
    const options = {};
    if (opts.schema !== undefined) options.schema = opts.schema;
    if (opts.trustModelDefaults === false) options.trustModelDefaults = false;
    return await rollguard.manifestFromSequelize(sequelize, options);
  } finally {
    await sequelize.close();
  }
}

async function withPool(fn) {
  const { Pool } = appRequire('pg');
  const pool = new Pool({ ...connectionConfig(), max: 1 });
  try {
    return await fn(rollguard(pool));
  } finally {
    await pool.end();
  }
}

function need(opts, name) {
  if (!opts[name]) throw new UsageError(`--${name} is required`);
  return opts[name];
}

async function main(argv) {
  const { command, opts } = parse(argv);
  switch (command) {
    case 'manifest': {
      const manifest = await manifestOf(opts, true);
      process.stdout.write(rollguard.manifestJson(manifest) + '\n');
      return 0;
    }
    case 'register': {
      const version = need(opts, 'version');
      const manifest = await manifestOf(opts, false);
      await withPool((rg) => rg.registerVersion(version, manifest));
      console.log(`registered version "${version}"${manifest ? ` (${rollguard.countColumns(manifest)} columns)` : ' (inferred contract)'}`);
      return 0;
    }
    case 'deploy': {
      const deployment = need(opts, 'deployment');
      const version = need(opts, 'version');
      const rollout = opts.rollout;
      if (rollout && !['begin', 'finish', 'abort'].includes(rollout)) throw new UsageError('--rollout is begin, finish or abort');
      const manifest = rollout === 'finish' || rollout === 'abort' ? undefined : await manifestOf(opts, false);
      await withPool((rg) => {
        if (rollout === 'begin') return rg.beginRollout(deployment, version, manifest);
        if (rollout === 'finish') return rg.finishRollout(deployment, version);
        if (rollout === 'abort') return rg.abortRollout(deployment, version);
        return rg.deploy(deployment, version, manifest);
      });
      const what = rollout ? `${rollout} rollout of` : 'runs';
      console.log(`deployment "${deployment}" ${what} version "${version}"`);
      return 0;
    }
    case 'check': {
      if (opts._.length !== 1) throw new UsageError('check takes one file of SQL ("-": standard input)');
      const sql = fs.readFileSync(opts._[0] === '-' ? 0 : opts._[0], 'utf8');
      const rows = await withPool((rg) => rg.check(sql));
      for (const r of rows) {
        const col = r.column ? `.${r.column}` : '';
        const who = r.deployment ? ` (deployment "${r.deployment}", version "${r.version}")` : '';
        console.log(`${r.family}: ${r.change} ${r.relation}${col}${who}: ${r.reason}`);
      }
      const blockers = rows.filter((r) => r.family === 'compatibility').length;
      console.log(`${blockers} blocker${blockers === 1 ? '' : 's'}, ${rows.length - blockers} downtime finding${rows.length - blockers === 1 ? '' : 's'}`);
      return blockers ? 1 : 0;
    }
    case 'status': {
      const lines = await withPool((rg) => rg.status());
      for (const l of lines) console.log(l);
      return 0;
    }
    default:
      throw new UsageError(command ? `unknown command ${command}` : 'no command');
  }
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err) => {
    if (err instanceof UsageError) {
      console.error(`rollguard-node: ${err.message}\n${USAGE}`);
      process.exitCode = 2;
    } else if (err && (err.code || (err.parent && err.parent.code))) {
      console.error(rollguard.describeError(err));
      process.exitCode = 1;
    } else {
      console.error(`rollguard-node: ${err && err.stack ? err.stack : err}`);
      process.exitCode = 1;
    }
  },
);
