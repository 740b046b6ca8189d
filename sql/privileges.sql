--
-- privileges: who may do what with rollguard.
--
-- Four kinds of role meet the extension:
--   the application role  (rg_app)      - runs queries and maybe migrations;
--                                          gets nothing of rollguard's by default
--   a deploy role         (rg_deployer) - GRANT rollguard_deploy TO deployer:
--                                          registers versions, records deploy steps
--   an administrator      (rg_dba)      - GRANT rollguard_admin TO dba: all of
--                                          that, and rollguard.override()
--   a superuser                         - everything, including the setting
--                                          rollguard.enforce and rewriting history
-- The registry tables are written only by the extension's own functions.
--
CREATE EXTENSION rollguard;
\set VERBOSITY default
\set SHOW_CONTEXT never

-- The two roles come with the extension (1.1); rollguard_admin includes
-- rollguard_deploy.
SELECT r.rolname, r.rolcanlogin, r.rolsuper,
       ARRAY(SELECT m.rolname FROM pg_auth_members a JOIN pg_roles m ON m.oid = a.roleid
              WHERE a.member = r.oid ORDER BY 1) AS member_of
  FROM pg_roles r WHERE r.rolname IN ('rollguard_deploy', 'rollguard_admin')
 ORDER BY 1;

-- One GRANT each makes a login role a deployer or an administrator.  The
-- application role owns nothing special; it has ALL on the application's
-- table (it may run migrations on it).
CREATE ROLE rg_app LOGIN;
CREATE ROLE rg_deployer LOGIN;
CREATE ROLE rg_dba LOGIN;
GRANT rollguard_deploy TO rg_deployer;
GRANT rollguard_admin TO rg_dba;

CREATE TABLE item (id int PRIMARY KEY, name text, weight numeric, note text);
GRANT ALL ON item TO rg_app;

-- Version 1 uses every column, version 2 no longer uses weight.  "web" runs
-- 1; "canary" runs 1 and is rolling out 2.
SELECT rollguard.register_version('1', '{"relations": {"public.item": {"id": {}, "name": {}, "weight": {}, "note": {}}}}');
SELECT rollguard.register_version('2', '{"relations": {"public.item": {"id": {}, "name": {}, "note": {}}}}');
SELECT rollguard.deploy('web', '1');
SELECT rollguard.deploy('canary', '1');
SELECT rollguard.begin_rollout('canary', '2');

------------------------------------------------------------------------------
-- The matrix: every public function, view, registry table and the setting,
-- tried by every role.  Each probe runs in a subtransaction that is always
-- rolled back, so every probe starts from the registry above; the outcome is
-- "allowed" or the SQLSTATE of the error (42501: insufficient_privilege).
------------------------------------------------------------------------------
CREATE TEMP TABLE probe (ord int PRIMARY KEY, object text, operation text, sql text);
CREATE TEMP TABLE outcome (who text, ord int, result text);
GRANT SELECT ON probe TO PUBLIC;
GRANT INSERT ON outcome TO PUBLIC;

