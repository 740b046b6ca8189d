--
-- deploy: the deploy-script API that says what runs where.
--
--   deploy(deployment, version)          the deployment runs exactly version
--   begin_rollout(deployment, version)   version starts beside the running one
--   finish_rollout(deployment, version)  only version remains
--   abort_rollout(deployment, version)   version is gone again
--   remove_deployment(deployment)        a decommissioned deployment
--   stop_using / never_null              amend inferred contracts
--
-- and the views rollguard.deployments and rollguard.versions that show it.
-- A version deployed without registration gets an inferred contract: every
-- column of every user relation at the moment it first goes live.
--
CREATE EXTENSION rollguard;
\set VERBOSITY default
\set SHOW_CONTEXT never

CREATE TABLE person (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                     name text NOT NULL, weight numeric, height numeric,
                     created timestamptz NOT NULL DEFAULT now());
CREATE TABLE site_settings (key text PRIMARY KEY, value text);

--
-- deploy() of an unknown version registers it with an inferred contract,
-- taken now: 7 columns.  A column the database fills in (a default, an
-- identity) is not written by the code on INSERT; a NOT NULL column is
-- never NULL.
--
SELECT rollguard.deploy('original', '1.9');
SELECT version, contract, contract_taken_at IS NOT NULL AS taken, columns, live_in
  FROM rollguard.versions;
SELECT deployment, version, state, since IS NOT NULL AS has_since, declared_contract
  FROM rollguard.deployments;
SELECT relname, attname, writes, nullable
  FROM rollguard.effective_contract WHERE version = '1.9'
 ORDER BY relname, attname;

-- A table created after 1.9 went live is not in its contract: 1.9's code
-- cannot know it, so its columns may be dropped while 1.9 is live; the
-- columns 1.9 saw may not.
CREATE TABLE audit_log (id int, note text);
ALTER TABLE audit_log DROP COLUMN note;
ALTER TABLE person DROP COLUMN height;
\echo SQLSTATE :SQLSTATE
SELECT version, columns FROM rollguard.versions;

-- A version registered without a manifest has no contract until it first
-- goes live; then it sees audit_log too (8 columns).
SELECT rollguard.register_version('1.10');
SELECT version, contract_taken_at IS NOT NULL AS taken, columns
  FROM rollguard.versions ORDER BY rollguard.version_sort_key(version);

--
-- deploy() is idempotent: deploying what already runs changes nothing,
-- not even "since".  Deploying another version replaces what runs.
--
CREATE TEMP TABLE before AS SELECT * FROM rollguard.deployments;
SELECT rollguard.deploy('original', '1.9');
SELECT count(*) AS unchanged
  FROM rollguard.deployments d JOIN before b USING (deployment, version, state, since);
SELECT rollguard.deploy('original', '1.10');
SELECT deployment, version, state FROM rollguard.deployments;
SELECT version, contract_taken_at IS NOT NULL AS taken, columns, live_in
  FROM rollguard.versions ORDER BY rollguard.version_sort_key(version);

--
-- A rolling update: begin_rollout() makes the new version live beside the
-- running one (state 'rolling out'); both count for the guard.  Beginning
-- the same rollout again is a no-op.
--
SELECT rollguard.deploy('mirror-2', '1.10');
SELECT rollguard.begin_rollout('mirror-2', '1.11');
SELECT rollguard.begin_rollout('mirror-2', '1.11');
SELECT deployment, version, state
  FROM rollguard.deployments
 ORDER BY rollguard.version_sort_key(deployment), rollguard.version_sort_key(version);
SELECT version, live_in FROM rollguard.versions
 ORDER BY rollguard.version_sort_key(version);
ALTER TABLE person DROP COLUMN height;
\echo SQLSTATE :SQLSTATE

-- One rollout at a time per deployment; a rollout starts from a running
-- deployment; and it must bring a version the deployment does not run.
SELECT rollguard.begin_rollout('mirror-2', '1.12');
\echo SQLSTATE :SQLSTATE
SELECT rollguard.begin_rollout('mirror-3', '1.11');
\echo SQLSTATE :SQLSTATE
SELECT rollguard.begin_rollout('original', '1.10');
\echo SQLSTATE :SQLSTATE
SELECT deployment, version, state
  FROM rollguard.deployments
 ORDER BY rollguard.version_sort_key(deployment), rollguard.version_sort_key(version);

