--
-- sessions: application connections say which deployment and version they
-- run, and while connected that version counts as live for that deployment
-- (even if no deploy script registered it).  Two forms:
--   the settings rollguard.deployment and rollguard.version (connection
--   options "-c rollguard.deployment=mirror-2 -c rollguard.version=41",
--   ALTER ROLE ... SET, or SET);
--   application_name 'rollguard:<deployment>@<version>', which connection
--   poolers pass through.
-- This suite tags its own session.  A session is not evidence against its
-- own statements, so what other sessions' tags block is shown with several
-- sessions in test/t/006_sessions.pl.
--
CREATE EXTENSION rollguard;
\set VERBOSITY default
\set SHOW_CONTEXT never

-- The view lists the tagged sessions of this database; pids differ from run
-- to run, so this suite shows whether the row is its own session.
CREATE VIEW my_tags AS
SELECT deployment, version, pid = pg_backend_pid() AS mine, source, registered
  FROM rollguard.sessions ORDER BY source, deployment, version;

-- Untagged: both settings empty, nothing listed.
SHOW rollguard.deployment;
SHOW rollguard.version;
SELECT * FROM my_tags;

-- 41 uses person.weight, 42 no longer does; "original" runs 42.
CREATE TABLE person (id serial PRIMARY KEY, name text NOT NULL, weight integer);
SELECT rollguard.register_version('41', '{"relations": {"public.person": {
         "id": {"writes": false}, "name": {"nullable": false}, "weight": {}}}}');
SELECT rollguard.register_version('42', '{"relations": {"public.person": {
         "id": {"writes": false}, "name": {"nullable": false}}}}');
SELECT rollguard.deploy('original', '42');

------------------------------------------------------------------------------
-- The settings: a session is tagged once both are set, and untagged as
-- soon as either is reset.
------------------------------------------------------------------------------
SET rollguard.deployment = 'mirror-2';
SELECT * FROM my_tags;
SET rollguard.version = '41';
SELECT * FROM my_tags;
RESET rollguard.version;
SELECT * FROM my_tags;
SET rollguard.version = '41';

-- SET LOCAL lasts for the transaction; a rolled-back SET is undone.
BEGIN;
SET LOCAL rollguard.version = '43';
SELECT * FROM my_tags;
COMMIT;
SELECT * FROM my_tags;
BEGIN;
SET rollguard.deployment = 'mirror-3';
SELECT * FROM my_tags;
ROLLBACK;
SELECT * FROM my_tags;

-- registered: whether the registry knows the version.
SET rollguard.version = '2026.11.20-3';
SELECT * FROM my_tags;
SET rollguard.version = '41';

-- The session's own tag is not evidence against its own statements: the
-- code that runs a migration is the code it was written for.  (mirror-2 on
-- 41 uses weight, yet this session may drop it; so may the dry run.)
BEGIN;
ALTER TABLE person DROP COLUMN weight;
ROLLBACK;
SELECT * FROM rollguard.check('ALTER TABLE person DROP COLUMN weight');

------------------------------------------------------------------------------
-- Bad tag values are refused with an SQLSTATE, as the deploy functions
-- refuse bad labels; the tag stays as it was.
------------------------------------------------------------------------------
SET rollguard.deployment = '';
\echo SQLSTATE :SQLSTATE
SET rollguard.version = '';
\echo SQLSTATE :SQLSTATE
SET rollguard.deployment = ' mirror-2';
\echo SQLSTATE :SQLSTATE
SELECT set_config('rollguard.version', '41' || chr(160), false);  -- no-break space
\echo SQLSTATE :SQLSTATE
SET rollguard.version = E'41\n';
\echo SQLSTATE :SQLSTATE
-- a bidirectional override (U+202E) would make the name display reversed
SELECT set_config('rollguard.deployment',
                  'mirror-' || convert_from('\xe280ae', 'UTF8') || '2', false);
\echo SQLSTATE :SQLSTATE
SELECT set_config('rollguard.version', repeat('9', 201), false);
\echo SQLSTATE :SQLSTATE
-- ALTER ROLE and ALTER DATABASE check the value before storing it
ALTER ROLE CURRENT_USER SET rollguard.deployment = '';
\echo SQLSTATE :SQLSTATE
SELECT * FROM my_tags;

-- 200 bytes is the limit; any printable text is a label.
SELECT length(set_config('rollguard.version', repeat('9', 200), false));
SET rollguard.deployment = 'Mirror Zwei (Zurich)';
SELECT deployment, length(version), mine, source FROM my_tags;
SET rollguard.deployment = 'mirror-2';
SET rollguard.version = '41';

------------------------------------------------------------------------------
-- application_name 'rollguard:<deployment>@<version>', split at the last
-- '@'.  It counts beside the settings (source "application_name"); anything
-- else is an ordinary application name, not a tag.
------------------------------------------------------------------------------
SET application_name = 'rollguard:mirror-3@43';
SELECT * FROM my_tags;
RESET application_name;

-- What each application_name is: a tag (deployment, version), or an
-- ordinary name (NULL).  tag_of() sets it for one statement and reads the
-- view.
CREATE FUNCTION pg_temp.tag_of(appname text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('application_name', appname, true);
    RETURN (SELECT format('(%s, %s)', deployment, version) FROM rollguard.sessions
             WHERE source = 'application_name' AND pid = pg_backend_pid());
END
$$;
SELECT appname, pg_temp.tag_of(appname) AS tag
  FROM (VALUES ('rollguard:mirror-3@43'),
               ('rollguard:team@eu@2026.11.20-3'),    -- split at the last '@'
               ('mirror-3@43'),                       -- no prefix
               ('Rollguard:mirror-3@43'),             -- the prefix is case-sensitive
               ('rollguard:mirror-3'),                -- no '@'
               ('rollguard:@43'),                     -- empty parts
               ('rollguard:mirror-3@'),
               ('rollguard: mirror-3@43'),            -- white space around a part
               ('rollguard:mirror-3@43 ')) AS t(appname);

-- To find application_name tags, a checked statement reads the server's
-- backend status; the session's own pg_stat_activity is not left frozen at
-- that moment (it shows the query that reads it).
BEGIN;
ALTER TABLE person DROP COLUMN weight;
SELECT query FROM pg_stat_activity WHERE pid = pg_backend_pid();
ROLLBACK;

------------------------------------------------------------------------------
-- Untagged again: nothing listed, and every other suite shows that
-- untagged sessions change nothing.
------------------------------------------------------------------------------
RESET rollguard.deployment;
RESET rollguard.version;
SELECT * FROM my_tags;

-- Anyone may tag a session and read the view.
CREATE ROLE rg_app LOGIN;
SET ROLE rg_app;
SET rollguard.deployment = 'mirror-2';
SET rollguard.version = '41';
SELECT deployment, version, pid = pg_backend_pid() AS mine, source, registered
  FROM rollguard.sessions;
RESET rollguard.deployment;
RESET rollguard.version;
RESET ROLE;

-- The counters of live use agree with a recount from scratch.
SELECT * FROM rollguard._live_drift();

-- Clean up.
SELECT rollguard.remove_deployment('original');
DROP ROLE rg_app;
DROP VIEW my_tags;
DROP TABLE person;
DROP EXTENSION rollguard;
