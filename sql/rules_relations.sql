--
-- rules_relations: dropping, renaming and moving whole relations.
--
-- Code finds tables, views and materialized views by schema and name.  A
-- relation of which a live version uses any column may not be dropped
-- (DROP TABLE / VIEW / MATERIALIZED VIEW), renamed (ALTER ... RENAME TO),
-- moved to another schema (ALTER ... SET SCHEMA), nor lose its schema's
-- name (ALTER SCHEMA ... RENAME TO).  Each rule is shown refused while a
-- live version uses the relation, allowed once every deployment runs a
-- version that does not, and allowed for a relation that no live version
-- uses.  Additive changes are never blocked.
--
CREATE EXTENSION rollguard;
\set VERBOSITY default

-- The user's relations, to show what a refused statement left in place.
CREATE FUNCTION relations()
RETURNS TABLE (schema name, name name, kind text)
LANGUAGE sql STABLE
AS $$
    SELECT n.nspname, c.relname,
           CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view'
                          WHEN 'm' THEN 'materialized view' END
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'v', 'm')
       AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'rollguard')
     ORDER BY 1, 2
$$;

-- person is used by every version below and stays.
CREATE TABLE person (
    id     serial PRIMARY KEY,
    name   text NOT NULL,
    email  text,
    city   text,
    age    integer,
    born   date,
    weight numeric
);

--
-- DROP TABLE / VIEW / MATERIALIZED VIEW
--
CREATE TABLE site (id integer PRIMARY KEY, domain text NOT NULL);
CREATE VIEW site_domains AS SELECT id, domain FROM site;
CREATE MATERIALIZED VIEW site_count AS SELECT count(*) AS sites FROM site;
CREATE TABLE legacy (id integer, payload text);

-- Version 1.0 uses person, site, site_domains and site_count; version 1.1
-- only person.  No version uses legacy.
SELECT rollguard.register_version('1.0', '{"relations": {
    "public.person":       {"id": {"writes": false}, "name": {}, "email": {},
                            "city": {}, "age": {}, "born": {}, "weight": {}},
    "public.site":         {"id": {}, "domain": {}},
    "public.site_domains": {"id": {"writes": false}, "domain": {"writes": false}},
    "public.site_count":   {"sites": {"writes": false}}}}');
SELECT rollguard.register_version('1.1', '{"relations": {
    "public.person":       {"id": {"writes": false}, "name": {}, "email": {},
                            "city": {}, "age": {}, "born": {}, "weight": {}}}}');
SELECT rollguard.deploy('original', '1.0');
SELECT rollguard.deploy('mirror-2', '1.0');

-- Refused: the DETAIL names the columns each version uses (the first five,
-- then how many more).
DROP TABLE person;
DROP TABLE site;

-- The refusal is SQLSTATE 55006 (object_in_use).
\set VERBOSITY sqlstate
DROP TABLE site;
\set VERBOSITY default

-- Django's DeleteModel form.
DROP TABLE "site" CASCADE;
-- Views and materialized views alike.
DROP VIEW site_domains;
DROP MATERIALIZED VIEW site_count;

-- One statement dropping a used and an unused table is refused as a
-- whole: the unused one is still there afterwards.
DROP TABLE legacy, site;
SELECT * FROM relations();

-- A table that no live version uses can be dropped.
CREATE TABLE scratch (id integer);
DROP TABLE scratch;

-- One deployment moves to 1.1: the other still blocks, alone.
SELECT rollguard.deploy('mirror-2', '1.1');
DROP VIEW site_domains;

-- Once every deployment runs 1.1, they can all go.
SELECT rollguard.deploy('original', '1.1');
DROP VIEW site_domains;
DROP MATERIALIZED VIEW site_count;
DROP TABLE legacy, site;
SELECT * FROM relations();

--
-- ALTER TABLE / VIEW / MATERIALIZED VIEW ... RENAME TO
--
CREATE TABLE account (id integer PRIMARY KEY, owner text);
CREATE VIEW account_owners AS SELECT owner FROM account;
CREATE MATERIALIZED VIEW account_count AS SELECT count(*) AS accounts FROM account;
CREATE TABLE draft (id integer);

-- Version 2.0 uses the old names; 2.1 the new ones (Django's RenameModel
-- ships with the code that uses the new name).
SELECT rollguard.register_version('2.0', '{"relations": {
    "public.person":         {"id": {"writes": false}, "name": {}},
    "public.account":        {"id": {}, "owner": {}},
    "public.account_owners": {"owner": {"writes": false}},
    "public.account_count":  {"accounts": {"writes": false}}}}');
SELECT rollguard.register_version('2.1', '{"relations": {
    "public.person":         {"id": {"writes": false}, "name": {}},
    "public.customer":       {"id": {}, "owner": {}},
    "public.customer_owners": {"owner": {"writes": false}},
    "public.customer_count": {"accounts": {"writes": false}}}}');
SELECT rollguard.deploy('original', '2.0');
SELECT rollguard.deploy('mirror-2', '2.0');

-- Refused while version 2.0 is live: Django's RenameModel ...
ALTER TABLE "account" RENAME TO "customer";
-- ... a view ...
ALTER VIEW account_owners RENAME TO customer_owners;
-- ... a view renamed through ALTER TABLE ...
ALTER TABLE account_owners RENAME TO customer_owners;
-- ... and a materialized view.
ALTER MATERIALIZED VIEW account_count RENAME TO customer_count;
SELECT * FROM relations();

