--
-- cascade: columns and relations removed by statements that do not name
-- them.
--
-- DROP TYPE / DOMAIN / SCHEMA ... CASCADE, DROP COLUMN ... CASCADE and DROP
-- TABLE ... CASCADE remove whatever depends on what they name: columns of
-- that type, tables in that schema, views on that column or table; DROP
-- OWNED BY removes every table a role owns.  Every path that removes a
-- column counts: while a live version uses what the cascade would remove,
-- the statement is refused (SQLSTATE 55006) and rolled back with its
-- transaction, so everything is still there afterwards.  What no live
-- version uses goes as in stock PostgreSQL.
--
-- A cascade can also remove a column's default (DROP SEQUENCE ...
-- CASCADE removes the defaults that call nextval() on it): refused when
-- the column is left NOT NULL without a default while a live version
-- inserts into the table without writing it, as ALTER COLUMN ... DROP
-- DEFAULT would be.
--
CREATE EXTENSION rollguard;
\set VERBOSITY default

-- The columns of a table, to show what a refused statement left untouched.
CREATE FUNCTION columns_of(rel regclass)
RETURNS TABLE ("column" name, type text)
LANGUAGE sql STABLE
AS $$
    SELECT attname, format_type(atttypid, atttypmod)
      FROM pg_attribute
     WHERE attrelid = rel AND attnum > 0 AND NOT attisdropped
     ORDER BY attnum
$$;

-- The user's relations.
CREATE FUNCTION relations()
RETURNS TABLE (schema name, name name, kind "char")
LANGUAGE sql STABLE
AS $$
    SELECT n.nspname, c.relname, c.relkind
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'v', 'm')
       AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'rollguard')
     ORDER BY 1, 2
$$;

-- The sequences, and the column defaults that use them.
CREATE FUNCTION sequence_defaults()
RETURNS TABLE (sequence name, "column" text, "default" text)
LANGUAGE sql STABLE
AS $$
    SELECT s.relname, format('%s.%s', t.relname, a.attname),
           pg_get_expr(d.adbin, d.adrelid)
      FROM pg_class s
      LEFT JOIN pg_depend dep ON dep.refobjid = s.oid
            AND dep.classid = 'pg_attrdef'::regclass
      LEFT JOIN pg_attrdef d ON d.oid = dep.objid
      LEFT JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
      LEFT JOIN pg_class t ON t.oid = d.adrelid
     WHERE s.relkind = 'S' AND s.relnamespace = 'public'::regnamespace
     ORDER BY 1, 2
$$;

CREATE TYPE mood AS ENUM ('happy', 'sad');
CREATE TYPE label AS ENUM ('new', 'vip');
CREATE DOMAIN email_address AS text CHECK (VALUE LIKE '%@%');
CREATE SCHEMA units;
CREATE TYPE units.length AS (value numeric, unit text);
CREATE SCHEMA geo;
CREATE TABLE geo.city (id integer PRIMARY KEY, name text);
CREATE FUNCTION initials(text) RETURNS text
    IMMUTABLE LANGUAGE sql AS $$ SELECT left($1, 1) $$;

CREATE TABLE person (
    id       integer PRIMARY KEY,
    name     text,
    nickname text,
    mood     mood,
    labels   label[],
    email    email_address,
    height   units.length,
    initial  text GENERATED ALWAYS AS (initials(name)) STORED
);
-- A view on a column (nickname) that no version uses itself.
CREATE VIEW person_nicknames AS SELECT id, nickname FROM person;
-- A table that no version uses, and a view on it that version 1.0 uses.
CREATE TABLE account (id integer PRIMARY KEY, balance numeric);
CREATE VIEW account_balances AS SELECT id, balance FROM account;
-- An enum that only an unused column has.
CREATE TYPE shade AS ENUM ('light', 'dark');
CREATE TABLE paint (id integer, shade shade);
-- Columns numbered by sequences: ticket.id is NOT NULL, memo.id nullable;
-- device.id, which no version uses, has a domain whose default uses the
-- sequence serial_no as well.
CREATE SEQUENCE ticket_seq;
CREATE TABLE ticket (id integer NOT NULL DEFAULT nextval('ticket_seq'), subject text);
CREATE SEQUENCE memo_seq;
CREATE TABLE memo (id integer DEFAULT nextval('memo_seq'), body text);
CREATE SEQUENCE serial_no;
CREATE DOMAIN serial_number AS integer DEFAULT nextval('serial_no');
CREATE TABLE device (id serial_number NOT NULL DEFAULT nextval('serial_no'), name text);
-- A table owned by a role of its own.
CREATE ROLE rg_legacy;
CREATE TABLE legacy_order (id integer PRIMARY KEY, total numeric);
ALTER TABLE legacy_order OWNER TO rg_legacy;

