/* rollguard--1.4--1.5.sql: deploy steps wait only for locks that
 * rollguard's own roles can take; each fact defined once */

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

------------------------------------------------------------------------------
-- Each fact once.  What a label may be is one rule in C (label.c), which
-- the settings rollguard.deployment / rollguard.version check too; what a
-- guarded relation is, one C function (catalog.c), which the guard, the
-- observed uses, inferred contracts and declarations all ask.  (The
-- inferred contract no longer takes information_schema's views, which the
-- guard never guarded; override() already refused them.)
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION rollguard._check_label(what text, label text)
RETURNS text
LANGUAGE c IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'rollguard_check_label';

CREATE FUNCTION rollguard._is_guarded(relation pg_catalog.regclass)
RETURNS boolean
LANGUAGE c STABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'rollguard_is_guarded';

REVOKE ALL ON FUNCTION rollguard._is_guarded(pg_catalog.regclass) FROM PUBLIC;

COMMENT ON FUNCTION rollguard._is_guarded(pg_catalog.regclass) IS
'Is this a relation rollguard guards (a table, view, materialized view or foreign table outside the system''s and rollguard''s schemas)?';

CREATE OR REPLACE FUNCTION rollguard._prepare_live(deployment text, v text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    reg     rollguard.version_registry;
    missing text[];
    nmiss   bigint;
    m       record;
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
        RETURN;
    END IF;

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
END
$$;


CREATE OR REPLACE FUNCTION rollguard._declare(kind text, relation pg_catalog.regclass, "column" name, since_version text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s    text := rollguard._check_label('since_version', since_version);
    nsp  text;
    rel  text;
BEGIN
    IF relation IS NULL THEN
        RAISE EXCEPTION 'relation must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF "column" IS NULL OR "column" = '' THEN
        RAISE EXCEPTION 'column must not be %', CASE WHEN "column" IS NULL THEN 'null' ELSE 'empty' END
            USING ERRCODE = CASE WHEN "column" IS NULL THEN 'null_value_not_allowed' ELSE 'invalid_parameter_value' END;
    END IF;
    SELECT n.nspname, c.relname INTO nsp, rel
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid = relation AND rollguard._is_guarded(c.oid);
    IF NOT FOUND THEN
        RAISE EXCEPTION '"%" is not a table, view, materialized view or foreign table that rollguard guards', relation
            USING ERRCODE = 'wrong_object_type';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                    WHERE a.attrelid = relation AND a.attname = "column"
                      AND a.attnum > 0 AND NOT a.attisdropped) THEN
        RAISE EXCEPTION 'column "%" of relation "%.%" does not exist', "column", nsp, rel
            USING ERRCODE = 'undefined_column';
    END IF;
    IF EXISTS (SELECT 1 FROM rollguard.declaration d
                WHERE (d.nspname, d.relname, d.attname, d.kind, d.since_version)
                    = (nsp, rel, _declare."column", _declare.kind, s)) THEN
        RETURN;     -- declared so already
    END IF;
    INSERT INTO rollguard.declaration (nspname, relname, attname, kind, since_version)
    VALUES (nsp, rel, "column", kind, s)
    ON CONFLICT ON CONSTRAINT declaration_pkey DO UPDATE
       SET since_version = EXCLUDED.since_version,
           declared_at = EXCLUDED.declared_at,
           declared_by = EXCLUDED.declared_by;
    PERFORM rollguard._log(kind, NULL, s, nsp || '.' || rel, "column");
END
$$;

