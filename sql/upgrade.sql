--
-- upgrade: ALTER EXTENSION rollguard UPDATE from 1.0 to 1.1 keeps the
-- registry (versions, contracts, deployments, declarations, removals) and
-- the history as they were, and the guard decides as before.  1.1 adds the
-- roles rollguard_deploy and rollguard_admin and rollguard.override(); 1.2
-- the rollguard.sessions view; 1.3 the counters of live use the guard
-- reads first; 1.4 the triggers that let backends keep what they read; 1.5
-- drops the advisory locks of deploy steps (any role could take them); 1.6
-- closes ways around the guard and ways to stall it.
--
CREATE EXTENSION rollguard VERSION '1.0';
\set VERBOSITY default
\set SHOW_CONTEXT never

SELECT extversion FROM pg_extension WHERE extname = 'rollguard';
SELECT * FROM pg_extension_update_paths('rollguard') WHERE path IS NOT NULL ORDER BY 1, 2;

-- 1.0 has no override().
SELECT to_regprocedure('rollguard.override(regclass,name,text)') AS override;

------------------------------------------------------------------------------
-- A registry built with 1.0: declared versions 41 (uses weight) and 42 (no
-- longer does), an inferred version with a stop_using declaration, a
-- rollout under way, a column dropped (a recorded removal).
------------------------------------------------------------------------------
CREATE TABLE person (id int PRIMARY KEY, name text NOT NULL, weight numeric, legacy text);
SELECT rollguard.register_version('41', '{"relations": {"public.person": {"id": {"writes": false}, "name": {"nullable": false}, "weight": {}}}}');
SELECT rollguard.register_version('42', '{"relations": {"public.person": {"id": {"writes": false}, "name": {"nullable": false}}}}');
-- an older build, still registered when "legacy" is dropped below
SELECT rollguard.register_version('40', '{"relations": {"public.person": {"id": {}, "legacy": {}}}}');
SELECT rollguard.deploy('original', '42');
SELECT rollguard.deploy('mirror-2', '41');
SELECT rollguard.deploy('mirror-3', '41');
SELECT rollguard.begin_rollout('mirror-3', '42');
ALTER TABLE person DROP COLUMN legacy;
SELECT rollguard.deploy('batch', '2026.11.20-3');
SELECT rollguard.stop_using('person', 'weight', '2026.11.20-3');

SELECT deployment, version, state, declared_contract FROM rollguard.deployments ORDER BY 1, 2;
SELECT version, contract, columns, live_in FROM rollguard.versions
 ORDER BY rollguard.version_sort_key(version);

-- The decisions of 1.0: dropping weight is refused, naming mirror-2 and
-- mirror-3 (batch declared that it stopped using it); the dry run agrees.
ALTER TABLE person DROP COLUMN weight;
SELECT change, relation, "column", deployment, version, reason
  FROM rollguard.check('ALTER TABLE person DROP COLUMN weight; ALTER TABLE person RENAME COLUMN name TO full_name')
 ORDER BY 1, 4, 5;

-- Everything in the registry and the history, row by row, to compare after
-- the upgrade.
CREATE TEMP TABLE before_upgrade AS
SELECT 'version_registry' AS tab, to_jsonb(t) AS row FROM rollguard.version_registry t
UNION ALL SELECT 'contract', to_jsonb(t) FROM rollguard.contract t
UNION ALL SELECT 'deployment_state', to_jsonb(t) FROM rollguard.deployment_state t
UNION ALL SELECT 'declaration', to_jsonb(t) FROM rollguard.declaration t
UNION ALL SELECT 'removed_column', to_jsonb(t) FROM rollguard.removed_column t
UNION ALL SELECT 'history', to_jsonb(t) FROM rollguard.history t;
SELECT tab, count(*) FROM before_upgrade GROUP BY tab ORDER BY tab;

------------------------------------------------------------------------------
-- The upgrade.
------------------------------------------------------------------------------
ALTER EXTENSION rollguard UPDATE TO '1.1';
SELECT extversion FROM pg_extension WHERE extname = 'rollguard';

