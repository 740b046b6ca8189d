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
