/* rollguard--1.0--1.1.sql: roles for deploy scripts and administrators, and
 * rollguard.override() */

\echo Use "ALTER EXTENSION rollguard UPDATE TO '1.1'" to load this file. \quit

-- Two roles, granted to login roles with one GRANT each:
--   GRANT rollguard_deploy TO deployer;  -- register versions, deploy steps
--   GRANT rollguard_admin TO dba;        -- all of that, and override()
-- Roles belong to the cluster: they outlive DROP EXTENSION and are shared by
-- every database where the extension is installed.
DO $$
DECLARE
    r record;
BEGIN
    -- Adopt roles left by an installation in another database, but never a
    -- role someone can log in as: that would hand out override() silently.
    FOR r IN SELECT rolname FROM pg_catalog.pg_roles
              WHERE rolname IN ('rollguard_deploy', 'rollguard_admin')
                AND (rolcanlogin OR rolsuper) LOOP
        RAISE EXCEPTION 'role "%" exists and can log in', r.rolname
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'rollguard grants its rights to this role; make it NOLOGIN NOSUPERUSER, or rename it, and try again.';
    END LOOP;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'rollguard_deploy') THEN
        CREATE ROLE rollguard_deploy NOLOGIN;
        COMMENT ON ROLE rollguard_deploy IS 'rollguard: may register versions and record deploy steps';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'rollguard_admin') THEN
        CREATE ROLE rollguard_admin NOLOGIN;
        COMMENT ON ROLE rollguard_admin IS 'rollguard: may deploy and override the guard for one transaction';
    END IF;
    IF NOT pg_catalog.pg_has_role('rollguard_admin', 'rollguard_deploy', 'MEMBER') THEN
        GRANT rollguard_deploy TO rollguard_admin;
    END IF;
END
$$;

-- register_version runs as its caller (bare names resolve against the
-- caller's search_path), so the deploy role needs the helpers it calls.
GRANT EXECUTE ON FUNCTION
    rollguard.register_version(text, jsonb),
    rollguard._register_version(text, jsonb),
    rollguard._normalize_manifest(jsonb),
    rollguard._manifest_columns(jsonb),
    rollguard._path_elem(text),
    rollguard.deploy(text, text),
    rollguard.begin_rollout(text, text),
    rollguard.finish_rollout(text, text),
    rollguard.abort_rollout(text, text),
    rollguard.remove_deployment(text),
    rollguard.stop_using(pg_catalog.regclass, name, text),
    rollguard.never_null(pg_catalog.regclass, name, text)
  TO rollguard_deploy;
GRANT SELECT ON rollguard.history TO rollguard_deploy;

-- Lets breaking changes on one column (NULL: the whole relation) through for
-- the rest of the current transaction, in this session only; recorded in
-- rollguard.history with who, when, why, and what it let through.
CREATE FUNCTION rollguard.override(relation pg_catalog.regclass, "column" name, reason text)
RETURNS void
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'rollguard_override';

COMMENT ON FUNCTION rollguard.override(pg_catalog.regclass, name, text) IS
'Lets breaking changes on the column through for the rest of the current transaction (administrators only)';

REVOKE ALL ON FUNCTION rollguard.override(pg_catalog.regclass, name, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION rollguard.override(pg_catalog.regclass, name, text) TO rollguard_admin;
