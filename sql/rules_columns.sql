--
-- rules_columns: DROP COLUMN, RENAME COLUMN and ALTER COLUMN TYPE.
--
-- Code finds columns by name and expects their values to fit its types, so
-- a column that a live version uses may not be dropped or renamed, and its
-- type may only be widened (varchar(n) to a larger n or to text, smallint to
-- integer to bigint, numeric to a wider precision).  Each rule is shown
-- refused while a live version uses the column, allowed once every
-- deployment runs a version that does not, and allowed on a column that no
-- live version uses.
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
    id       serial PRIMARY KEY,
    name     text NOT NULL,
    weight   numeric,
    nickname varchar(20),
    notes    text
);

CREATE TABLE measure (
    id      integer PRIMARY KEY,
    code    varchar(10),
    label   varchar(10),
    tag     varchar(20),
    qty     smallint,
    price   numeric(10,2),
    rate    numeric(10,2),
    cost    numeric(10,2),
    amount  integer,
    total   integer,
    scratch integer
);

-- Each section below registers its own versions: x.0 uses the column the
-- section is about, x.1 (the next build) no longer does.  Two deployments;
-- names are ordered naturally in messages: mirror-2 before mirror-10.

--
-- DROP COLUMN
--
-- Version 1.0 uses person.weight; 1.1 no longer does.  Neither uses
-- person.notes.
SELECT rollguard.register_version('1.0', '{"relations": {"public.person": {
    "id": {"writes": false, "nullable": false}, "name": {"nullable": false},
    "weight": {}, "nickname": {}}}}');
SELECT rollguard.register_version('1.1', '{"relations": {"public.person": {
    "id": {"writes": false, "nullable": false}, "name": {"nullable": false},
    "nickname": {}}}}');
SELECT rollguard.deploy('mirror-10', '1.0');
SELECT rollguard.deploy('mirror-2', '1.0');

-- Refused while a live version uses the column; the error names every
-- blocking deployment and the version it runs.
ALTER TABLE person DROP COLUMN weight;

-- The refusal is SQLSTATE 55006 (object_in_use).
\set VERBOSITY sqlstate
ALTER TABLE person DROP COLUMN weight;
\set VERBOSITY default

-- Django's RemoveField form (quoted, CASCADE) is refused the same way.
ALTER TABLE "person" DROP COLUMN "weight" CASCADE;

-- Nothing changed: the column is still there.
SELECT * FROM columns_of('person');

-- A column that no live version uses can be dropped at any time.
ALTER TABLE person DROP COLUMN notes;

-- One deployment moves to 1.1: the other one still blocks, alone.
SELECT rollguard.deploy('mirror-2', '1.1');
ALTER TABLE person DROP COLUMN weight;

-- Once every deployment runs 1.1, the column can go.
SELECT rollguard.deploy('mirror-10', '1.1');
ALTER TABLE person DROP COLUMN weight;
SELECT * FROM columns_of('person');

--
-- RENAME COLUMN
--
-- Version 2.0 uses person.nickname; 2.1 no longer does.
SELECT rollguard.register_version('2.0', '{"relations": {"public.person": {
    "id": {"writes": false, "nullable": false}, "name": {"nullable": false},
    "nickname": {}}}}');
SELECT rollguard.register_version('2.1', '{"relations": {"public.person": {
    "id": {"writes": false, "nullable": false}, "name": {"nullable": false}}}}');
SELECT rollguard.deploy('mirror-10', '2.0');
SELECT rollguard.deploy('mirror-2', '2.0');

-- Refused while a live version uses the column under its old name.
ALTER TABLE person RENAME COLUMN nickname TO alias;
-- The form without COLUMN, and Django's RenameField (quoted), alike.
ALTER TABLE person RENAME nickname TO alias;
ALTER TABLE "person" RENAME COLUMN "nickname" TO "alias";
SELECT * FROM columns_of('person');

-- A column that no live version uses can be renamed.
ALTER TABLE person ADD COLUMN remark text;
ALTER TABLE person RENAME COLUMN remark TO comment;

-- A deployment that no longer exists does not block: mirror-2 moves to
-- 2.1, and once mirror-10, still on 2.0, is decommissioned, the rename goes
-- through.
SELECT rollguard.deploy('mirror-2', '2.1');
ALTER TABLE person RENAME COLUMN nickname TO alias;
SELECT rollguard.remove_deployment('mirror-10');
ALTER TABLE person RENAME COLUMN nickname TO alias;
SELECT * FROM columns_of('person');

