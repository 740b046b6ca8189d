'use strict';
// The manifest of a code version from its Sequelize (6) models.
//
// rollguard's manifest lists, per relation, the columns the code uses and,
// for each, whether the code supplies it on every INSERT ("writes") and
// whether it may write NULL to it ("nullable"); both are always written out.
// "writes" follows what Sequelize 6 really sends (test/clients/sequelize
// checks it against the INSERTs of Model.create()):
//
//   - Model.create(), build().save(), bulkCreate(), upsert(), findOrCreate()
//     and the association helpers name every attribute the code set, and
//     every attribute with a defaultValue (a value, a function, NOW, UUIDV4:
//     computed in Node; a Sequelize.literal()/fn(): sent as SQL): written.
//   - An attribute that is unset and has no defaultValue is left out of the
//     INSERT: the database default (or NULL) fills it.  Not written, unless
//     allowNull: false, which create() and save() validate before sending
//     (notNull Violation): the code must set it, so it is written.
//   - An autoIncrement attribute (the implicit "id") is sent as DEFAULT: the
//     database fills it.  Not written, never NULL.
//   - createdAt/updatedAt and the optimistic-locking version are always
//     sent, never NULL.  The paranoid deletedAt is left out on create and set
//     to NULL by restore(): not written, nullable.
//   - VIRTUAL attributes have no column.
//   - With Sequelize's omitNull option, an attribute set to NULL is left out
//     of the INSERT: a defaultValue attribute that allows NULL is then not
//     written.
//
// Where that is not certain the generator errs on the refusing side ("writes"
// false keeps DROP DEFAULT and SET NOT NULL refused; "nullable" true keeps
// SET NOT NULL refused):
//   - two models on one table: written only if both write it, nullable if
//     either may write NULL;
//   - code that saves with options.fields (or inserts with queryInterface):
//     such an INSERT leaves out defaultValue attributes too.  Pass
//     {trustModelDefaults: false} and they count as not written.
//   - "nullable" is false only for allowNull: false (and primary keys,
//     autoIncrement, timestamps, version), and "writes" true for allowNull:
//     false without a defaultValue.  bulkCreate() does not validate unless
//     {validate: true}: it sends NULL for such an attribute set to null, and
//     leaves it out when no row sets it (the database default fills it).
//     Code that relies on that is not covered: counting these attributes as
//     not written would make every deploy of a version with a NOT NULL
//     column without a database default fail the forward check.

function isVirtual(attr) {
  const type = attr.type;
  if (!type) return false;
  const key = type.key || (type.constructor && type.constructor.key);
  return key === 'VIRTUAL';
}

function hasDefault(attr) {
  return Object.prototype.hasOwnProperty.call(attr, 'defaultValue') && attr.defaultValue !== undefined;
}

// {writes, nullable} of one attribute of one model (see above).
function attributeUse(model, name, attr, options) {
  const ts = model._timestampAttributes || {};
  if (attr.autoIncrement) return { writes: false, nullable: false };
  if (name === ts.createdAt || name === ts.updatedAt) return { writes: true, nullable: false };
  if (name === model._versionAttribute) return { writes: true, nullable: false };
  if (name === ts.deletedAt) return { writes: false, nullable: true };
  const notNull = attr.allowNull === false || attr.primaryKey === true;
  if (hasDefault(attr)) {
    // Sent on every create (a NULL default as NULL); the code may also set
    // NULL itself unless allowNull: false -- and with Sequelize's omitNull
    // option a NULL is left out of the INSERT, to the database default.
    const omitted = options.trustModelDefaults === false || (options.omitNull && !notNull);
    return { writes: !omitted, nullable: !notNull };
  }
  if (notNull) return { writes: true, nullable: false };
  return { writes: false, nullable: true };
}

// (schema or null, table) of a model.
function modelTable(model) {
  const t = model.getTableName();
  if (typeof t === 'string') return [null, t];
  return [t.schema || null, t.tableName];
}

