/* rollguard--1.5--1.6.sql: no way around the guard, no way to stall it */

\echo Use "ALTER EXTENSION rollguard UPDATE TO '1.6'" to load this file. \quit

-- Each section below says what it changes and why; the full script
-- rollguard--1.6.sql holds the same definitions.

-- Day two: who uses a relation (rollguard.usage()), and what may be contracted
-- now (rollguard.contractible).

/* ----------------------------------------------------------------------
 * 1.6: who uses a relation, and what may be contracted now
 * ---------------------------------------------------------------------- */

-- Who uses a relation (or one of its columns), and on what evidence: each
-- live version -- run or rolled out by a deployment, or run by a tagged
-- session connected now -- with the contract rows that name it (declared
-- manifest or inferred contract, amended by declarations), the uses its
-- tagged sessions were seen making, and, for a connected version the
-- registry has no contract for, the fact that it counts as using every
-- column.  What "who blocks me" is, before running anything.
CREATE FUNCTION rollguard.usage(relation pg_catalog.regclass, "column" name DEFAULT NULL)
RETURNS TABLE (deployment text, version text, state text, "column" text,
               evidence text, writes boolean, nullable boolean,
               last_seen timestamptz)
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH rel AS (
        SELECT n.nspname::text AS nsp, c.relname::text AS rel
          FROM pg_catalog.pg_class c
          JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
         WHERE c.oid OPERATOR(pg_catalog.=) $1
    ), live AS (
        SELECT d.deployment, d.version, d.state
          FROM rollguard.deployment_state d
        UNION
        SELECT s.deployment, s.version, 'connected'
          FROM rollguard.sessions s
         WHERE NOT EXISTS (SELECT 1 FROM rollguard.deployment_state d
                            WHERE d.deployment OPERATOR(pg_catalog.=) s.deployment
                              AND d.version OPERATOR(pg_catalog.=) s.version)
    ), uses AS (
        SELECT l.deployment, l.version, l.state, e.attname AS "column",
               CASE WHEN v.declared THEN 'declared manifest' ELSE 'inferred contract' END
               OPERATOR(pg_catalog.||) coalesce(
                   (SELECT ', never_null since ' OPERATOR(pg_catalog.||) nn.since_version
                      FROM rollguard.declaration nn
                     WHERE NOT v.declared AND nn.kind OPERATOR(pg_catalog.=) 'never_null'
                       AND nn.nspname OPERATOR(pg_catalog.=) e.nspname
                       AND nn.relname OPERATOR(pg_catalog.=) e.relname
                       AND nn.attname OPERATOR(pg_catalog.=) e.attname
                       AND rollguard.version_cmp(l.version, nn.since_version) OPERATOR(pg_catalog.>=) 0),
                   '') AS evidence,
               e.writes, e.nullable, NULL::timestamptz AS last_seen
          FROM live l
          JOIN rollguard.version_registry v ON v.version OPERATOR(pg_catalog.=) l.version
          JOIN rollguard.effective_contract e ON e.version OPERATOR(pg_catalog.=) l.version
          CROSS JOIN rel
         WHERE e.nspname OPERATOR(pg_catalog.=) rel.nsp AND e.relname OPERATOR(pg_catalog.=) rel.rel
           AND ($2 IS NULL OR e.attname OPERATOR(pg_catalog.=) $2)
        UNION ALL
        SELECT l.deployment, l.version, l.state, o."column"::text,
               'observed' OPERATOR(pg_catalog.||)
               CASE WHEN o.writes THEN ' writing' ELSE ' reading' END, o.writes, o.writes, o.last_seen
          FROM live l
          JOIN rollguard.observed o ON o.version OPERATOR(pg_catalog.=) l.version
          CROSS JOIN rel
         WHERE o.relation OPERATOR(pg_catalog.=) (rel.nsp OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) rel.rel)
           AND ($2 IS NULL OR o."column" OPERATOR(pg_catalog.=) $2 OR o."column" IS NULL)
        UNION ALL
        SELECT l.deployment, l.version, l.state, NULL,
               'connected, no contract registered: counts as using every column', true, true, NULL
          FROM live l
         WHERE l.state OPERATOR(pg_catalog.=) 'connected'
           AND NOT EXISTS (SELECT 1 FROM rollguard.contract c
                            WHERE c.version OPERATOR(pg_catalog.=) l.version)
    )
    SELECT * FROM uses
     ORDER BY rollguard.version_sort_key(deployment), deployment,
              rollguard.version_sort_key(version), version, "column" NULLS FIRST, evidence
