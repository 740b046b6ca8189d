--
-- history: rollguard.history is the audit trail of the registry.  Every
-- registration, deploy step, declaration and removal, every override and
-- every breaking change an override let through is appended, with who
-- (the role the session acts as, SET ROLE included), when, what and why.
-- Calls that change nothing and calls that fail append nothing.  The deploy
-- and administrator roles may read it; only a superuser may rewrite it.
--
CREATE EXTENSION rollguard;
\set VERBOSITY default
\set SHOW_CONTEXT never

CREATE ROLE rg_deployer LOGIN;
CREATE ROLE rg_dba LOGIN;
GRANT rollguard_deploy TO rg_deployer;
GRANT rollguard_admin TO rg_dba;

CREATE TABLE item (id int PRIMARY KEY, name text, weight numeric, note text);
CREATE TABLE tag (id int PRIMARY KEY, label text);
ALTER TABLE item OWNER TO rg_dba;
ALTER TABLE tag OWNER TO rg_dba;

-- The rows appended since the last call (when is left out: it is the time
-- of the call; a superuser's name is shown as "(superuser)").
CREATE TEMP TABLE shown (id bigint);
CREATE FUNCTION pg_temp.new_history()
RETURNS TABLE (who text, action text, deployment text, version text,
               relation text, "column" text, reason text, detail jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    last bigint := (SELECT COALESCE(max(s.id), 0) FROM shown s);
BEGIN
    RETURN QUERY
        SELECT CASE WHEN r.rolsuper THEN '(superuser)' ELSE h.who::text END,
               h.action, h.deployment, h.version, h.relation, h."column", h.reason, h.detail
          FROM rollguard.history h LEFT JOIN pg_roles r ON r.rolname = h.who
         WHERE h.id > last ORDER BY h.id;
    INSERT INTO shown SELECT h.id FROM rollguard.history h WHERE h.id > last;
END
$$;

------------------------------------------------------------------------------
-- Each deploy-script call appends one row, in the name of the role that
-- called it (here rg_deployer through SET ROLE, although the functions run
-- as the extension's owner).  deploy() of an unknown version registers it
-- first: two rows.
------------------------------------------------------------------------------
SET ROLE rg_deployer;
SELECT current_user AS caller \gset
SELECT rollguard.register_version('1', '{"relations": {"public.item": {"id": {}, "name": {}, "weight": {}, "note": {}},
                                                       "public.tag": {"id": {}, "label": {}}}}');
SELECT rollguard.register_version('2', '{"relations": {"public.item": {"id": {}, "name": {}, "note": {}}}}');
SELECT rollguard.deploy('web', '1');
SELECT rollguard.deploy('canary', '1');
SELECT rollguard.begin_rollout('canary', '2');
SELECT rollguard.finish_rollout('canary', '2');
SELECT rollguard.begin_rollout('web', '2');
SELECT rollguard.abort_rollout('web', '2');
SELECT rollguard.deploy('batch', '3');
SELECT rollguard.stop_using('item', 'weight', '3');
SELECT rollguard.never_null('item', 'note', '3');
SELECT rollguard.remove_deployment('batch');
SELECT rollguard.begin_rollout('web', '2');
RESET ROLE;
SELECT * FROM pg_temp.new_history();
-- who is the role that called, as current_user showed it before the calls;
-- every row has a time, in the order of the calls.
SELECT count(*) AS rows, bool_and(who = :'caller') AS all_by_caller,
       bool_and(at IS NOT NULL) AS all_timed
  FROM rollguard.history;
SELECT bool_and(at >= prev) AS in_order
  FROM (SELECT at, lag(at) OVER (ORDER BY id) AS prev FROM rollguard.history) t;

------------------------------------------------------------------------------
-- Idempotent calls that change nothing append nothing: the same manifest
-- again, an inferred version again, a deployment already running that
-- version, a rollout already under way, finished or aborted.
------------------------------------------------------------------------------
SET ROLE rg_deployer;
SELECT rollguard.register_version('1', '{"relations": {"tag": {"label": {}, "id": {}},
                                                       "item": {"note": {}, "weight": {}, "name": {}, "id": {}}}}');
SELECT rollguard.register_version('3');
SELECT rollguard.deploy('canary', '2');
SELECT rollguard.begin_rollout('web', '2');
SELECT rollguard.finish_rollout('canary', '2');
SELECT rollguard.abort_rollout('canary', '1');
RESET ROLE;
SELECT * FROM pg_temp.new_history();

------------------------------------------------------------------------------
-- Overrides.  Granting one appends "override" with the relation, column and
-- reason; each breaking change it lets through appends "override applied"
-- with the same reason, the change, and the blockers it overrode in detail.
-- Both are in the administrator's name.
------------------------------------------------------------------------------
SET ROLE rg_dba;
BEGIN;
SELECT rollguard.override('item', 'weight', 'web reads weight only in a disabled report; ticket OPS-17');
ALTER TABLE item DROP COLUMN weight;
COMMIT;
-- an override of the whole relation (NULL column): the column is NULL in
-- both rows, and the change is a drop relation
BEGIN;
SELECT rollguard.override('tag', NULL, 'tags are shown from the CMS since 2; web 1 hides them');
DROP TABLE tag;
COMMIT;
-- an override granted and not used
SELECT rollguard.override('item', 'name', 'just in case');
RESET ROLE;
SELECT * FROM pg_temp.new_history();

-- The history is part of the transaction: an override rolled back leaves
-- nothing, like the change it would have let through.
SET ROLE rg_dba;
BEGIN;
SELECT rollguard.override('item', 'note', 'changed my mind');
ROLLBACK;
RESET ROLE;
SELECT * FROM pg_temp.new_history();

------------------------------------------------------------------------------
-- Calls that fail append nothing: a different manifest for a known build,
-- bad labels, unknown deployments, a rollout in the wrong state, a rollback
-- past the dropped column (the forward check), an override by a role that
-- may not, and the refused DDL itself.
------------------------------------------------------------------------------
SET ROLE rg_deployer;
SELECT rollguard.register_version('2', '{"relations": {"public.item": {"id": {}}}}');
SELECT rollguard.deploy('web', ' 2');
SELECT rollguard.remove_deployment('nope');
SELECT rollguard.finish_rollout('nope', '2');
SELECT rollguard.begin_rollout('canary', '2');
SELECT rollguard.abort_rollout('canary', '2');
SELECT rollguard.deploy('canary', '1');
SELECT rollguard.stop_using('item', 'weight', '4');
SELECT rollguard.override('item', 'name', 'not mine to give');
RESET ROLE;
SET ROLE rg_dba;
ALTER TABLE item DROP COLUMN name;
RESET ROLE;
SELECT * FROM pg_temp.new_history();

------------------------------------------------------------------------------
-- Nobody but a superuser can rewrite the history: the deploy and
-- administrator roles may read it, not change it.
------------------------------------------------------------------------------
SET ROLE rg_deployer;
SELECT count(*) > 0 AS can_read FROM rollguard.history;
INSERT INTO rollguard.history (action) VALUES ('forged');
UPDATE rollguard.history SET reason = 'forged';
DELETE FROM rollguard.history;
TRUNCATE rollguard.history;
RESET ROLE;
SET ROLE rg_dba;
SELECT count(*) > 0 AS can_read FROM rollguard.history;
UPDATE rollguard.history SET reason = 'nothing to see' WHERE action LIKE 'override%';
DELETE FROM rollguard.history WHERE action LIKE 'override%';
TRUNCATE rollguard.history;
RESET ROLE;
-- (a superuser can)
BEGIN;
DELETE FROM rollguard.history WHERE action LIKE 'override%';
ROLLBACK;
SELECT action, count(*) FROM rollguard.history GROUP BY action ORDER BY action;

-- The counters of live use agree with a recount from scratch.
SELECT * FROM rollguard._live_drift();

-- Clean up.
SELECT rollguard.remove_deployment(d) FROM unnest(ARRAY['canary', 'web']) d;
DROP TABLE item;
DROP TABLE shown;
DROP FUNCTION pg_temp.new_history();
DROP ROLE rg_deployer, rg_dba;
DROP EXTENSION rollguard;