-- Version 1.0 uses every column of person but nickname, geo.city, the two
-- views and legacy_order; it inserts tickets, memos and devices leaving
-- their id to the database.  Version 1.1 uses only person's id and name,
-- and inserts tickets writing id itself.
SELECT rollguard.register_version('1.0', '{"relations": {
    "public.person": {"id": {"nullable": false}, "name": {}, "mood": {},
                      "labels": {}, "email": {}, "height": {},
                      "initial": {"writes": false}},
    "public.person_nicknames": {"id": {"writes": false}, "nickname": {"writes": false}},
    "public.account_balances": {"id": {"writes": false}, "balance": {"writes": false}},
    "geo.city": {"id": {"nullable": false}, "name": {}},
    "public.ticket": {"id": {"writes": false, "nullable": false}, "subject": {}},
    "public.memo": {"id": {"writes": false}, "body": {}},
    "public.device": {"name": {}},
    "public.legacy_order": {"id": {"nullable": false}, "total": {}}}}');
SELECT rollguard.register_version('1.1', '{"relations": {
    "public.person": {"id": {"nullable": false}, "name": {}},
    "public.ticket": {"id": {"nullable": false}, "subject": {}}}}');
SELECT rollguard.deploy('original', '1.0');
SELECT rollguard.deploy('mirror-2', '1.0');

--
-- Refused while version 1.0 is live
--

-- DROP TYPE ... CASCADE would drop person.mood, a column of that type.
DROP TYPE mood CASCADE;

-- The refusal is SQLSTATE 55006 (object_in_use).
\set VERBOSITY sqlstate
DROP TYPE mood CASCADE;
\set VERBOSITY default

-- In a migration's transaction, the refusal rolls back the transaction:
-- what ran before it in the same transaction is undone too.
BEGIN;
CREATE TABLE migration_step (id integer);
DROP TYPE mood CASCADE;
COMMIT;
SELECT to_regclass('migration_step') AS migration_step;

-- A column of an array of the type is dropped too: person.labels.
DROP TYPE label CASCADE;

-- DROP DOMAIN ... CASCADE would drop person.email.
DROP DOMAIN email_address CASCADE;

-- DROP SCHEMA ... CASCADE would drop geo.city, a table version 1.0 uses ...
DROP SCHEMA geo CASCADE;
-- ... and DROP SCHEMA units CASCADE would drop the type units.length, and
-- with it person.height, a column of a table in another schema.
DROP SCHEMA units CASCADE;

-- DROP FUNCTION ... CASCADE would drop the generated column person.initial.
DROP FUNCTION initials(text) CASCADE;

-- DROP COLUMN ... CASCADE of a column no version uses would drop the view
-- person_nicknames, which version 1.0 uses.
ALTER TABLE person DROP COLUMN nickname CASCADE;

-- DROP TABLE ... CASCADE of a table no version uses would drop the view
-- account_balances, which version 1.0 uses.
DROP TABLE account CASCADE;

-- DROP OWNED BY would drop legacy_order, which version 1.0 uses.
DROP OWNED BY rg_legacy;

-- DROP SEQUENCE ... CASCADE would drop the default of ticket.id, a NOT
-- NULL column that version 1.0 leaves out of its inserts ("writes":
-- false): they would fail.
DROP SEQUENCE ticket_seq CASCADE;

-- Everything is still there.
SELECT * FROM columns_of('person');
SELECT * FROM relations();
SELECT typname FROM pg_type
 WHERE typname IN ('mood', 'label', 'email_address', 'length', 'shade')
 ORDER BY typname;
SELECT * FROM sequence_defaults();

--
-- Allowed
--

-- A cascade that only reaches columns no live version uses goes through.
DROP TYPE shade CASCADE;
SELECT * FROM columns_of('paint');

-- A sequence whose only dependent is the default of a nullable column:
-- version 1.0's inserts into memo get NULL for id, and succeed.
DROP SEQUENCE memo_seq CASCADE;
-- The default of device.id goes, but so does the column itself, with the
-- domain serial_number whose default uses the sequence too.  Version 1.0
-- does not use device.id: no insert of its can miss the default.
DROP SEQUENCE serial_no CASCADE;
SELECT * FROM columns_of('device');
SELECT * FROM sequence_defaults();

-- mirror-2 moves to 1.1; the original, still on 1.0, blocks alone.
SELECT rollguard.deploy('mirror-2', '1.1');
DROP TYPE mood CASCADE;

-- The counters of live use agree with a recount from scratch.
SELECT * FROM rollguard._live_drift();

-- Once every deployment runs 1.1, which uses none of these and writes
-- ticket.id itself, every cascade goes through.
SELECT rollguard.deploy('original', '1.1');
DROP TYPE mood CASCADE;
DROP TYPE label CASCADE;
DROP DOMAIN email_address CASCADE;
DROP SCHEMA geo CASCADE;
DROP SCHEMA units CASCADE;
DROP FUNCTION initials(text) CASCADE;
ALTER TABLE person DROP COLUMN nickname CASCADE;
DROP TABLE account CASCADE;
DROP OWNED BY rg_legacy;
DROP SEQUENCE ticket_seq CASCADE;
SELECT * FROM columns_of('person');
SELECT * FROM relations();
SELECT * FROM sequence_defaults();

SELECT rollguard.remove_deployment('original');
SELECT rollguard.remove_deployment('mirror-2');
DROP TABLE person, paint, ticket, memo, device;
DROP ROLE rg_legacy;
DROP FUNCTION columns_of(regclass);
DROP FUNCTION relations();
DROP FUNCTION sequence_defaults();
DROP EXTENSION rollguard;
