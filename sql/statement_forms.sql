--
-- statement_forms: every way of writing a change reaches the rules.
--
-- Several sub-commands in one ALTER TABLE, IF EXISTS, ONLY, quoted
-- mixed-case identifiers, schema-qualified and search_path-resolved names,
-- statements run from DO blocks, PL/pgSQL functions, SQL procedures and
-- dynamic SQL, several statements sent as one query, and changes that
-- reach child tables through inheritance.  DROP COLUMN stands for all the
-- rules here: the rules themselves are in the rules_* suites.
--
CREATE EXTENSION rollguard;
\set VERBOSITY default

-- The columns of a table, to show what a refused statement left untouched.
CREATE FUNCTION columns_of(rel regclass)
RETURNS TABLE ("column" name, type text, not_null boolean)
LANGUAGE sql STABLE
AS $$
    SELECT attname, format_type(atttypid, atttypmod), attnotnull
      FROM pg_attribute
     WHERE attrelid = rel AND attnum > 0 AND NOT attisdropped
     ORDER BY attnum
$$;

CREATE TABLE person (
    id     integer PRIMARY KEY,
    name   text,
    email  text,
    weight numeric,
    height numeric
);
-- A table created as "Person": a different table from person.
CREATE TABLE "Person" (
    id       integer PRIMARY KEY,
    "Weight" numeric,
    weight   numeric
);
-- A table with the same name in another schema, that no version uses.
CREATE SCHEMA other;
CREATE TABLE other.person (
    id     integer PRIMARY KEY,
    name   text,
    weight numeric
);
-- Inheritance: version 41 uses the child, not the parent.
CREATE TABLE parent (id integer, note text, code text);
CREATE TABLE child (extra text) INHERITS (parent);
-- A child that declares a column of its parent itself: PostgreSQL merges
-- the two, and the child's note is its own as well as inherited.
CREATE TABLE folder (id integer, note text);
CREATE TABLE subfolder (note text) INHERITS (folder);

-- Names in a manifest are literal catalog names: "public.Person" is the
-- table created as "Person", and "Weight" its column of that name.
SELECT rollguard.register_version('41', '{"relations": {
    "public.person": {"id": {"nullable": false}, "name": {}, "email": {},
                      "weight": {}, "height": {}},
    "public.Person": {"id": {"nullable": false}, "Weight": {}},
    "public.child":  {"id": {}, "note": {}, "code": {}, "extra": {}},
    "public.subfolder": {"id": {}, "note": {}}}}');
-- Version 42 no longer uses person.weight, person.height, "Person"."Weight"
-- nor child.note.
SELECT rollguard.register_version('42', '{"relations": {
    "public.person": {"id": {"nullable": false}, "name": {}, "email": {}},
    "public.Person": {"id": {"nullable": false}},
    "public.child":  {"id": {}, "code": {}, "extra": {}},
    "public.subfolder": {"id": {}, "note": {}}}}');
SELECT rollguard.deploy('site-1', '41');
SELECT rollguard.deploy('site-2', '41');

--
-- Several sub-commands in one ALTER TABLE
--

-- One of them breaks: the statement is refused as a whole, so the
-- harmless ADD COLUMN does not happen either.
ALTER TABLE person ADD COLUMN nickname text, DROP COLUMN weight;
-- Two of them break: the first is reported, the DETAIL says there is one
-- more (rollguard.check() lists every one).
ALTER TABLE person DROP COLUMN weight, DROP COLUMN height;
-- Three of different kinds.
ALTER TABLE person DROP COLUMN weight,
    ALTER COLUMN name SET NOT NULL,
    ALTER COLUMN email TYPE varchar(20);
SELECT change, "column", deployment, reason FROM rollguard.check(
    'ALTER TABLE person DROP COLUMN weight, ALTER COLUMN name SET NOT NULL, ALTER COLUMN email TYPE varchar(20)')
 ORDER BY change, deployment;
-- Sub-commands run in PostgreSQL's passes, not in the order written:
-- every DROP first, so this DROP DEFAULT comes before the column exists,
-- and PostgreSQL itself refuses the statement.  (The sql/properties suite
-- shows what the passes mean for defaults and NOT NULL.)
ALTER TABLE person ADD COLUMN active boolean NOT NULL DEFAULT true,
    ALTER COLUMN active DROP DEFAULT;
