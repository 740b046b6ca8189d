--
-- check: rollguard.check(ddl) is the dry run.  It runs the rules over a
-- whole migration script against the registry as it is now, executes
-- nothing, and returns one row per blocker.  CI pipelines call it before
-- deploying.
--
CREATE EXTENSION rollguard;
CREATE TABLE person (id serial PRIMARY KEY, name text NOT NULL, weight numeric, nick text);

-- Nothing registered: nothing blocks.
SELECT * FROM rollguard.check('ALTER TABLE person DROP COLUMN weight; DROP TABLE person;');

SELECT rollguard.register_version('41', '{"relations": {"public.person": {
    "id": {"writes": false}, "name": {}, "weight": {}, "nick": {}}}}');
SELECT rollguard.register_version('42', '{"relations": {"public.person": {
    "id": {"writes": false}, "name": {}, "nick": {}}}}');
SELECT rollguard.deploy('original', '42');
SELECT rollguard.deploy('mirror-2', '41');
SELECT rollguard.deploy('mirror-3', '41');

-- A Django-style migration: one row per blocker, per statement.  The
-- gdpr_accepted column does not exist yet: check() follows the script, so
-- it knows that DROP DEFAULT leaves a NOT NULL column without a default.
\x on
SELECT * FROM rollguard.check($$
BEGIN;
ALTER TABLE "person" DROP COLUMN "weight" CASCADE;
ALTER TABLE "person" ADD COLUMN "gdpr_accepted" boolean DEFAULT false NOT NULL;
ALTER TABLE "person" ALTER COLUMN "gdpr_accepted" DROP DEFAULT;
CREATE INDEX person_name_idx ON person (name);
COMMIT;
$$);
\x off

-- Nothing was executed.
SELECT attname FROM pg_attribute
 WHERE attrelid = 'person'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum;
SELECT count(*) AS indexes FROM pg_indexes WHERE tablename = 'person';

-- Relation-level changes name the relation, with a NULL column.
SELECT change, relation, "column", deployment, version, reason
  FROM rollguard.check('ALTER TABLE person RENAME TO people');

-- A script that breaks nothing returns no rows.
SELECT count(*) FROM rollguard.check('ALTER TABLE person ADD COLUMN age int; CREATE TABLE x (id int);');
SELECT count(*) FROM rollguard.check('');

-- A script that does not parse is an error, like the migration would be.
SELECT * FROM rollguard.check('ALTER TABLE person DRO COLUMN weight');

-- Statements inside DO blocks and functions are not looked into by the dry
-- run: they are checked when they run.  (Nor does it follow renames of
-- relations within the script; doc/api.md lists what the dry run sees.)
SELECT count(*) FROM rollguard.check('DO $x$ BEGIN ALTER TABLE person DROP COLUMN weight; END $x$');
DO $x$ BEGIN ALTER TABLE person DROP COLUMN weight; END $x$;

-- check() is for everyone (CI users need no rights on the registry) and it
-- is not affected by rollguard.enforce.
CREATE ROLE rg_ci;
SET ROLE rg_ci;
SELECT change, deployment, version FROM rollguard.check('ALTER TABLE person DROP COLUMN weight');
RESET ROLE;
SET rollguard.enforce = off;
SELECT change, deployment, version FROM rollguard.check('ALTER TABLE person DROP COLUMN weight');
RESET rollguard.enforce;
SELECT * FROM rollguard.check(NULL);
DROP ROLE rg_ci;

SELECT rollguard.remove_deployment(d) FROM unnest(ARRAY['original', 'mirror-2', 'mirror-3']) d;
DROP TABLE person;
DROP EXTENSION rollguard;
