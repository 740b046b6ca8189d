--
-- deployment_keys: one database role for every deployment (Divio gives one
-- DATABASE_URL to all mirrors), which therefore holds rollguard_deploy.
-- Each mirror binds its deployment to a key of its own (an environment
-- variable only its release steps know); then no one without that key --
-- not another mirror's release, not someone holding only DATABASE_URL --
-- can record a deploy step for it or remove it.  Administrators and
-- superusers need no key.
--
CREATE EXTENSION rollguard;
\set VERBOSITY default
\set SHOW_CONTEXT never

CREATE ROLE rg_site LOGIN;                  -- the one application role
GRANT rollguard_deploy TO rg_site;
CREATE ROLE rg_dba LOGIN;
GRANT rollguard_admin TO rg_dba;
CREATE TABLE person (id serial PRIMARY KEY, name text NOT NULL, weight numeric);
GRANT ALL ON person TO rg_site;
SELECT rollguard.register_version('41', '{"relations": {"public.person": {"id": {"writes": false}, "name": {"nullable": false}, "weight": {}}}}');
SELECT rollguard.register_version('42', '{"relations": {"public.person": {"id": {"writes": false}, "name": {"nullable": false}}}}');

SET ROLE rg_site;

-- Each mirror's first release binds its deployment to its key: use_key()
-- then the deploy step, in one transaction.
BEGIN;
SELECT rollguard.use_key('mirror-1', 'key-of-mirror-1-0123456789');
SELECT rollguard.deploy('mirror-1', '41');
COMMIT;
BEGIN;
SELECT rollguard.use_key('mirror-2', 'key-of-mirror-2-0123456789');
SELECT rollguard.deploy('mirror-2', '41');
COMMIT;

-- Everyone sees which deployments are bound, since when and by whom; the
-- keys' hashes are not readable.
SELECT deployment, bound_by FROM rollguard.deployment_keys ORDER BY 1;
SELECT * FROM rollguard.deployment_key;

-- Without its key, nothing is recorded for mirror-2: no deploy step, no
-- rollout, no removal.
SELECT rollguard.deploy('mirror-2', '42');
SELECT rollguard.begin_rollout('mirror-2', '42');
SELECT rollguard.remove_deployment('mirror-2');

-- mirror-1's key does not open mirror-2, and a wrong key is refused where
-- it is presented.
BEGIN;
SELECT rollguard.use_key('mirror-1', 'key-of-mirror-1-0123456789');
SELECT rollguard.remove_deployment('mirror-2');
ROLLBACK;
SELECT rollguard.use_key('mirror-2', 'key-of-mirror-1-0123456789');

-- The proof lives in a setting anyone can set, but nobody can compute it
-- without the key.
BEGIN;
SELECT set_config('rollguard_key.k' || md5('mirror-2'), repeat('0', 64), false) IS NOT NULL AS forged;
SELECT rollguard.deploy('mirror-2', '42');
ROLLBACK;

-- A key presented in one transaction does not carry over to the next.
SELECT rollguard.use_key('mirror-2', 'key-of-mirror-2-0123456789');
SELECT rollguard.deploy('mirror-2', '42');

-- With its key, mirror-2's own steps go through: a rollout, and later its
-- removal.
BEGIN;
SELECT rollguard.use_key('mirror-2', 'key-of-mirror-2-0123456789');
SELECT rollguard.begin_rollout('mirror-2', '42');
SELECT rollguard.finish_rollout('mirror-2', '42');
COMMIT;
SELECT deployment, version, state FROM rollguard.deployments ORDER BY 1;

-- A deployment not bound to a key stays open to every deployer (as before
-- 1.6): the first use_key() binds it.
SELECT rollguard.deploy('mirror-3', '41');
SELECT rollguard.remove_deployment('mirror-3');

-- Bad keys.
SELECT rollguard.use_key('mirror-4', 'short');
SELECT rollguard.use_key('mirror-4', NULL);
SELECT rollguard.use_key('', 'key-of-nobody-0123456789');

-- Unbinding is for administrators.
SELECT rollguard.reset_key('mirror-2');
RESET ROLE;

-- An administrator needs no key: a stale mirror is removed, a key is reset.
SET ROLE rg_dba;
SELECT rollguard.remove_deployment('mirror-1');
SELECT rollguard.reset_key('mirror-2');
SELECT rollguard.reset_key('mirror-2');
RESET ROLE;
SELECT deployment FROM rollguard.deployment_keys ORDER BY 1;

-- The next use_key() binds mirror-2 again; a superuser needs no key either.
BEGIN;
SET LOCAL ROLE rg_site;
SELECT rollguard.use_key('mirror-2', 'new-key-of-mirror-2-0123456789');
COMMIT;
SELECT deployment, bound_by FROM rollguard.deployment_keys ORDER BY 1;

-- Every binding and reset is in the history, with who did it.
SELECT action, deployment, who FROM rollguard.history
 WHERE action IN ('bind_key', 'reset_key', 'remove_deployment') ORDER BY id;

-- A superuser needs no key either.
SELECT rollguard.remove_deployment('mirror-2');

-- Clean up.
DROP TABLE person;
DROP EXTENSION rollguard;
DROP ROLE rg_site, rg_dba;
