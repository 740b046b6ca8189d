/* rollguard--1.7.sql: rollguard 1.7, installed from scratch.
 *
 * The whole schema of the current version in one file: the registry, the
 * deploy-script API, the inspection views (1.0), the roles and override()
 * (1.1), the sessions view (1.2), the counters of live use and observed
 * usage (1.3), the triggers that announce registry changes (1.4), what 1.5,
 * 1.6 and 1.7 changed (see each update script).  An
 * existing installation reaches the same schema through the update scripts
 * rollguard--1.0--1.1.sql ... rollguard--1.6--1.7.sql; sql/install_script.sql
 * checks that both ways end in the same catalog. */

\echo Use "CREATE EXTENSION rollguard" to load this file. \quit

-- Refuse to install where the library is not preloaded: without the utility
-- hook nothing is guarded, and nobody should believe otherwise.
CREATE FUNCTION rollguard._require_preload()
RETURNS void
LANGUAGE C STRICT
AS 'MODULE_PATHNAME', 'rollguard_require_preload';

SELECT rollguard._require_preload();

-- The role on whose behalf a registry change is made: the session's role as
-- SET ROLE left it, not the owner a SECURITY DEFINER function runs as.
CREATE FUNCTION rollguard._who()
RETURNS name
LANGUAGE C STABLE STRICT
AS 'MODULE_PATHNAME', 'rollguard_who';

------------------------------------------------------------------------------
-- Version order (ICU numeric collation: 1.9 < 1.10, release-9 < release-10)
------------------------------------------------------------------------------

CREATE FUNCTION rollguard.version_cmp(a text, b text)
RETURNS integer
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'rollguard_version_cmp';

COMMENT ON FUNCTION rollguard.version_cmp(text, text) IS
'Compares two version labels in rollguard''s order (ICU numeric collation): -1, 0 or 1';

CREATE FUNCTION rollguard.version_sort_key(label text)
RETURNS bytea
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'rollguard_version_sort_key';

COMMENT ON FUNCTION rollguard.version_sort_key(text) IS
'Sort key of a version label: ORDER BY rollguard.version_sort_key(version) orders labels as rollguard does';

------------------------------------------------------------------------------
-- Registry
------------------------------------------------------------------------------

-- Every registered build.  A NULL manifest means an inferred contract, taken
-- when the version first goes live (contract_taken_at).
CREATE TABLE rollguard.version_registry (
    version           text PRIMARY KEY,
    declared          boolean NOT NULL,
    manifest          jsonb,
    registered_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    registered_by     name NOT NULL DEFAULT rollguard._who(),
    contract_taken_at timestamptz,
    CHECK (declared = (manifest IS NOT NULL))
);

-- The columns each version uses, by name (schema, relation, column).
-- (version is a registered version: no foreign key from 1.7, see
-- rollguard._version_registry_changed().)
CREATE TABLE rollguard.contract (
    nspname  text NOT NULL,
    relname  text NOT NULL,
    attname  text NOT NULL,
    version  text NOT NULL,
    writes   boolean NOT NULL,
    nullable boolean NOT NULL,
    -- a version's contract, of one relation, of one column ("does this
    -- version insert into the relation?": its first row that writes)
    PRIMARY KEY (version, nspname, relname, attname)
);
-- the versions that use a column, a relation (the guard's blockers)
CREATE INDEX contract_column_idx ON rollguard.contract (nspname, relname, attname);

-- What runs now: one row per (deployment, live version).
CREATE TABLE rollguard.deployment_state (
    deployment text NOT NULL,
    version    text NOT NULL REFERENCES rollguard.version_registry,
    state      text NOT NULL CHECK (state IN ('running', 'rolling out')),
    since      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (deployment, version)
);
CREATE INDEX deployment_state_version_idx ON rollguard.deployment_state (version);

-- stop_using / never_null declarations amending inferred contracts.
CREATE TABLE rollguard.declaration (
    nspname       text NOT NULL,
    relname       text NOT NULL,
    attname       text NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('stop_using', 'never_null')),
    since_version text NOT NULL,
    declared_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    declared_by   name NOT NULL DEFAULT rollguard._who(),
    PRIMARY KEY (nspname, relname, attname, kind)
);

-- Columns and relations the guard saw disappear (dropped, renamed, moved):
-- what lets deploy() tell "no longer exists" (a rollback past a contract
-- migration) from "does not exist yet" (an expand migration still to run).
-- attname '' stands for the whole relation.  From 1.6 also columns it saw
-- made NOT NULL (change 'set not null', 'add check not null'): "no longer
-- takes NULL", for the forward check for writes.
CREATE TABLE rollguard.removed_column (
    nspname    text NOT NULL,
    relname    text NOT NULL,
    attname    text NOT NULL,
    change     text NOT NULL,
    removed_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (nspname, relname, attname)
);

