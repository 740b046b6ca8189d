/* rollguard--1.5--1.6.sql: no way around the guard, no way to stall it */

\echo Use "ALTER EXTENSION rollguard UPDATE TO '1.6'" to load this file. \quit

-- Each section below says what it changes and why; the full script
-- rollguard--1.6.sql holds the same definitions.

------------------------------------------------------------------------------
-- No object of the caller's is ever called (issue 15, item 10)
------------------------------------------------------------------------------

-- register_version() and the manifest helpers ran with the caller's
-- search_path, and their operators (->, ?, =, ...) were unqualified: a role
-- that may create objects in a schema of the deploy role's search_path
-- (public, often) could put its own "->" there and have it called, as the
-- deploy role, by every registration.  Now every function of the extension
-- written in SQL or PL/pgSQL runs with search_path = pg_catalog, pg_temp,
-- except register_version() itself, which only takes the caller's
-- search_path down and passes it on (bare relation names in a manifest
-- still resolve against it, as before).
DROP FUNCTION rollguard._normalize_manifest(jsonb);
DROP FUNCTION rollguard._manifest_columns(jsonb);

CREATE FUNCTION rollguard._manifest_columns(manifest jsonb, caller_path name[] DEFAULT NULL,
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
        SELECT e.key, e.value, bad.key, bad.value
          INTO col, colv, prop, propv
          FROM pg_catalog.jsonb_each(relv) e
          LEFT JOIN LATERAL (
              SELECT p.key, p.value
                FROM pg_catalog.jsonb_each(CASE WHEN pg_catalog.jsonb_typeof(e.value) = 'object'
                                                THEN e.value END) WITH ORDINALITY p(key, value, n)
               WHERE p.key NOT IN ('writes', 'nullable')
                  OR pg_catalog.jsonb_typeof(p.value) <> 'boolean'
               ORDER BY p.n LIMIT 1) bad ON true
         WHERE e.key = '' OR pg_catalog.octet_length(e.key) >= 64
            OR pg_catalog.jsonb_typeof(e.value) <> 'object' OR bad.key IS NOT NULL
         ORDER BY e.key LIMIT 1;
        IF FOUND THEN
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

CREATE FUNCTION rollguard._normalize_manifest(manifest jsonb, caller_path name[] DEFAULT NULL,
                                              caller_schema name DEFAULT NULL)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    -- built as text and parsed once: jsonb_object_agg is slow for the
    -- hundreds of thousands of columns a large manifest may list
    SELECT CASE WHEN manifest IS NULL THEN NULL ELSE
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

CREATE OR REPLACE FUNCTION rollguard.register_version(version text, manifest jsonb DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM rollguard._register_version(
        version,
        rollguard._normalize_manifest(manifest, pg_catalog.current_schemas(true),
                                      pg_catalog.current_schema()));
END
$$;

REVOKE ALL ON FUNCTION rollguard._manifest_columns(jsonb, name[], name),
                       rollguard._normalize_manifest(jsonb, name[], name) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION rollguard._manifest_columns(jsonb, name[], name),
                          rollguard._normalize_manifest(jsonb, name[], name) TO rollguard_deploy;

------------------------------------------------------------------------------
-- Who may provide evidence; uses that could not be recorded (issue 15,
-- item 11)
------------------------------------------------------------------------------

-- Upgrading: until now any session's tag counted.  Now only sessions of
-- superusers and of roles with the privileges of rollguard_tag do.  Roles
-- that tag themselves by ALTER ROLE ... SET (rollguard.deployment,
-- rollguard.version or an application_name "rollguard:...") are granted
-- rollguard_tag here, and named in a NOTICE; roles that tag by connection
-- options must be granted it by hand (GRANT rollguard_tag TO app).
-- Tags and observed uses are evidence: a tagged session makes its version
-- live, and what it was seen using counts as used.  From 1.6 only sessions
-- whose login role is a superuser or has the privileges of rollguard_tag
-- provide it (GRANT rollguard_tag TO app); anyone may still set a tag, but
-- the others' count for nothing (rollguard.sessions shows them, with
-- trusted false).  Like the other roles, it belongs to the cluster.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles
                WHERE rolname OPERATOR(pg_catalog.=) 'rollguard_tag' AND (rolcanlogin OR rolsuper)) THEN
        RAISE EXCEPTION 'role "rollguard_tag" exists and can log in'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'rollguard grants its rights to this role; make it NOLOGIN NOSUPERUSER, or rename it, and try again.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'rollguard_tag') THEN
        CREATE ROLE rollguard_tag NOLOGIN;
        COMMENT ON ROLE rollguard_tag IS 'rollguard: sessions of its members may tag themselves as evidence of what runs';
    END IF;
END
$$;

-- Uses that could not be recorded: per relation and version, because the
-- table of observed uses was full (cause rollguard.max_observed) or the
-- version had its share of it (rollguard.max_observed_per_version).  Until
-- forgotten, each counts as a use of every column of the relation in every
-- way, while the version is live.  A row with version and relation NULL
-- (cause 'losses not noted') says that even the table of losses was full:
-- then no change to any relation can be judged.
CREATE FUNCTION rollguard._unrecorded(OUT version text, OUT relation text, OUT cause text,
                                      OUT first_lost timestamptz, OUT last_lost timestamptz)
