/* rollguard--1.6--1.7.sql: day two and every stack */

\echo Use "ALTER EXTENSION rollguard UPDATE TO '1.7'" to load this file. \quit

-- Each section below says what it changes and why; the full script
-- rollguard--1.7.sql holds the same definitions.

/* ----------------------------------------------------------------------
 * 1.7: liveness evidence, and expiry (rollguard.stale_after,
 * rollguard.forget_after)
 * ---------------------------------------------------------------------- */

-- A deployment the registry says is live may be gone: a mirror deleted from
-- a dashboard, an instance of a rolling update that died.  Its evidence
-- tells: its last deploy step (kept here, stamped by every deploy step) and
-- when a tagged session of it was last connected (kept by the library in
-- shared memory and pg_stat/rollguard_seen.dat, stamped when a session
-- tags itself, drops its tag or ends; never per statement).  expired_on is
-- the evidence (its last_seen) on which its expiry was recorded, so that
-- each expiry is recorded once; a deploy step clears it.
CREATE TABLE rollguard.deployment_seen (
    deployment text PRIMARY KEY,
    last_step  timestamptz NOT NULL,
    expired_at timestamptz,
    expired_on timestamptz
);
SELECT pg_catalog.pg_extension_config_dump('rollguard.deployment_seen', '');

-- Per deployment of this database: when a tagged session of it (of a role
-- that may provide evidence) last tagged itself, dropped its tag or ended,
-- and whether one is connected now.
CREATE FUNCTION rollguard._connected_seen(OUT deployment text, OUT last_connected timestamptz,
                                          OUT connected boolean)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'rollguard_connected_seen'
LANGUAGE C VOLATILE STRICT;
REVOKE ALL ON FUNCTION rollguard._connected_seen() FROM PUBLIC;

-- An interval setting: NULL when off.
CREATE FUNCTION rollguard._interval_setting(name text)
RETURNS interval
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN s IS NULL OR lower(s) OPERATOR(pg_catalog.=) 'off' THEN NULL
                ELSE NULLIF(s::interval, interval '0') END
      FROM pg_catalog.current_setting($1, true) AS s
$$;
REVOKE ALL ON FUNCTION rollguard._interval_setting(text) FROM PUBLIC;

-- "30 days", "5 hours", "3 minutes", "12 seconds": how long since a moment.
CREATE FUNCTION rollguard._for_words(since timestamptz)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN s OPERATOR(pg_catalog.>=) 86400 THEN pg_catalog.format('%s day%s', s / 86400, CASE WHEN s / 86400 OPERATOR(pg_catalog.=) 1 THEN '' ELSE 's' END)
                WHEN s OPERATOR(pg_catalog.>=) 3600 THEN pg_catalog.format('%s hour%s', s / 3600, CASE WHEN s / 3600 OPERATOR(pg_catalog.=) 1 THEN '' ELSE 's' END)
                WHEN s OPERATOR(pg_catalog.>=) 60 THEN pg_catalog.format('%s minute%s', s / 60, CASE WHEN s / 60 OPERATOR(pg_catalog.=) 1 THEN '' ELSE 's' END)
                ELSE pg_catalog.format('%s second%s', s, CASE WHEN s OPERATOR(pg_catalog.=) 1 THEN '' ELSE 's' END) END
      FROM (SELECT greatest(0, pg_catalog.floor(extract(epoch FROM pg_catalog.statement_timestamp() OPERATOR(pg_catalog.-) $1)))::bigint AS s) x
$$;
REVOKE ALL ON FUNCTION rollguard._for_words(timestamptz) FROM PUBLIC;

-- Each deployment the registry records, its evidence, and what follows:
--   connected  a tagged session of it is connected now
--   seen       evidence within rollguard.stale_after
--   stale      none for longer: refusals say so, and name remove_deployment()
--   expired    none for rollguard.forget_after (when set): it no longer
--              counts as live (the guard, check(), usage(), contractible
--              and status() leave it out), until a deploy step or a tagged
--              session of it
CREATE FUNCTION rollguard._liveness(OUT deployment text, OUT last_deployed timestamptz,
                                    OUT last_connected timestamptz, OUT connected boolean,
                                    OUT last_seen timestamptz, OUT liveness text)
RETURNS SETOF record
LANGUAGE sql VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH d AS (
        SELECT s.deployment, pg_catalog.max(s.since) AS since
          FROM rollguard.deployment_state s GROUP BY 1
    ), e AS (
        SELECT d.deployment,
               greatest(w.last_step, d.since) AS last_deployed,
               c.last_connected,
               coalesce(c.connected, false) AS connected
          FROM d
          LEFT JOIN rollguard.deployment_seen w ON w.deployment OPERATOR(pg_catalog.=) d.deployment
          LEFT JOIN rollguard._connected_seen() c ON c.deployment OPERATOR(pg_catalog.=) d.deployment
    ), t AS (
        SELECT rollguard._interval_setting('rollguard.stale_after') AS stale_after,
               rollguard._interval_setting('rollguard.forget_after') AS forget_after
    )
    SELECT e.deployment, e.last_deployed, e.last_connected, e.connected,
           greatest(e.last_deployed, e.last_connected),
           CASE WHEN e.connected THEN 'connected'
                WHEN greatest(e.last_deployed, e.last_connected) OPERATOR(pg_catalog.<)
                     (pg_catalog.statement_timestamp() OPERATOR(pg_catalog.-) t.forget_after) THEN 'expired'
                WHEN greatest(e.last_deployed, e.last_connected) OPERATOR(pg_catalog.<)
                     (pg_catalog.statement_timestamp() OPERATOR(pg_catalog.-) t.stale_after) THEN 'stale'
                ELSE 'seen' END
      FROM e CROSS JOIN t