-- Registry and history are intact: the same rows, nothing more, nothing less.
CREATE TEMP TABLE after_upgrade AS
SELECT 'version_registry' AS tab, to_jsonb(t) AS row FROM rollguard.version_registry t
UNION ALL SELECT 'contract', to_jsonb(t) FROM rollguard.contract t
UNION ALL SELECT 'deployment_state', to_jsonb(t) FROM rollguard.deployment_state t
UNION ALL SELECT 'declaration', to_jsonb(t) FROM rollguard.declaration t
UNION ALL SELECT 'removed_column', to_jsonb(t) FROM rollguard.removed_column t
UNION ALL SELECT 'history', to_jsonb(t) FROM rollguard.history t;
SELECT b.tab, b.before, a.after,
       (SELECT count(*) FROM (SELECT row FROM before_upgrade WHERE tab = b.tab
                              EXCEPT ALL
                              SELECT row FROM after_upgrade WHERE tab = b.tab) x) AS lost,
       (SELECT count(*) FROM (SELECT row FROM after_upgrade WHERE tab = b.tab
                              EXCEPT ALL
                              SELECT row FROM before_upgrade WHERE tab = b.tab) x) AS gained
  FROM (SELECT tab, count(*) AS before FROM before_upgrade GROUP BY tab) b
  JOIN (SELECT tab, count(*) AS after FROM after_upgrade GROUP BY tab) a USING (tab)
 ORDER BY b.tab;

-- The registry tables are still kept by pg_dump.
SELECT c::regclass AS dumped
  FROM pg_extension, unnest(extconfig) c
 WHERE extname = 'rollguard' ORDER BY c::regclass::text COLLATE "C";

-- The same decisions: the drop is still refused, naming the same
-- deployments; the dry run returns the same rows.
ALTER TABLE person DROP COLUMN weight;
SELECT change, relation, "column", deployment, version, reason
  FROM rollguard.check('ALTER TABLE person DROP COLUMN weight; ALTER TABLE person RENAME COLUMN name TO full_name')
 ORDER BY 1, 4, 5;
-- and the forward check still knows the column 1.0 saw dropped
SELECT rollguard.deploy('mirror-2', '40');

------------------------------------------------------------------------------
-- What 1.1 adds: the two roles (created if missing), their grants, and
-- override() for administrators only.
------------------------------------------------------------------------------
SELECT r.rolname, r.rolcanlogin,
       ARRAY(SELECT m.rolname FROM pg_auth_members a JOIN pg_roles m ON m.oid = a.roleid
              WHERE a.member = r.oid ORDER BY 1) AS member_of
  FROM pg_roles r WHERE r.rolname IN ('rollguard_deploy', 'rollguard_admin')
 ORDER BY 1;
SELECT p.oid::regprocedure AS function,
       has_function_privilege('rollguard_deploy', p.oid, 'EXECUTE') AS deploy,
       has_function_privilege('rollguard_admin', p.oid, 'EXECUTE') AS admin,
       COALESCE((SELECT bool_or(a.grantee = 0) FROM aclexplode(p.proacl) a), true) AS public
  FROM pg_proc p
 WHERE p.pronamespace = 'rollguard'::regnamespace AND p.proname !~ '^_'
 ORDER BY p.oid::regprocedure::text COLLATE "C";

-- New history rows follow the old ones, in the name of the role that
-- calls; from now on deploy scripts and administrators use the roles of 1.1.
CREATE ROLE rg_deployer LOGIN;
CREATE ROLE rg_dba LOGIN;
GRANT rollguard_deploy TO rg_deployer;
GRANT rollguard_admin TO rg_dba;
ALTER TABLE person OWNER TO rg_dba;

SET ROLE rg_deployer;
SELECT rollguard.finish_rollout('mirror-3', '42');
RESET ROLE;

SET ROLE rg_dba;
BEGIN;
SELECT rollguard.override('person', 'weight', 'mirror-2 is being decommissioned tonight');
ALTER TABLE person DROP COLUMN weight;
ROLLBACK;
-- the override ended with its transaction
ALTER TABLE person DROP COLUMN weight;
BEGIN;
SELECT rollguard.override('person', 'weight', 'mirror-2 is being decommissioned tonight');
ALTER TABLE person DROP COLUMN weight;
COMMIT;
RESET ROLE;

SELECT CASE WHEN r.rolsuper THEN '(superuser)' ELSE h.who::text END AS who,
       h.action, h.deployment, h.version, h.relation, h."column", h.reason
  FROM rollguard.history h LEFT JOIN pg_roles r ON r.rolname = h.who
 WHERE h.id > (SELECT max((row ->> 'id')::bigint) FROM before_upgrade WHERE tab = 'history')
 ORDER BY h.id;