INSERT INTO probe VALUES
 -- the deploy-script API
 (101, 'register_version',  'EXECUTE', $$SELECT rollguard.register_version('3', '{"relations": {"public.item": {"id": {}}}}')$$),
 (102, 'deploy',            'EXECUTE', $$SELECT rollguard.deploy('web', '2')$$),
 (103, 'begin_rollout',     'EXECUTE', $$SELECT rollguard.begin_rollout('web', '2')$$),
 (104, 'finish_rollout',    'EXECUTE', $$SELECT rollguard.finish_rollout('canary', '2')$$),
 (105, 'abort_rollout',     'EXECUTE', $$SELECT rollguard.abort_rollout('canary', '2')$$),
 (106, 'remove_deployment', 'EXECUTE', $$SELECT rollguard.remove_deployment('web')$$),
 (107, 'stop_using',        'EXECUTE', $$SELECT rollguard.stop_using('item', 'weight', '2')$$),
 (108, 'never_null',        'EXECUTE', $$SELECT rollguard.never_null('item', 'note', '2')$$),
 -- administration
 (109, 'override',          'EXECUTE', $$SELECT rollguard.override('item', 'weight', 'probe')$$),
 -- open to everyone
 (110, 'check',             'EXECUTE', $$SELECT * FROM rollguard.check('ALTER TABLE item DROP COLUMN weight')$$),
 (111, 'version_cmp',       'EXECUTE', $$SELECT rollguard.version_cmp('1.9', '1.10')$$),
 (112, 'version_sort_key',  'EXECUTE', $$SELECT rollguard.version_sort_key('1.10')$$),
 -- the views
 (201, 'deployments',       'SELECT',  $$SELECT * FROM rollguard.deployments$$),
 (202, 'versions',          'SELECT',  $$SELECT * FROM rollguard.versions$$),
 (203, 'declarations',      'SELECT',  $$SELECT * FROM rollguard.declarations$$),
 (204, 'sessions',          'SELECT',  $$SELECT * FROM rollguard.sessions$$),
 -- the registry tables
 (301, 'version_registry',  'SELECT',   $$SELECT * FROM rollguard.version_registry$$),
 (302, 'version_registry',  'INSERT',   $$INSERT INTO rollguard.version_registry (version, declared) VALUES ('forged', false)$$),
 (303, 'version_registry',  'UPDATE',   $$UPDATE rollguard.version_registry SET contract_taken_at = NULL WHERE false$$),
 (304, 'version_registry',  'DELETE',   $$DELETE FROM rollguard.version_registry WHERE false$$),
 (305, 'version_registry',  'TRUNCATE', $$TRUNCATE rollguard.version_registry CASCADE$$),
 (311, 'contract',          'SELECT',   $$SELECT * FROM rollguard.contract$$),
 (312, 'contract',          'INSERT',   $$INSERT INTO rollguard.contract VALUES ('public', 'item', 'forged', '1', true, true)$$),
 (313, 'contract',          'UPDATE',   $$UPDATE rollguard.contract SET nullable = true WHERE false$$),
 (314, 'contract',          'DELETE',   $$DELETE FROM rollguard.contract WHERE false$$),
 (315, 'contract',          'TRUNCATE', $$TRUNCATE rollguard.contract$$),
 (321, 'deployment_state',  'SELECT',   $$SELECT * FROM rollguard.deployment_state$$),
 (322, 'deployment_state',  'INSERT',   $$INSERT INTO rollguard.deployment_state (deployment, version, state) VALUES ('forged', '1', 'running')$$),
 (323, 'deployment_state',  'UPDATE',   $$UPDATE rollguard.deployment_state SET state = 'running' WHERE false$$),
 (324, 'deployment_state',  'DELETE',   $$DELETE FROM rollguard.deployment_state WHERE false$$),
 (325, 'deployment_state',  'TRUNCATE', $$TRUNCATE rollguard.deployment_state$$),
 (331, 'declaration',       'SELECT',   $$SELECT * FROM rollguard.declaration$$),
 (332, 'declaration',       'INSERT',   $$INSERT INTO rollguard.declaration (nspname, relname, attname, kind, since_version) VALUES ('public', 'item', 'weight', 'stop_using', '1')$$),
 (333, 'declaration',       'UPDATE',   $$UPDATE rollguard.declaration SET since_version = '0' WHERE false$$),
 (334, 'declaration',       'DELETE',   $$DELETE FROM rollguard.declaration WHERE false$$),
 (335, 'declaration',       'TRUNCATE', $$TRUNCATE rollguard.declaration$$),
 (341, 'removed_column',    'SELECT',   $$SELECT * FROM rollguard.removed_column$$),
 (342, 'removed_column',    'INSERT',   $$INSERT INTO rollguard.removed_column (nspname, relname, attname, change) VALUES ('public', 'item', 'weight', 'drop column')$$),
 (343, 'removed_column',    'UPDATE',   $$UPDATE rollguard.removed_column SET change = 'forged' WHERE false$$),
 (344, 'removed_column',    'DELETE',   $$DELETE FROM rollguard.removed_column WHERE false$$),
 (345, 'removed_column',    'TRUNCATE', $$TRUNCATE rollguard.removed_column$$),
 (351, 'history',           'SELECT',   $$SELECT * FROM rollguard.history$$),
 (352, 'history',           'INSERT',   $$INSERT INTO rollguard.history (action) VALUES ('forged')$$),
 (353, 'history',           'UPDATE',   $$UPDATE rollguard.history SET reason = 'forged' WHERE false$$),
 (354, 'history',           'DELETE',   $$DELETE FROM rollguard.history WHERE false$$),
 (355, 'history',           'TRUNCATE', $$TRUNCATE rollguard.history$$),
 -- the setting, in every way a session can change it
 (401, 'rollguard.enforce', 'SET',        $$SET rollguard.enforce = off$$),
 (402, 'rollguard.enforce', 'SET LOCAL',  $$SET LOCAL rollguard.enforce = warn$$),
 (403, 'rollguard.enforce', 'set_config', $$SELECT set_config('rollguard.enforce', 'off', false)$$),
 (404, 'rollguard.enforce', 'ALTER ROLE', $$ALTER ROLE CURRENT_USER SET rollguard.enforce = off$$),
 -- the session tags: harmless, anyone's to set
 (411, 'rollguard.deployment', 'SET',     $$SET rollguard.deployment = 'web'$$),
 (412, 'rollguard.version',    'SET',     $$SET rollguard.version = '2'$$),
 -- membership cannot be passed on (granted without ADMIN OPTION)
 (501, 'rollguard_deploy',  'GRANT TO', $$GRANT rollguard_deploy TO rg_app$$),
 (502, 'rollguard_admin',   'GRANT TO', $$GRANT rollguard_admin TO rg_app$$);

