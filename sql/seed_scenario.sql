--
-- seed_scenario: the story rollguard exists for.
--
-- One Django application, three deployments sharing one database: the
-- original site and two mirrors.  Version 41 of the code uses
-- person.weight; version 42 no longer does.  The original is upgraded first
-- and its `manage.py migrate` wants to drop the column.
--
CREATE EXTENSION rollguard;
-- (errors raised inside the deploy functions would also print the PL/pgSQL
-- lines they come from; they are not part of the story)
\set SHOW_CONTEXT never

CREATE TABLE person (
    id     serial PRIMARY KEY,
    name   text NOT NULL,
    weight numeric
);

-- Deploy scripts register each build with the manifest of the columns its
-- code uses ("writes": false for the id the database generates).
SELECT rollguard.register_version('41', '{"relations": {"public.person": {
    "id":     {"writes": false, "nullable": false},
    "name":   {"nullable": false},
    "weight": {"nullable": true}}}}');
SELECT rollguard.register_version('42', '{"relations": {"public.person": {
    "id":     {"writes": false, "nullable": false},
    "name":   {"nullable": false}}}}');

-- Everybody runs 41.
SELECT rollguard.deploy('original', '41');
SELECT rollguard.deploy('mirror-2', '41');
SELECT rollguard.deploy('mirror-3', '41');
INSERT INTO person (name, weight) VALUES ('Ada', 61.5);

-- The original moves to 42 and runs its migration (Django's RemoveField).
SELECT rollguard.deploy('original', '42');
ALTER TABLE "person" DROP COLUMN "weight" CASCADE;

-- Refused: the error names exactly the mirrors still on 41.  The column and
-- its data are untouched, and the old code keeps working.
SELECT name, weight FROM person;
INSERT INTO person (name, weight) VALUES ('Grace', 70);

-- mirror-2 upgrades: only mirror-3 blocks now.
SELECT rollguard.deploy('mirror-2', '42');
ALTER TABLE "person" DROP COLUMN "weight" CASCADE;

-- The last mirror upgrades: the same migration goes through.
SELECT rollguard.deploy('mirror-3', '42');
SELECT deployment, version, state FROM rollguard.deployments
 ORDER BY rollguard.version_sort_key(deployment);
ALTER TABLE "person" DROP COLUMN "weight" CASCADE;
SELECT count(*) AS weight_columns FROM pg_attribute
 WHERE attrelid = 'person'::regclass AND attname = 'weight' AND NOT attisdropped;

--
-- Version 43 adds a GDPR flag: a NOT NULL boolean.  Without a database
-- default, Django 3.2/4.x send ADD COLUMN ... DEFAULT false NOT NULL and
-- then DROP DEFAULT, and the second statement is what breaks version 42,
-- which inserts people without the new column.  Django runs the migration
-- in one transaction: it is judged on what the transaction leaves, so the
-- refusal comes at COMMIT, names the statement that made the change, and
-- the whole migration rolls back.
--
SELECT rollguard.register_version('43', '{"relations": {"public.person": {
    "id":            {"writes": false, "nullable": false},
    "name":          {"nullable": false},
    "gdpr_accepted": {"nullable": false}}}}');
-- 43 may be deployed before its migration adds the column: a column that
-- does not exist yet is not one that no longer exists.
SELECT rollguard.deploy('original', '43');

BEGIN;
ALTER TABLE "person" ADD COLUMN "gdpr_accepted" boolean DEFAULT false NOT NULL;
ALTER TABLE "person" ALTER COLUMN "gdpr_accepted" DROP DEFAULT;
COMMIT;
SELECT count(*) AS gdpr_columns FROM pg_attribute
 WHERE attrelid = 'person'::regclass AND attname = 'gdpr_accepted';

-- A NOT NULL column with no default at all is refused outright.
ALTER TABLE person ADD COLUMN gdpr_accepted boolean NOT NULL;

-- The safe way: keep a database default (Django 5's db_default), so that
-- version 42 still inserts.
ALTER TABLE "person" ADD COLUMN "gdpr_accepted" boolean DEFAULT false NOT NULL;
INSERT INTO person (name) VALUES ('Edsger');   -- version 42's INSERT

-- Once every deployment runs 43, which writes the column, the default can go.
SELECT rollguard.deploy('mirror-2', '43');
SELECT rollguard.deploy('mirror-3', '43');
ALTER TABLE "person" ALTER COLUMN "gdpr_accepted" DROP DEFAULT;
SELECT name, gdpr_accepted FROM person ORDER BY id;

-- Rolling back a mirror to 41 now would break it at once (it reads
-- person.weight): deploy() refuses, naming the column the migration removed,
-- and mirror-2 stays on 43.
SELECT rollguard.deploy('mirror-2', '41');
SELECT deployment, version FROM rollguard.deployments WHERE deployment = 'mirror-2';

-- The counters of live use agree with a recount from scratch.
SELECT * FROM rollguard._live_drift();

-- Decommissioned deployments stop counting; with none left, nothing blocks.
SELECT rollguard.remove_deployment(d)
  FROM unnest(ARRAY['original', 'mirror-2', 'mirror-3']) d;
DROP TABLE person;
DROP EXTENSION rollguard;
