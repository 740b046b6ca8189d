--
-- day_two: questions a team running rollguard for months asks, answered
-- without running any DDL.
--
--   rollguard.usage(relation, column): who uses it -- each live version,
--   its deployments, and the evidence (declared manifest or inferred
--   contract, declarations, observed uses, connected tagged sessions).
--   rollguard.contractible: the contract half of expand/contract -- drops
--   of relations and columns that some registered version used and no live
--   version uses any more (with the first version that no longer uses
--   them, and the statement), and the tightenings live code already
--   respects (SET NOT NULL, DROP DEFAULT): exactly what rollguard.check()
--   lets through today.
--
CREATE EXTENSION rollguard;
\set VERBOSITY default

CREATE TABLE person (id serial PRIMARY KEY, name text, weight numeric, nick text,
                     status text NOT NULL DEFAULT 'new', legacy text);
CREATE TABLE old_audit (id integer, line text);
CREATE TABLE unrelated (id integer);

-- 40 used legacy and old_audit; 41 uses weight; 42 uses neither, and
-- always writes name and status.
SELECT rollguard.register_version('40', '{"relations": {
    "public.person": {"id": {}, "name": {}, "legacy": {}, "status": {}},
    "public.old_audit": {"id": {}, "line": {}}}}');
SELECT rollguard.register_version('41', '{"relations": {"public.person": {
    "id": {"writes": false}, "name": {"nullable": false}, "weight": {}, "status": {}}}}');
SELECT rollguard.register_version('42', '{"relations": {"public.person": {
    "id": {"writes": false}, "name": {"nullable": false}, "status": {"nullable": false}}}}');
SELECT rollguard.deploy('original', '42');
SELECT rollguard.deploy('mirror-2', '41');
SELECT rollguard.deploy('mirror-3', '41');

------------------------------------------------------------------------------
-- usage(): who blocks a change to person.weight, and on what evidence
------------------------------------------------------------------------------
SELECT * FROM rollguard.usage('person', 'weight');
-- the same question as the guard would answer it
SELECT deployment, reason FROM rollguard.check('ALTER TABLE person DROP COLUMN weight') ORDER BY 1;
-- every use of the relation
SELECT deployment, version, state, "column", evidence, writes, nullable FROM rollguard.usage('person');
-- nothing live uses old_audit, nor unrelated
SELECT count(*) FROM rollguard.usage('old_audit');
SELECT count(*) FROM rollguard.usage('unrelated');
-- an inferred contract amended by a declaration says so
CREATE TABLE shop (id integer PRIMARY KEY, country text);
SELECT rollguard.register_version('7');
SELECT rollguard.never_null('shop', 'country', '7');
SELECT rollguard.deploy('shop-site', '7');
SELECT deployment, version, "column", evidence, nullable FROM rollguard.usage('shop');
SELECT rollguard.remove_deployment('shop-site');
-- a version in rollout counts, and says so
SELECT rollguard.begin_rollout('mirror-3', '42');
SELECT deployment, version, state FROM rollguard.usage('person', 'name') ORDER BY 1, 2;
SELECT rollguard.abort_rollout('mirror-3', '42');
-- bad input: a relation that does not exist
SELECT * FROM rollguard.usage('no_such_table');

------------------------------------------------------------------------------
-- contractible: what the next migration may drop or tighten
------------------------------------------------------------------------------
-- (40.5 is registered without a manifest and never went live: its inferred
-- contract, every column there is, is taken when it first does.  It is not
-- a version "since which" anything is unused.)
SELECT rollguard.register_version('40.5');
SELECT * FROM rollguard.contractible;
-- each statement listed passes the guard...
SELECT count(*) AS blockers FROM rollguard.contractible c, rollguard.check(c.statement);
-- ...and what is not listed does not: weight is still used by 41
SELECT count(*) > 0 AS blocked FROM rollguard.check('ALTER TABLE public.person DROP COLUMN weight');
-- Once the mirrors run 42, weight is contractible too, unused since 42.
SELECT rollguard.deploy('mirror-2', '42');
SELECT rollguard.deploy('mirror-3', '42');
SELECT change, relation, "column", unused_since FROM rollguard.contractible;
-- And the listed statements run.
DO $$
DECLARE s text;
BEGIN
    FOR s IN SELECT statement FROM rollguard.contractible WHERE change LIKE 'drop%' LOOP
        EXECUTE s;
    END LOOP;
END
$$;
SELECT change, relation, "column" FROM rollguard.contractible;

------------------------------------------------------------------------------
-- status(): the short human report, one SELECT (times masked here)
------------------------------------------------------------------------------
-- (the counters, the last line, are the whole server's: their numbers
-- depend on what ran before)
SELECT regexp_replace(regexp_replace(line, '\d{4}-\d\d-\d\d \d\d:\d\d', 'T', 'g'),
                      '^since T: \d+ refused, \d+ warned, \d+ let through, \d+ overridden$',
                      'since T: N refused, N warned, N let through, N overridden') AS status
  FROM rollguard.status() AS line;
-- A connected version no deploy step recorded is named (a superuser's tag
-- counts).
SET rollguard.deployment = 'batch';
SET rollguard.version = '41';
SELECT line FROM rollguard.status() AS line WHERE line LIKE '%not recorded%';
RESET rollguard.deployment;
RESET rollguard.version;

-- Who may ask: the deploy and admin roles (and superusers).
CREATE ROLE rg_app LOGIN;
SET ROLE rg_app;
SELECT * FROM rollguard.contractible;
SELECT * FROM rollguard.usage('person');
SELECT * FROM rollguard.status();
RESET ROLE;
DROP ROLE rg_app;

-- Clean up.
SELECT rollguard.remove_deployment(d) FROM unnest(ARRAY['original', 'mirror-2', 'mirror-3']) d;
DROP TABLE IF EXISTS person, unrelated, shop, old_audit;
DROP EXTENSION rollguard;
