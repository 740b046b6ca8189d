/* rollguard--1.5--1.6.sql: no way around the guard, no way to stall it */

\echo Use "ALTER EXTENSION rollguard UPDATE TO '1.6'" to load this file. \quit

-- Each section below says what it changes and why; the full script
-- rollguard--1.6.sql holds the same definitions.

------------------------------------------------------------------------------
-- The downtime guard (issue 13): rollguard.check() reports what would stall
-- deployed code (rewrites, index builds, validations and lock waits on large
-- tables) as well as what would break it, and says which family a row
-- belongs to in a new last column, "family" ('compatibility' or
-- 'downtime').  A function's result columns cannot be changed in place: it
-- is dropped and created again, with the same comment and privileges.
------------------------------------------------------------------------------

DROP FUNCTION rollguard.check(text);

-- family: 'compatibility' (a blocker: the change would break deployed code)
-- or 'downtime' (it would stall deployed code: rewrites, index builds,
-- validations and lock waits on large tables; deployment and version NULL).
-- Added in 1.6, at the end: the columns before it are unchanged.
CREATE FUNCTION rollguard.check(ddl text)
RETURNS TABLE (statement text, change text, relation text, "column" text,
               deployment text, version text, reason text, family text)
LANGUAGE C STRICT VOLATILE
AS 'MODULE_PATHNAME', 'rollguard_check';

COMMENT ON FUNCTION rollguard.check(text) IS
'Runs the rules over a migration script without executing it: one row per blocker';

REVOKE ALL ON FUNCTION rollguard.check(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION rollguard.check(text) TO PUBLIC;
