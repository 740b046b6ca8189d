--
-- liveness: a deployment the registry records may be gone (a mirror deleted
-- from a dashboard, an instance of a rolling update that died).  Its
-- evidence says so:
--
--   rollguard.deployments shows, per deployment, its last deploy step
--   (last_deployed), when a tagged session of it was last connected
--   (last_connected: stamped when a session tags itself, drops its tag or
--   ends, kept across restarts) and a state derived from them (liveness):
--   connected, seen, stale (no evidence for rollguard.stale_after), expired
--   (none for rollguard.forget_after, off by default).
--   A refusal that names a stale deployment says so in its DETAIL, and its
--   HINT spells out rollguard.remove_deployment('...').
--   An expired deployment no longer counts (guard, check(), usage(),
--   contractible, status()); each expiry is recorded once in
--   rollguard.history and the server log; a deploy step reverses it.
--
-- (Deployments are named lv-*: the tags other suites set in this database
-- leave their stamps.)  Time is made to pass by moving the evidence back
-- (as a superuser), never by sleeping.
--
CREATE EXTENSION rollguard;
\set VERBOSITY default

CREATE TABLE person (id serial PRIMARY KEY, name text, weight numeric);
SELECT rollguard.register_version('41', '{"relations": {"public.person": {
    "id": {"writes": false}, "name": {}, "weight": {}}}}');
SELECT rollguard.register_version('42', '{"relations": {"public.person": {
    "id": {"writes": false}, "name": {}}}}');
SELECT rollguard.deploy('lv-original', '42');
SELECT rollguard.deploy('lv-mirror-2', '41');
SELECT rollguard.deploy('lv-mirror-3', '41');

-- Moves a deployment's evidence back in time: its deploy steps happened
-- that long ago.
CREATE FUNCTION pg_temp.age_deployment(d text, by interval) RETURNS void
LANGUAGE sql AS $$
    UPDATE rollguard.deployment_seen SET last_step = last_step - by WHERE deployment = d;
    UPDATE rollguard.deployment_state SET since = since - by WHERE deployment = d;
$$;

------------------------------------------------------------------------------
-- The evidence: fresh deployments were seen (their deploy step)
------------------------------------------------------------------------------
SHOW rollguard.stale_after;
SHOW rollguard.forget_after;
SELECT deployment, version, state, now() - last_deployed < interval '1 minute' AS deployed_just_now,
       last_connected, liveness
  FROM rollguard.deployments ORDER BY 1;

------------------------------------------------------------------------------
-- Stale: lv-mirror-3 was deleted without telling the database 30 days ago
------------------------------------------------------------------------------
SELECT pg_temp.age_deployment('lv-mirror-3', interval '30 days');
SELECT deployment, liveness, extract(day FROM now() - last_deployed) AS days_since_deploy_step
  FROM rollguard.deployments ORDER BY 1;
-- the refusal names both, and says lv-mirror-3 has not been seen
ALTER TABLE person DROP COLUMN weight;
-- lv-mirror-2 moves on: lv-mirror-3 alone blocks, and the HINT says how to remove it
SELECT rollguard.deploy('lv-mirror-2', '42');
ALTER TABLE person DROP COLUMN weight;
-- a deployment that was not seen for long but is rolling out: one sentence
SELECT rollguard.begin_rollout('lv-mirror-3', '42');
SELECT pg_temp.age_deployment('lv-mirror-3', interval '30 days');
ALTER TABLE person DROP COLUMN name;
SELECT rollguard.abort_rollout('lv-mirror-3', '42');
SELECT pg_temp.age_deployment('lv-mirror-3', interval '30 days');
-- the threshold is the setting's: below it, nothing is said
SET rollguard.stale_after = '60 days';
SELECT deployment, liveness FROM rollguard.deployments WHERE deployment = 'lv-mirror-3';
ALTER TABLE person DROP COLUMN weight;
SET rollguard.stale_after = off;
SELECT deployment, liveness FROM rollguard.deployments WHERE deployment = 'lv-mirror-3';
RESET rollguard.stale_after;
-- status() says it too
SELECT regexp_replace(s, 'since [0-9: -]+;', 'since ...;') FROM rollguard.status() s WHERE s LIKE '%lv-mirror-3%';
-- bad values
SET rollguard.stale_after = 'fortnight';
SET rollguard.stale_after = '-1 day';
SET rollguard.forget_after = 'sometime';