$$;

COMMENT ON FUNCTION rollguard.usage(pg_catalog.regclass, name) IS
'Who uses a relation or column: each live version, its deployments, and the evidence (contract, declarations, observed uses, connected sessions)';

-- What may be contracted now: the changes that some registered version's
-- contract names and that rollguard.check() lets through today.  Dropping a
-- relation or a column that no live version uses any more (with the first
-- registered version that no longer uses it, and the statement); the
-- tightenings live code already respects: SET NOT NULL where every live
-- version that uses the column writes a value, DROP DEFAULT where every
-- live version that inserts writes it.  (The guard's verdict, not the
-- data's: SET NOT NULL still fails on a table that holds NULLs.)
CREATE FUNCTION rollguard._contractible(OUT change text, OUT relation text, OUT "column" text,
                                        OUT unused_since text, OUT statement text)
RETURNS SETOF record
LANGUAGE plpgsql VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cand record;
    dropped text[] := '{}';
    last_user text;
BEGIN
    FOR cand IN
        WITH named AS (
            SELECT DISTINCT c.nspname, c.relname, c.attname FROM rollguard.contract c
        ), rels AS (
            SELECT DISTINCT n.nspname, n.relname, k.oid AS relid, k.relkind
              FROM named n
              JOIN pg_catalog.pg_namespace s ON s.nspname OPERATOR(pg_catalog.=) n.nspname
              JOIN pg_catalog.pg_class k ON k.relnamespace OPERATOR(pg_catalog.=) s.oid
                                        AND k.relname OPERATOR(pg_catalog.=) n.relname
             WHERE rollguard._is_guarded(k.oid)
        ), live_users AS (
            SELECT DISTINCT e.nspname, e.relname, e.attname
              FROM rollguard.effective_contract e
              JOIN rollguard.deployment_state d ON d.version OPERATOR(pg_catalog.=) e.version
        )
        SELECT 0 AS ord, 'drop relation' AS change, r.nspname, r.relname, NULL::text AS attname,
               pg_catalog.format('DROP %s %I.%I;',
                   CASE r.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                                  WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END,
                   r.nspname, r.relname) AS stmt
          FROM rels r
        UNION ALL
        SELECT 1, 'drop column', r.nspname, r.relname, a.attname::text,
               pg_catalog.format('ALTER TABLE %I.%I DROP COLUMN %I;', r.nspname, r.relname, a.attname)
          FROM rels r
          JOIN named n ON n.nspname OPERATOR(pg_catalog.=) r.nspname AND n.relname OPERATOR(pg_catalog.=) r.relname
          JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) r.relid
                                        AND a.attname OPERATOR(pg_catalog.=) n.attname
                                        AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
         WHERE r.relkind IN ('r', 'p', 'f')
        UNION ALL
        SELECT 2, 'set not null', r.nspname, r.relname, a.attname::text,
               pg_catalog.format('ALTER TABLE %I.%I ALTER COLUMN %I SET NOT NULL;', r.nspname, r.relname, a.attname)
          FROM rels r
          JOIN live_users u ON u.nspname OPERATOR(pg_catalog.=) r.nspname AND u.relname OPERATOR(pg_catalog.=) r.relname
          JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) r.relid
                                        AND a.attname OPERATOR(pg_catalog.=) u.attname
                                        AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
         WHERE r.relkind IN ('r', 'p') AND NOT a.attnotnull
        UNION ALL
        SELECT 3, 'drop default', r.nspname, r.relname, a.attname::text,
               pg_catalog.format('ALTER TABLE %I.%I ALTER COLUMN %I DROP DEFAULT;', r.nspname, r.relname, a.attname)
          FROM rels r
          JOIN live_users u ON u.nspname OPERATOR(pg_catalog.=) r.nspname AND u.relname OPERATOR(pg_catalog.=) r.relname
          JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) r.relid
                                        AND a.attname OPERATOR(pg_catalog.=) u.attname
                                        AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
         WHERE r.relkind IN ('r', 'p', 'v') AND a.attnotnull AND a.atthasdef AND a.attgenerated OPERATOR(pg_catalog.=) ''
        ORDER BY 1, 3, 4, 5
    LOOP
        -- the columns of a relation that may go are not listed again
        CONTINUE WHEN cand.ord OPERATOR(pg_catalog.>) 0 AND
            (cand.nspname OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) cand.relname) OPERATOR(pg_catalog.=) ANY (dropped);
        CONTINUE WHEN EXISTS (SELECT 1 FROM rollguard.check(cand.stmt));
        change := cand.change;
        relation := cand.nspname OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) cand.relname;
        "column" := cand.attname;
        statement := cand.stmt;
        unused_since := NULL;
        IF cand.ord OPERATOR(pg_catalog.<=) 1 THEN
            IF cand.ord OPERATOR(pg_catalog.=) 0 THEN
                dropped := dropped OPERATOR(pg_catalog.||) relation;
            END IF;
            -- the first registered version after the last one that used it
            SELECT e.version INTO last_user FROM rollguard.effective_contract e
             WHERE e.nspname OPERATOR(pg_catalog.=) cand.nspname AND e.relname OPERATOR(pg_catalog.=) cand.relname
               AND (cand.attname IS NULL OR e.attname OPERATOR(pg_catalog.=) cand.attname)
             ORDER BY rollguard.version_sort_key(e.version) DESC, e.version DESC LIMIT 1;
            SELECT v.version INTO unused_since FROM rollguard.version_registry v
             WHERE last_user IS NULL OR rollguard.version_cmp(v.version, last_user) OPERATOR(pg_catalog.>) 0
             ORDER BY rollguard.version_sort_key(v.version), v.version LIMIT 1;
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;