-- Runs every probe as the current role and rolls each one back.
CREATE FUNCTION pg_temp.run_probes() RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
    p probe;
    r text;
    me text := CASE WHEN (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
                    THEN 'superuser' ELSE current_user END;
BEGIN
    FOR p IN SELECT * FROM probe ORDER BY ord LOOP
        BEGIN
            EXECUTE p.sql;
            RAISE SQLSTATE 'RGOK0';     -- success: roll the probe back
        EXCEPTION
            WHEN SQLSTATE 'RGOK0' THEN r := 'allowed';
            WHEN OTHERS THEN r := SQLSTATE;
        END;
        INSERT INTO outcome VALUES (me, p.ord, r);
    END LOOP;
END
$fn$;

SET ROLE rg_app;
SELECT pg_temp.run_probes();
RESET ROLE;
SET ROLE rg_deployer;
SELECT pg_temp.run_probes();
RESET ROLE;
SET ROLE rg_dba;
SELECT pg_temp.run_probes();
RESET ROLE;
SET client_min_messages = warning;     -- TRUNCATE ... CASCADE says what it cascades to
SELECT pg_temp.run_probes();
RESET client_min_messages;

SELECT p.object, p.operation,
       max(o.result) FILTER (WHERE o.who = 'rg_app')      AS rg_app,
       max(o.result) FILTER (WHERE o.who = 'rg_deployer') AS rg_deployer,
       max(o.result) FILTER (WHERE o.who = 'rg_dba')      AS rg_dba,
       max(o.result) FILTER (WHERE o.who = 'superuser')   AS superuser
  FROM probe p JOIN outcome o USING (ord)
 GROUP BY p.ord, p.object, p.operation
 ORDER BY p.ord;

-- Every probe was rolled back: the registry is as it was.
SELECT deployment, version, state FROM rollguard.deployments ORDER BY 1, 2;
SELECT count(*) AS versions FROM rollguard.versions;
SELECT count(*) AS declarations FROM rollguard.declarations;

------------------------------------------------------------------------------
-- The same, from the catalog: has_function_privilege for every function of
-- the schema (the internal ones, named _*, too) ...
------------------------------------------------------------------------------
SELECT p.oid::regprocedure AS function,
       has_function_privilege('rg_app', p.oid, 'EXECUTE')      AS rg_app,
       has_function_privilege('rg_deployer', p.oid, 'EXECUTE') AS rg_deployer,
       has_function_privilege('rg_dba', p.oid, 'EXECUTE')      AS rg_dba
  FROM pg_proc p
 WHERE p.pronamespace = 'rollguard'::regnamespace
 ORDER BY p.proname ~ '^_', p.oid::regprocedure::text COLLATE "C";

-- ... and has_table_privilege for every table, view and sequence of it
-- (the privileges held, or "-" for none).
CREATE FUNCTION pg_temp.privs(role name, rel oid) RETURNS text LANGUAGE sql AS $$
    SELECT COALESCE(string_agg(priv, ',' ORDER BY n), '-')
      FROM unnest('{SELECT,INSERT,UPDATE,DELETE,TRUNCATE,REFERENCES,TRIGGER}'::text[])
           WITH ORDINALITY AS x(priv, n)
     WHERE has_table_privilege(role, rel, priv)
$$;
SELECT c.relname AS relation, c.relkind,
       pg_temp.privs('rg_app', c.oid)      AS rg_app,
       pg_temp.privs('rg_deployer', c.oid) AS rg_deployer,
       pg_temp.privs('rg_dba', c.oid)      AS rg_dba
  FROM pg_class c
 WHERE c.relnamespace = 'rollguard'::regnamespace AND c.relkind IN ('r', 'v', 'S')
 ORDER BY c.relkind, c.relname;

------------------------------------------------------------------------------
-- SECURITY DEFINER functions run as the extension's owner: every one of
-- them pins its search_path, so that no object of the caller's can be
-- slipped in.
------------------------------------------------------------------------------
SELECT p.oid::regprocedure AS security_definer, p.proconfig
  FROM pg_proc p
 WHERE p.pronamespace = 'rollguard'::regnamespace AND p.prosecdef
 ORDER BY p.oid::regprocedure::text COLLATE "C";
SELECT count(*) AS unpinned
  FROM pg_proc p
 WHERE p.pronamespace = 'rollguard'::regnamespace AND p.prosecdef
   AND NOT COALESCE('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false);

------------------------------------------------------------------------------
-- The guard does not depend on what the migrating role may read.  The
-- application role that runs the migrations owns its tables; it cannot see
-- the registry, and its DROP COLUMN is still refused, naming the
-- deployments in the way.
------------------------------------------------------------------------------
ALTER TABLE item OWNER TO rg_app;
SET ROLE rg_app;
SELECT count(*) FROM rollguard.deployment_state;
ALTER TABLE item DROP COLUMN weight;
-- a column no live version uses may go
ALTER TABLE item ADD COLUMN scratch int;
ALTER TABLE item DROP COLUMN scratch;
RESET ROLE;

-- A deploy role records the deploy steps; once "web" and "canary" run 2,
-- the application role's drop goes through.
SET ROLE rg_deployer;
SELECT rollguard.finish_rollout('canary', '2');
SELECT rollguard.deploy('web', '2');
RESET ROLE;
SET ROLE rg_app;
ALTER TABLE item DROP COLUMN weight;
RESET ROLE;

-- Clean up: the test roles (rollguard_deploy and rollguard_admin belong to
-- the cluster and stay), the table, the extension.
SELECT rollguard.remove_deployment(d) FROM unnest(ARRAY['canary', 'web']) d;
DROP TABLE item;
DROP ROLE rg_app, rg_deployer, rg_dba;
DROP EXTENSION rollguard;