------------------------------------------------------------------------------
-- Connected: a tagged session is evidence now, and when it last was
------------------------------------------------------------------------------
SELECT rollguard.deploy('lv-mirror-4', '41');
SELECT pg_temp.age_deployment('lv-mirror-4', interval '30 days');
SELECT deployment, liveness, last_connected FROM rollguard.deployments WHERE deployment = 'lv-mirror-4';
SET rollguard.deployment = 'lv-mirror-4';
SET rollguard.version = '41';
SELECT deployment, liveness, now() - last_connected < interval '1 minute' AS stamped_now
  FROM rollguard.deployments WHERE deployment = 'lv-mirror-4';
RESET rollguard.deployment;
RESET rollguard.version;
-- gone, but seen a moment ago: not stale
SELECT deployment, liveness, now() - last_connected < interval '1 minute' AS stamped_now
  FROM rollguard.deployments WHERE deployment = 'lv-mirror-4';
-- the application_name form stamps it too (at the next statement)
SELECT rollguard.deploy('lv-mirror-5', '41');
SELECT pg_temp.age_deployment('lv-mirror-5', interval '30 days');
SET application_name = 'rollguard:lv-mirror-5@41';
SELECT deployment, liveness FROM rollguard.deployments WHERE deployment = 'lv-mirror-5';
RESET application_name;
SELECT deployment, liveness, now() - last_connected < interval '1 minute' AS stamped_now
  FROM rollguard.deployments WHERE deployment = 'lv-mirror-5';
-- a tag of a role that may not provide evidence (rollguard_tag) is not
CREATE ROLE rg_untrusted LOGIN;
SELECT rollguard.deploy('lv-mirror-6', '41');
SELECT pg_temp.age_deployment('lv-mirror-6', interval '30 days');
SET SESSION AUTHORIZATION rg_untrusted;
SET rollguard.deployment = 'lv-mirror-6';
SET rollguard.version = '41';
RESET rollguard.deployment;
RESET rollguard.version;
RESET SESSION AUTHORIZATION;
SELECT deployment, liveness, last_connected FROM rollguard.deployments WHERE deployment = 'lv-mirror-6';
SELECT rollguard.remove_deployment(d) FROM unnest(ARRAY['lv-mirror-4', 'lv-mirror-5', 'lv-mirror-6']) d;
DROP ROLE rg_untrusted;

------------------------------------------------------------------------------
-- Expiry: off by default, superuser only
------------------------------------------------------------------------------
CREATE ROLE rg_admin_only LOGIN IN ROLE rollguard_admin;
SET ROLE rg_admin_only;
SET rollguard.forget_after = '14 days';
RESET ROLE;
DROP ROLE rg_admin_only;
SET rollguard.forget_after = '14 days';
-- lv-mirror-3 has had no evidence for 30 days: expired, it no longer counts
SELECT deployment, version, liveness FROM rollguard.deployments ORDER BY 1;
-- check() relies on it, and records the expiry (once)
SELECT count(*) FROM rollguard.check('ALTER TABLE person DROP COLUMN weight');
SELECT action, deployment, version, reason, detail -> 'ran' AS ran, detail ->> 'forget_after' AS forget_after
  FROM rollguard.history WHERE action LIKE '%_deployment' AND deployment = 'lv-mirror-3' ORDER BY id;
