\set VERBOSITY default
\pset footer off
\echo
\echo '### One database, three deployments of one Django app: "original", "mirror-2", "mirror-3".'
\echo '### The DBA installs rollguard once:'
CREATE EXTENSION rollguard;
CREATE TABLE person (id serial PRIMARY KEY, name text NOT NULL, weight numeric);
INSERT INTO person (name, weight) VALUES ('Ada', 61.5), ('Grace', 70.2);

\echo
\echo '### Deploy scripts register each build with the columns its code uses (manage.py rollguard_manifest),'
\echo '### and record which deployment runs what. Version 41 uses person.weight; version 42 no longer does.'
SELECT rollguard.register_version('41', '{"relations": {"public.person": {"id": {"writes": false}, "name": {"nullable": false}, "weight": {}}}}');
SELECT rollguard.register_version('42', '{"relations": {"public.person": {"id": {"writes": false}, "name": {"nullable": false}}}}');
SELECT rollguard.deploy('original', '41'), rollguard.deploy('mirror-2', '41'), rollguard.deploy('mirror-3', '41');

\echo
\echo '### The original site is upgraded to 42 first, and its "manage.py migrate" drops person.weight:'
SELECT rollguard.deploy('original', '42');
BEGIN;
ALTER TABLE "person" DROP COLUMN "weight" CASCADE;
ROLLBACK;

\echo
\echo '### Nothing was lost; the mirrors still on 41 keep working:'
SELECT name, weight FROM person ORDER BY id;

\echo
\echo '### A CI pipeline can ask the same question before deploying, without running anything:'
SELECT deployment, version, change, relation, "column", reason
  FROM rollguard.check('ALTER TABLE person DROP COLUMN weight; ALTER TABLE person ADD COLUMN gdpr_accepted boolean NOT NULL');

\echo
\echo '### The mirrors are upgraded, one after the other; the same migration then goes through:'
SELECT rollguard.deploy('mirror-2', '42');
ALTER TABLE "person" DROP COLUMN "weight" CASCADE;
SELECT rollguard.deploy('mirror-3', '42');
SELECT deployment, version, state FROM rollguard.deployments ORDER BY rollguard.version_sort_key(deployment);
ALTER TABLE "person" DROP COLUMN "weight" CASCADE;

\echo
\echo '### Version 43 adds a NOT NULL flag with a Python default only: Django sends ADD ... DEFAULT false NOT NULL,'
\echo '### then DROP DEFAULT, and version 42, still running on the mirrors, inserts people without it.'
\echo '### The migration is one transaction, judged by what it leaves: refused at COMMIT, nothing kept:'
SELECT rollguard.register_version('43', '{"relations": {"public.person": {"id": {"writes": false}, "name": {"nullable": false}, "gdpr_accepted": {"nullable": false}}}}');
SELECT rollguard.deploy('original', '43');
BEGIN;
ALTER TABLE "person" ADD COLUMN "gdpr_accepted" boolean DEFAULT false NOT NULL;
ALTER TABLE "person" ALTER COLUMN "gdpr_accepted" DROP DEFAULT;
COMMIT;

\echo
\echo '### A column renamed and renamed back in one migration (Django RenameField with db_column) breaks nothing:'
BEGIN;
ALTER TABLE "person" RENAME COLUMN "name" TO "full_name";
ALTER TABLE "person" RENAME COLUMN "full_name" TO "name";
COMMIT;

\echo
\echo '### The safe way (Django 5 db_default): keep the default in the database.'
ALTER TABLE "person" ADD COLUMN "gdpr_accepted" boolean DEFAULT false NOT NULL;

\echo
\echo '### Rolling a mirror back to 41 would break it at once (its code reads person.weight): refused.'
SELECT rollguard.deploy('mirror-2', '41');

\echo
\echo '### What the DBA sees at any time:'
SELECT version, contract, columns, live_in FROM rollguard.versions ORDER BY rollguard.version_sort_key(version);
