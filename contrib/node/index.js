'use strict';
// rollguard for Node: deploy steps over a pg client or pool, and the
// manifest of a code version derived from its Sequelize models.
//
//     const rollguard = require('rollguard');
//     const rg = rollguard(pool);                      // a pg Pool or Client
//     const manifest = await rollguard.manifestFromSequelize(sequelize);
//     await rg.registerVersion('42', manifest);        // before the migration
//     await rg.deploy('mirror-2', '42', manifest);     // after it
//
// See README.md here and doc/api.md of the extension for the manifest and
// the SQL functions each step calls.  Nothing here needs a driver of its
// own: the client is anything with pg's query(text, values) -> {rows}.

const { manifestFromSequelize, manifestJson, countColumns } = require('./sequelize');

const STEPS = {
  deploy: 'rollguard.deploy',
  begin: 'rollguard.begin_rollout',
  finish: 'rollguard.finish_rollout',
  abort: 'rollguard.abort_rollout',
};

function requireText(what, value) {
  if (typeof value !== 'string' || value === '') {
    throw new TypeError(`rollguard: ${what} must be a non-empty string, not ${value === '' ? 'an empty string' : typeof value}`);
  }
}

function manifestText(manifest) {
  if (manifest === undefined || manifest === null) return null;
  if (typeof manifest === 'string') return manifest;
  if (typeof manifest !== 'object' || Array.isArray(manifest)) {
    throw new TypeError('rollguard: a manifest is an object {"relations": {...}} or its JSON text');
  }
  return JSON.stringify(manifest);
}

// Runs fn(client) in one transaction: on a Pool, on a client of its own
// (released afterwards); on a Client, on it.  The transaction is rolled back
// when fn throws, and the error is thrown again as it came.
async function inTransaction(db, fn) {
  const pooled = typeof db.connect === 'function' && typeof db.totalCount === 'number';
  const client = pooled ? await db.connect() : db;
  try {
    await client.query('BEGIN');
    let result;
    try {
      result = await fn(client);
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    }
    await client.query('COMMIT');
    return result;
  } finally {
    if (pooled) client.release();
  }
}

// The deploy steps of one database.  `db` is a pg Pool or Client (or any
// object with query(text, values) returning {rows}); `options.key` (default:
// the environment's ROLLGUARD_KEY) is presented with rollguard.use_key()
// before a step, in the step's transaction, for deployments bound to a key.
function rollguard(db, options = {}) {
  if (!db || typeof db.query !== 'function') {
    throw new TypeError('rollguard: give it a pg Pool or Client (an object with query())');
  }
  const key = options.key !== undefined ? options.key : process.env.ROLLGUARD_KEY || null;

  async function useKey(client, deployment) {
    if (key) await client.query('SELECT rollguard.use_key($1, $2)', [deployment, key]);
  }

  // register_version (when a manifest is given) and the step, in one
  // transaction: a refused step registers nothing.  Without a manifest,
  // deploy and begin_rollout register an unknown version themselves, with
  // an inferred contract.
  async function step(kind, deployment, version, manifest) {
    requireText('the deployment', deployment);
    requireText('the version', version);
    const text = manifestText(manifest);
    return inTransaction(db, async (client) => {
      await useKey(client, deployment);
      if (text !== null) {
        await client.query('SELECT rollguard.register_version($1, $2::jsonb)', [version, text]);
      }
      await client.query(`SELECT ${STEPS[kind]}($1, $2)`, [deployment, version]);
    });
  }

  return {
    db,
    // rollguard.register_version(version, manifest): what this build uses
    // (no manifest: an inferred contract, taken when it first goes live).
    async registerVersion(version, manifest) {
      requireText('the version', version);
      await db.query('SELECT rollguard.register_version($1, $2::jsonb)', [version, manifestText(manifest)]);
    },
    // The deployment now runs exactly this version (registered first, with
    // the manifest when one is given).
    deploy: (deployment, version, manifest) => step('deploy', deployment, version, manifest),
    // The deployment starts running `version` beside its current one.
    beginRollout: (deployment, version, manifest) => step('begin', deployment, version, manifest),
    // Only `version` remains.
    finishRollout: (deployment, version) => step('finish', deployment, version),
    // `version` is gone again.
    abortRollout: (deployment, version) => step('abort', deployment, version),
    async removeDeployment(deployment) {
      requireText('the deployment', deployment);
      return inTransaction(db, async (client) => {
        await useKey(client, deployment);
        await client.query('SELECT rollguard.remove_deployment($1)', [deployment]);
      });
    },
    // rollguard.check(sql): the dry run; one row per blocker (statement,
    // change, relation, column, deployment, version, reason, family).
    // Executes nothing.  options.family: 'compatibility' or 'downtime' only.
    async check(sql, checkOptions = {}) {
      requireText('the SQL to check', sql);
      const { rows } = await db.query('SELECT * FROM rollguard.check($1)', [sql]);
      return checkOptions.family ? rows.filter((r) => r.family === checkOptions.family) : rows;
    },
    async isActive() {
      const { rows } = await db.query('SELECT rollguard.is_active() AS active');
      return rows[0].active === true;
    },
    // rollguard.status(): one line of text per row.
    async status() {
      const { rows } = await db.query('SELECT * FROM rollguard.status()');
      return rows.map((r) => Object.values(r)[0]);
    },
  };
}