CREATE VIEW rollguard.contractible AS
SELECT change, relation, "column", unused_since, statement
  FROM rollguard._contractible();

COMMENT ON VIEW rollguard.contractible IS
'The contract half of expand/contract: drops and tightenings that some registered version''s contract names and that the guard lets through today, with the statement';

REVOKE ALL ON FUNCTION rollguard._contractible() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION rollguard._contractible() TO rollguard_deploy;
GRANT SELECT ON rollguard.contractible TO rollguard_deploy;
REVOKE ALL ON FUNCTION rollguard.usage(pg_catalog.regclass, name) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION rollguard.usage(pg_catalog.regclass, name) TO rollguard_deploy;

-- Counters for monitoring: rollguard.stats, rollguard.stats_info,
-- rollguard.stats_reset().

/* ----------------------------------------------------------------------
 * 1.6: counters for monitoring
 * ---------------------------------------------------------------------- */

-- Cluster-wide, since the server started or rollguard.stats_reset(): per
-- change kind, how many breaking changes were refused, warned about
-- (rollguard.enforce = warn), let through silently (off), or let through
-- by an override.
CREATE FUNCTION rollguard._stats(OUT change text, OUT rule text, OUT refused bigint,
                                 OUT warned bigint, OUT let_through bigint,
                                 OUT overridden bigint)
RETURNS SETOF record
LANGUAGE C STRICT VOLATILE
AS 'MODULE_PATHNAME', 'rollguard_stats';

CREATE VIEW rollguard.stats AS
SELECT change, rule, refused, warned, let_through, overridden
  FROM rollguard._stats();

COMMENT ON VIEW rollguard.stats IS
'Per change kind, breaking changes refused, warned about, let through (enforce = off) or overridden, since the server started or rollguard.stats_reset()';

-- How many statements the guard and the dry run analyzed, how many changes
-- were judged against the registry, and when the counters were reset.
CREATE FUNCTION rollguard._stats_info(OUT statements bigint, OUT dry_run_statements bigint,
                                      OUT changes_judged bigint, OUT stats_reset timestamptz)
RETURNS record
LANGUAGE C STRICT VOLATILE
AS 'MODULE_PATHNAME', 'rollguard_stats_info';

CREATE VIEW rollguard.stats_info AS
SELECT statements, dry_run_statements, changes_judged, stats_reset
  FROM rollguard._stats_info();

COMMENT ON VIEW rollguard.stats_info IS
'Statements the guard and rollguard.check() analyzed, changes judged, and when rollguard.stats_reset() last ran';

CREATE FUNCTION rollguard.stats_reset()
RETURNS void
LANGUAGE C STRICT VOLATILE
AS 'MODULE_PATHNAME', 'rollguard_stats_reset';

COMMENT ON FUNCTION rollguard.stats_reset() IS
'Sets every counter of rollguard.stats and rollguard.stats_info back to zero';

GRANT EXECUTE ON FUNCTION rollguard._stats(), rollguard._stats_info() TO PUBLIC;
GRANT SELECT ON rollguard.stats, rollguard.stats_info TO PUBLIC;
REVOKE ALL ON FUNCTION rollguard.stats_reset() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION rollguard.stats_reset() TO rollguard_admin;
