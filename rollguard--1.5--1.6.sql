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

/* ----------------------------------------------------------------------
 * 1.6: deployment keys, for platforms with one database role
 * ---------------------------------------------------------------------- */

-- Where the application's only role must hold rollguard_deploy (Divio gives
-- one DATABASE_URL to every mirror), that role could record or remove any
-- deployment.  A deployment can be bound to a key: a secret that only its
-- own release steps know (an environment variable of that mirror).  Once
-- bound, every deploy step of the deployment and its removal need the key,
-- presented with rollguard.use_key() earlier in the same transaction;
-- administrators and superusers need none.  The first use_key() of a
-- deployment binds it; an administrator can unbind it (reset_key).  Only
-- a SHA-256 of the key is kept.  The check is a trigger on
-- rollguard.deployment_state, so it holds for every function that writes it.
CREATE TABLE rollguard.deployment_key (
    deployment  text PRIMARY KEY,
    key_sha256  bytea NOT NULL,
    bound_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    bound_by    name NOT NULL DEFAULT rollguard._who()
);
SELECT pg_catalog.pg_extension_config_dump('rollguard.deployment_key', '');
REVOKE ALL ON rollguard.deployment_key FROM PUBLIC;

-- Which deployments are bound to a key, since when and by whom (not the key).
CREATE VIEW rollguard.deployment_keys AS
SELECT k.deployment, k.bound_at, k.bound_by FROM rollguard.deployment_key k;
GRANT SELECT ON rollguard.deployment_keys TO PUBLIC;

-- Proof, for the rest of this transaction, that this session presented the
-- deployment's key: a hash of the stored key hash (which no role but the
-- extension's owner may read), the transaction and the backend.  It lives
-- in a placeholder setting; anyone may set that, nobody can compute it
-- without the key.
CREATE FUNCTION rollguard._key_proof(deployment text, key_sha256 bytea)
RETURNS text
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT encode(sha256(key_sha256 || convert_to(
               format('%s/%s/%s', pg_current_xact_id(), pg_backend_pid(), deployment), 'UTF8')), 'hex')
$$;
REVOKE ALL ON FUNCTION rollguard._key_proof(text, bytea) FROM PUBLIC;

CREATE FUNCTION rollguard.use_key(deployment text, key text)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d       text := rollguard._check_label('deployment name', deployment);
    hash    bytea;
    stored  bytea;
BEGIN
    IF key IS NULL OR length(key) < 16 THEN
        RAISE EXCEPTION 'a deployment key must have at least 16 characters'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use a random secret, e.g. the output of "openssl rand -hex 32".';
    END IF;
    IF octet_length(key) > 1000 THEN
        RAISE EXCEPTION 'a deployment key must not be longer than 1000 bytes'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    hash := sha256(convert_to(key, 'UTF8'));
    PERFORM rollguard._lock_deployment(d);
    SELECT k.key_sha256 INTO stored FROM rollguard.deployment_key k WHERE k.deployment = d;
    IF NOT FOUND THEN
        INSERT INTO rollguard.deployment_key (deployment, key_sha256) VALUES (d, hash);
        PERFORM rollguard._log('bind_key', d, NULL);
        stored := hash;
    ELSIF stored <> hash THEN
        RAISE EXCEPTION 'wrong key for deployment "%"', d
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'The deployment is bound to another key.',
                  HINT = 'Present the key its own release steps use; an administrator can unbind it with rollguard.reset_key().';
    END IF;
    PERFORM set_config('rollguard_key.k' || md5(d), rollguard._key_proof(d, stored), false);
END
$$;

COMMENT ON FUNCTION rollguard.use_key(text, text) IS
'Presents the deployment''s key for the rest of this transaction (binds it if the deployment has none)';

CREATE FUNCTION rollguard.reset_key(deployment text)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d text := rollguard._check_label('deployment name', deployment);
BEGIN
    PERFORM rollguard._lock_deployment(d);
    DELETE FROM rollguard.deployment_key k WHERE k.deployment = d;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'deployment "%" is not bound to a key', d USING ERRCODE = 'undefined_object';
    END IF;
    PERFORM rollguard._log('reset_key', d, NULL);
END
$$;

COMMENT ON FUNCTION rollguard.reset_key(text) IS
'Unbinds the deployment from its key (administrators only): the next use_key() binds it again';

-- The check: before any row of a bound deployment is written.
CREATE FUNCTION rollguard._deployment_key_check()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d       text := CASE WHEN TG_OP = 'DELETE' THEN OLD.deployment ELSE NEW.deployment END;
    who     name := rollguard._who();
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.deployment <> NEW.deployment THEN
        PERFORM rollguard._deployment_key_require(OLD.deployment, who);
    END IF;
    PERFORM rollguard._deployment_key_require(d, who);
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$$;