RETURNS SETOF record
LANGUAGE C STRICT VOLATILE
AS 'MODULE_PATHNAME', 'rollguard_unrecorded';

CREATE VIEW rollguard.unrecorded AS
SELECT version, relation, cause, first_lost, last_lost FROM rollguard._unrecorded();

COMMENT ON VIEW rollguard.unrecorded IS
'Relations whose uses by a version could not all be recorded: breaking changes to them are refused while the version is live';

GRANT EXECUTE ON FUNCTION rollguard._unrecorded() TO PUBLIC;
GRANT SELECT ON rollguard.unrecorded TO PUBLIC;

CREATE FUNCTION rollguard._forget_unrecorded(version text, nspname name, relname name)
RETURNS bigint
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'rollguard_forget_unrecorded';

REVOKE ALL ON FUNCTION rollguard._forget_unrecorded(text, name, name) FROM PUBLIC;

-- Forgets losses of this database: of a version, a relation, or both
-- (NULL: any); with both NULL also the mark that losses went unnoted.
-- Returns how many, and records the call in rollguard.history.
CREATE FUNCTION rollguard.forget_unrecorded(version text DEFAULT NULL,
                                            relation pg_catalog.regclass DEFAULT NULL)
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
    removed := rollguard._forget_unrecorded($1, nsp, rel);
    PERFORM rollguard._log('forget_unrecorded', NULL, $1,
                           CASE WHEN nsp IS NOT NULL THEN nsp OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) rel END,
                           NULL, NULL, pg_catalog.jsonb_build_object('removed', removed));
    RETURN removed;
END
$$;

COMMENT ON FUNCTION rollguard.forget_unrecorded(text, pg_catalog.regclass) IS
'Forgets that uses of a relation by a version could not be recorded (NULL: any); administrators only';

REVOKE ALL ON FUNCTION rollguard.forget_unrecorded(text, pg_catalog.regclass) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION rollguard.forget_unrecorded(text, pg_catalog.regclass) TO rollguard_admin;

DO $$
DECLARE
    r       record;
    granted text[] := '{}';
BEGIN
    FOR r IN SELECT DISTINCT a.rolname
               FROM pg_catalog.pg_db_role_setting s
               JOIN pg_catalog.pg_roles a ON a.oid OPERATOR(pg_catalog.=) s.setrole
               CROSS JOIN LATERAL pg_catalog.unnest(s.setconfig) AS c(setting)
              WHERE NOT a.rolsuper
                AND (c.setting LIKE 'rollguard.deployment=%' OR c.setting LIKE 'rollguard.version=%'
                     OR c.setting LIKE 'application_name=rollguard:%')
                AND NOT pg_catalog.pg_has_role(a.oid, 'rollguard_tag', 'USAGE')
              ORDER BY 1
    LOOP
        EXECUTE pg_catalog.format('GRANT rollguard_tag TO %I', r.rolname);
        granted := granted OPERATOR(pg_catalog.||) r.rolname::text;
    END LOOP;
    -- (a WARNING: an extension script shows nothing less)
    RAISE WARNING 'tagged sessions now count as evidence only if their role is a superuser or has rollguard_tag'
        USING DETAIL = CASE WHEN pg_catalog.cardinality(granted) > 0
                            THEN pg_catalog.format('Granted rollguard_tag to %s, whose role settings tag their sessions.',
                                                   pg_catalog.array_to_string(granted, ', '))
                            ELSE 'No role''s settings tag its sessions; none was granted rollguard_tag.' END,
              HINT = 'Grant it to every application role whose connections tag themselves, e.g. GRANT rollguard_tag TO app;';
END
$$;

-- rollguard.sessions gains the column trusted.
DROP VIEW rollguard.sessions;
DROP FUNCTION rollguard._sessions();

-- Every session connected to this database that says which deployment and
-- version it runs: by the settings rollguard.deployment and
-- rollguard.version (source 'setting'), or by application_name
-- 'rollguard:<deployment>@<version>' (source 'application_name'); trusted:
-- whether its login role may provide evidence (a superuser, or a member of
-- rollguard_tag, from 1.6).
CREATE FUNCTION rollguard._sessions(OUT deployment text, OUT version text,
                                    OUT pid integer, OUT source text, OUT trusted boolean)
RETURNS SETOF record
LANGUAGE C STRICT VOLATILE
AS 'MODULE_PATHNAME', 'rollguard_sessions';

-- While connected, each trusted one counts as live evidence: its version is
-- live for its deployment (the others' tags count for nothing).
-- registered: whether the registry knows the version (if it has no
-- contract there, the guard counts it as using every column).
CREATE VIEW rollguard.sessions AS
SELECT s.deployment, s.version, s.pid, s.source,
       EXISTS (SELECT 1 FROM rollguard.version_registry v
                WHERE v.version OPERATOR(pg_catalog.=) s.version) AS registered,
       s.trusted
  FROM rollguard._sessions() s;

COMMENT ON VIEW rollguard.sessions IS
'Tagged sessions connected to this database now: each counts as live evidence that its deployment runs its version';

-- Like pg_stat_activity, visible to everyone.
GRANT EXECUTE ON FUNCTION rollguard._sessions() TO PUBLIC;
GRANT SELECT ON rollguard.sessions TO PUBLIC;