------------------------------------------------------------------------------
-- 1.1 to 1.2: adds the rollguard.sessions view (live tagged sessions); the
-- registry and the history stay as they were.
------------------------------------------------------------------------------
CREATE TEMP VIEW registry_rows AS
SELECT to_jsonb(t) AS row FROM rollguard.version_registry t
UNION ALL SELECT to_jsonb(t) FROM rollguard.contract t
UNION ALL SELECT to_jsonb(t) FROM rollguard.deployment_state t
UNION ALL SELECT to_jsonb(t) FROM rollguard.declaration t
UNION ALL SELECT to_jsonb(t) FROM rollguard.removed_column t
UNION ALL SELECT to_jsonb(t) FROM rollguard.history t;
CREATE TEMP TABLE before_1_2 AS SELECT * FROM registry_rows;
SELECT to_regclass('rollguard.sessions') AS sessions;
ALTER EXTENSION rollguard UPDATE TO '1.2';
SELECT extversion FROM pg_extension WHERE extname = 'rollguard';
SELECT (SELECT count(*) FROM before_1_2) AS rows,
       (SELECT count(*) FROM (SELECT row FROM before_1_2 EXCEPT ALL
                              SELECT row FROM registry_rows) x) AS lost,
       (SELECT count(*) FROM (SELECT row FROM registry_rows EXCEPT ALL
                              SELECT row FROM before_1_2) x) AS gained;
SET rollguard.deployment = 'mirror-2';
SET rollguard.version = '41';
SELECT deployment, version, pid = pg_backend_pid() AS mine, source, registered
  FROM rollguard.sessions;
-- (before 1.3, what tagged sessions use is not recorded: there would be no
-- rollguard.observed to show it, nor clear_observed() to forget it)
SELECT count(*) FROM person WHERE name IS NOT NULL;
RESET rollguard.deployment;
RESET rollguard.version;

------------------------------------------------------------------------------
-- 1.2 to 1.3: adds the counters of live use that the guard reads before
-- anything else (rollguard.live_version, live_column, live_relation),
-- computed from the registry by the update.  Until the update, the guard
-- (the new library) reads the registry as 1.2 did, and decides the same.
------------------------------------------------------------------------------
ALTER TABLE person RENAME COLUMN name TO full_name;
CREATE TEMP TABLE before_1_3 AS SELECT * FROM registry_rows;
ALTER EXTENSION rollguard UPDATE TO '1.3';
SELECT extversion FROM pg_extension WHERE extname = 'rollguard';
SELECT (SELECT count(*) FROM before_1_3) AS rows,
       (SELECT count(*) FROM (SELECT row FROM before_1_3 EXCEPT ALL
                              SELECT row FROM registry_rows) x) AS lost,
       (SELECT count(*) FROM (SELECT row FROM registry_rows EXCEPT ALL
                              SELECT row FROM before_1_3) x) AS gained;
-- Live are 41 (mirror-2), 42 (original, mirror-3) and the inferred
-- 2026.11.20-3 (batch), which no longer uses weight.
SELECT * FROM rollguard.live_version ORDER BY rollguard.version_sort_key(version);
SELECT * FROM rollguard.live_relation WHERE nspname = 'public';
SELECT * FROM rollguard.live_column WHERE nspname = 'public' ORDER BY attname;
-- They agree with a recount from scratch.
SELECT * FROM rollguard._live_drift();
-- Nothing was recorded under 1.2.
SELECT count(*) FROM rollguard.observed;
-- The same decision as before the update.
ALTER TABLE person RENAME COLUMN name TO full_name;
-- The counters follow the deploy steps from now on.
SELECT rollguard.deploy('mirror-2', '42');
SELECT * FROM rollguard.live_version ORDER BY rollguard.version_sort_key(version);
SELECT * FROM rollguard._live_drift();

------------------------------------------------------------------------------
-- 1.3 to 1.4: the registry tables the guard probes announce their changes
-- (a trigger sends a relcache invalidation), so that each backend keeps
-- what its probes found between checks.  Until the update, nothing is kept.
------------------------------------------------------------------------------
ALTER EXTENSION rollguard UPDATE TO '1.4';
SELECT extversion FROM pg_extension WHERE extname = 'rollguard';
SELECT tgrelid::regclass, tgname, tgenabled FROM pg_trigger
 WHERE tgname LIKE 'registry_changed%' ORDER BY tgrelid::regclass::text, tgname;
-- The same decision, checked twice (the second from what the first read).
ALTER TABLE person RENAME COLUMN name TO full_name;
ALTER TABLE person RENAME COLUMN name TO full_name;
SELECT * FROM rollguard._live_drift();

------------------------------------------------------------------------------
-- 1.4 to 1.5: deploy steps and registrations no longer take advisory locks
-- (keys any role can take and hold); EXCLUSIVE on rollguard.live_version,
-- which only rollguard's functions take, runs them one at a time.
------------------------------------------------------------------------------
SELECT count(*) AS functions_with_advisory_locks FROM pg_proc
 WHERE pronamespace = 'rollguard'::regnamespace AND prosrc LIKE '%advisory%';