// {column: {writes, nullable}} of one model's table.
function modelColumns(model, options = {}) {
  const columns = {};
  const attrs = model.getAttributes ? model.getAttributes() : model.rawAttributes;
  for (const [name, attr] of Object.entries(attrs)) {
    if (isVirtual(attr)) continue;
    const column = attr.field || name;
    const use = attributeUse(model, name, attr, options);
    columns[column] = merge(columns[column], use);
  }
  return columns;
}

function merge(old, use) {
  if (!old) return { writes: use.writes, nullable: use.nullable };
  return { writes: old.writes && use.writes, nullable: old.nullable || use.nullable };
}

// The schema of each table named without one, resolved as PostgreSQL
// resolves it at run time: an existing relation's schema on the search_path,
// else current_schema().
async function resolveSchemas(sequelize, names) {
  const [rows] = await sequelize.query(
    `SELECT t.name,
            COALESCE((SELECT n.nspname
                        FROM pg_catalog.pg_class c
                        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                       WHERE c.oid = pg_catalog.to_regclass(pg_catalog.quote_ident(t.name))),
                     pg_catalog.current_schema()) AS schema
       FROM pg_catalog.unnest($1::text[]) AS t(name)`,
    { bind: [names], raw: true },
  );
  const out = {};
  for (const r of rows) {
    if (r.schema === null) {
      throw new Error(`rollguard: cannot tell the schema of table "${r.name}": the search_path names no existing schema (pass {schema: ...})`);
    }
    out[r.name] = r.schema;
  }
  return out;
}

// The manifest ({"relations": {"schema.table": {column: {writes, nullable}}}})
// of every model defined on `sequelize` (through tables of belongsToMany
// included).  options.schema: the schema of tables named without one (the
// database is not asked then); options.trustModelDefaults: false counts
// attributes with a defaultValue as not written (see above);
// options.exclude: model names to leave out.
async function manifestFromSequelize(sequelize, options = {}) {
  if (!sequelize || typeof sequelize.getDialect !== 'function' || !sequelize.models) {
    throw new TypeError('rollguard: manifestFromSequelize() takes a Sequelize instance with its models defined');
  }
  if (sequelize.getDialect() !== 'postgres') {
    throw new Error(`rollguard: Sequelize's dialect is ${sequelize.getDialect()}, not postgres`);
  }
  const exclude = new Set(options.exclude || []);
  const tables = [];
  for (const model of Object.values(sequelize.models)) {
    if (exclude.has(model.name)) continue;
    const omitNull = Boolean(sequelize.options && sequelize.options.omitNull) || Boolean(model.options && model.options.omitNull);
    tables.push([modelTable(model), modelColumns(model, { ...options, omitNull })]);
  }
  const bare = [...new Set(tables.filter(([[nsp]]) => nsp === null).map(([[, name]]) => name))].sort();
  let resolved = {};
  if (bare.length && options.schema === undefined) resolved = await resolveSchemas(sequelize, bare);
  const relations = {};
  for (const [[nsp, name], columns] of tables) {
    const schema = nsp !== null ? nsp : options.schema !== undefined ? options.schema : resolved[name];
    const key = `${schema}.${name}`;
    const relation = relations[key] || (relations[key] = {});
    for (const [column, use] of Object.entries(columns)) relation[column] = merge(relation[column], use);
  }
  return { relations: sortKeys(relations) };
}

function sortKeys(value) {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return value;
  const out = {};
  for (const k of Object.keys(value).sort()) out[k] = sortKeys(value[k]);
  return out;
}

// The manifest as stable text: sorted keys, two-space indent.
function manifestJson(manifest) {
  return JSON.stringify(sortKeys(manifest), null, 2);
}

function countColumns(manifest) {
  return Object.values(manifest.relations).reduce((n, cols) => n + Object.keys(cols).length, 0);
}

module.exports = { manifestFromSequelize, modelColumns, attributeUse, manifestJson, countColumns };
