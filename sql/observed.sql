--
-- observed: the columns that tagged sessions' statements actually read or
-- write are recorded per version (rollguard.observed), so that raw SQL a
-- manifest missed still counts as a use of that version.
--   reads:  the statement selects the column (SELECT list, WHERE, RETURNING,
--           the right-hand side of SET, a view's definition);
--   writes: the statement inserts or updates it.
-- The relation itself (column NULL) is recorded when a statement uses it
-- without naming any column, and when it inserts into it: then writes
-- means "inserts rows", which the NOT NULL rules ask about.
-- Only tagged sessions (rollguard.deployment + rollguard.version, or
-- application_name 'rollguard:<deployment>@<version>') are recorded, only
-- with rollguard.observe on (the default), only user relations.
-- Restarts, crashes and overflow are shown in test/t/007_observed.pl.
--
CREATE EXTENSION rollguard;
\set VERBOSITY default
\set SHOW_CONTEXT never

-- Observed uses live in shared memory for the whole server and outlive
-- DROP EXTENSION (earlier suites of this run left some): start from none.
SELECT rollguard.clear_observed() >= 0 AS cleared;

-- What was observed, without the timestamps (they differ from run to run);
-- a temporary view: temporary relations are never recorded themselves.
CREATE TEMP VIEW uses AS
SELECT version, relation, "column", reads, writes, first_seen <= last_seen AS ordered
  FROM rollguard.observed ORDER BY version, relation, "column" NULLS FIRST;

CREATE TABLE person (id serial PRIMARY KEY, name text NOT NULL, weight integer, nickname text);
CREATE VIEW heavy AS SELECT id, name FROM person WHERE weight > 100;
CREATE TABLE note (id integer, body text);

-- Untagged: nothing is recorded.
INSERT INTO person (name, weight) VALUES ('Ada', 120);
SELECT name FROM person;
SELECT * FROM uses;

------------------------------------------------------------------------------
-- Tagged by the settings: mirror-2 runs version 41.
------------------------------------------------------------------------------
SET rollguard.deployment = 'mirror-2';
SET rollguard.version = '41';

-- INSERT writes the columns it names (id comes from its default: not
-- written), and inserts into the relation; SELECT reads what it names, in
-- the list and in WHERE.
INSERT INTO person (name, weight) VALUES ('Bob', 80);
SELECT name FROM person WHERE id = 1;
SELECT * FROM uses;

-- UPDATE writes what it sets and reads what it looks at.
UPDATE person SET nickname = 'B' WHERE weight < 100;
SELECT * FROM uses;

-- A view: the view's columns the statement reads, and the base table's
-- columns the view's definition reads (the view reads them for it).
SELECT * FROM heavy;
SELECT relation, "column", reads, writes FROM uses WHERE relation = 'public.heavy';

-- A whole-row reference uses every column the relation has now.
SELECT n FROM note n;
SELECT relation, "column", reads, writes FROM uses WHERE relation = 'public.note';

-- A statement that names no column still uses the relation: recorded with
-- column NULL, shown here as (relation) (reads for SELECT; writes only for
-- an INSERT, e.g. INSERT ... DEFAULT VALUES; DELETE neither reads nor
-- writes a column, but uses the relation).
\pset null '(relation)'
CREATE TABLE audit (at timestamptz, what text);
SELECT count(*) FROM audit;
DELETE FROM audit;
SELECT relation, "column", reads, writes FROM uses WHERE relation = 'public.audit';
\pset null ''

-- System catalogs, information_schema and rollguard's own tables are not
-- recorded; nor are temporary tables.
SELECT count(*) > 0 AS some FROM pg_class WHERE relname = 'person';
SELECT count(*) > 0 AS some FROM information_schema.tables WHERE table_name = 'person';
SELECT count(*) >= 0 AS some FROM rollguard.history;
CREATE TEMP TABLE scratch (x integer);
INSERT INTO scratch SELECT 1;
SELECT DISTINCT relation FROM uses ORDER BY 1;

-- EXPLAIN without ANALYZE runs nothing: nothing is recorded.  EXPLAIN
-- ANALYZE runs the statement: recorded as the statement would be.
CREATE TABLE plan_only (a integer, b integer);
EXPLAIN (COSTS OFF) SELECT a FROM plan_only;
SELECT count(*) AS plan_only_uses FROM uses WHERE relation = 'public.plan_only';
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT b FROM plan_only;
SELECT relation, "column", reads, writes FROM uses WHERE relation = 'public.plan_only';

-- A statement refused for lack of privileges records nothing.
CREATE ROLE rg_observed_app LOGIN;
CREATE TABLE secret (code text);
SET ROLE rg_observed_app;
SELECT code FROM secret;
RESET ROLE;
SELECT count(*) AS secret_uses FROM uses WHERE relation = 'public.secret';

------------------------------------------------------------------------------
-- Another version: uses are kept per version.  application_name tags too.
------------------------------------------------------------------------------
RESET rollguard.version;
SET application_name = 'rollguard:mirror-3@42';
SELECT weight FROM person WHERE id = 1;
RESET application_name;
SELECT version, relation, "column", reads, writes FROM uses WHERE version = '42';

-- Untagged again: nothing more is recorded.
RESET rollguard.deployment;
SELECT body FROM note;
SELECT version, count(*) FROM uses GROUP BY version ORDER BY version;

------------------------------------------------------------------------------
-- rollguard.observe = off: a tagged session records nothing.  For data
-- migrations, run under the new version's tag: reading the old column
-- they copy is not a use by the new version's code.
------------------------------------------------------------------------------
SET rollguard.deployment = 'mirror-2';
SET rollguard.version = '43';
SET rollguard.observe = off;
SELECT nickname FROM person WHERE id = 1;
RESET rollguard.observe;
SELECT count(*) AS uses_by_43 FROM uses WHERE version = '43';
-- back on: recorded
SELECT nickname FROM person WHERE id = 1;
SELECT version, relation, "column", reads, writes FROM uses WHERE version = '43';
RESET rollguard.deployment;
RESET rollguard.version;

------------------------------------------------------------------------------
-- Only sessions whose login role may provide evidence are recorded: a
-- superuser's (as above), or a member of rollguard_tag's.  Anyone else
-- may set a tag -- rollguard.sessions lists it, trusted false -- but what
-- its statements use is not recorded under it.
------------------------------------------------------------------------------
CREATE ROLE rg_forger;
CREATE ROLE rg_web IN ROLE rollguard_tag;
GRANT SELECT ON person, note TO rg_forger, rg_web;
SET SESSION AUTHORIZATION rg_forger;
SET rollguard.deployment = 'mirror-2';
SET rollguard.version = '666';
SELECT deployment, version, source, trusted FROM rollguard.sessions;
SELECT body FROM note;
RESET SESSION AUTHORIZATION;
SELECT count(*) AS uses_by_666 FROM uses WHERE version = '666';
-- The same tag, once the role is granted rollguard_tag, is evidence.
GRANT rollguard_tag TO rg_forger;
SET SESSION AUTHORIZATION rg_forger;
SELECT deployment, version, source, trusted FROM rollguard.sessions;
SELECT body FROM note;
RESET SESSION AUTHORIZATION;
SELECT version, relation, "column", reads, writes FROM uses WHERE version = '666';
-- The application's role, by application_name.
SET SESSION AUTHORIZATION rg_web;
RESET rollguard.deployment;
SET application_name = 'rollguard:web@44';
SELECT deployment, version, source, trusted FROM rollguard.sessions ORDER BY source;
SELECT name FROM person WHERE id = 1;
RESET application_name;
RESET rollguard.version;
RESET SESSION AUTHORIZATION;
SELECT version, relation, "column", reads, writes FROM uses WHERE version = '44';
SELECT rollguard.clear_observed(v) FROM unnest(ARRAY['44', '666']) v;
REVOKE SELECT ON person, note FROM rg_forger, rg_web;
DROP ROLE rg_forger, rg_web;

-- The table's state: entries (of every database), the limit, uses not
-- recorded because it was full.
SELECT entries > 0 AS has_entries, max_entries, dropped FROM rollguard.observed_stats;

------------------------------------------------------------------------------
-- rollguard.clear_observed(version, relation, column): forgets matching
-- uses (NULL: any) and says how many; recorded in rollguard.history.
------------------------------------------------------------------------------
SELECT rollguard.clear_observed('43');
SELECT rollguard.clear_observed('41', 'person', 'nickname');
SELECT rollguard.clear_observed(relation => 'note');
SELECT rollguard.clear_observed("column" => 'weight');
SELECT version, relation, "column", reads, writes FROM uses;
-- nothing matches: 0
SELECT rollguard.clear_observed('2026.11.20-3');
SELECT rollguard.clear_observed('41', 'person', 'no_such_column');
-- (but the first, above, whose count depends on earlier suites)
SELECT action, version, relation, "column", detail FROM rollguard.history
 WHERE action = 'clear_observed' ORDER BY id OFFSET 1;

-- A session that still uses a cleared column records it again at once.
SET rollguard.deployment = 'mirror-2';
SET rollguard.version = '41';
SELECT nickname FROM person WHERE id = 1;
RESET rollguard.deployment;
RESET rollguard.version;
SELECT version, relation, "column", reads, writes FROM uses WHERE "column" = 'nickname';
-- So does the very same statement run again by the same session, with the
-- same tags (a backend skips what it recorded less than a minute ago, but
-- not what was cleared meanwhile).
SET rollguard.deployment = 'mirror-2';
SET rollguard.version = '41';
SELECT nickname FROM person WHERE id = 1;
SELECT rollguard.clear_observed('41', 'person', 'nickname');
SELECT nickname FROM person WHERE id = 1;
RESET rollguard.deployment;
RESET rollguard.version;
SELECT version, relation, "column", reads, writes FROM uses WHERE "column" = 'nickname';
-- A backend remembers the last two uses of a table (a transaction that
-- updates a row and reads it back, run again and again): both are recorded
-- again after they were cleared, each the way it used the column.
SET rollguard.deployment = 'mirror-2';
SET rollguard.version = '41';
UPDATE person SET nickname = nickname WHERE id = 1;
SELECT nickname FROM person WHERE id = 1;
UPDATE person SET nickname = nickname WHERE id = 1;
SELECT nickname FROM person WHERE id = 1;
SELECT rollguard.clear_observed('41', 'person', 'nickname');
UPDATE person SET nickname = nickname WHERE id = 1;
SELECT nickname FROM person WHERE id = 1;
RESET rollguard.deployment;
RESET rollguard.version;
SELECT version, relation, "column", reads, writes FROM uses WHERE "column" = 'nickname';

-- Bad input: an unknown relation, a bad version label (as everywhere in
-- rollguard), a column name longer than a name is cut like any identifier.
SELECT rollguard.clear_observed(relation => 'no_such_table');
SELECT rollguard.clear_observed(relation => 4294967295::oid::regclass);
SELECT rollguard.clear_observed(repeat('9', 201));
SELECT rollguard.clear_observed('');
SELECT rollguard.clear_observed("column" => repeat('c', 100));

------------------------------------------------------------------------------
-- Privileges: everyone may read the views; only an administrator
-- (rollguard_admin) or a superuser may clear.
------------------------------------------------------------------------------
CREATE ROLE rg_observed_deployer LOGIN;
CREATE ROLE rg_observed_dba LOGIN;
GRANT rollguard_deploy TO rg_observed_deployer;
GRANT rollguard_admin TO rg_observed_dba;
SET ROLE rg_observed_app;
SELECT count(*) > 0 AS readable FROM rollguard.observed;
SELECT max_entries FROM rollguard.observed_stats;
SELECT rollguard.clear_observed('41');
SELECT rollguard._clear_observed('41', NULL, NULL, NULL);
SET ROLE rg_observed_deployer;
SELECT rollguard.clear_observed('41');
SET ROLE rg_observed_dba;
SELECT rollguard.clear_observed('41');
RESET ROLE;
SELECT action, who, version, detail FROM rollguard.history
 WHERE action = 'clear_observed' ORDER BY id DESC LIMIT 1;
SELECT rollguard.clear_observed();
SELECT * FROM uses;

-- Clean up.
DROP TABLE person, note, audit, secret, plan_only CASCADE;
DROP ROLE rg_observed_app, rg_observed_deployer, rg_observed_dba;
DROP VIEW uses;
DROP EXTENSION rollguard;