-- finish_rollout(): only the new version remains, now running.  Finishing
-- it again is a no-op; a version that is not live there, or a deployment
-- that does not exist, is an error.
SELECT rollguard.finish_rollout('mirror-2', '1.11');
SELECT rollguard.finish_rollout('mirror-2', '1.11');
SELECT deployment, version, state
  FROM rollguard.deployments
 ORDER BY rollguard.version_sort_key(deployment), rollguard.version_sort_key(version);
SELECT rollguard.finish_rollout('mirror-2', '1.12');
\echo SQLSTATE :SQLSTATE
SELECT rollguard.finish_rollout('mirror-3', '1.11');
\echo SQLSTATE :SQLSTATE

-- abort_rollout(): the new version is gone again and the running one
-- remains.  Aborting again is a no-op; aborting the version the deployment
-- runs is refused (that is deploy() or remove_deployment()).
SELECT rollguard.begin_rollout('mirror-2', '1.12');
SELECT rollguard.abort_rollout('mirror-2', '1.12');
SELECT rollguard.abort_rollout('mirror-2', '1.12');
SELECT deployment, version, state
  FROM rollguard.deployments
 ORDER BY rollguard.version_sort_key(deployment), rollguard.version_sort_key(version);
SELECT rollguard.abort_rollout('mirror-2', '1.11');
\echo SQLSTATE :SQLSTATE
SELECT rollguard.abort_rollout('mirror-3', '1.11');
\echo SQLSTATE :SQLSTATE

-- finish_rollout() naming the version the deployment runs, during a
-- rollout of another one, calls the rollout off: only the running version
-- remains, running since it started (as abort_rollout() of the new one).
SELECT rollguard.begin_rollout('mirror-2', '1.12');
CREATE TEMP TABLE before_call_off AS
SELECT * FROM rollguard.deployments WHERE deployment = 'mirror-2' AND version = '1.11';
SELECT rollguard.finish_rollout('mirror-2', '1.11');
SELECT deployment, version, state
  FROM rollguard.deployments
 ORDER BY rollguard.version_sort_key(deployment), rollguard.version_sort_key(version);
SELECT count(*) AS unchanged
  FROM rollguard.deployments d JOIN before_call_off b USING (deployment, version, state, since);

-- deploy() during a rollout settles the deployment on exactly one version.
SELECT rollguard.begin_rollout('mirror-2', '1.12');
SELECT rollguard.deploy('mirror-2', '1.12');
SELECT deployment, version, state
  FROM rollguard.deployments
 ORDER BY rollguard.version_sort_key(deployment), rollguard.version_sort_key(version);

--
-- remove_deployment(): its versions no longer count as live (they stay
-- registered).  Removing a deployment that does not exist is an error
-- (42704 undefined_object).
--
SELECT rollguard.remove_deployment('mirror-2');
SELECT deployment, version, state FROM rollguard.deployments;
SELECT version, live_in FROM rollguard.versions
 ORDER BY rollguard.version_sort_key(version);
SELECT rollguard.remove_deployment('mirror-2');
\echo SQLSTATE :SQLSTATE
SELECT rollguard.remove_deployment('Original');
\echo SQLSTATE :SQLSTATE

--
-- stop_using() / never_null() name an existing column of a table, view,
-- materialized view or foreign table; anything else is refused with a
-- proper SQLSTATE and nothing is declared.
--
CREATE SEQUENCE person_seq;
CREATE INDEX person_name_idx ON person (name);
SELECT rollguard.stop_using(NULL, 'weight', '1.10');
\echo SQLSTATE :SQLSTATE
SELECT rollguard.stop_using('person', NULL, '1.10');
\echo SQLSTATE :SQLSTATE
SELECT rollguard.stop_using('person', '', '1.10');
\echo SQLSTATE :SQLSTATE
SELECT rollguard.stop_using('person', 'no_such_column', '1.10');
\echo SQLSTATE :SQLSTATE
SELECT rollguard.never_null('person', 'ctid', '1.10');
\echo SQLSTATE :SQLSTATE
SELECT rollguard.never_null('audit_log', 'note', '1.10');
\echo SQLSTATE :SQLSTATE
SELECT rollguard.never_null('person_seq', 'last_value', '1.10');
\echo SQLSTATE :SQLSTATE
SELECT rollguard.stop_using('person_name_idx', 'name', '1.10');
\echo SQLSTATE :SQLSTATE
-- the system's relations are not guarded: nothing to declare there either
SELECT rollguard.stop_using('information_schema.tables', 'table_name', '1.10');
\echo SQLSTATE :SQLSTATE
SELECT rollguard.never_null('pg_class', 'relname', '1.10');
\echo SQLSTATE :SQLSTATE
SELECT rollguard.stop_using('no_such_table', 'weight', '1.10');
\echo SQLSTATE :SQLSTATE
SELECT count(*) AS declarations FROM rollguard.declarations;