SELECT * FROM columns_of('person');

--
-- IF EXISTS, ONLY
--

-- IF EXISTS on an existing table is checked like the plain statement ...
ALTER TABLE IF EXISTS person DROP COLUMN weight;
ALTER TABLE person DROP COLUMN IF EXISTS weight;
DROP TABLE IF EXISTS person;
-- ... and on a missing one, PostgreSQL's notice is all that happens.
ALTER TABLE IF EXISTS no_such_table DROP COLUMN weight;
DROP TABLE IF EXISTS no_such_table;
-- A missing table beside a used one: the used one blocks.
DROP TABLE IF EXISTS no_such_table, person;
-- ONLY on a table without children.
ALTER TABLE ONLY person DROP COLUMN weight;
SELECT * FROM columns_of('person');

--
-- Quoted, mixed-case identifiers
--

-- "Person"."Weight" is used: refused, and the message names it as it is.
ALTER TABLE "Person" DROP COLUMN "Weight";
-- Unquoted names fold to lower case: this is person.weight, also used.
ALTER TABLE Person DROP COLUMN Weight;
-- "Person".weight (lower case) is used by no version: allowed.
ALTER TABLE "Person" DROP COLUMN weight;
SELECT * FROM columns_of('"Person"');

--
-- Schema-qualified and search_path-resolved names
--

-- public.person reached with and without its schema: refused both ways.
ALTER TABLE public.person DROP COLUMN weight;
SET search_path = public;
ALTER TABLE person DROP COLUMN weight;
-- With other first in search_path, person is other.person, which no
-- version uses: allowed.  public.person still blocks.
SET search_path = other, public;
ALTER TABLE person DROP COLUMN weight;
ALTER TABLE public.person DROP COLUMN weight;
RESET search_path;
-- Qualified, other.person is never blocked.
ALTER TABLE other.person DROP COLUMN name;
SELECT * FROM columns_of('other.person');
SELECT * FROM columns_of('public.person');

--
-- Statements that do not come from the client directly
--

-- A DO block.
DO $$
BEGIN
    ALTER TABLE person DROP COLUMN weight;
END
$$;

-- Dynamic SQL with EXECUTE.
DO $$
BEGIN
    EXECUTE format('ALTER TABLE %I DROP COLUMN %I', 'person', 'weight');
END
$$;

-- A PL/pgSQL function.
CREATE FUNCTION drop_weight() RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    ALTER TABLE person DROP COLUMN weight;
END
$$;
SELECT drop_weight();

-- A SQL-language procedure.
CREATE PROCEDURE drop_height()
LANGUAGE sql
AS $$
    ALTER TABLE person DROP COLUMN height;
$$;
CALL drop_height();

-- The refusal can be caught like any error: SQLSTATE 55006.
DO $$
BEGIN
    ALTER TABLE person DROP COLUMN weight;
EXCEPTION WHEN object_in_use THEN
    RAISE NOTICE 'refused with SQLSTATE %', SQLSTATE;
END
$$;
SELECT * FROM columns_of('person');

