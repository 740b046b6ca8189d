--
-- override: rollguard.override(relation, column, reason) lets breaking
-- changes on one column (a NULL column: the whole relation) through for the
-- rest of the current transaction.  It is for an administrator role
-- (GRANT rollguard_admin TO dba) who knows why the change is safe although
-- the registry says otherwise; the reason is required and recorded in
-- rollguard.history (see the history suite).
--
-- An override lives in the memory of the backend that granted it, tagged
-- with the (sub)transaction that granted it: it is gone when the
-- transaction ends (COMMIT or ROLLBACK) and when a ROLLBACK TO SAVEPOINT
-- undoes the subtransaction that granted it.  It is never stored, so no
-- other session can use it.
--
CREATE EXTENSION rollguard;
\set VERBOSITY default
\set SHOW_CONTEXT never

-- rg_dba administers the database: it owns the application's table and may
-- create in its schema.  rg_deployer only runs deploy scripts.
CREATE ROLE rg_dba LOGIN;
CREATE ROLE rg_deployer LOGIN;
GRANT rollguard_admin TO rg_dba;
GRANT rollguard_deploy TO rg_deployer;

CREATE TABLE item (id int PRIMARY KEY, name text, weight numeric, note text);
ALTER TABLE item OWNER TO rg_dba;
GRANT CREATE ON SCHEMA public TO rg_dba;
CREATE SEQUENCE item_seq;
CREATE TEMP TABLE scratch (id int);
SELECT rollguard.register_version('1', '{"relations": {"public.item": {"id": {}, "name": {}, "weight": {}, "note": {}}}}');
SELECT rollguard.deploy('web', '1');

SET ROLE rg_dba;

-- Without an override, the guard refuses.
ALTER TABLE item DROP COLUMN weight;

------------------------------------------------------------------------------
-- Inside the transaction that granted it, every breaking change on the
-- column goes through, each with a NOTICE that says what it let through and
-- why.  Changes on other columns are still refused.  (These changes could
-- be undone by a later statement: they are judged on what the transaction
-- leaves, at COMMIT, where the NOTICEs and the refusal appear.)
------------------------------------------------------------------------------
BEGIN;
SELECT rollguard.override('item', 'weight', 'weight is a rounding-only change; ticket OPS-17');
ALTER TABLE item ALTER COLUMN weight TYPE integer;
ALTER TABLE item ALTER COLUMN weight SET NOT NULL;
ALTER TABLE item RENAME COLUMN note TO remark;
COMMIT;

-- The same, committed.
BEGIN;
SELECT rollguard.override('item', 'weight', 'weight is a rounding-only change; ticket OPS-17');
ALTER TABLE item ALTER COLUMN weight TYPE integer;
COMMIT;
SELECT format_type(atttypid, atttypmod) FROM pg_attribute
 WHERE attrelid = 'item'::regclass AND attname = 'weight';

-- The next transaction is guarded again: COMMIT ended the override ...
ALTER TABLE item DROP COLUMN weight;

-- ... and so does ROLLBACK.
BEGIN;
SELECT rollguard.override('item', 'weight', 'dropped by mistake in 0042, restoring');
ROLLBACK;
ALTER TABLE item DROP COLUMN weight;

-- Outside a transaction block, override() is a transaction of its own and
-- ends with it: the next statement is refused.
SELECT rollguard.override('item', 'weight', 'too late');
ALTER TABLE item DROP COLUMN weight;

------------------------------------------------------------------------------
-- Savepoints: ROLLBACK TO SAVEPOINT undoes an override granted after the
-- savepoint; one granted before it survives; RELEASE keeps it.
------------------------------------------------------------------------------
BEGIN;
SAVEPOINT before_override;
SELECT rollguard.override('item', 'weight', 'undone by the rollback to savepoint');
ROLLBACK TO SAVEPOINT before_override;
ALTER TABLE item DROP COLUMN weight;
ROLLBACK;

BEGIN;
SELECT rollguard.override('item', 'weight', 'granted before the savepoint');
SAVEPOINT after_override;
ALTER TABLE item DROP COLUMN name;
ROLLBACK TO SAVEPOINT after_override;
ALTER TABLE item DROP COLUMN weight;
ROLLBACK;

BEGIN;
SAVEPOINT s;
SELECT rollguard.override('item', 'weight', 'granted in a released savepoint');
RELEASE SAVEPOINT s;
ALTER TABLE item DROP COLUMN weight;
ROLLBACK;

