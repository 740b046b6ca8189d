/* rollguard--1.2--1.3.sql: the guard's verdict from counters of live use,
 * and observed usage of tagged sessions */

\echo Use "ALTER EXTENSION rollguard UPDATE TO '1.3'" to load this file. \quit

------------------------------------------------------------------------------
-- Counters of live use (the guard's fast verdict)
------------------------------------------------------------------------------

------------------------------------------------------------------------------
-- Observed usage
------------------------------------------------------------------------------

-- The columns that tagged sessions' statements read or write, per version
-- (recorded in shared memory by the library; see README, "Observed usage"),
-- in this database.  relation is schema-qualified, unquoted, as in
-- manifests.
CREATE FUNCTION rollguard._observed(OUT version text, OUT relation text, OUT "column" name,
                                    OUT reads boolean, OUT writes boolean,
                                    OUT first_seen timestamptz, OUT last_seen timestamptz)
RETURNS SETOF record
LANGUAGE C STRICT VOLATILE
AS 'MODULE_PATHNAME', 'rollguard_observed';

CREATE VIEW rollguard.observed AS
SELECT version, relation, "column", reads, writes, first_seen, last_seen
  FROM rollguard._observed();

COMMENT ON VIEW rollguard.observed IS
'Columns that tagged sessions were seen reading or writing, per version: each counts as used by that version';

-- The table's state for the whole server: entries (every database), the
-- limit (rollguard.max_observed), uses not recorded since the server
-- started because the table was full, and when it was last saved to disk.
CREATE FUNCTION rollguard._observed_stats(OUT entries bigint, OUT max_entries integer,
                                          OUT dropped bigint, OUT saved_at timestamptz)
RETURNS record
LANGUAGE C STRICT VOLATILE
AS 'MODULE_PATHNAME', 'rollguard_observed_stats';

CREATE VIEW rollguard.observed_stats AS
SELECT entries, max_entries, dropped, saved_at FROM rollguard._observed_stats();

COMMENT ON VIEW rollguard.observed_stats IS
'Observed uses: how many are kept, the limit, how many were not recorded because it was reached, when last saved';

-- Like rollguard.sessions (and pg_stat_activity), visible to everyone: they
-- name columns of the schema and version labels, nothing more.
GRANT EXECUTE ON FUNCTION rollguard._observed(), rollguard._observed_stats() TO PUBLIC;
GRANT SELECT ON rollguard.observed, rollguard.observed_stats TO PUBLIC;

CREATE FUNCTION rollguard._clear_observed(version text, nspname name, relname name, attname name)
RETURNS bigint
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'rollguard_clear_observed';

REVOKE ALL ON FUNCTION rollguard._clear_observed(text, name, name, name) FROM PUBLIC;

-- Forgets observed uses of this database: of a version, a relation, a
-- column, or any combination (NULL: any).  Returns how many were removed,
-- and records the call in rollguard.history.  A session that still uses a
-- column records it again at its next use.
CREATE FUNCTION rollguard.clear_observed(version text DEFAULT NULL,
                                         relation pg_catalog.regclass DEFAULT NULL,
                                         "column" name DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    nsp     name;
    rel     name;
    removed bigint;
BEGIN
    IF $1 IS NOT NULL THEN
        PERFORM rollguard._check_label('version label', $1);
    END IF;
    IF $2 IS NOT NULL THEN
        SELECT n.nspname, c.relname INTO nsp, rel
          FROM pg_catalog.pg_class c
          JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
         WHERE c.oid OPERATOR(pg_catalog.=) $2;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'relation with OID % does not exist', $2::oid
                USING ERRCODE = 'undefined_table';
        END IF;
    END IF;
    removed := rollguard._clear_observed($1, nsp, rel, $3);
    PERFORM rollguard._log('clear_observed', NULL, $1,
                           CASE WHEN nsp IS NOT NULL THEN nsp OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) rel END,
                           $3, NULL, pg_catalog.jsonb_build_object('removed', removed));
    RETURN removed;
END
$$;

COMMENT ON FUNCTION rollguard.clear_observed(text, pg_catalog.regclass, name) IS
'Forgets observed uses of a version, relation or column (NULL: any); administrators only';

REVOKE ALL ON FUNCTION rollguard.clear_observed(text, pg_catalog.regclass, name) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION rollguard.clear_observed(text, pg_catalog.regclass, name) TO rollguard_admin;