--
-- Several statements sent as one query (psql's \;): they run in one
-- implicit transaction, so the refusal of the second one undoes the first.
--
ALTER TABLE person ADD COLUMN nickname text \; ALTER TABLE person DROP COLUMN weight;
SELECT * FROM columns_of('person');

--
-- Inheritance: ALTER TABLE on a parent changes its children too.
--

-- Dropping parent.note drops child.note, which version 41 uses: refused,
-- and the message names the child.
ALTER TABLE parent DROP COLUMN note;
-- Renaming it renames the child's column too.
ALTER TABLE parent RENAME COLUMN note TO remark;
-- With ONLY, the child keeps its column (as its own): allowed, although
-- version 41 uses child.code.
ALTER TABLE ONLY parent DROP COLUMN code;
SELECT * FROM columns_of('parent');
SELECT * FROM columns_of('child');
-- A child that declares the column itself keeps it when the parent drops
-- it, even without ONLY: allowed, although version 41 uses subfolder.note
-- (unlike child.note above, which child has from parent alone).
ALTER TABLE folder DROP COLUMN note;
SELECT * FROM columns_of('folder');
SELECT * FROM columns_of('subfolder');
-- Now subfolder.note is subfolder's alone, and protected as such.
ALTER TABLE subfolder DROP COLUMN note;

--
-- Once every deployment runs 42, every form above goes through.
--
SELECT rollguard.deploy('site-1', '42');
SELECT rollguard.deploy('site-2', '42');
SELECT drop_weight();
CALL drop_height();
ALTER TABLE "Person" DROP COLUMN "Weight";
ALTER TABLE parent DROP COLUMN note;
SELECT * FROM columns_of('person');
SELECT * FROM columns_of('"Person"');
SELECT * FROM columns_of('child');

SELECT rollguard.remove_deployment('site-1');
SELECT rollguard.remove_deployment('site-2');

--
-- Statements that reach a table under another object's name.
--
-- ALTER INDEX ... RENAME TO renames any relation, tables too: a table is
-- guarded whatever the statement calls it.
CREATE TABLE badge (id int PRIMARY KEY, label text);
-- ALTER TYPE ... CASCADE changes the columns of the type's typed tables
-- (CREATE TABLE ... OF type).
CREATE TYPE point_pair AS (a int, b varchar(10));
CREATE TABLE pair OF point_pair;
SELECT rollguard.register_version('5.0', '{"relations": {
    "public.badge": {"id": {}, "label": {}},
    "public.pair":  {"a": {}, "b": {}}}}');
SELECT rollguard.deploy('site-1', '5.0');
ALTER INDEX badge RENAME TO badges;
ALTER TYPE point_pair RENAME ATTRIBUTE a TO first CASCADE;
ALTER TYPE point_pair ALTER ATTRIBUTE b TYPE varchar(3) CASCADE;
ALTER TYPE point_pair DROP ATTRIBUTE b CASCADE;
-- widening the attribute is fine for code that uses the column
ALTER TYPE point_pair ALTER ATTRIBUTE b TYPE varchar(20) CASCADE;
SELECT relname FROM pg_class WHERE relname IN ('badge', 'badges') ORDER BY 1;
SELECT * FROM columns_of('pair');
-- The counters of live use agree with a recount from scratch.
SELECT * FROM rollguard._live_drift();

-- the dry run sees them as well
SELECT change, relation, "column", deployment FROM rollguard.check(
    'ALTER INDEX badge RENAME TO badges; ALTER TYPE point_pair RENAME ATTRIBUTE a TO first CASCADE');
-- and with nobody on 5.0, they go through
SELECT rollguard.remove_deployment('site-1');
ALTER INDEX badge RENAME TO badges;
ALTER TYPE point_pair RENAME ATTRIBUTE a TO first CASCADE;
SELECT * FROM columns_of('pair');
DROP TABLE badges, pair;
DROP TYPE point_pair;

-- A migration run outside a transaction block (what psql -f without -1
-- does, and Sequelize, knex with transaction: false, Rails with
-- disable_ddl_transaction!): each statement commits on its own.  The first
-- statement below is applied; the second is refused, and its refusal says
-- that what ran before it stays applied, and how to run migrations
-- atomically.
SELECT rollguard.register_version('6.0', '{"relations": {"public.person": {"id": {}, "name": {}}}}');
SELECT rollguard.deploy('site-1', '6.0');
ALTER TABLE person ADD COLUMN nickname text;
ALTER TABLE person DROP COLUMN name;
SELECT * FROM columns_of('person');
-- In one transaction, the refusal rolls the whole migration back, and does
-- not carry that line: nothing of it is applied.
BEGIN;
ALTER TABLE person ADD COLUMN alias text;
ALTER TABLE person DROP COLUMN name;
ROLLBACK;
SELECT * FROM columns_of('person');
-- Several statements sent as one query run in one (implicit) transaction
-- block, so the same holds.
ALTER TABLE person ADD COLUMN alias text\; ALTER TABLE person DROP COLUMN name;
SELECT * FROM columns_of('person');
ALTER TABLE person DROP COLUMN nickname;
SELECT rollguard.remove_deployment('site-1');

DROP PROCEDURE drop_height();
DROP FUNCTION drop_weight();
DROP TABLE child, parent, subfolder, folder, other.person, "Person", person;
DROP SCHEMA other;
DROP FUNCTION columns_of(regclass);
DROP EXTENSION rollguard;