--
-- stop_using() and never_null() amend inferred contracts from
-- since_version on, in version order: 1.10 and every later version (1.11,
-- 1.12, ...) no longer uses person.height and always writes a non-NULL
-- site_settings.value, while 1.9 still may (1.9 comes before 1.10, although
-- the text '1.9' sorts after '1.10').  So the drop and the SET NOT NULL
-- wait for the last deployment running 1.9.  Declared contracts (with a
-- manifest) are not amended: they say it all themselves.
--
SELECT rollguard.deploy('mirror-2', '1.9');
SELECT rollguard.stop_using('person', 'height', '1.10');
SELECT rollguard.never_null('site_settings', 'value', '1.10');
SELECT relation, "column", kind, since_version,
       declared_at IS NOT NULL AS has_declared_at,
       declared_by = session_user AS declared_by_me
  FROM rollguard.declarations ORDER BY relation, "column";
SELECT version, relname, attname, writes, nullable
  FROM rollguard.effective_contract
 WHERE (relname, attname) IN (('person', 'height'), ('site_settings', 'value'))
 ORDER BY rollguard.version_sort_key(version), relname, attname;
SELECT version, columns, live_in FROM rollguard.versions
 ORDER BY rollguard.version_sort_key(version);

-- Refused: mirror-2 runs 1.9, which still uses height and may write NULL
-- to value.  The original, on 1.10, does not block.
ALTER TABLE person DROP COLUMN height;
\echo SQLSTATE :SQLSTATE
ALTER TABLE site_settings ALTER COLUMN value SET NOT NULL;
\echo SQLSTATE :SQLSTATE
SELECT attname, attnotnull FROM pg_attribute
 WHERE (attrelid, attname) IN (('person'::regclass, 'height'), ('site_settings'::regclass, 'value'))
 ORDER BY attname;

-- Once mirror-2 runs 1.10 too, both go through.
SELECT rollguard.deploy('mirror-2', '1.10');
ALTER TABLE person DROP COLUMN height;
ALTER TABLE site_settings ALTER COLUMN value SET NOT NULL;
SELECT attname, attnotnull FROM pg_attribute
 WHERE (attrelid, attname) IN (('person'::regclass, 'height'), ('site_settings'::regclass, 'value'))
 ORDER BY attname;

-- Declaring again for the same column moves its since_version: from 1.11
-- to 1.12, so 1.11 uses person.name again.
SELECT rollguard.stop_using('person', 'name', '1.11');
SELECT version, attname FROM rollguard.effective_contract
 WHERE relname = 'person' AND attname = 'name'
 ORDER BY rollguard.version_sort_key(version);
SELECT rollguard.stop_using('person', 'name', '1.12');
SELECT relation, "column", kind, since_version
  FROM rollguard.declarations ORDER BY relation, "column";
SELECT version, attname FROM rollguard.effective_contract
 WHERE relname = 'person' AND attname = 'name'
 ORDER BY rollguard.version_sort_key(version);
SELECT rollguard.remove_deployment('mirror-2');

--
-- The forward check.  Version 2.0 declares that it uses person.weight,
-- 2.1 no longer does.  Once every deployment runs 2.1 the contract
-- migration drops weight; rolling a deployment back to 2.0 (or to the
-- inferred 1.9, whose contract saw weight) would break it, so deploy() and
-- begin_rollout() refuse, naming the column and how it went.  Nothing is
-- recorded.
--
SELECT rollguard.register_version('2.0', '{"relations": {
    "person": {"id": {}, "name": {}, "weight": {}}}}');
SELECT rollguard.register_version('2.1', '{"relations": {
    "person": {"id": {}, "name": {}}}}');
SELECT rollguard.deploy('original', '2.0');
ALTER TABLE person DROP COLUMN weight;
\echo SQLSTATE :SQLSTATE
SELECT rollguard.deploy('original', '2.1');
ALTER TABLE person DROP COLUMN weight;
CREATE TEMP TABLE before_rollback AS SELECT * FROM rollguard.deployments;
SELECT rollguard.deploy('original', '2.0');
\echo SQLSTATE :SQLSTATE
SELECT rollguard.begin_rollout('original', '2.0');
\echo SQLSTATE :SQLSTATE
SELECT rollguard.deploy('mirror-2', '1.9');
\echo SQLSTATE :SQLSTATE
SELECT (SELECT count(*) FROM rollguard.deployments) AS deployments,
       (SELECT count(*) FROM rollguard.deployments d
          JOIN before_rollback b USING (deployment, version, state, since)) AS unchanged;