$$;
GRANT EXECUTE ON FUNCTION rollguard._liveness() TO PUBLIC;

-- Records every expiry not recorded yet, once: in rollguard.history
-- (action expire_deployment) and the server log.  Called by whatever relies
-- on the live set (the guard and check() when an expired deployment would
-- have blocked, contractible through check(), status()) and by every
-- deploy step; in a read-only transaction it records nothing (the next
-- writable one does).  Concurrent callers serialize on the deployment's
-- row: the second finds expired_on already set to the same evidence.
CREATE FUNCTION rollguard._note_expiries()
RETURNS integer
LANGUAGE plpgsql VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    n integer := 0;
BEGIN
    IF current_setting('transaction_read_only') = 'on'
       OR rollguard._interval_setting('rollguard.forget_after') IS NULL THEN
        RETURN 0;   -- nothing expires (or nothing can be written)
    END IF;
    FOR r IN SELECT l.* FROM rollguard._liveness() l WHERE l.liveness = 'expired'
              ORDER BY l.deployment COLLATE "C"
    LOOP
        INSERT INTO rollguard.deployment_seen AS s (deployment, last_step, expired_at, expired_on)
        VALUES (r.deployment, r.last_deployed, clock_timestamp(), r.last_seen)
        ON CONFLICT (deployment) DO UPDATE
           SET expired_at = EXCLUDED.expired_at, expired_on = EXCLUDED.expired_on
         WHERE s.expired_on IS DISTINCT FROM EXCLUDED.expired_on;
        CONTINUE WHEN NOT FOUND;
        PERFORM rollguard._log('expire_deployment', r.deployment, NULL,
            reason => format('no deploy step and no tagged session for %s (rollguard.forget_after = %s)',
                             rollguard._for_words(r.last_seen), current_setting('rollguard.forget_after')),
            detail => jsonb_build_object(
                'ran', (SELECT jsonb_agg(s.version ORDER BY s.version) FROM rollguard.deployment_state s
                         WHERE s.deployment = r.deployment),
                'last_deployed', r.last_deployed, 'last_connected', r.last_connected,
                'forget_after', current_setting('rollguard.forget_after')));
        RAISE LOG 'rollguard: deployment "%" expired: no deploy step and no tagged session for %',
                  r.deployment, rollguard._for_words(r.last_seen)
            USING DETAIL = format('It no longer counts as live ("rollguard.forget_after" is %s); its last deploy step was at %s, its last tagged session %s.',
                                  current_setting('rollguard.forget_after'), r.last_deployed,
                                  coalesce('at ' || r.last_connected::text, 'was never seen')),
                  HINT = 'A deploy step of the deployment makes it count again.';
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;
REVOKE ALL ON FUNCTION rollguard._note_expiries() FROM PUBLIC;

-- rollguard.deployments shows the evidence (columns appended: users select
-- from it).
CREATE OR REPLACE VIEW rollguard.deployments AS
SELECT d.deployment, d.version, d.state, d.since,
       v.declared AS declared_contract,
       l.last_deployed, l.last_connected, l.liveness
  FROM rollguard.deployment_state d
  JOIN rollguard.version_registry v ON v.version OPERATOR(pg_catalog.=) d.version
  LEFT JOIN rollguard._liveness() l ON l.deployment OPERATOR(pg_catalog.=) d.deployment;

COMMENT ON VIEW rollguard.deployments IS
'One row per (deployment, version) recorded live: running, or rolling out beside the running version; with its evidence (last deploy step, last tagged session) and liveness (connected, seen, stale, expired)';