--
-- ALTER COLUMN TYPE
--
-- Version 3.0 uses every column of measure but scratch; 3.1 no longer uses
-- measure.tag either.
SELECT rollguard.register_version('3.0', '{"relations": {"public.measure": {
    "id": {"nullable": false}, "code": {}, "label": {}, "tag": {}, "qty": {},
    "price": {}, "rate": {}, "cost": {}, "amount": {}, "total": {}}}}');
SELECT rollguard.register_version('3.1', '{"relations": {"public.measure": {
    "id": {"nullable": false}, "code": {}, "label": {}, "qty": {},
    "price": {}, "rate": {}, "cost": {}, "amount": {}, "total": {}}}}');
SELECT rollguard.deploy('mirror-10', '3.0');
SELECT rollguard.deploy('mirror-2', '3.0');

-- Widening changes are allowed while the column is used: code that reads
-- and writes varchar(10) still works with varchar(20), varchar or text,
-- code written for smallint still works with integer or bigint, and code
-- written for numeric(10,2) still works with numeric(12,2) or numeric.
ALTER TABLE measure ALTER COLUMN code TYPE varchar(20);
ALTER TABLE measure ALTER COLUMN label TYPE varchar;
ALTER TABLE measure ALTER COLUMN label TYPE text;
ALTER TABLE measure ALTER COLUMN qty TYPE integer;
ALTER TABLE measure ALTER COLUMN qty TYPE bigint;
ALTER TABLE measure ALTER COLUMN price TYPE numeric(12,2);
ALTER TABLE measure ALTER COLUMN rate TYPE numeric;

-- Django's AlterField from IntegerField to BigIntegerField (int to bigint,
-- with a USING that only casts the column itself) is a widening too.
ALTER TABLE "measure" ALTER COLUMN "amount" TYPE bigint USING "amount"::bigint;
SELECT * FROM columns_of('measure');

-- Narrowing is refused: varchar(20) to varchar(10) ...
ALTER TABLE measure ALTER COLUMN tag TYPE varchar(10);
-- ... bigint to integer ...
ALTER TABLE measure ALTER COLUMN qty TYPE integer;
-- ... numeric(10,2) to numeric(10,3), which loses an integer digit ...
ALTER TABLE measure ALTER COLUMN cost TYPE numeric(10,3);
-- ... and numeric back to a bounded precision.
ALTER TABLE measure ALTER COLUMN rate TYPE numeric(10,2);

-- Any other change of type is refused: integer to text ...
ALTER TABLE measure ALTER COLUMN total TYPE text;
-- ... and a USING expression that transforms the values, even when the
-- new type is wider.
ALTER TABLE measure ALTER COLUMN total TYPE bigint USING total * 100;
-- A USING that casts the column to another type than the new one
-- transforms the values too (rounds them to integers, cuts them to two
-- characters), although numeric(10,2) to numeric(12,2) and varchar to
-- text would be widenings.  Only a cast to the new type itself, as in
-- amount's "amount"::bigint above, keeps them.
ALTER TABLE measure ALTER COLUMN cost TYPE numeric(12,2) USING cost::integer;
ALTER TABLE measure ALTER COLUMN tag TYPE text USING tag::varchar(2);

-- Nothing changed.
SELECT * FROM columns_of('measure');

-- A column that no live version uses can change type freely.
ALTER TABLE measure ALTER COLUMN scratch TYPE text;
ALTER TABLE measure ALTER COLUMN scratch TYPE varchar(3);
ALTER TABLE measure ALTER COLUMN scratch TYPE numeric(12,2) USING scratch::integer;

-- mirror-2 moves to 3.1, which no longer uses measure.tag: mirror-10 alone
-- still blocks the narrowing; once it moves too, the change goes through.
SELECT rollguard.deploy('mirror-2', '3.1');
ALTER TABLE measure ALTER COLUMN tag TYPE varchar(10);
SELECT rollguard.deploy('mirror-10', '3.1');
ALTER TABLE measure ALTER COLUMN tag TYPE varchar(10);
ALTER TABLE measure ALTER COLUMN tag TYPE text USING tag::varchar(2);
SELECT * FROM columns_of('measure');

-- The counters of live use agree with a recount from scratch.
SELECT * FROM rollguard._live_drift();

SELECT rollguard.remove_deployment('mirror-2');
SELECT rollguard.remove_deployment('mirror-10');
DROP TABLE measure;
DROP TABLE person;
DROP FUNCTION columns_of(regclass);
DROP EXTENSION rollguard;