SELECT version, live_in FROM rollguard.versions
 ORDER BY rollguard.version_sort_key(version);

-- A declared column that never existed is not "no longer": the expand
-- migration that adds it may simply not have run yet.
SELECT rollguard.register_version('3.0', '{"relations": {
    "person": {"id": {}, "name": {}, "email": {}}}}');
SELECT rollguard.deploy('original', '3.0');
SELECT deployment, version, state FROM rollguard.deployments;

-- Nor is a column a build brings back after it was dropped: 3.1, registered
-- after weight was dropped, uses "weight" again (its migration re-adds it),
-- so it may be rolled out before that migration runs.  2.0, registered
-- before the drop, is still refused.
SELECT rollguard.register_version('3.1', '{"relations": {
    "person": {"id": {}, "name": {}, "weight": {}}}}');
SELECT rollguard.begin_rollout('original', '3.1');
SELECT rollguard.abort_rollout('original', '3.1');
SELECT rollguard.begin_rollout('original', '2.0');
\echo SQLSTATE :SQLSTATE

--
-- Deployment names and version labels are validated by every function:
-- not NULL (22004), not empty (22023), at most 200 bytes (42622), no
-- control characters (22023, the DETAIL says which and where), no leading
-- or trailing white space (22023), no-break space included.
--
SELECT rollguard.deploy(NULL, '1.0');
SELECT rollguard.deploy('', '1.0');
SELECT rollguard.deploy(repeat('x', 300), '1.0');
SELECT rollguard.deploy(' original', '1.0');
SELECT rollguard.deploy('original', '3.0 ');
SELECT rollguard.deploy('original', E'3.0\x01');
\echo SQLSTATE :SQLSTATE

-- Every function, every kind of bad label: sqlstate_of() runs a call and
-- returns its SQLSTATE.
CREATE FUNCTION pg_temp.sqlstate_of(stmt text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN '00000';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END
$$;
CREATE TEMP TABLE registry_before AS
SELECT (SELECT count(*) FROM rollguard.versions) AS versions,
       (SELECT count(*) FROM rollguard.deployments) AS deployments,
       (SELECT count(*) FROM rollguard.declarations) AS declarations;
SELECT call,
       pg_temp.sqlstate_of(format(call, 'NULL')) AS "NULL",
       pg_temp.sqlstate_of(format(call, quote_literal(''))) AS "''",
       pg_temp.sqlstate_of(format(call, quote_literal(repeat('x', 300)))) AS "300 chars",
       pg_temp.sqlstate_of(format(call, quote_literal(E'mirror\n2'))) AS "newline",
       pg_temp.sqlstate_of(format(call, quote_literal(E'1.0\x01'))) AS "\x01",
       pg_temp.sqlstate_of(format(call, quote_literal(' 1.0'))) AS "leading space",
       pg_temp.sqlstate_of(format(call, quote_literal(chr(160) || '1.0'))) AS "no-break space"
  FROM (VALUES ('SELECT rollguard.register_version(%s)'),
               ('SELECT rollguard.register_version(%s, ''{"relations": {"person": {"id": {}}}}'')'),
               ('SELECT rollguard.deploy(%s, ''3.0'')'),
               ('SELECT rollguard.deploy(''original'', %s)'),
               ('SELECT rollguard.begin_rollout(%s, ''3.1'')'),
               ('SELECT rollguard.begin_rollout(''original'', %s)'),
               ('SELECT rollguard.finish_rollout(%s, ''3.0'')'),
               ('SELECT rollguard.finish_rollout(''original'', %s)'),
               ('SELECT rollguard.abort_rollout(%s, ''3.0'')'),
               ('SELECT rollguard.abort_rollout(''original'', %s)'),
               ('SELECT rollguard.remove_deployment(%s)'),
               ('SELECT rollguard.stop_using(''person'', ''name'', %s)'),
               ('SELECT rollguard.never_null(''person'', ''name'', %s)')) AS t(call);
SELECT 'before' AS "when", * FROM registry_before
UNION ALL
SELECT 'after',
       (SELECT count(*) FROM rollguard.versions),
       (SELECT count(*) FROM rollguard.deployments),
       (SELECT count(*) FROM rollguard.declarations);

-- The counters of live use agree with a recount from scratch.
SELECT * FROM rollguard._live_drift();

DROP EXTENSION rollguard;
DROP TABLE person, site_settings, audit_log;
DROP SEQUENCE person_seq;