-- Every deploy step stamps the deployment's last deploy step, ends its
-- expiry and records those of others (see rollguard--1.7.sql).
CREATE OR REPLACE FUNCTION rollguard._lock_deployment(deployment text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d text := $1;
    was_expired_on timestamptz;
BEGIN
    LOCK TABLE rollguard.deployment_state IN ROW EXCLUSIVE MODE;
    PERFORM rollguard._lock_live();
    -- (locked first: a transaction recording its expiry is waited for)
    SELECT CASE WHEN s.expired_at IS NOT NULL THEN s.expired_on END INTO was_expired_on
      FROM rollguard.deployment_seen s WHERE s.deployment = d FOR UPDATE;
    INSERT INTO rollguard.deployment_seen AS s (deployment, last_step) VALUES (d, now())
    ON CONFLICT ON CONSTRAINT deployment_seen_pkey DO UPDATE
       SET last_step = EXCLUDED.last_step, expired_at = NULL, expired_on = NULL;
    IF was_expired_on IS NOT NULL
       AND EXISTS (SELECT 1 FROM rollguard.deployment_state s WHERE s.deployment = d) THEN
        PERFORM rollguard._log('revive_deployment', d, NULL,
                               detail => jsonb_build_object('expired_on', was_expired_on));
    END IF;
    PERFORM rollguard._note_expiries();
END
$$;

-- usage() leaves expired deployments out.
CREATE OR REPLACE FUNCTION rollguard.usage(relation pg_catalog.regclass, "column" name DEFAULT NULL)
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
         WHERE d.deployment NOT IN (SELECT x.deployment FROM rollguard._liveness() x
                                     WHERE x.liveness OPERATOR(pg_catalog.=) 'expired')
        UNION
        SELECT s.deployment, s.version, 'connected'
          FROM rollguard.sessions s
         WHERE s.trusted
           AND NOT EXISTS (SELECT 1 FROM rollguard.deployment_state d
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

-- status() says which deployments are stale or expired, and records expiries.
CREATE OR REPLACE FUNCTION rollguard.status()
RETURNS SETOF text
LANGUAGE plpgsql VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    n bigint;
BEGIN
    PERFORM rollguard._note_expiries();
    SELECT count(*) INTO n FROM rollguard._liveness() l
     WHERE l.liveness OPERATOR(pg_catalog.<>) 'expired';
    RETURN NEXT format('%s deployment%s live:', n, CASE WHEN n OPERATOR(pg_catalog.=) 1 THEN '' ELSE 's' END);
    FOR r IN
        SELECT d.deployment, d.version, d.state, d.since, l.liveness, l.last_seen,
               (SELECT count(*) FROM rollguard.sessions s
                 WHERE s.trusted AND s.deployment OPERATOR(pg_catalog.=) d.deployment
                   AND s.version OPERATOR(pg_catalog.=) d.version) AS connected
          FROM rollguard.deployment_state d
          LEFT JOIN rollguard._liveness() l ON l.deployment OPERATOR(pg_catalog.=) d.deployment
         ORDER BY l.liveness IS NOT DISTINCT FROM 'expired',
                  rollguard.version_sort_key(d.deployment), d.deployment,
                  rollguard.version_sort_key(d.version), d.version
    LOOP
        IF r.liveness OPERATOR(pg_catalog.=) 'expired' THEN
            RETURN NEXT format('  %s ran %s; expired: no deploy step and no tagged session for %s, it no longer counts (rollguard.forget_after)',
                               r.deployment, r.version, rollguard._for_words(r.last_seen));
            CONTINUE;
        END IF;
        RETURN NEXT format('  %s runs %s%s since %s; %s%s',
                           r.deployment, r.version,
                           CASE WHEN r.state OPERATOR(pg_catalog.=) 'rolling out' THEN ' (rolling out)' ELSE '' END,
                           to_char(r.since, 'YYYY-MM-DD HH24:MI'),
                           CASE WHEN r.connected OPERATOR(pg_catalog.>) 0
                                THEN format('%s tagged session%s connected', r.connected,
                                            CASE WHEN r.connected OPERATOR(pg_catalog.=) 1 THEN '' ELSE 's' END)
                                ELSE 'no tagged session connected' END,
                           CASE WHEN r.liveness OPERATOR(pg_catalog.=) 'stale'
                                THEN format('; not seen for %s: if it no longer exists, rollguard.remove_deployment(%L)',
                                            rollguard._for_words(r.last_seen), r.deployment)
                                ELSE '' END);
    END LOOP;
    FOR r IN
        SELECT s.deployment, s.version, count(*) AS sessions
          FROM rollguard.sessions s
         WHERE s.trusted
           AND NOT EXISTS (SELECT 1 FROM rollguard.deployment_state d
                            WHERE d.deployment OPERATOR(pg_catalog.=) s.deployment
                              AND d.version OPERATOR(pg_catalog.=) s.version)
         GROUP BY 1, 2 ORDER BY 1, 2
    LOOP
        RETURN NEXT format('  %s connected as %s (%s session%s), not recorded by a deploy step',
                           r.deployment, r.version, r.sessions,
                           CASE WHEN r.sessions OPERATOR(pg_catalog.=) 1 THEN '' ELSE 's' END);
    END LOOP;
    SELECT count(*) INTO n FROM rollguard._contractible();
    IF n OPERATOR(pg_catalog.=) 0 THEN
        RETURN NEXT 'nothing to contract now';
    ELSE
        RETURN NEXT format('%s change%s may be contracted now (rollguard.contractible):',
                           n, CASE WHEN n OPERATOR(pg_catalog.=) 1 THEN '' ELSE 's' END);
        FOR r IN SELECT c.statement, c.unused_since FROM rollguard._contractible() c LOOP
            RETURN NEXT '  ' OPERATOR(pg_catalog.||) r.statement OPERATOR(pg_catalog.||)
                        CASE WHEN r.unused_since IS NULL THEN ''
                             ELSE format('  -- unused since %s', r.unused_since) END;
        END LOOP;
    END IF;
    SELECT sum(s.refused) AS refused, sum(s.warned) AS warned, sum(s.let_through) AS let_through,
           sum(s.overridden) AS overridden INTO r
      FROM rollguard._stats() s;
    RETURN NEXT format('since %s: %s refused, %s warned, %s let through, %s overridden',
                       (SELECT to_char(i.stats_reset, 'YYYY-MM-DD HH24:MI') FROM rollguard._stats_info() i),
                       r.refused, r.warned, r.let_through, r.overridden);
END
$$;

------------------------------------------------------------------------------
-- contractible: "unused since" is never a version that did not go live yet
------------------------------------------------------------------------------

-- A version registered without a manifest takes its inferred contract (every
-- column there is) when it first goes live; until then its contract is
-- empty, and contractible named it as the version since which a column was
-- unused.
CREATE OR REPLACE FUNCTION rollguard._contractible(OUT change text, OUT relation text, OUT "column" text,
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
            -- (a version whose inferred contract is not taken yet never
            -- went live: it will use every column there is when it does)
            SELECT v.version INTO unused_since FROM rollguard.version_registry v
             WHERE (last_user IS NULL OR rollguard.version_cmp(v.version, last_user) OPERATOR(pg_catalog.>) 0)
               AND (v.declared OR v.contract_taken_at IS NOT NULL)
             ORDER BY rollguard.version_sort_key(v.version), v.version LIMIT 1;
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;

/* ----------------------------------------------------------------------
 * 1.7: register_version and deploy at manifest scale (issue 14)
 * ---------------------------------------------------------------------- */

-- A valid manifest is checked and expanded in one set-based query, its
-- shape in one pass in C (rollguard._manifest_shape_ok); the relation by
-- relation loop only runs to find and name the first problem, with the
-- same messages as before.  A 5,000-column register_version spends most of
-- its time in the contract's index entries now.
-- True when a manifest's "relations" has the shape every valid manifest
-- has: each relation a non-empty object of columns, each column name 1 to
-- 63 bytes, each column an object of boolean "writes" and "nullable" only.
-- One pass in C (manifest.c); it names nothing: _manifest_columns() does.
CREATE FUNCTION rollguard._manifest_shape_ok(relations jsonb)
RETURNS boolean
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'rollguard_manifest_shape_ok';
REVOKE ALL ON FUNCTION rollguard._manifest_shape_ok(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION rollguard._manifest_shape_ok(jsonb) TO rollguard_deploy;

-- One row per column of a manifest relation: its name, "writes" and
-- "nullable" (true when left out), in the relation's key order; in C
-- (manifest.c), for manifests _manifest_shape_ok() passed.
CREATE FUNCTION rollguard._relation_columns(relation jsonb)
RETURNS TABLE (attname text, writes boolean, nullable boolean)
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'rollguard_relation_columns';

-- True when a manifest is normalized already (what the generators write:
-- every relation "schema.name", every property spelled out): then it is
-- valid, and _normalize_manifest() returns it as it is (manifest.c).
CREATE FUNCTION rollguard._manifest_is_normal(manifest jsonb)
RETURNS boolean
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'rollguard_manifest_is_normal';
REVOKE ALL ON FUNCTION rollguard._relation_columns(jsonb), rollguard._manifest_is_normal(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION rollguard._relation_columns(jsonb), rollguard._manifest_is_normal(jsonb) TO rollguard_deploy;

-- The manifest with every relation schema-qualified and every property
-- explicit: what register_version stores and compares.  Bare names are
-- resolved as rollguard._manifest_columns() says.
CREATE OR REPLACE FUNCTION rollguard._normalize_manifest(manifest jsonb, caller_path name[] DEFAULT NULL,
                                              caller_schema name DEFAULT NULL)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    -- built as text and parsed once: jsonb_object_agg is slow for the
    -- hundreds of thousands of columns a large manifest may list
    SELECT CASE WHEN manifest IS NULL THEN NULL
                WHEN rollguard._manifest_is_normal(manifest) THEN manifest ELSE
        ('{"relations": {' || COALESCE(
            (SELECT pg_catalog.string_agg(pg_catalog.to_json(r.relation)::text || ': {' || r.columns || '}',
                                          ', ' ORDER BY r.relation)
               FROM (SELECT m.nspname OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) m.relname AS relation,
                            pg_catalog.string_agg(pg_catalog.to_json(m.attname)::text
                                                  || ': {"writes": ' || m.writes::text
                                                  || ', "nullable": ' || m.nullable::text || '}', ', ') AS columns
                       FROM rollguard._manifest_columns(manifest, caller_path, caller_schema) m
                      GROUP BY m.nspname, m.relname) r),
            '') || '}}')::jsonb
    END
$$;

-- The columns of a version's contract (as registered) that do not exist
-- now: one lookup in the backend's catalog caches each (forward_check.c).
CREATE FUNCTION rollguard._absent_columns(version text)
RETURNS TABLE (nspname text, relname text, attname text)
LANGUAGE c STABLE STRICT ROWS 10
AS 'MODULE_PATHNAME', 'rollguard_absent_columns';
REVOKE ALL ON FUNCTION rollguard._absent_columns(text) FROM PUBLIC;

-- Columns of a version's effective contract that no longer exist: missing
-- now, and either seen removed by the guard after the version was
-- registered or, for an inferred contract, present when the contract was
-- taken.  A declared column that never existed, or that was removed before
-- the build was registered, is not "no longer": its expand migration (which
-- may bring a dropped name back) may simply not have run yet.
CREATE OR REPLACE FUNCTION rollguard._missing_columns(v text)
RETURNS TABLE (nspname text, relname text, attname text, removed_by text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    -- The columns missing are found first, in C (usually none: pg_attribute
    -- is not read row by row, nor the contract joined to it); only those
    -- go on to the effective contract (a stop_using declaration drops a
    -- column from an inferred contract) and to removed_column.
    WITH gone AS MATERIALIZED (
        SELECT c.nspname, c.relname, c.attname
          FROM rollguard._absent_columns(v) a
          JOIN rollguard.effective_contract c
            ON c.version = v AND c.nspname = a.nspname AND c.relname = a.relname AND c.attname = a.attname)
    SELECT g.nspname, g.relname, g.attname,
           (SELECT t.change FROM rollguard.removed_column t
             WHERE t.nspname = g.nspname AND t.relname = g.relname
               AND t.attname IN (g.attname, '')
             ORDER BY t.attname DESC LIMIT 1)
      FROM gone g
      JOIN rollguard.version_registry r ON r.version = v
     WHERE NOT r.declared OR EXISTS (
           SELECT 1 FROM rollguard.removed_column t
            WHERE t.nspname = g.nspname AND t.relname = g.relname
              AND t.attname IN (g.attname, '')
              AND t.removed_at > r.registered_at)
     ORDER BY 1, 2, 3
$$;

CREATE OR REPLACE FUNCTION rollguard._manifest_columns(manifest jsonb, caller_path name[] DEFAULT NULL,
                                            caller_schema name DEFAULT NULL)
RETURNS TABLE (nspname text, relname text, attname text, writes boolean, nullable boolean)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k      text;
    rel    text;
    relv   jsonb;
    col    text;
    colv   jsonb;
    prop   text;
    propv  jsonb;
    nsp    text;
    rname  text;
    path   text;
    seen   jsonb := '{}';      -- resolved relation -> the key it was listed under
    other  text;
    dup    text;
BEGIN
    IF manifest IS NULL THEN
        RAISE EXCEPTION 'manifest must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF pg_catalog.jsonb_typeof(manifest) <> 'object' THEN
        RAISE EXCEPTION 'invalid manifest at $'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = pg_catalog.format('The manifest must be a JSON object, not %s.', pg_catalog.jsonb_typeof(manifest)),
                  HINT = 'Write {"relations": {"schema.table": {"column": {}}}}.';
    END IF;
    FOR k IN SELECT pg_catalog.jsonb_object_keys(manifest) LOOP
        IF k <> 'relations' THEN
            RAISE EXCEPTION 'invalid manifest at $.%', rollguard._path_elem(k)
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = pg_catalog.format('Unknown key %s; the only top-level key is "relations".', rollguard._path_elem(k));
        END IF;
    END LOOP;
    IF NOT manifest ? 'relations' THEN
        RAISE EXCEPTION 'invalid manifest at $'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'The key "relations" is missing.';
    END IF;
    IF pg_catalog.jsonb_typeof(manifest -> 'relations') <> 'object' THEN
        RAISE EXCEPTION 'invalid manifest at $.relations'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = pg_catalog.format('"relations" must be a JSON object, not %s.', pg_catalog.jsonb_typeof(manifest -> 'relations'));
    END IF;

    -- The common case, a valid manifest, in one set-based query: every
    -- relation an object that lists columns, its name well formed and
    -- resolved (as in the loop below), no relation listed under two names,
    -- every column valid.  It returns nothing unless all of that holds; then
    -- the loop goes relation by relation, finds the first problem and names
    -- it.  (Manifests may list thousands of columns.)
    RETURN QUERY
        WITH r AS (
            SELECT e.key AS rel, e.value AS relv,
                   CASE WHEN pg_catalog.strpos(e.key, '.') > 0
                        THEN pg_catalog.split_part(e.key, '.', 1) END AS qnsp,
                   CASE WHEN pg_catalog.strpos(e.key, '.') > 0
                        THEN pg_catalog.substr(e.key, pg_catalog.strpos(e.key, '.') + 1)
                        ELSE e.key END AS rname
              FROM pg_catalog.jsonb_each(manifest -> 'relations') e),
        rr AS MATERIALIZED (
            SELECT r.rel, r.relv, r.qnsp, r.rname,
                   COALESCE(r.qnsp,
                            (SELECT n.nspname::text
                               FROM pg_catalog.unnest(caller_path) WITH ORDINALITY AS p(nspname, n)
                               JOIN pg_catalog.pg_namespace n ON n.nspname = p.nspname
                              WHERE r.rname <> '' AND pg_catalog.octet_length(r.rname) < 64
                                AND EXISTS (SELECT 1 FROM pg_catalog.pg_class c
                                             WHERE c.relnamespace = n.oid AND c.relname = r.rname)
                              ORDER BY p.n
                              LIMIT 1),
                            caller_schema::text) AS nsp
              FROM r),
        ok AS (
            SELECT COALESCE(pg_catalog.bool_and(
                       rr.rname <> '' AND rr.qnsp IS DISTINCT FROM ''
                       AND pg_catalog.octet_length(rr.rname) < 64
                       AND COALESCE(pg_catalog.octet_length(rr.qnsp), 0) < 64
                       AND rr.nsp IS NOT NULL), true)
                   AND pg_catalog.count(DISTINCT (rr.nsp, rr.rname)) = pg_catalog.count(*)
                   AND rollguard._manifest_shape_ok(manifest -> 'relations') AS valid
              FROM rr)
        SELECT rr.nsp, rr.rname, e.attname, e.writes, e.nullable
          FROM rr, rollguard._relation_columns(rr.relv) e
         WHERE (SELECT ok.valid FROM ok);
    IF FOUND OR manifest -> 'relations' = '{}' THEN
        RETURN;
    END IF;

    FOR rel, relv IN SELECT e.key, e.value FROM pg_catalog.jsonb_each(manifest -> 'relations') e ORDER BY e.key LOOP
        path := pg_catalog.format('$.relations.%s', rollguard._path_elem(rel));
        IF pg_catalog.jsonb_typeof(relv) <> 'object' THEN
            RAISE EXCEPTION 'invalid manifest at %', path
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = pg_catalog.format('A relation must map column names to objects, not be %s.', pg_catalog.jsonb_typeof(relv));
        END IF;
        IF relv = '{}' THEN
            RAISE EXCEPTION 'invalid manifest at %', path
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = 'The relation lists no columns.',
                      HINT = 'List every column the code reads or writes.';
        END IF;

        -- "schema.name" splits at the first dot; a bare name is resolved
        -- against the caller's search_path (an existing relation, else the
        -- caller's current_schema()).
        IF pg_catalog.strpos(rel, '.') > 0 THEN
            nsp := pg_catalog.split_part(rel, '.', 1);
            rname := pg_catalog.substr(rel, pg_catalog.strpos(rel, '.') + 1);
        ELSE
            nsp := NULL;
            rname := rel;
        END IF;
        IF rname = '' OR nsp = '' THEN
            RAISE EXCEPTION 'invalid manifest at %', path
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = 'A relation name must be "schema.name" or "name", with neither part empty.';
        END IF;
        IF pg_catalog.octet_length(rname) >= 64 OR pg_catalog.octet_length(nsp) >= 64 THEN
            RAISE EXCEPTION 'invalid manifest at %', path
                USING ERRCODE = 'name_too_long',
                      DETAIL = 'A schema or relation name is longer than PostgreSQL''s limit of 63 bytes.';
        END IF;
        IF nsp IS NULL THEN
            -- what to_regclass() does in the caller's search_path: the first
            -- of its schemas (temporary and pg_catalog included, in their
            -- places) that has a relation of that name
            SELECT n.nspname INTO nsp
              FROM pg_catalog.unnest(caller_path) WITH ORDINALITY AS p(nspname, n)
              JOIN pg_catalog.pg_namespace n ON n.nspname = p.nspname
             WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_class c
                            WHERE c.relnamespace = n.oid AND c.relname = rname)
             ORDER BY p.n
             LIMIT 1;
            IF nsp IS NULL THEN
                nsp := caller_schema;
            END IF;
            IF nsp IS NULL THEN
                RAISE EXCEPTION 'invalid manifest at %', path
                    USING ERRCODE = 'invalid_schema_name',
                          DETAIL = pg_catalog.format('Relation %s has no schema, and search_path names no existing schema to resolve it in.', pg_catalog.to_json(rname)),
                          HINT = 'Qualify the name as "schema.name".';
            END IF;
        END IF;

        -- Two names of one relation ("person", "public.person") may not both
        -- list a column: within one JSON object keys are unique already.
        other := seen ->> pg_catalog.format('%I.%I', nsp, rname);
        IF other IS NOT NULL THEN
            SELECT x.key INTO dup FROM pg_catalog.jsonb_object_keys(relv) AS x(key)
             WHERE (manifest -> 'relations' -> other) ? x.key ORDER BY x.key LIMIT 1;
            IF dup IS NOT NULL THEN
                RAISE EXCEPTION 'invalid manifest at $.relations.%.%', rollguard._path_elem(rel), rollguard._path_elem(dup)
                    USING ERRCODE = 'duplicate_column',
                          DETAIL = pg_catalog.format('Column %s.%s.%s is listed twice (under two names of the same relation).', nsp, rname, dup);
            END IF;
        ELSE
            seen := seen || pg_catalog.jsonb_build_object(pg_catalog.format('%I.%I', nsp, rname), rel);
        END IF;

        -- The first bad column, in key order (set-based: manifests may list
        -- thousands of columns), then every column at once.
        -- (A column's properties are checked without expanding them into
        -- rows: only the bad column's are, to name the first bad one.)
        SELECT e.key, e.value
          INTO col, colv
          FROM pg_catalog.jsonb_each(relv) e
         WHERE CASE WHEN e.key = '' OR pg_catalog.octet_length(e.key) >= 64
                         OR pg_catalog.jsonb_typeof(e.value) <> 'object' THEN true
                    ELSE e.value - 'writes' - 'nullable' <> '{}'
                         OR pg_catalog.jsonb_typeof(COALESCE(e.value -> 'writes', 'true')) <> 'boolean'
                         OR pg_catalog.jsonb_typeof(COALESCE(e.value -> 'nullable', 'true')) <> 'boolean' END
         ORDER BY e.key LIMIT 1;
        IF FOUND THEN
            SELECT p.key, p.value
              INTO prop, propv
              FROM pg_catalog.jsonb_each(CASE WHEN pg_catalog.jsonb_typeof(colv) = 'object'
                                              THEN colv END) WITH ORDINALITY p(key, value, n)
             WHERE p.key NOT IN ('writes', 'nullable')
                OR pg_catalog.jsonb_typeof(p.value) <> 'boolean'
             ORDER BY p.n LIMIT 1;
            path := pg_catalog.format('$.relations.%s.%s', rollguard._path_elem(rel), rollguard._path_elem(col));
            IF col = '' THEN
                RAISE EXCEPTION 'invalid manifest at %', path
                    USING ERRCODE = 'invalid_parameter_value',
                          DETAIL = 'A column name must not be empty.';
            END IF;
            IF pg_catalog.octet_length(col) >= 64 THEN
                RAISE EXCEPTION 'invalid manifest at %', path
                    USING ERRCODE = 'name_too_long',
                          DETAIL = 'The column name is longer than PostgreSQL''s limit of 63 bytes.';
            END IF;
            IF pg_catalog.jsonb_typeof(colv) <> 'object' THEN
                RAISE EXCEPTION 'invalid manifest at %', path
                    USING ERRCODE = 'invalid_parameter_value',
                          DETAIL = pg_catalog.format('A column must map to an object such as {"writes": true, "nullable": false}, not be %s.', pg_catalog.jsonb_typeof(colv));
            END IF;
            IF prop NOT IN ('writes', 'nullable') THEN
                RAISE EXCEPTION 'invalid manifest at %.%', path, rollguard._path_elem(prop)
                    USING ERRCODE = 'invalid_parameter_value',
                          DETAIL = pg_catalog.format('Unknown column property %s; the properties are "writes" and "nullable".', rollguard._path_elem(prop));
            END IF;
            RAISE EXCEPTION 'invalid manifest at %.%', path, pg_catalog.to_json(prop)
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = pg_catalog.format('"%s" must be true or false, not %s.', prop, pg_catalog.jsonb_typeof(propv));
        END IF;

        RETURN QUERY
            SELECT nsp, rname, e.key,
                   COALESCE((e.value ->> 'writes')::boolean, true),
                   COALESCE((e.value ->> 'nullable')::boolean, true)
              FROM pg_catalog.jsonb_each(relv) e
             ORDER BY e.key;
    END LOOP;
END
$$;

-- The NOT NULL check of a deploy step probes the contract's primary key
-- once per NOT NULL column, instead of reading every version's rows of
-- each relation the version inserts into: with 200 versions of 2,000
-- columns registered, that read was most of a deploy step's time.
CREATE OR REPLACE FUNCTION rollguard._prepare_live(deployment text, v text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    reg       record;
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
    -- (not the manifest: a large one would be read and decompressed for
    -- nothing)
    SELECT r.declared, r.registered_at, r.contract_taken_at INTO reg
      FROM rollguard.version_registry r WHERE r.version = v FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO rollguard.version_registry (version, declared, manifest)
        VALUES (v, false, NULL)
        RETURNING declared, registered_at, contract_taken_at INTO reg;
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
                       -- (pg_type is read only for the columns that may be
                       -- NOT NULL: those declared so, and those of a domain)
                       AND (a.attnotnull OR a.atttypid = ANY (ARRAY(SELECT d.oid FROM pg_catalog.pg_type d
                                                                    WHERE d.typtype = 'd')))
                  JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
                  -- one probe of the contract's primary key per NOT NULL
                  -- column: LIMIT 1 (at most one row anyway) keeps the
                  -- planner from flattening it into a join that reads every
                  -- version's rows of the relation, and the attribute name
                  -- compared as text of the index's collation (a name is
                  -- "C") makes it an index condition.
                  LEFT JOIN LATERAL (
                       SELECT ec.writes, ec.nullable FROM rollguard.effective_contract ec
                        WHERE ec.version = v AND ec.nspname = i.nspname AND ec.relname = i.relname
                          AND ec.attname = a.attname::text COLLATE "default"
                        LIMIT 1) c ON true
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

-- A version that leaves the counters of live use (its last deployment
-- goes) reads its contract by its index and probes the counters' primary
-- key per column, instead of scanning every counter row (dead ones
-- included) and probing the contract for each: most of a deploy step that
-- moves a mirror off its version's last deployment.
CREATE OR REPLACE FUNCTION rollguard._count_version(v text, sign integer)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF sign > 0 THEN
        -- The version's effective contract is read once.  Counters of its
        -- columns that exist are raised, the others inserted: deploy steps
        -- hold the counters' lock (rollguard._lock_live()), so nobody
        -- inserts one meanwhile, and a plain insert costs half of an
        -- INSERT ... ON CONFLICT (what a first deploy of a 5,000-column
        -- version spent most of its time on).
        WITH e AS MATERIALIZED (
            SELECT e.nspname, e.relname, e.attname, e.nullable, e.writes
              FROM rollguard.effective_contract e
             WHERE e.version = v),
        raised AS (
            UPDATE rollguard.live_column l
               SET users = l.users + 1,
                   nullable_users = l.nullable_users + e.nullable::integer,
                   writers = l.writers + e.writes::integer
              FROM e
             WHERE (l.nspname, l.relname, l.attname) = (e.nspname, e.relname, e.attname)
            RETURNING l.nspname, l.relname, l.attname),
        added AS (
            INSERT INTO rollguard.live_column (nspname, relname, attname, users, nullable_users, writers)
            SELECT e.nspname, e.relname, e.attname, 1, e.nullable::integer, e.writes::integer
              FROM e
             WHERE NOT EXISTS (SELECT 1 FROM raised r
                                WHERE (r.nspname, r.relname, r.attname) = (e.nspname, e.relname, e.attname)))
        INSERT INTO rollguard.live_relation AS l (nspname, relname, users, inserters)
        SELECT e.nspname, e.relname, 1, bool_or(e.writes)::integer
          FROM e
         GROUP BY 1, 2
        ON CONFLICT (nspname, relname) DO UPDATE
           SET users = l.users + 1, inserters = l.inserters + EXCLUDED.inserters;
        RETURN;
    END IF;
    -- the last user of a column or relation takes its row with it.  (The
    -- version's contract is read first, by its index, and each of its
    -- columns probes the counters' primary key: OFFSET 0 keeps the planner
    -- from flattening the view into a join that scans every counter row,
    -- dead ones included, and probes the contract for each.)
    DELETE FROM rollguard.live_column l
     USING (SELECT e.nspname, e.relname, e.attname FROM rollguard.effective_contract e
             WHERE e.version = v OFFSET 0) e
     WHERE l.users = 1
       AND (l.nspname, l.relname, l.attname) = (e.nspname, e.relname, e.attname);
    UPDATE rollguard.live_column l
       SET users = l.users - 1,
           nullable_users = l.nullable_users - e.nullable::integer,
           writers = l.writers - e.writes::integer
      FROM (SELECT e.nspname, e.relname, e.attname, e.nullable, e.writes
              FROM rollguard.effective_contract e WHERE e.version = v OFFSET 0) e
     WHERE (l.nspname, l.relname, l.attname) = (e.nspname, e.relname, e.attname);
    DELETE FROM rollguard.live_relation l
     USING (SELECT DISTINCT e.nspname, e.relname FROM rollguard.effective_contract e
             WHERE e.version = v) r
     WHERE l.users = 1 AND (l.nspname, l.relname) = (r.nspname, r.relname);
    UPDATE rollguard.live_relation l
       SET users = l.users - 1, inserters = l.inserters - r.writes::integer
      FROM (SELECT e.nspname, e.relname, bool_or(e.writes) AS writes
              FROM rollguard.effective_contract e
             WHERE e.version = v GROUP BY 1, 2) r
     WHERE (l.nspname, l.relname) = (r.nspname, r.relname);
END
$$;

/* ----------------------------------------------------------------------
 * 1.7: the contract names its version without a foreign key, and has two
 * indexes, not three (issue 14)
 * ---------------------------------------------------------------------- */

-- Registering a 5,000-column manifest is storing 5,000 contract rows: each
-- row's index entries were most of it.  The primary key now leads with the
-- version (a version's contract, of a relation, of a column: what deploy
-- steps, the counters and the NOT NULL rules read), and one index serves
-- the guard's question the other way round (which versions use a column, a
-- relation); the version index and the writers' index are gone.
--
-- A foreign key checks every row inserted: a query per row, which was a
-- third of registering a 5,000-column manifest.  Only rollguard's own
-- functions write contract rows, each with its version's row written or
-- locked first in the same transaction, so the check never failed there.
-- What the key did for edits by hand is kept by this trigger, once per
-- statement: deleting a version deletes its contract (ON DELETE CASCADE
-- as before, and the counters follow through the contract's own
-- triggers); changing a version label that a contract names is refused, as
-- the key refused it.  (pg_restore may load the two tables in either
-- order: nothing checks a contract row's version on the way in.)
CREATE FUNCTION rollguard._version_registry_changed()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    orphaned text;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        TRUNCATE rollguard.contract;
    ELSIF TG_OP = 'DELETE' THEN
        DELETE FROM rollguard.contract c
         USING (SELECT DISTINCT o.version FROM old_rows o) o
         WHERE c.version = o.version;
    ELSE
        SELECT o.version INTO orphaned
          FROM old_rows o
         WHERE NOT EXISTS (SELECT 1 FROM rollguard.version_registry r WHERE r.version = o.version)
           AND EXISTS (SELECT 1 FROM rollguard.contract c WHERE c.version = o.version)
         LIMIT 1;
        IF orphaned IS NOT NULL THEN
            RAISE EXCEPTION 'cannot change the label of version "%": its contract names it', orphaned
                USING ERRCODE = 'foreign_key_violation',
                      HINT = 'A build does not change: register the new label as a version of its own.';
        END IF;
    END IF;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION rollguard._version_registry_changed() FROM PUBLIC;

ALTER TABLE rollguard.contract DROP CONSTRAINT contract_version_fkey;
ALTER TABLE rollguard.contract DROP CONSTRAINT contract_pkey;
DROP INDEX rollguard.contract_version_idx;
DROP INDEX IF EXISTS rollguard.contract_writers_idx;  -- (installs from old 1.0 files lack it)
ALTER TABLE rollguard.contract ADD PRIMARY KEY (version, nspname, relname, attname);
CREATE INDEX contract_column_idx ON rollguard.contract (nspname, relname, attname);

CREATE TRIGGER contract_delete AFTER DELETE ON rollguard.version_registry
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION rollguard._version_registry_changed();
CREATE TRIGGER contract_update AFTER UPDATE ON rollguard.version_registry
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION rollguard._version_registry_changed();
CREATE TRIGGER contract_truncate AFTER TRUNCATE ON rollguard.version_registry
    FOR EACH STATEMENT EXECUTE FUNCTION rollguard._version_registry_changed();