CREATE FUNCTION rollguard._deployment_key_require(deployment text, who name)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    stored  bytea;
BEGIN
    SELECT k.key_sha256 INTO stored FROM rollguard.deployment_key k WHERE k.deployment = _deployment_key_require.deployment;
    IF NOT FOUND
       OR current_setting('rollguard_key.k' || md5(deployment), true) = rollguard._key_proof(deployment, stored)
       OR (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = who)
       OR pg_catalog.pg_has_role(who, 'rollguard_admin', 'USAGE') THEN
        RETURN;
    END IF;
    RAISE EXCEPTION 'deployment "%" is bound to a key', deployment
        USING ERRCODE = 'insufficient_privilege',
              DETAIL = 'Its deploy steps and its removal need the key it was bound to.',
              HINT = format('Call rollguard.use_key(%L, <its key>) earlier in the same transaction (manage.py rollguard_deploy and contrib/deploy/rollguard_step.sh do so when ROLLGUARD_KEY is set).', deployment);
END
$$;

REVOKE ALL ON FUNCTION rollguard._deployment_key_check(), rollguard._deployment_key_require(text, name) FROM PUBLIC;

CREATE TRIGGER deployment_key_check
    BEFORE INSERT OR UPDATE OR DELETE ON rollguard.deployment_state
    FOR EACH ROW EXECUTE FUNCTION rollguard._deployment_key_check();

REVOKE ALL ON FUNCTION rollguard.use_key(text, text), rollguard.reset_key(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION rollguard.use_key(text, text) TO rollguard_deploy;
GRANT EXECUTE ON FUNCTION rollguard.reset_key(text) TO rollguard_admin;

------------------------------------------------------------------------------
-- The downtime guard (issue 13): rollguard.check() reports what would stall
-- deployed code (rewrites, index builds, validations and lock waits on large
-- tables) as well as what would break it, and says which family a row
-- belongs to in a new last column, "family" ('compatibility' or
-- 'downtime').  A function's result columns cannot be changed in place: it
-- is dropped and created again, with the same comment and privileges.
------------------------------------------------------------------------------

DROP FUNCTION rollguard.check(text);

-- family: 'compatibility' (a blocker: the change would break deployed code)
-- or 'downtime' (it would stall deployed code: rewrites, index builds,
-- validations and lock waits on large tables; deployment and version NULL).
-- Added in 1.6, at the end: the columns before it are unchanged.
CREATE FUNCTION rollguard.check(ddl text)
RETURNS TABLE (statement text, change text, relation text, "column" text,
               deployment text, version text, reason text, family text)
LANGUAGE C STRICT VOLATILE
AS 'MODULE_PATHNAME', 'rollguard_check';

COMMENT ON FUNCTION rollguard.check(text) IS
'Runs the rules over a migration script without executing it: one row per blocker';

REVOKE ALL ON FUNCTION rollguard.check(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION rollguard.check(text) TO PUBLIC;

-- A short human report: rollguard.status().

/* ----------------------------------------------------------------------
 * 1.6: a short human report
 * ---------------------------------------------------------------------- */

-- One SELECT for the state of the fleet, as lines of text: each deployment
-- with what it runs, since when, and how many tagged sessions of it are
-- connected now (a deployment recorded as live but never connected may be
-- gone: rollguard.remove_deployment()); connected versions no deployment
-- records; what may be contracted now; the counters since their reset.
--     SELECT * FROM rollguard.status();
CREATE FUNCTION rollguard.status()
RETURNS SETOF text
LANGUAGE plpgsql VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    n bigint;
BEGIN
    SELECT count(DISTINCT d.deployment) INTO n FROM rollguard.deployment_state d;
    RETURN NEXT format('%s deployment%s live:', n, CASE WHEN n OPERATOR(pg_catalog.=) 1 THEN '' ELSE 's' END);
    FOR r IN
        SELECT d.deployment, d.version, d.state, d.since,
               (SELECT count(*) FROM rollguard.sessions s
                 WHERE s.trusted AND s.deployment OPERATOR(pg_catalog.=) d.deployment
                   AND s.version OPERATOR(pg_catalog.=) d.version) AS connected
          FROM rollguard.deployment_state d
         ORDER BY rollguard.version_sort_key(d.deployment), d.deployment,
                  rollguard.version_sort_key(d.version), d.version
    LOOP
        RETURN NEXT format('  %s runs %s%s since %s; %s',
                           r.deployment, r.version,
                           CASE WHEN r.state OPERATOR(pg_catalog.=) 'rolling out' THEN ' (rolling out)' ELSE '' END,
                           to_char(r.since, 'YYYY-MM-DD HH24:MI'),
                           CASE WHEN r.connected OPERATOR(pg_catalog.>) 0
                                THEN format('%s tagged session%s connected', r.connected,
                                            CASE WHEN r.connected OPERATOR(pg_catalog.=) 1 THEN '' ELSE 's' END)
                                ELSE 'no tagged session connected' END);
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

COMMENT ON FUNCTION rollguard.status() IS
'A short human report: deployments and their connected sessions, what may be contracted now, the counters';

REVOKE ALL ON FUNCTION rollguard.status() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION rollguard.status() TO rollguard_deploy;