-- A PL/pgSQL block that fails takes the override it granted with it.
BEGIN;
DO $$
BEGIN
    BEGIN
        PERFORM rollguard.override('item', 'weight', 'inside a failing block');
        RAISE EXCEPTION 'migration step failed';
    EXCEPTION WHEN OTHERS THEN
        RAISE NOTICE 'caught: %', SQLERRM;
    END;
END
$$;
ALTER TABLE item DROP COLUMN weight;
ROLLBACK;

------------------------------------------------------------------------------
-- A NULL column overrides the whole relation: dropping or renaming it, and
-- changes on any of its columns.  A column override does not cover the
-- relation.  (A relation renamed in the transaction is still the one code
-- knows by its old name: dropping item_old is dropping item, which the
-- override covers.  The rename itself would be judged at COMMIT.)
------------------------------------------------------------------------------
BEGIN;
SELECT rollguard.override('item', NULL, 'item is replaced by item_v2 in this migration');
ALTER TABLE item DROP COLUMN name;
ALTER TABLE item RENAME TO item_old;
DROP TABLE item_old;
ROLLBACK;

BEGIN;
SELECT rollguard.override('item', NULL, 'item is replaced by item_v2 in this migration');
DROP TABLE item;
ROLLBACK;

BEGIN;
SELECT rollguard.override('item', 'weight', 'only weight');
DROP TABLE item;
ROLLBACK;
SELECT to_regclass('item') AS still_there;

------------------------------------------------------------------------------
-- Wrong arguments are refused with an error and its SQLSTATE, and grant
-- nothing: a reason is required and must say something, the relation must
-- be one that rollguard guards, the column must exist.
------------------------------------------------------------------------------
CREATE FUNCTION pg_temp.try(call text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE call;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;
SELECT call, pg_temp.try(call) AS result FROM (VALUES
    ($$SELECT rollguard.override('item', 'weight', NULL)$$),
    ($$SELECT rollguard.override('item', 'weight', '')$$),
    ($$SELECT rollguard.override('item', 'weight', '   ')$$),
    ($$SELECT rollguard.override('item', 'weight', E' \t\r\n ')$$),
    ($$SELECT rollguard.override('item', 'weight', repeat('x', 1001))$$),
    ($$SELECT rollguard.override(NULL, 'weight', 'no relation')$$),
    ($$SELECT rollguard.override(NULL, NULL, 'no relation')$$),
    ($$SELECT rollguard.override('item', 'weigth', 'typo')$$),
    ($$SELECT rollguard.override('item', 'ctid', 'a system column')$$),
    ($$SELECT rollguard.override('item_seq', NULL, 'a sequence')$$),
    ($$SELECT rollguard.override('item_seq', 'last_value', 'a sequence')$$),
    ($$SELECT rollguard.override('scratch', NULL, 'a temporary table')$$),
    ($$SELECT rollguard.override('pg_class', NULL, 'a system catalog')$$),
    ($$SELECT rollguard.override('rollguard.history', NULL, 'rollguard''s own')$$),
    ($$SELECT rollguard.override('no_such_table', NULL, 'missing')$$)
) AS t(call);
-- In full, with HINT:
SELECT rollguard.override('item', 'weight', '  ');
-- The reason may be up to 1000 bytes.
BEGIN;
SELECT rollguard.override('item', 'weight', repeat('x', 1000));
ROLLBACK;

RESET ROLE;

------------------------------------------------------------------------------
-- Only an administrator may override: not the deploy role (nor the
-- application role: see the privileges suite).
------------------------------------------------------------------------------
SET ROLE rg_deployer;
SELECT rollguard.override('item', 'weight', 'I am only the deploy script');
RESET ROLE;

------------------------------------------------------------------------------
-- A deploy script that must drop the column now sends both statements in
-- one psql -c call: one transaction, so the override covers the drop.
------------------------------------------------------------------------------
SET ROLE rg_dba;
SELECT rollguard.override('item', 'weight', 'web 1 never reads weight; ticket OPS-18') \; ALTER TABLE item DROP COLUMN weight;
RESET ROLE;
SELECT attname FROM pg_attribute
 WHERE attrelid = 'item'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum;

-- The counters of live use agree with a recount from scratch.
SELECT * FROM rollguard._live_drift();

-- Clean up.
SELECT rollguard.remove_deployment('web');
DROP TABLE item;
DROP SEQUENCE item_seq;
DROP TABLE scratch;
DROP FUNCTION pg_temp.try(text);
REVOKE CREATE ON SCHEMA public FROM rg_dba;
DROP ROLE rg_dba, rg_deployer;
DROP EXTENSION rollguard;