ALTER EXTENSION rollguard UPDATE TO '1.5';
SELECT extversion FROM pg_extension WHERE extname = 'rollguard';
SELECT count(*) AS functions_with_advisory_locks FROM pg_proc
 WHERE pronamespace = 'rollguard'::regnamespace AND prosrc LIKE '%advisory%';
-- Deploy steps and registrations work as before.
SELECT rollguard.register_version('44', '{"relations": {"public.person": {"id": {"writes": false}}}}');
SELECT rollguard.deploy('mirror-3', '44');
SELECT rollguard.begin_rollout('mirror-3', '42');
SELECT rollguard.abort_rollout('mirror-3', '42');
SELECT deployment, version, state FROM rollguard.deployments WHERE deployment = 'mirror-3';
SELECT * FROM rollguard._live_drift();

------------------------------------------------------------------------------
-- 1.5 to 1.6: see rollguard--1.5--1.6.sql.  Tagged sessions count as
-- evidence only if their role is a superuser or has rollguard_tag: the
-- update grants it to roles whose settings tag their sessions (rg_tagger)
-- and warns, naming them; roles that tag by connection options must be
-- granted it by hand.  The manifest helpers no longer run with the
-- caller's search_path (bare names still resolve against it).
------------------------------------------------------------------------------
CREATE ROLE rg_tagger;
ALTER ROLE rg_tagger SET rollguard.deployment = 'mirror-2';
CREATE ROLE rg_app_named;
ALTER ROLE rg_app_named SET application_name = 'rollguard:mirror-2@41';
CREATE ROLE rg_untagged;
ALTER EXTENSION rollguard UPDATE TO '1.6';
SELECT extversion FROM pg_extension WHERE extname = 'rollguard';
SELECT r AS role, pg_has_role(r, 'rollguard_tag', 'USAGE') AS may_tag
  FROM unnest(ARRAY['rg_tagger', 'rg_app_named', 'rg_untagged']) r ORDER BY 1;
DROP ROLE rg_tagger, rg_app_named, rg_untagged;
SELECT proname, proconfig FROM pg_proc
 WHERE pronamespace = 'rollguard'::regnamespace AND proname IN ('_manifest_columns', '_normalize_manifest')
 ORDER BY 1;
-- rollguard.check() has a new last column, family: 'compatibility' for a
-- blocker, 'downtime' for what would stall deployed code (lock_checks).
SET rollguard.lock_checks_min_size = 0;
SELECT family, change, deployment, version
  FROM rollguard.check('ALTER TABLE person DROP COLUMN id; CREATE INDEX ON person (id)')
 ORDER BY family, deployment;
RESET rollguard.lock_checks_min_size;
-- Deploy steps and registrations work as before.
SELECT rollguard.register_version('45', '{"relations": {"public.person": {"id": {"writes": false}}}}');
SELECT rollguard.deploy('mirror-3', '45');
SELECT deployment, version, state FROM rollguard.deployments WHERE deployment = 'mirror-3';
SELECT * FROM rollguard._live_drift();
-- 1.6 fails closed: the update installs the event trigger that refuses
-- schema changes where the library is not preloaded (doing nothing where it
-- is), and rollguard.is_active() for deploy scripts to ask.
SELECT evtname, evtevent, evtenabled FROM pg_event_trigger WHERE evtname LIKE 'rollguard%';
SELECT rollguard.is_active();
-- 1.6 adds deployment keys (one role for every deployment): no deployment
-- is bound after the update; deploy steps need no key until one is presented.
SELECT count(*) AS bound_deployments FROM rollguard.deployment_keys;

------------------------------------------------------------------------------
-- 1.6 to 1.7: see rollguard--1.6--1.7.sql.
------------------------------------------------------------------------------
ALTER EXTENSION rollguard UPDATE TO '1.7';
SELECT extversion FROM pg_extension WHERE extname = 'rollguard';
SELECT * FROM rollguard._live_drift();
-- 1.7 appends each deployment's liveness evidence to rollguard.deployments:
-- until their next deploy step, deployments count as deployed at "since".
SELECT deployment, version, last_deployed = since AS deployed_at_since, liveness
  FROM rollguard.deployments ORDER BY 1, 2;
SELECT rollguard.deploy('mirror-3', '45');
SELECT deployment, last_deployed IS NOT NULL AS deploy_step_recorded
  FROM rollguard.deployments d JOIN rollguard.deployment_seen s USING (deployment);

-- Clean up.
SELECT rollguard.remove_deployment(d) FROM unnest(ARRAY['batch', 'mirror-2', 'mirror-3', 'original']) d;
DROP TABLE person;
DROP VIEW registry_rows;
DROP TABLE before_upgrade, after_upgrade, before_1_2, before_1_3;
DROP ROLE rg_deployer, rg_dba;
DROP EXTENSION rollguard;