-- A table that no live version uses can be renamed.
ALTER TABLE draft RENAME TO draft_old;

-- mirror-2 moves to 2.1: the original still blocks, alone.
SELECT rollguard.deploy('mirror-2', '2.1');
ALTER TABLE account RENAME TO customer;

-- With 2.1 everywhere, the renames go through.
SELECT rollguard.deploy('original', '2.1');
ALTER TABLE "account" RENAME TO "customer";
ALTER VIEW account_owners RENAME TO customer_owners;
ALTER MATERIALIZED VIEW account_count RENAME TO customer_count;
SELECT * FROM relations();

--
-- ALTER TABLE / VIEW ... SET SCHEMA
--
CREATE SCHEMA billing;
CREATE TABLE invoice (id integer PRIMARY KEY, total numeric);
CREATE VIEW open_invoices AS SELECT id FROM invoice;
CREATE TABLE invoice_tmp (id integer);

-- Version 3.0 finds invoice in public; 3.1 in billing.
SELECT rollguard.register_version('3.0', '{"relations": {
    "public.person":        {"id": {"writes": false}, "name": {}},
    "public.invoice":       {"id": {}, "total": {}},
    "public.open_invoices": {"id": {"writes": false}}}}');
SELECT rollguard.register_version('3.1', '{"relations": {
    "public.person":         {"id": {"writes": false}, "name": {}},
    "billing.invoice":       {"id": {}, "total": {}},
    "billing.open_invoices": {"id": {"writes": false}}}}');
SELECT rollguard.deploy('original', '3.0');
SELECT rollguard.deploy('mirror-2', '3.0');

-- Refused while version 3.0 is live.
ALTER TABLE invoice SET SCHEMA billing;
ALTER VIEW open_invoices SET SCHEMA billing;
SELECT * FROM relations();

-- A table that no live version uses can move.
ALTER TABLE invoice_tmp SET SCHEMA billing;

-- With 3.1 everywhere, the move goes through.
SELECT rollguard.deploy('original', '3.1');
SELECT rollguard.deploy('mirror-2', '3.1');
ALTER TABLE invoice SET SCHEMA billing;
ALTER VIEW open_invoices SET SCHEMA billing;
SELECT * FROM relations();

--
-- ALTER SCHEMA ... RENAME TO
--
CREATE SCHEMA reporting;
CREATE TABLE reporting.daily (day date, hits integer);
CREATE TABLE reporting.weekly (week integer, hits integer);
CREATE TABLE reporting.notes (note text);
CREATE SCHEMA sandbox;
CREATE TABLE sandbox.trial (id integer);

-- Version 4.0 uses reporting.daily and reporting.weekly; 4.1 finds them in
-- the schema stats.
SELECT rollguard.register_version('4.0', '{"relations": {
    "public.person":    {"id": {"writes": false}, "name": {}},
    "reporting.daily":  {"day": {}, "hits": {}},
    "reporting.weekly": {"week": {}, "hits": {}}}}');
SELECT rollguard.register_version('4.1', '{"relations": {
    "public.person":    {"id": {"writes": false}, "name": {}},
    "stats.daily":      {"day": {}, "hits": {}},
    "stats.weekly":     {"week": {}, "hits": {}}}}');
SELECT rollguard.deploy('original', '4.0');
SELECT rollguard.deploy('mirror-2', '4.0');

-- Refused: the schema holds two relations that version 4.0 uses; the
-- first is reported, the DETAIL counts the other.
ALTER SCHEMA reporting RENAME TO stats;
SELECT * FROM relations();

-- A schema whose relations no live version uses can be renamed.
ALTER SCHEMA sandbox RENAME TO playground;

-- With 4.1 everywhere, the rename goes through.
SELECT rollguard.deploy('original', '4.1');
SELECT rollguard.deploy('mirror-2', '4.1');
ALTER SCHEMA reporting RENAME TO stats;
SELECT * FROM relations();

--
-- Additive changes are never blocked, even on a relation that every live
-- version uses: new tables, new nullable columns, new columns with a
-- default, new indexes, and dropping a NOT NULL constraint.
--
SELECT rollguard.deploy('original', '1.1');
SELECT rollguard.deploy('mirror-2', '1.1');
CREATE TABLE person_tag (person_id integer REFERENCES person, tag text);
ALTER TABLE person ADD COLUMN nickname text;
ALTER TABLE person ADD COLUMN active boolean NOT NULL DEFAULT true;
ALTER TABLE person ADD COLUMN score integer DEFAULT 0;
CREATE INDEX person_name_idx ON person (name);
CREATE UNIQUE INDEX person_email_idx ON person (email);
ALTER TABLE person ALTER COLUMN name DROP NOT NULL;
SELECT attname, format_type(atttypid, atttypmod) AS type, attnotnull
  FROM pg_attribute
 WHERE attrelid = 'person'::regclass AND attnum > 0 AND NOT attisdropped
 ORDER BY attnum;

-- The counters of live use agree with a recount from scratch.
SELECT * FROM rollguard._live_drift();

SELECT rollguard.remove_deployment('original');
SELECT rollguard.remove_deployment('mirror-2');
DROP VIEW billing.open_invoices, customer_owners;
DROP MATERIALIZED VIEW customer_count;
DROP TABLE billing.invoice, billing.invoice_tmp, stats.daily, stats.weekly,
           stats.notes, playground.trial, person_tag, person, customer, draft_old;
DROP SCHEMA billing, stats, playground;
DROP FUNCTION relations();
DROP EXTENSION rollguard;
