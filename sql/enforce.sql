--
-- enforce: the setting rollguard.enforce = on | warn | off.
--
-- "on" (the default) refuses a breaking change; "warn" reports it as a
-- WARNING and lets it through (a trial period); "off" lets it through
-- silently.  Nothing is let through unseen: each breaking change that warn
-- or off lets through is appended to rollguard.history ("let through
-- (enforce = warn)", with the statement and every deployment it broke)
-- and written to the server log with its statement.  Only a superuser can
-- change the setting: the application role must not be able to switch its
-- own guard off.
--
CREATE EXTENSION rollguard;
CREATE TABLE item (id int PRIMARY KEY, label text, price int);
SELECT rollguard.register_version('1.0', '{"relations": {"public.item": {"id": {}, "label": {}, "price": {}}}}');
SELECT rollguard.deploy('web', '1.0');

SHOW rollguard.enforce;

-- on: refused.
ALTER TABLE item DROP COLUMN label;

-- warn: the same statement is reported and goes through.
SET rollguard.enforce = warn;
ALTER TABLE item DROP COLUMN label;
-- every breaking change of the statement is reported
ALTER TABLE item RENAME COLUMN price TO cost;

-- off: nothing is said to the client.
SET rollguard.enforce = off;
ALTER TABLE item RENAME COLUMN cost TO price;
ALTER TABLE item RENAME TO items;
ALTER TABLE items RENAME TO item;
RESET rollguard.enforce;

-- What warn and off let through, in rollguard.history: who, what, the
-- statement, and the deployments it broke.
SELECT who = current_user AS who_is_me, action, relation, "column",
       detail->>'change' AS change, detail->>'statement' AS statement,
       jsonb_path_query_array(detail, '$.blockers[*].deployment') AS broke
  FROM rollguard.history WHERE action LIKE 'let through%' ORDER BY id;

-- Values other than on, warn and off are rejected.
SET rollguard.enforce = maybe;

-- A role that is not superuser cannot change it, in any way.
CREATE ROLE rg_app LOGIN;
ALTER TABLE item OWNER TO rg_app;     -- the application owns its tables
SET ROLE rg_app;
SET rollguard.enforce = off;
BEGIN;
SET LOCAL rollguard.enforce = warn;
ROLLBACK;
SELECT set_config('rollguard.enforce', 'off', false);
SHOW rollguard.enforce;
-- and its own DDL is guarded, although it cannot read the registry itself
ALTER TABLE item DROP COLUMN price;
SELECT * FROM rollguard.deployment_state;
RESET ROLE;

ALTER TABLE item OWNER TO CURRENT_USER;
DROP ROLE rg_app;

-- off refuses nothing, but what a statement removes is still remembered:
-- rolling a deployment back to a build that used it is refused at deploy.
SELECT rollguard.register_version('0.9', '{"relations": {"public.item": {"id": {}, "price": {}}}}');
SET rollguard.enforce = off;
ALTER TABLE item DROP COLUMN price;
RESET rollguard.enforce;
\set SHOW_CONTEXT never
SELECT rollguard.deploy('web', '0.9');

-- In a read-only transaction DDL fails on its own, before rollguard judges.
BEGIN READ ONLY;
ALTER TABLE item DROP COLUMN id;
ROLLBACK;

SELECT rollguard.remove_deployment('web');
DROP TABLE item;
DROP EXTENSION rollguard;
