/* rollguard--1.6--1.7.sql: day two and every stack */

\echo Use "ALTER EXTENSION rollguard UPDATE TO '1.7'" to load this file. \quit

-- Each section below says what it changes and why; the full script
-- rollguard--1.7.sql holds the same definitions.

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
        SELECT rr.nsp, rr.rname, e.key,
               COALESCE((e.value ->> 'writes')::boolean, true),
               COALESCE((e.value ->> 'nullable')::boolean, true)
          FROM rr, pg_catalog.jsonb_each(rr.relv) e
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
    INSERT INTO rollguard.live_column AS l (nspname, relname, attname, users, nullable_users, writers)
    SELECT e.nspname, e.relname, e.attname, 1, e.nullable::integer, e.writes::integer
      FROM rollguard.effective_contract e
     WHERE e.version = v AND sign > 0
    ON CONFLICT (nspname, relname, attname) DO UPDATE
       SET users = l.users + 1,
           nullable_users = l.nullable_users + EXCLUDED.nullable_users,
           writers = l.writers + EXCLUDED.writers;
    INSERT INTO rollguard.live_relation AS l (nspname, relname, users, inserters)
    SELECT e.nspname, e.relname, 1, bool_or(e.writes)::integer
      FROM rollguard.effective_contract e
     WHERE e.version = v AND sign > 0
     GROUP BY 1, 2
    ON CONFLICT (nspname, relname) DO UPDATE
       SET users = l.users + 1, inserters = l.inserters + EXCLUDED.inserters;
    IF sign > 0 THEN
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
