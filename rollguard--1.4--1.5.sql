/* rollguard--1.4--1.5.sql: deploy steps wait only for locks that
 * rollguard's own roles can take */

\echo Use "ALTER EXTENSION rollguard UPDATE TO '1.5'" to load this file. \quit

-- Up to 1.4, deploy steps and registrations also took advisory locks
-- (pg_advisory_xact_lock(hashtext('rollguard.deployment:' || name)), and
-- one per version label): keys that any role can compute and take, and
-- hold, so that any role could stall every deploy step (and, behind them,
-- every checked migration).  Since 1.3 every deploy step and registration
-- takes EXCLUSIVE on rollguard.live_version first and holds it until it
-- commits (rollguard._lock_live()): only rollguard's functions and
-- superusers may take that lock, and it already runs them one at a time.
-- The advisory locks go; the functions are otherwise unchanged.

CREATE OR REPLACE FUNCTION rollguard._lock_deployment(deployment text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    LOCK TABLE rollguard.deployment_state IN ROW EXCLUSIVE MODE;
    PERFORM rollguard._lock_live();
END
$$;


CREATE OR REPLACE FUNCTION rollguard.deploy(deployment text, version text)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d text := rollguard._check_label('deployment name', deployment);
    v text := rollguard._check_label('version label', version);
BEGIN
    PERFORM rollguard._require_preload();
    PERFORM rollguard._lock_deployment(d);
    IF EXISTS (SELECT 1 FROM rollguard.deployment_state s
                WHERE s.deployment = d AND s.version = v AND s.state = 'running')
       AND NOT EXISTS (SELECT 1 FROM rollguard.deployment_state s
                        WHERE s.deployment = d AND s.version <> v) THEN
        RETURN;     -- already exactly so
    END IF;
    PERFORM rollguard._prepare_live(d, v);
    PERFORM rollguard._log('deploy', d, v, detail => jsonb_build_object('replaces',
        COALESCE((SELECT jsonb_agg(s.version ORDER BY s.version) FROM rollguard.deployment_state s WHERE s.deployment = d), '[]')));
    DELETE FROM rollguard.deployment_state s WHERE s.deployment = d;
    INSERT INTO rollguard.deployment_state (deployment, version, state) VALUES (d, v, 'running');
END
$$;


CREATE OR REPLACE FUNCTION rollguard.begin_rollout(deployment text, version text)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d       text := rollguard._check_label('deployment name', deployment);
    v       text := rollguard._check_label('version label', version);
    cur     rollguard.deployment_state;
BEGIN
    PERFORM rollguard._require_preload();
    PERFORM rollguard._lock_deployment(d);
    SELECT * INTO cur FROM rollguard.deployment_state s
     WHERE s.deployment = d AND s.state = 'rolling out';
    IF FOUND THEN
        IF cur.version = v THEN
            RETURN;     -- this rollout is already under way
        END IF;
        RAISE EXCEPTION 'deployment "%" is already rolling out version "%"', d, cur.version
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('Finish or abort that rollout first: rollguard.finish_rollout(%L, %L) or rollguard.abort_rollout(%L, %L).',
                                d, cur.version, d, cur.version);
    END IF;
    SELECT * INTO cur FROM rollguard.deployment_state s WHERE s.deployment = d;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'deployment "%" does not exist', d
            USING ERRCODE = 'undefined_object',
                  HINT = 'A rollout starts from a running version: use rollguard.deploy() for a new deployment.';
    END IF;
    IF cur.version = v THEN
        RAISE EXCEPTION 'deployment "%" already runs version "%"', d, v
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    PERFORM rollguard._prepare_live(d, v);
    INSERT INTO rollguard.deployment_state (deployment, version, state) VALUES (d, v, 'rolling out');
    PERFORM rollguard._log('begin_rollout', d, v, detail => jsonb_build_object('beside', cur.version));
END
$$;


CREATE OR REPLACE FUNCTION rollguard._store_version(version text, manifest jsonb)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v    text := rollguard._check_label('version label', version);
    reg  rollguard.version_registry;
    diff text;
BEGIN
    -- register_version() qualifies every relation name with the caller's
    -- search_path; here, inside a pinned search_path, a bare name would be
    -- resolved wrongly.
    IF manifest IS NOT NULL AND jsonb_typeof(manifest -> 'relations') = 'object'
       AND EXISTS (SELECT 1 FROM jsonb_object_keys(manifest -> 'relations') k WHERE strpos(k, '.') = 0) THEN
        RAISE EXCEPTION 'relation names passed to rollguard._register_version() must be schema-qualified'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Call rollguard.register_version(), which resolves bare names against your search_path.';
    END IF;
    SELECT * INTO reg FROM rollguard.version_registry r WHERE r.version = v FOR UPDATE;
    IF FOUND THEN
        IF NOT reg.declared AND manifest IS NULL THEN
            RETURN;
        END IF;
        IF reg.declared AND manifest IS NULL THEN
            RAISE EXCEPTION 'version "%" is already registered with a manifest', v
                USING ERRCODE = 'duplicate_object',
                      HINT = 'A build does not change: pass the same manifest again, or register the new build under a new version label.';
        END IF;
        IF NOT reg.declared THEN
            RAISE EXCEPTION 'version "%" is already registered without a manifest', v
                USING ERRCODE = 'duplicate_object',
                      DETAIL = 'Its contract is inferred from the schema.',
                      HINT = 'A build does not change: register the manifest under a new version label, or register it before the first deploy.';
        END IF;
        -- Same build registered again: must declare exactly the same contract.
        SELECT string_agg(d.line, E'\n' ORDER BY d.line) INTO diff FROM (
            SELECT format('Column %s.%s.%s %s.', coalesce(o.nspname, n.nspname), coalesce(o.relname, n.relname),
                          coalesce(o.attname, n.attname),
                          CASE WHEN o.attname IS NULL THEN 'is new'
                               WHEN n.attname IS NULL THEN 'is no longer listed'
                               ELSE format('changed from writes %s, nullable %s to writes %s, nullable %s',
                                           o.writes::text, o.nullable::text, n.writes::text, n.nullable::text) END) AS line
              FROM (SELECT * FROM rollguard.contract c WHERE c.version = v) o
              FULL JOIN rollguard._manifest_columns(manifest) n
                ON (n.nspname, n.relname, n.attname) = (o.nspname, o.relname, o.attname)
             WHERE o.attname IS NULL OR n.attname IS NULL
                OR (o.writes, o.nullable) IS DISTINCT FROM (n.writes, n.nullable)
             LIMIT 20) d;
        IF diff IS NOT NULL THEN
            RAISE EXCEPTION 'version "%" is already registered with a different manifest', v
                USING ERRCODE = 'duplicate_object',
                      DETAIL = diff,
                      HINT = 'A build does not change: register the new build under a new version label.';
        END IF;
        RETURN;
    END IF;

    -- stored as given: register_version() passes it normalized (every name
    -- qualified, every property spelled out)
    INSERT INTO rollguard.version_registry (version, declared, manifest)
    VALUES (v, manifest IS NOT NULL, manifest);
    IF manifest IS NOT NULL THEN
        INSERT INTO rollguard.contract (nspname, relname, attname, version, writes, nullable)
        SELECT m.nspname, m.relname, m.attname, v, m.writes, m.nullable
          FROM rollguard._manifest_columns(manifest) m;
    END IF;
    PERFORM rollguard._log('register_version', NULL, v,
                           detail => jsonb_build_object('contract', CASE WHEN manifest IS NULL
                                                                         THEN 'inferred' ELSE 'declared' END));
END
$$;