// ------------------------------------------------------- connection tags
//
// Tags a connection with the deployment and version its code runs: while
// it is connected, rollguard counts that version as live for that
// deployment (doc/sessions-and-observed.md, "Live sessions").  Spread the
// result into pg's config or Sequelize's dialectOptions:
//
//     new Pool({ ...rollguard.connectionTags() })
//     new Sequelize(url, { dialect: 'postgres', dialectOptions: rollguard.connectionTags() })
//
// deployment: $DEPLOYMENT, else "mirror-$SITE_ID"; version: $VERSION.
// Without both, {} (nothing tagged: a developer's machine), unless
// required.  form 'options' (the default): {options: "-c
// rollguard.deployment=... -c rollguard.version=..."}; form
// 'application_name': {application_name: "rollguard:DEPLOYMENT@VERSION"}
// (passes PgBouncer in transaction mode; at most 63 bytes of ASCII).
// observe: false (or ROLLGUARD_OBSERVE=off) adds -c rollguard.observe=off.

const MAX_LABEL = 200;
const MAX_APPLICATION_NAME = 63;

function checkLabel(what, value) {
  if (typeof value !== 'string' || value === '') throw new TypeError(`rollguard: the ${what} must be a non-empty string`);
  if (Buffer.byteLength(value) > MAX_LABEL) throw new RangeError(`rollguard: the ${what} "${value}" is longer than ${MAX_LABEL} bytes`);
  if (value !== value.trim()) throw new RangeError(`rollguard: the ${what} "${value}" has leading or trailing white space`);
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(value)) throw new RangeError(`rollguard: the ${what} ${JSON.stringify(value)} has control characters`);
  return value;
}

// One word of libpq's options string: space and backslash escaped.
function optionWord(text) {
  return text.replace(/\\/g, '\\\\').replace(/ /g, '\\ ');
}

function connectionTags(options = {}) {
  const env = options.env || process.env;
  const deployment = options.deployment || env.DEPLOYMENT || (env.SITE_ID ? `mirror-${env.SITE_ID}` : null);
  const version = options.version || env.VERSION || null;
  if (!deployment || !version) {
    if (options.required) {
      throw new Error('rollguard: cannot tag the connections: set DEPLOYMENT (or SITE_ID) and VERSION in the environment');
    }
    return {};
  }
  checkLabel('deployment name', deployment);
  checkLabel('version label', version);
  const observe = options.observe !== undefined
    ? options.observe
    : !['off', 'false', '0', 'no'].includes(String(env.ROLLGUARD_OBSERVE || 'on').toLowerCase());
  const form = options.form || 'options';
  const noObserve = observe ? [] : ['-c', 'rollguard.observe=off'];
  if (form === 'options') {
    const words = ['-c', optionWord(`rollguard.deployment=${deployment}`), '-c', optionWord(`rollguard.version=${version}`), ...noObserve];
    return { options: words.join(' ') };
  }
  if (form !== 'application_name') throw new TypeError(`rollguard: form is "options" or "application_name", not ${JSON.stringify(form)}`);
  const name = `rollguard:${deployment}@${version}`;
  if (!/^[\x20-\x7e]*$/.test(name)) throw new RangeError(`rollguard: application_name "${name}" is not printable ASCII (use form "options")`);
  if (name.length > MAX_APPLICATION_NAME) {
    throw new RangeError(`rollguard: application_name "${name}" is longer than ${MAX_APPLICATION_NAME} bytes (use shorter labels, or form "options")`);
  }
  return noObserve.length ? { application_name: name, options: noObserve.join(' ') } : { application_name: name };
}

// The server's error as the lines psql prints (message, DETAIL, HINT).
function describeError(err) {
  if (!err) return '';
  const e = err.parent || err.original || err;
  const lines = [`${e.severity || 'ERROR'}:  ${e.message}`];
  if (e.detail) lines.push(`DETAIL:  ${e.detail}`);
  if (e.hint) lines.push(`HINT:  ${e.hint}`);
  return lines.join('\n');
}

module.exports = rollguard;
module.exports.rollguard = rollguard;
module.exports.inTransaction = inTransaction;
module.exports.describeError = describeError;
module.exports.connectionTags = connectionTags;
module.exports.manifestFromSequelize = manifestFromSequelize;
module.exports.manifestJson = manifestJson;
module.exports.countColumns = countColumns;
