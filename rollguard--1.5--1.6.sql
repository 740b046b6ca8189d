/* rollguard--1.5--1.6.sql: no way around the guard, no way to stall it */

\echo Use "ALTER EXTENSION rollguard UPDATE TO '1.6'" to load this file. \quit

-- Each section below says what it changes and why; the full script
-- rollguard--1.6.sql holds the same definitions.


------------------------------------------------------------------------------
-- An open migration no longer stalls deploy steps (issue 15, item 9).
--
-- The guard lets its lock on the registry go after judging a statement in a
-- transaction block, and judges the transaction again at COMMIT or PREPARE
-- TRANSACTION.  A prepared transaction keeps a lock on every relation it
-- changes instead of the registry lock: deploy steps of a version that uses
-- one of them are refused (SQLSTATE 55P03) until it is committed or rolled
-- back; all others go through.
--
-- The forward check for writes (issue 16, item 7): deploy and begin_rollout
-- also refuse a version whose inserts would fail on a NOT NULL column: one
-- without a default that the code does not write, or one it may write NULL
-- to.
------------------------------------------------------------------------------

-- Makes a version live for a deployment: registers it if unknown, takes an
-- inferred contract the first time it goes live, and refuses a version whose
-- contract uses columns that no longer exist, or whose inserts would fail on
-- NOT NULL columns, and one that uses a relation a prepared transaction
-- changes.
CREATE OR REPLACE FUNCTION rollguard._prepare_live(deployment text, v text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    reg       rollguard.version_registry;
    missing   text[];
    nmiss     bigint;
    unwritten text[];
    nbad      bigint;
    held      text[];
BEGIN
    -- The forward check must see migrations that committed while this step
    -- waited for them; a transaction snapshot would not.
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'deploy steps must run at isolation level READ COMMITTED'
            USING ERRCODE = 'invalid_transaction_state',
                  DETAIL = format('At isolation level %s, the check that the version''s columns still exist could miss a migration that committed meanwhile.',
                                  upper(current_setting('transaction_isolation'))),
                  HINT = 'Run it in a transaction of its own, or begin the transaction with BEGIN ISOLATION LEVEL READ COMMITTED.';
    END IF;
    SELECT * INTO reg FROM rollguard.version_registry r WHERE r.version = v FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO rollguard.version_registry (version, declared, manifest)
        VALUES (v, false, NULL)
        RETURNING * INTO reg;
        PERFORM rollguard._log('register_version', deployment, v,
                               detail => jsonb_build_object('contract', 'inferred'));
    END IF;

    IF NOT reg.declared AND reg.contract_taken_at IS NULL THEN
        -- Conservative: every column of every user relation that exists now.
        -- A column with a default (or identity, generated) may be left to
        -- the database on INSERT; views are not inserted into.
        INSERT INTO rollguard.contract (nspname, relname, attname, version, writes, nullable)
        SELECT n.nspname, c.relname, a.attname, v,
               c.relkind IN ('r', 'p', 'f') AND NOT a.atthasdef
                 AND a.attidentity = '' AND a.attgenerated = '',
               NOT a.attnotnull
          FROM pg_catalog.pg_class c
          JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid
         WHERE rollguard._is_guarded(c.oid)
           AND a.attnum > 0 AND NOT a.attisdropped;
        UPDATE rollguard.version_registry r SET contract_taken_at = now() WHERE r.version = v;
    ELSE
        SELECT array_agg(format('Column %s.%s.%s no longer exists%s.', mc.nspname, mc.relname, mc.attname,
                                CASE WHEN mc.removed_by IS NULL THEN ''
                                     ELSE format(' (%s)', mc.removed_by) END)),
               count(*)
          INTO missing, nmiss
          FROM (SELECT * FROM rollguard._missing_columns(v) LIMIT 50) mc;
        IF nmiss > 0 THEN
            SELECT count(*) INTO nmiss FROM rollguard._missing_columns(v);
            RAISE EXCEPTION 'cannot deploy version "%" to deployment "%": its code uses % that no longer exist%',
                    v, deployment,
                    CASE WHEN nmiss = 1 THEN '1 column' ELSE nmiss || ' columns' END,
                    CASE WHEN nmiss = 1 THEN 's' ELSE '' END
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      DETAIL = array_to_string(missing, E'\n')
                               || CASE WHEN nmiss > 50 THEN format(E'\n... and %s more.', nmiss - 50) ELSE '' END,
                      HINT = 'A contract migration has run since this version was current: deploy a version whose code matches the schema, or restore the columns first.';
        END IF;

        -- NOT NULL columns its inserts would fail on: one without a default
        -- that the code does not write, or one it may write NULL to that no
        -- longer takes NULL (as for a missing column, "no longer": a build
        -- registered against the column as it is now was made for it).
        -- Only columns that exist: one still to come is its migration's.
        SELECT array_agg(w.line ORDER BY w.line), count(*)
          INTO unwritten, nbad
          FROM (SELECT format(CASE WHEN c.writes
                                   THEN 'Column %s.%s.%s is NOT NULL, and the code may write NULL to it.'
                                   ELSE 'Column %s.%s.%s is NOT NULL without a default, and the code inserts into %s.%s without writing it.' END,
                              i.nspname, i.relname, a.attname, i.nspname, i.relname) AS line
                  FROM (SELECT DISTINCT e.nspname, e.relname FROM rollguard.effective_contract e
                         WHERE e.version = v AND e.writes) i
                  JOIN pg_catalog.pg_namespace n ON n.nspname = i.nspname
                  JOIN pg_catalog.pg_class r ON r.relnamespace = n.oid AND r.relname = i.relname
                  JOIN pg_catalog.pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
                  JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
                  LEFT JOIN rollguard.effective_contract c
                    ON c.version = v AND c.nspname = i.nspname AND c.relname = i.relname
                   AND c.attname = a.attname
                 WHERE (a.attnotnull OR (t.typtype = 'd' AND t.typnotnull))
                   AND CASE WHEN c.writes
                            -- a column that no longer takes NULL: made NOT
                            -- NULL since the contract was taken, or seen so
                            -- by the guard since the build was registered
                            THEN c.nullable AND ((NOT reg.declared AND a.attnotnull) OR EXISTS (
                                     SELECT 1 FROM rollguard.removed_column x
                                      WHERE x.nspname = i.nspname AND x.relname = i.relname
                                        AND x.attname = a.attname AND x.removed_at > reg.registered_at))
                            ELSE NOT a.atthasdef AND a.attidentity = '' AND a.attgenerated = ''
                                 AND NOT (t.typtype = 'd' AND t.typdefaultbin IS NOT NULL) END) w;
        IF nbad > 0 THEN
            RAISE EXCEPTION 'cannot deploy version "%" to deployment "%": its inserts would fail on % NOT NULL column%',
                    v, deployment, nbad, CASE WHEN nbad = 1 THEN '' ELSE 's' END
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      DETAIL = array_to_string(unwritten, E'\n'),
                      HINT = 'Deploy a version whose code writes these columns and never writes NULL to them (its manifest says "nullable": false), or first run the migration that drops their NOT NULL or, for a column the code does not write, gives it a default.';
        END IF;
    END IF;

    -- A prepared transaction was judged when it was prepared, and its
    -- COMMIT PREPARED must not fail: a version that uses a relation it
    -- changes is refused until it ends, rather than waited for.  The guard
    -- leaves a prepared transaction holding a lock on every relation it
    -- changes (SHARE UPDATE EXCLUSIVE or stronger; plain writes take ROW
    -- EXCLUSIVE and do not count).  (pg_locks only if there are any.)
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_prepared_xacts) THEN
        SELECT array_agg(h.line ORDER BY h.line) INTO held
          FROM (SELECT DISTINCT format('Prepared transaction "%s" holds a lock on %s.%s.',
                                       p.gid, u.nspname, u.relname) AS line
                  FROM (SELECT DISTINCT c.nspname, c.relname FROM rollguard.effective_contract c
                         WHERE c.version = v) u
                  JOIN pg_catalog.pg_namespace n ON n.nspname = u.nspname
                  JOIN pg_catalog.pg_class rel ON rel.relnamespace = n.oid AND rel.relname = u.relname
                  JOIN pg_catalog.pg_locks l ON l.locktype = 'relation' AND l.relation = rel.oid
                       AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d
                                          WHERE d.datname = pg_catalog.current_database())
                       AND l.pid IS NULL AND l.granted
                       AND l.mode IN ('ShareUpdateExclusiveLock', 'ShareLock', 'ShareRowExclusiveLock',
                                      'ExclusiveLock', 'AccessExclusiveLock')
                  JOIN pg_catalog.pg_locks x ON x.locktype = 'transactionid' AND x.pid IS NULL
                       AND x.virtualtransaction = l.virtualtransaction
                  JOIN pg_catalog.pg_prepared_xacts p ON p.transaction = x.transactionid) h;
    END IF;
    IF held IS NOT NULL THEN
        RAISE EXCEPTION 'cannot deploy version "%" to deployment "%": a prepared transaction is changing %',
                v, deployment,
                CASE WHEN cardinality(held) = 1 THEN 'a relation it uses' ELSE 'relations it uses' END
            USING ERRCODE = 'lock_not_available',
                  DETAIL = array_to_string(held, E'\n'),
                  HINT = 'Commit or roll back the prepared transaction (COMMIT PREPARED or ROLLBACK PREPARED), then deploy again: what it changes was judged when it was prepared, not against this version.';
    END IF;