-- Every registration, deploy step, declaration and removal, appended by the
-- functions below (and overrides, from 1.1).  Nobody but a superuser may
-- rewrite it: no role is granted anything beyond reading it.
CREATE TABLE rollguard.history (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    who        name NOT NULL DEFAULT rollguard._who(),
    action     text NOT NULL,
    deployment text,
    version    text,
    relation   text,
    "column"   text,
    reason     text,
    detail     jsonb
);

-- pg_dump keeps the registry's rows.
SELECT pg_catalog.pg_extension_config_dump('rollguard.version_registry', '');
SELECT pg_catalog.pg_extension_config_dump('rollguard.contract', '');
SELECT pg_catalog.pg_extension_config_dump('rollguard.deployment_state', '');
SELECT pg_catalog.pg_extension_config_dump('rollguard.declaration', '');
SELECT pg_catalog.pg_extension_config_dump('rollguard.removed_column', '');
SELECT pg_catalog.pg_extension_config_dump('rollguard.history', '');
SELECT pg_catalog.pg_extension_config_dump('rollguard.history_id_seq', '');

-- The contract the guard enforces: declared contracts as given; inferred ones
-- amended by declarations made for versions at or after their "since".
CREATE VIEW rollguard.effective_contract AS
SELECT c.version, c.nspname, c.relname, c.attname,
       c.writes OR nn.since_version IS NOT NULL AS writes,
       c.nullable AND nn.since_version IS NULL AS nullable
  FROM rollguard.contract c
  JOIN rollguard.version_registry v
    ON v.version OPERATOR(pg_catalog.=) c.version
  LEFT JOIN rollguard.declaration nn
    ON NOT v.declared
   AND nn.kind OPERATOR(pg_catalog.=) 'never_null'
   AND nn.nspname OPERATOR(pg_catalog.=) c.nspname
   AND nn.relname OPERATOR(pg_catalog.=) c.relname
   AND nn.attname OPERATOR(pg_catalog.=) c.attname
   AND rollguard.version_cmp(c.version, nn.since_version) OPERATOR(pg_catalog.>=) 0
 WHERE v.declared
    OR NOT EXISTS (
        SELECT 1 FROM rollguard.declaration su
         WHERE su.kind OPERATOR(pg_catalog.=) 'stop_using'
           AND su.nspname OPERATOR(pg_catalog.=) c.nspname
           AND su.relname OPERATOR(pg_catalog.=) c.relname
           AND su.attname OPERATOR(pg_catalog.=) c.attname
           AND rollguard.version_cmp(c.version, su.since_version) OPERATOR(pg_catalog.>=) 0);

------------------------------------------------------------------------------
-- Inspection
------------------------------------------------------------------------------

CREATE VIEW rollguard.deployments AS
SELECT d.deployment, d.version, d.state, d.since,
       v.declared AS declared_contract
  FROM rollguard.deployment_state d
  JOIN rollguard.version_registry v ON v.version OPERATOR(pg_catalog.=) d.version;

COMMENT ON VIEW rollguard.deployments IS
'One row per (deployment, version) live now: running, or rolling out beside the running version';
-- (1.7 appends each deployment's liveness evidence: see below.)

CREATE VIEW rollguard.versions AS
SELECT v.version,
       CASE WHEN v.declared THEN 'declared' ELSE 'inferred' END AS contract,
       v.registered_at,
       v.registered_by,
       v.contract_taken_at,
       (SELECT pg_catalog.count(*) FROM rollguard.effective_contract c
         WHERE c.version OPERATOR(pg_catalog.=) v.version) AS columns,
       ARRAY(SELECT d.deployment FROM rollguard.deployment_state d
              WHERE d.version OPERATOR(pg_catalog.=) v.version
              ORDER BY rollguard.version_sort_key(d.deployment)) AS live_in
  FROM rollguard.version_registry v;

COMMENT ON VIEW rollguard.versions IS
'Every registered version: declared or inferred contract, when registered, how many columns it uses, where it is live';

CREATE VIEW rollguard.declarations AS
SELECT nspname OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) relname AS relation,
       attname AS "column", kind, since_version, declared_at, declared_by
  FROM rollguard.declaration;

COMMENT ON VIEW rollguard.declarations IS
'stop_using and never_null declarations that amend inferred contracts';

------------------------------------------------------------------------------
-- Input validation helpers
------------------------------------------------------------------------------

-- A deployment name or version label: not NULL, not empty, printable,
-- bounded.  One rule, in the library (label.c), by which the settings
-- rollguard.deployment and rollguard.version are checked too.
CREATE FUNCTION rollguard._check_label(what text, label text)
RETURNS text
LANGUAGE c IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'rollguard_check_label';

