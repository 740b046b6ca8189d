--
-- stats: counters a monitoring system can scrape, the way
-- pg_stat_statements exposes its own.
--
--   rollguard.stats: per change kind (and the rule it is judged by), the
--   breaking changes refused, warned about (rollguard.enforce = warn), let
--   through silently (off) and let through by an override.
--   rollguard.stats_info: statements the guard and rollguard.check()
--   analyzed, changes judged against the registry, and when the counters
--   were last reset.
--   rollguard.stats_reset(): every counter back to zero (administrators).
--
-- The counters are the whole server's, since it started: this suite resets
-- them first, and expects no other DDL on the server while it runs.
--
CREATE EXTENSION rollguard;
\set VERBOSITY terse
SELECT rollguard.stats_reset();
SELECT stats_reset > now() - interval '1 minute' AS just_reset, statements, dry_run_statements, changes_judged
  FROM rollguard.stats_info;

CREATE TABLE item (id integer PRIMARY KEY, label text, price integer, note text);
SELECT rollguard.register_version('1.0', '{"relations": {"public.item": {"id": {}, "label": {}, "price": {}}}}');
SELECT rollguard.deploy('web', '1.0');

-- refused: two statements, one change each
ALTER TABLE item DROP COLUMN label;
ALTER TABLE item RENAME COLUMN price TO cost;
-- nothing breaks: analyzed and judged, not counted as an outcome
ALTER TABLE item DROP COLUMN note;
-- warn, off
SET rollguard.enforce = warn;
ALTER TABLE item RENAME COLUMN price TO cost;
SET rollguard.enforce = off;
ALTER TABLE item RENAME TO items;
ALTER TABLE items RENAME TO item;
RESET rollguard.enforce;
-- an override
BEGIN;
SELECT rollguard.override('item', 'label', 'label moves to the catalog service');
ALTER TABLE item DROP COLUMN label;
COMMIT;
-- a dry run
SELECT count(*) FROM rollguard.check('ALTER TABLE item DROP COLUMN id; ALTER TABLE item ADD COLUMN x int');

SELECT change, rule, refused, warned, let_through, overridden FROM rollguard.stats
 WHERE refused + warned + let_through + overridden > 0 ORDER BY change;
SELECT statements, dry_run_statements, changes_judged FROM rollguard.stats_info;
-- every change kind has its row
SELECT count(*) AS kinds FROM rollguard.stats;

-- Anyone may read them; only administrators reset them.
CREATE ROLE rg_monitor LOGIN;
SET ROLE rg_monitor;
SELECT sum(refused) AS refused FROM rollguard.stats;
SELECT rollguard.stats_reset();
RESET ROLE;
DROP ROLE rg_monitor;
SELECT rollguard.stats_reset();
SELECT sum(refused + warned + let_through + overridden) AS outcomes FROM rollguard.stats;
SELECT statements, dry_run_statements, changes_judged FROM rollguard.stats_info;

SELECT rollguard.remove_deployment('web');
DROP TABLE item;
DROP EXTENSION rollguard;