SELECT count(*) FROM rollguard.check('ALTER TABLE person DROP COLUMN weight');
SELECT count(*) FROM rollguard.history WHERE action = 'expire_deployment';
-- usage() leaves it out; contractible lists the column the next release may drop
SELECT deployment, version, "column", evidence FROM rollguard.usage('person', 'weight');
SELECT change, relation, "column", statement FROM rollguard.contractible ORDER BY 1, 2, 3;
SELECT * FROM rollguard.status() s WHERE s LIKE '%lv-mirror-3%' OR s LIKE '%live:';
-- while it is off, it counts again (and is only stale)
SET rollguard.forget_after = off;
SELECT deployment, liveness FROM rollguard.deployments WHERE deployment = 'lv-mirror-3';
SELECT deployment, version FROM rollguard.check('ALTER TABLE person DROP COLUMN weight');
SET rollguard.forget_after = '14 days';

-- A deploy step reverses it (recorded), and a later expiry is recorded again
SELECT rollguard.deploy('lv-mirror-3', '41');
SELECT deployment, liveness FROM rollguard.deployments WHERE deployment = 'lv-mirror-3';
SELECT deployment, version FROM rollguard.check('ALTER TABLE person DROP COLUMN weight');
SELECT pg_temp.age_deployment('lv-mirror-3', interval '20 days');
-- in a read-only transaction it counts as expired but nothing is recorded
BEGIN READ ONLY;
SELECT count(*) FROM rollguard.check('ALTER TABLE person DROP COLUMN weight');
COMMIT;
SELECT action, deployment, reason FROM rollguard.history
 WHERE action LIKE '%_deployment' AND deployment = 'lv-mirror-3' ORDER BY id;
-- the migration itself goes through, and records it with the migration
BEGIN;
ALTER TABLE person DROP COLUMN weight;
SELECT action, deployment, reason FROM rollguard.history
 WHERE action LIKE '%_deployment' AND deployment = 'lv-mirror-3' ORDER BY id;
ROLLBACK;
-- ... and a deploy step of another deployment records it as well
SELECT rollguard.deploy('lv-original', '42');
SELECT action, deployment, reason FROM rollguard.history
 WHERE action LIKE '%_deployment' AND deployment = 'lv-mirror-3' ORDER BY id;
SELECT rollguard.deploy('lv-original', '42');
SELECT count(*) FROM rollguard.history WHERE action = 'expire_deployment';
-- a deploy step of the expired deployment itself: rollout steps too
SELECT rollguard.begin_rollout('lv-mirror-3', '42');
SELECT deployment, version, state, liveness FROM rollguard.deployments WHERE deployment = 'lv-mirror-3' ORDER BY 2;
SELECT rollguard.abort_rollout('lv-mirror-3', '42');
SELECT action, deployment FROM rollguard.history
 WHERE action LIKE '%_deployment' AND deployment = 'lv-mirror-3' ORDER BY id;
RESET rollguard.forget_after;

------------------------------------------------------------------------------
-- The DBA removes it: the column may go
------------------------------------------------------------------------------
SELECT pg_temp.age_deployment('lv-mirror-3', interval '30 days');
SELECT deployment, liveness FROM rollguard.deployments WHERE liveness = 'stale';
SELECT rollguard.remove_deployment('lv-mirror-3');
SELECT change, relation, "column", statement FROM rollguard.contractible ORDER BY 1, 2, 3;
ALTER TABLE person DROP COLUMN weight;

-- The counters of live use agree with the registry.
SELECT * FROM rollguard._live_drift();

-- Who may read it: anyone may read rollguard.deployments.
CREATE ROLE rg_app LOGIN;
SET ROLE rg_app;
SELECT deployment, liveness FROM rollguard.deployments ORDER BY 1;
SELECT * FROM rollguard._note_expiries();
SELECT * FROM rollguard.deployment_seen;
RESET ROLE;
DROP ROLE rg_app;

-- Clean up.
SELECT rollguard.remove_deployment(d) FROM unnest(ARRAY['lv-original', 'lv-mirror-2']) d;
DROP TABLE person;
DROP EXTENSION rollguard;