-- One key of a manifest path, as JSON, cut short if it is very long (the
-- messages must not echo megabytes).
CREATE FUNCTION rollguard._path_elem(key text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.to_json(CASE WHEN pg_catalog.length(key) > 80
                                   THEN pg_catalog.left(key, 60) || '...'
                                   ELSE key END)::text
$$;

-- True when a manifest's "relations" has the shape every valid manifest
-- has: each relation a non-empty object of columns, each column name 1 to
-- 63 bytes, each column an object of boolean "writes" and "nullable" only.
-- One pass in C (manifest.c); it names nothing: _manifest_columns() does.
CREATE FUNCTION rollguard._manifest_shape_ok(relations jsonb)
RETURNS boolean
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'rollguard_manifest_shape_ok';

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

-- Validates a manifest and returns one row per column it declares, with
-- relation names resolved: a bare name against caller_path, the schemas
-- rollguard.register_version() found in its caller's search_path
-- (pg_catalog.current_schemas(true)), as PostgreSQL would resolve it there,
-- else in caller_schema (the caller's current_schema()).  It runs with a
-- search_path of its own, so that no object of the caller's (an operator
-- "->" in public, say) is ever called.  Errors name the offending path;
-- nothing is written here.
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

-- The manifest with every relation schema-qualified and every property
-- explicit: what register_version stores and compares.  Bare names are
-- resolved as rollguard._manifest_columns() says.
CREATE FUNCTION rollguard._normalize_manifest(manifest jsonb, caller_path name[] DEFAULT NULL,
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
CREATE FUNCTION rollguard._missing_columns(v text)
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

-- Makes a version live for a deployment: registers it if unknown, takes an
-- inferred contract the first time it goes live, and refuses a version whose
-- contract uses columns that no longer exist, or whose inserts would fail on
-- NOT NULL columns, and one that uses a relation a prepared transaction
-- changes.
CREATE FUNCTION rollguard._prepare_live(deployment text, v text)
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

CREATE FUNCTION rollguard._log(action text, deployment text, version text,
                               relation text DEFAULT NULL, "column" text DEFAULT NULL,
                               reason text DEFAULT NULL, detail jsonb DEFAULT NULL)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO rollguard.history (action, deployment, version, relation, "column", reason, detail)
    VALUES (action, deployment, version, relation, "column", reason, detail);
$$;

------------------------------------------------------------------------------
-- Deploy-script API
------------------------------------------------------------------------------

CREATE FUNCTION rollguard._store_version(version text, manifest jsonb)
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

-- The public entry point.  Bare relation names in the manifest resolve
-- against the caller's search_path, so this one function runs with it: it
-- only takes it down (pg_catalog.current_schemas(true), current_schema())
-- and hands it, with the manifest, to functions that run with a
-- search_path of their own.  It names nothing that is not schema-qualified,
-- so nothing in the caller's schemas can stand in for it.
CREATE FUNCTION rollguard.register_version(version text, manifest jsonb DEFAULT NULL)
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

COMMENT ON FUNCTION rollguard.register_version(text, jsonb) IS
'Declares a build and its contract (manifest); without a manifest the contract is inferred when the version first goes live';

-- Deploy steps take the counters' lock first: see rollguard._lock_live().
-- From 1.7 a deploy step is also the deployment's evidence (its last deploy
-- step, rollguard.deployment_seen): it ends an expiry, and records those of
-- other deployments not recorded yet.
CREATE FUNCTION rollguard._lock_deployment(deployment text)
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

CREATE FUNCTION rollguard.deploy(deployment text, version text)
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

COMMENT ON FUNCTION rollguard.deploy(text, text) IS
'The deployment now runs exactly this version';

CREATE FUNCTION rollguard.begin_rollout(deployment text, version text)
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

COMMENT ON FUNCTION rollguard.begin_rollout(text, text) IS
'The deployment starts running version beside what it runs: both are live';

CREATE FUNCTION rollguard.finish_rollout(deployment text, version text)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d     text := rollguard._check_label('deployment name', deployment);
    v     text := rollguard._check_label('version label', version);
    st    text;
BEGIN
    PERFORM rollguard._lock_deployment(d);
    IF NOT EXISTS (SELECT 1 FROM rollguard.deployment_state s WHERE s.deployment = d) THEN
        RAISE EXCEPTION 'deployment "%" does not exist', d USING ERRCODE = 'undefined_object';
    END IF;
    SELECT s.state INTO st FROM rollguard.deployment_state s WHERE s.deployment = d AND s.version = v;
    IF st IS NULL THEN
        RAISE EXCEPTION 'deployment "%" is not rolling out version "%"', d, v
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Start the rollout with rollguard.begin_rollout(), or use rollguard.deploy().';
    END IF;
    -- Only v remains (if v is the version running, this calls the rollout off).
    IF st = 'rolling out' OR EXISTS (SELECT 1 FROM rollguard.deployment_state s
                                      WHERE s.deployment = d AND s.version <> v) THEN
        PERFORM rollguard._log('finish_rollout', d, v, detail => jsonb_build_object('replaces',
            (SELECT jsonb_agg(s.version ORDER BY s.version) FROM rollguard.deployment_state s
              WHERE s.deployment = d AND s.version <> v)));
    END IF;
    DELETE FROM rollguard.deployment_state s WHERE s.deployment = d AND s.version <> v;
    IF st = 'running' THEN
        RETURN;
    END IF;
    UPDATE rollguard.deployment_state s SET state = 'running', since = now()
     WHERE s.deployment = d AND s.version = v;
END
$$;

COMMENT ON FUNCTION rollguard.finish_rollout(text, text) IS
'Only version remains live for the deployment';

CREATE FUNCTION rollguard.abort_rollout(deployment text, version text)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d     text := rollguard._check_label('deployment name', deployment);
    v     text := rollguard._check_label('version label', version);
    st    text;
BEGIN
    PERFORM rollguard._lock_deployment(d);
    IF NOT EXISTS (SELECT 1 FROM rollguard.deployment_state s WHERE s.deployment = d) THEN
        RAISE EXCEPTION 'deployment "%" does not exist', d USING ERRCODE = 'undefined_object';
    END IF;
    SELECT s.state INTO st FROM rollguard.deployment_state s WHERE s.deployment = d AND s.version = v;
    IF st IS NULL THEN
        RETURN;     -- aborted already
    END IF;
    IF st = 'running' THEN
        RAISE EXCEPTION 'deployment "%" is not rolling out version "%": it is the version it runs', d, v
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'To stop running it, deploy another version with rollguard.deploy(), or use rollguard.remove_deployment().';
    END IF;
    DELETE FROM rollguard.deployment_state s WHERE s.deployment = d AND s.version = v;
    PERFORM rollguard._log('abort_rollout', d, v);
END
$$;

COMMENT ON FUNCTION rollguard.abort_rollout(text, text) IS
'The rollout is called off: version is gone again, the version running before remains';

CREATE FUNCTION rollguard.remove_deployment(deployment text)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d text := rollguard._check_label('deployment name', deployment);
BEGIN
    PERFORM rollguard._lock_deployment(d);
    PERFORM rollguard._log('remove_deployment', d, NULL, detail => jsonb_build_object('ran',
        (SELECT jsonb_agg(s.version ORDER BY s.version) FROM rollguard.deployment_state s WHERE s.deployment = d)));
    DELETE FROM rollguard.deployment_state s WHERE s.deployment = d;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'deployment "%" does not exist', d USING ERRCODE = 'undefined_object';
    END IF;
END
$$;

COMMENT ON FUNCTION rollguard.remove_deployment(text) IS
'A decommissioned deployment: its versions no longer count as live';

CREATE FUNCTION rollguard._declare(kind text, relation pg_catalog.regclass, "column" name, since_version text)
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

CREATE FUNCTION rollguard.stop_using(relation pg_catalog.regclass, "column" name, since_version text)
RETURNS void
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT rollguard._declare('stop_using', relation, "column", since_version) $$;

COMMENT ON FUNCTION rollguard.stop_using(pg_catalog.regclass, name, text) IS
'For inferred contracts: from since_version on (in version order) code no longer uses the column';

CREATE FUNCTION rollguard.never_null(relation pg_catalog.regclass, "column" name, since_version text)
RETURNS void
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT rollguard._declare('never_null', relation, "column", since_version) $$;

COMMENT ON FUNCTION rollguard.never_null(pg_catalog.regclass, name, text) IS
'For inferred contracts: from since_version on code always writes a non-NULL value to the column';

------------------------------------------------------------------------------
-- Dry run
------------------------------------------------------------------------------

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

------------------------------------------------------------------------------
-- Privileges: the registry is written only through the functions above.
------------------------------------------------------------------------------

REVOKE ALL ON ALL TABLES IN SCHEMA rollguard FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA rollguard FROM PUBLIC;
GRANT USAGE ON SCHEMA rollguard TO PUBLIC;
GRANT SELECT ON rollguard.deployments, rollguard.versions, rollguard.declarations TO PUBLIC;
-- history: readable by whom the DBA grants it to (superusers rewrite it)
GRANT EXECUTE ON FUNCTION rollguard.check(text),
                          rollguard.version_cmp(text, text),
                          rollguard.version_sort_key(text) TO PUBLIC;

/* ----------------------------------------------------------------------
 * 1.1: roles for deploy scripts and administrators, and override()
 * ---------------------------------------------------------------------- */

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
    rollguard._normalize_manifest(jsonb, name[], name),
    rollguard._manifest_columns(jsonb, name[], name),
    rollguard._manifest_shape_ok(jsonb),
    rollguard._relation_columns(jsonb),
    rollguard._manifest_is_normal(jsonb),
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

/* ----------------------------------------------------------------------
 * 1.2: live tagged sessions (rollguard.sessions)
 * ---------------------------------------------------------------------- */

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

/* ----------------------------------------------------------------------
 * 1.3: counters of live use, observed usage
 * ---------------------------------------------------------------------- */

------------------------------------------------------------------------------
-- Counters of live use (the guard's fast verdict)
------------------------------------------------------------------------------

-- The guard's common answer is "nothing live breaks".  Rather than read the
-- contracts of every live deployment for that, it reads two rows kept here:
-- per column and per relation, how many live versions use it, may write
-- NULL to it, write it, insert into the relation.  Two primary-key probes,
-- however many deployments and versions there are.  Only a change that the
-- counters say may break something is then judged deployment by deployment,
-- which also words the refusal.
--
-- Derived data, kept by triggers on everything they derive from
-- (deployment_state, contract, declaration), so that deploy steps, direct
-- edits by a superuser and pg_restore (in any table order) keep them right.
-- rollguard._rebuild_live() recomputes them from scratch.

-- (Counts change in place: half of every page is left free, so that an
-- update stays on its page and leaves no index entry behind.)

-- Versions at least one deployment runs (or is rolling out), and how many.
CREATE TABLE rollguard.live_version (
    version     text PRIMARY KEY,
    deployments integer NOT NULL CHECK (deployments > 0)
) WITH (fillfactor = 50);

-- Per column: live versions whose effective contract lists it (users), of
-- those the ones that may write NULL to it (nullable_users) and the ones
-- that write it on INSERT (writers).
CREATE TABLE rollguard.live_column (
    nspname        text NOT NULL,
    relname        text NOT NULL,
    attname        text NOT NULL,
    users          integer NOT NULL CHECK (users > 0),
    nullable_users integer NOT NULL CHECK (nullable_users BETWEEN 0 AND users),
    writers        integer NOT NULL CHECK (writers BETWEEN 0 AND users),
    PRIMARY KEY (nspname, relname, attname)
) WITH (fillfactor = 50);

-- Per relation: live versions that use any of its columns (users), and
-- those that write any of them, i.e. insert into it (inserters).
CREATE TABLE rollguard.live_relation (
    nspname   text NOT NULL,
    relname   text NOT NULL,
    users     integer NOT NULL CHECK (users > 0),
    inserters integer NOT NULL CHECK (inserters BETWEEN 0 AND users),
    PRIMARY KEY (nspname, relname)
) WITH (fillfactor = 50);

REVOKE ALL ON rollguard.live_version, rollguard.live_column, rollguard.live_relation FROM PUBLIC;

-- Whoever changes the counters holds this lock until commit: deploy steps
-- and registrations take it first thing (rollguard._lock_deployment,
-- rollguard._register_version), the triggers below take it for direct
-- edits.  One order for everyone, so no deadlocks, and each recount sees
-- the previous one committed.  A table lock, not an advisory one: only
-- rollguard's own functions (and superusers) may take it, so no other
-- role can hold deploy steps up.  Reading the counters (the guard) does not
-- wait for it.
CREATE FUNCTION rollguard._lock_live(read_committed boolean DEFAULT true)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- A recount from an old snapshot would be wrong for good.
    IF read_committed AND current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'deploy steps must run at isolation level READ COMMITTED'
            USING ERRCODE = 'invalid_transaction_state',
                  DETAIL = format('At isolation level %s, the registry''s counters of live use could be computed from an outdated snapshot.',
                                  upper(current_setting('transaction_isolation'))),
                  HINT = 'Run it in a transaction of its own, or begin the transaction with BEGIN ISOLATION LEVEL READ COMMITTED.';
    END IF;
    LOCK TABLE rollguard.live_version IN EXCLUSIVE MODE;
END
$$;

-- Recounts the counters of the given relations from scratch.
CREATE FUNCTION rollguard._recount_relations(nspnames text[], relnames text[])
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    DELETE FROM rollguard.live_column l
     USING unnest(nspnames, relnames) AS r(nspname, relname)
     WHERE (l.nspname, l.relname) = (r.nspname, r.relname);
    DELETE FROM rollguard.live_relation l
     USING unnest(nspnames, relnames) AS r(nspname, relname)
     WHERE (l.nspname, l.relname) = (r.nspname, r.relname);
    INSERT INTO rollguard.live_column (nspname, relname, attname, users, nullable_users, writers)
    SELECT e.nspname, e.relname, e.attname, count(*),
           count(*) FILTER (WHERE e.nullable), count(*) FILTER (WHERE e.writes)
      FROM (SELECT DISTINCT * FROM unnest(nspnames, relnames)) AS r(nspname, relname)
      JOIN rollguard.effective_contract e ON (e.nspname, e.relname) = (r.nspname, r.relname)
      JOIN rollguard.live_version lv ON lv.version = e.version
     GROUP BY 1, 2, 3;
    INSERT INTO rollguard.live_relation (nspname, relname, users, inserters)
    SELECT e.nspname, e.relname, count(DISTINCT e.version),
           count(DISTINCT e.version) FILTER (WHERE e.writes)
      FROM (SELECT DISTINCT * FROM unnest(nspnames, relnames)) AS r(nspname, relname)
      JOIN rollguard.effective_contract e ON (e.nspname, e.relname) = (r.nspname, r.relname)
      JOIN rollguard.live_version lv ON lv.version = e.version
     GROUP BY 1, 2;
$$;

-- A version became live (sign 1) or stopped being live (sign -1): add its
-- effective contract to the counters, or take it away.
CREATE FUNCTION rollguard._count_version(v text, sign integer)
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

-- deployment_state changed by (version, +/- deployments): versions that
-- gained their first deployment or lost their last one move in or out of
-- the counters.
CREATE FUNCTION rollguard._apply_deployment_delta(versions text[], deltas integer[])
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t record;
BEGIN
    PERFORM rollguard._lock_live();
    FOR t IN
        SELECT d.version, coalesce(lv.deployments, 0) AS before, d.n
          FROM (SELECT x.version, sum(x.n)::integer AS n
                  FROM unnest(versions, deltas) AS x(version, n)
                 GROUP BY 1 HAVING sum(x.n) <> 0) d
          LEFT JOIN rollguard.live_version lv ON lv.version = d.version
         ORDER BY d.version COLLATE "C"
    LOOP
        IF t.before + t.n < 0 THEN
            RAISE EXCEPTION 'counters of live use are out of step with deployment_state for version "%"', t.version
                USING ERRCODE = 'data_corrupted',
                      HINT = 'Run SELECT rollguard._rebuild_live(); as a superuser.';
        ELSIF t.before + t.n = 0 THEN
            DELETE FROM rollguard.live_version WHERE version = t.version;
            PERFORM rollguard._count_version(t.version, -1);
        ELSIF t.before = 0 THEN
            INSERT INTO rollguard.live_version (version, deployments) VALUES (t.version, t.n);
            PERFORM rollguard._count_version(t.version, 1);
        ELSE
            UPDATE rollguard.live_version SET deployments = deployments + t.n
             WHERE version = t.version;
        END IF;
    END LOOP;
END
$$;

-- (Transition tables exist only for the event a trigger names, so each
-- event has its trigger, and each branch reads only its own tables.)
CREATE FUNCTION rollguard._deployment_state_changed()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    versions text[];
    deltas   integer[];
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM rollguard._rebuild_live();
        RETURN NULL;
    ELSIF TG_OP = 'INSERT' THEN
        SELECT array_agg(s.version), array_agg(1) INTO versions, deltas FROM new_rows s;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(s.version), array_agg(-1) INTO versions, deltas FROM old_rows s;
    ELSE
        SELECT array_agg(x.version), array_agg(x.n) INTO versions, deltas
          FROM (SELECT s.version, 1 AS n FROM new_rows s
                UNION ALL SELECT s.version, -1 FROM old_rows s) x;
    END IF;
    IF versions IS NOT NULL THEN
        PERFORM rollguard._apply_deployment_delta(versions, deltas);
    END IF;
    RETURN NULL;
END
$$;

-- contract or declaration rows changed: recount the relations they name,
-- if that can concern a live version.  Rare: deploy steps change only the
-- contracts of versions not yet live; pg_restore may load contracts after
-- deployment_state; declarations amend the contracts of live versions.
CREATE FUNCTION rollguard._contract_changed()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    nsps     text[];
    rels     text[];
    versions text[];
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM rollguard._rebuild_live();
        RETURN NULL;
    ELSIF TG_OP = 'INSERT' THEN
        SELECT array_agg(c.nspname), array_agg(c.relname) INTO nsps, rels
          FROM (SELECT DISTINCT x.nspname, x.relname FROM new_rows x) c;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(c.nspname), array_agg(c.relname) INTO nsps, rels
          FROM (SELECT DISTINCT x.nspname, x.relname FROM old_rows x) c;
    ELSE
        SELECT array_agg(c.nspname), array_agg(c.relname) INTO nsps, rels
          FROM (SELECT x.nspname, x.relname FROM new_rows x
                UNION SELECT x.nspname, x.relname FROM old_rows x) c;
    END IF;
    IF nsps IS NULL THEN
        RETURN NULL;
    END IF;
    -- the lock first: a deploy step committing meanwhile would count the
    -- version without these rows
    PERFORM rollguard._lock_live(false);
    IF TG_TABLE_NAME = 'contract' THEN
        IF TG_OP = 'INSERT' THEN
            SELECT array_agg(DISTINCT x.version) INTO versions FROM new_rows x;
        ELSIF TG_OP = 'DELETE' THEN
            SELECT array_agg(DISTINCT x.version) INTO versions FROM old_rows x;
        ELSE
            SELECT array_agg(DISTINCT x.version) INTO versions
              FROM (SELECT y.version FROM new_rows y UNION ALL SELECT y.version FROM old_rows y) x;
        END IF;
        IF NOT EXISTS (SELECT 1 FROM rollguard.live_version lv WHERE lv.version = ANY (versions)) THEN
            RETURN NULL;
        END IF;
    END IF;
    PERFORM rollguard._lock_live();
    PERFORM rollguard._recount_relations(nsps, rels);
    RETURN NULL;
END
$$;

-- The triggers: one per event (a trigger with transition tables serves
-- one event), all per statement.
DO $$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT * FROM (VALUES ('deployment_state', '_deployment_state_changed'),
                                   ('contract', '_contract_changed'),
                                   ('declaration', '_contract_changed')) AS x(tab, fn)
    LOOP
        EXECUTE format('CREATE TRIGGER live_insert AFTER INSERT ON rollguard.%I'
                       ' REFERENCING NEW TABLE AS new_rows'
                       ' FOR EACH STATEMENT EXECUTE FUNCTION rollguard.%I()', t.tab, t.fn);
        EXECUTE format('CREATE TRIGGER live_update AFTER UPDATE ON rollguard.%I'
                       ' REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows'
                       ' FOR EACH STATEMENT EXECUTE FUNCTION rollguard.%I()', t.tab, t.fn);
        EXECUTE format('CREATE TRIGGER live_delete AFTER DELETE ON rollguard.%I'
                       ' REFERENCING OLD TABLE AS old_rows'
                       ' FOR EACH STATEMENT EXECUTE FUNCTION rollguard.%I()', t.tab, t.fn);
        EXECUTE format('CREATE TRIGGER live_truncate AFTER TRUNCATE ON rollguard.%I'
                       ' FOR EACH STATEMENT EXECUTE FUNCTION rollguard.%I()', t.tab, t.fn);
    END LOOP;
END
$$;

-- Recomputes every counter from scratch (after a data-only restore with
-- --disable-triggers, say).  Superuser only, like every function here
-- not granted otherwise.
CREATE FUNCTION rollguard._rebuild_live()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    nsps text[];
    rels text[];
BEGIN
    PERFORM rollguard._lock_live();
    DELETE FROM rollguard.live_version;
    INSERT INTO rollguard.live_version (version, deployments)
    SELECT s.version, count(*) FROM rollguard.deployment_state s GROUP BY 1;
    DELETE FROM rollguard.live_column;
    DELETE FROM rollguard.live_relation;
    SELECT array_agg(c.nspname), array_agg(c.relname) INTO nsps, rels
      FROM (SELECT DISTINCT x.nspname, x.relname FROM rollguard.contract x
              JOIN rollguard.live_version lv ON lv.version = x.version) c;
    IF nsps IS NOT NULL THEN
        PERFORM rollguard._recount_relations(nsps, rels);
    END IF;
END
$$;

-- The counters that differ from a recount from scratch: none, always
-- (the test suites check it after every scenario).
CREATE FUNCTION rollguard._live_drift()
RETURNS TABLE (counter text, key text, stored text, recounted text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH lv AS (SELECT s.version, count(*)::integer AS deployments
                  FROM rollguard.deployment_state s GROUP BY 1),
    lc AS (SELECT e.nspname, e.relname, e.attname, count(*)::integer AS users,
                  (count(*) FILTER (WHERE e.nullable))::integer AS nullable_users,
                  (count(*) FILTER (WHERE e.writes))::integer AS writers
             FROM rollguard.effective_contract e JOIN lv ON lv.version = e.version
            GROUP BY 1, 2, 3),
    lr AS (SELECT e.nspname, e.relname, count(DISTINCT e.version)::integer AS users,
                  (count(DISTINCT e.version) FILTER (WHERE e.writes))::integer AS inserters
             FROM rollguard.effective_contract e JOIN lv ON lv.version = e.version
            GROUP BY 1, 2)
    SELECT 'live_version', coalesce(a.version, b.version),
           a.deployments::text, b.deployments::text
      FROM rollguard.live_version a FULL JOIN lv b ON a.version = b.version
     WHERE a.deployments IS DISTINCT FROM b.deployments
    UNION ALL
    SELECT 'live_column', format('%s.%s.%s', coalesce(a.nspname, b.nspname),
                                 coalesce(a.relname, b.relname), coalesce(a.attname, b.attname)),
           format('%s/%s/%s', a.users, a.nullable_users, a.writers),
           format('%s/%s/%s', b.users, b.nullable_users, b.writers)
      FROM rollguard.live_column a
      FULL JOIN lc b ON (a.nspname, a.relname, a.attname) = (b.nspname, b.relname, b.attname)
     WHERE (a.users, a.nullable_users, a.writers) IS DISTINCT FROM (b.users, b.nullable_users, b.writers)
    UNION ALL
    SELECT 'live_relation', format('%s.%s', coalesce(a.nspname, b.nspname), coalesce(a.relname, b.relname)),
           format('%s/%s', a.users, a.inserters), format('%s/%s', b.users, b.inserters)
      FROM rollguard.live_relation a
      FULL JOIN lr b ON (a.nspname, a.relname) = (b.nspname, b.relname)
     WHERE (a.users, a.inserters) IS DISTINCT FROM (b.users, b.inserters)
     ORDER BY 1, 2
$$;

-- Registrations take the counters' lock before the version's own (as
-- deploy steps do): a deploy script registers and deploys in one
-- transaction while other mirrors deploy the same version.
REVOKE ALL ON FUNCTION rollguard._store_version(text, jsonb) FROM PUBLIC, rollguard_deploy;
CREATE FUNCTION rollguard._register_version(version text, manifest jsonb)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM rollguard._lock_live(false);
    PERFORM rollguard._store_version(version, manifest);
END
$$;
REVOKE ALL ON FUNCTION rollguard._register_version(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION rollguard._register_version(text, jsonb) TO rollguard_deploy;

REVOKE ALL ON FUNCTION rollguard._lock_live(boolean), rollguard._recount_relations(text[], text[]),
                       rollguard._count_version(text, integer),
                       rollguard._apply_deployment_delta(text[], integer[]),
                       rollguard._deployment_state_changed(), rollguard._contract_changed(),
                       rollguard._rebuild_live(), rollguard._live_drift() FROM PUBLIC;

SELECT rollguard._rebuild_live();

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

/* ----------------------------------------------------------------------
 * 1.4: the registry announces its changes
 * ---------------------------------------------------------------------- */

-- The guard answers most checks from a few primary-key probes of the
-- registry (the counters of live use, and whether a contract names what a
-- statement removes).  Each backend keeps those answers until the registry
-- changes.  A change is announced the way PostgreSQL announces a change to
-- its own catalogs: a relcache invalidation of the table, which every
-- backend reads when the writing transaction commits (never if it rolls
-- back), before the writer's locks are released.  Every statement that
-- writes to one of these tables sends it, whoever runs it: deploy steps,
-- the counters' own triggers, a superuser's direct edit, pg_restore.
CREATE FUNCTION rollguard._registry_changed()
RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'rollguard_registry_changed';
REVOKE ALL ON FUNCTION rollguard._registry_changed() FROM PUBLIC;

-- ENABLE ALWAYS: also in sessions with session_replication_role =
-- replica.  Logical replication's apply fires row triggers only: for a
-- subscriber that receives the registry, the same function as a row
-- trigger, enabled only there (ENABLE REPLICA).
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['deployment_state', 'contract', 'live_version',
                             'live_column', 'live_relation']
    LOOP
        EXECUTE format('CREATE TRIGGER registry_changed'
                       ' AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON rollguard.%I'
                       ' FOR EACH STATEMENT EXECUTE FUNCTION rollguard._registry_changed()', t);
        EXECUTE format('ALTER TABLE rollguard.%I ENABLE ALWAYS TRIGGER registry_changed', t);
        EXECUTE format('CREATE TRIGGER registry_changed_replica'
                       ' AFTER INSERT OR UPDATE OR DELETE ON rollguard.%I'
                       ' FOR EACH ROW EXECUTE FUNCTION rollguard._registry_changed()', t);
        EXECUTE format('ALTER TABLE rollguard.%I ENABLE REPLICA TRIGGER registry_changed_replica', t);
    END LOOP;
END
$$;

/* ----------------------------------------------------------------------
 * 1.5: guarded relations
 * ---------------------------------------------------------------------- */

-- What a guarded relation is: one function in the library (catalog.c),
-- which the guard, the observed uses, inferred contracts and declarations
-- all ask.
CREATE FUNCTION rollguard._is_guarded(relation pg_catalog.regclass)
RETURNS boolean
LANGUAGE c STABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'rollguard_is_guarded';

REVOKE ALL ON FUNCTION rollguard._is_guarded(pg_catalog.regclass) FROM PUBLIC;

COMMENT ON FUNCTION rollguard._is_guarded(pg_catalog.regclass) IS
'Is this a relation rollguard guards (a table, view, materialized view or foreign table outside the system''s and rollguard''s schemas)?';

/* ----------------------------------------------------------------------
 * 1.6: who may provide evidence; uses that could not be recorded
 * ---------------------------------------------------------------------- */

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

/* ----------------------------------------------------------------------
 * 1.6: who uses a relation, and what may be contracted now
 * ---------------------------------------------------------------------- */

-- Who uses a relation (or one of its columns), and on what evidence: each
-- live version -- run or rolled out by a deployment, or run by a tagged
-- session connected now -- with the contract rows that name it (declared
-- manifest or inferred contract, amended by declarations), the uses its
-- tagged sessions were seen making, and, for a connected version the
-- registry has no contract for, the fact that it counts as using every
-- column.  What "who blocks me" is, before running anything.  (From 1.7
-- without expired deployments: rollguard.forget_after.)
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

/* ----------------------------------------------------------------------
 * 1.6: a short human report
 * ---------------------------------------------------------------------- */

-- One SELECT for the state of the fleet, as lines of text: each deployment
-- with what it runs, since when, and how many tagged sessions of it are
-- connected now (a deployment recorded as live but never connected may be
-- gone: rollguard.remove_deployment()); from 1.7 those not seen for longer
-- than rollguard.stale_after, and those expired (rollguard.forget_after),
-- whose expiries it records; connected versions no deployment records;
-- what may be contracted now; the counters since their reset.
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

COMMENT ON FUNCTION rollguard.status() IS
'A short human report: deployments and their connected sessions, what may be contracted now, the counters';

REVOKE ALL ON FUNCTION rollguard.status() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION rollguard.status() TO rollguard_deploy;

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

CREATE TRIGGER contract_delete AFTER DELETE ON rollguard.version_registry
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION rollguard._version_registry_changed();
CREATE TRIGGER contract_update AFTER UPDATE ON rollguard.version_registry
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION rollguard._version_registry_changed();
CREATE TRIGGER contract_truncate AFTER TRUNCATE ON rollguard.version_registry
    FOR EACH STATEMENT EXECUTE FUNCTION rollguard._version_registry_changed();