END
$$;

------------------------------------------------------------------------------
-- Fail closed (1.6): where the library was not preloaded (removed from
-- shared_preload_libraries while the extension exists), every schema change
-- in the database is refused with the preload error, rather than let through
-- unchecked.  DROP EXTENSION rollguard is let through, and so is everything
-- while a superuser has set rollguard.enforce = off; in an emergency a
-- superuser can also run ALTER EVENT TRIGGER rollguard_require_preload
-- DISABLE.  Where the library is preloaded the trigger returns at once.
-- rollguard.is_active() tells deploy scripts whether the guard checks this
-- session's schema changes.
------------------------------------------------------------------------------

CREATE FUNCTION rollguard._require_preload_ddl()
RETURNS event_trigger
LANGUAGE C
AS 'MODULE_PATHNAME', 'rollguard_require_preload_ddl';
REVOKE ALL ON FUNCTION rollguard._require_preload_ddl() FROM PUBLIC;

CREATE EVENT TRIGGER rollguard_require_preload ON ddl_command_start
    EXECUTE FUNCTION rollguard._require_preload_ddl();

CREATE FUNCTION rollguard.is_active()
RETURNS boolean
LANGUAGE C STABLE
AS 'MODULE_PATHNAME', 'rollguard_is_active';
REVOKE ALL ON FUNCTION rollguard.is_active() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION rollguard.is_active() TO PUBLIC;

COMMENT ON FUNCTION rollguard.is_active() IS
'Does the guard check this session''s schema changes (library preloaded, rollguard.enforce not off)?';
