-- rollguard cluster only: tools for the curve and the profile.
--
--  * bench_proto.set_deployments(n, live): n deployments mirror-1..mirror-n,
--    mirror-i on version v(i mod live + 1) -- with live = 200 exactly the rows
--    rollguard.deploy() left for the first n mirrors.  Direct writes (as the
--    superuser) so that the 10,000-deployment point does not take minutes;
--    deploy() itself is benchmarked separately.
--  * bench_proto.exec_ms(query): median server-side execution and planning
--    time of a query (EXPLAIN ANALYZE, TIMING OFF), to time by hand the
--    guard's registry queries (extracted from src/registry.c by
--    bench/guard_sql.py, loaded after this file) and the two rewrites
--    proposed in bench/README.md:
--      tier 1: judge each distinct live version on the changed column only
--              (no per-deployment rows, no sort)
--      tier 2: per-column counters over the live versions, maintained when a
--              version becomes live or stops being live (a lookup)
--    Nothing here changes rollguard's own objects: the prototypes' helper
--    tables live in schema bench_proto.
CREATE SCHEMA bench_proto;

CREATE FUNCTION bench_proto.set_deployments(n integer, live integer)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM rollguard.deployment_state;
    INSERT INTO rollguard.deployment_state (deployment, version, state)
    SELECT 'mirror-' || i, 'v' || (i % live + 1), 'running'
      FROM generate_series(1, n) i;
    ANALYZE rollguard.deployment_state;
END
$$;

-- Median "Execution Time" and "Planning Time" of reps runs, and the rows
-- the query returned.
CREATE FUNCTION bench_proto.exec_ms(q text, reps integer DEFAULT 5,
                                    OUT ms float8, OUT rows bigint, OUT plan_ms float8)
LANGUAGE plpgsql AS $$
DECLARE
    j json;
    t float8[] := '{}';
    p float8[] := '{}';
BEGIN
    IF q IS NULL THEN       -- a query guard_sql.py could not extract
        ms := 'NaN';
        plan_ms := 'NaN';
        RETURN;
    END IF;
    FOR i IN 1..reps LOOP
        EXECUTE 'EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) ' || q INTO j;
        t := t || (j -> 0 ->> 'Execution Time')::float8;
        p := p || (j -> 0 ->> 'Planning Time')::float8;
        rows := (j -> 0 -> 'Plan' ->> 'Actual Rows')::bigint;
    END LOOP;
    ms := (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM unnest(t) x);
    plan_ms := (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM unnest(p) x);
END
$$;

-- The guard's registry queries (replaced by guard_sql.py's output):
--   kind 'not_null'  SET NOT NULL, CHECK (c IS NOT NULL), DROP DEFAULT, ...
--   kind 'column'    DROP / RENAME / retype COLUMN
--   kind 'relation'  DROP / RENAME / SET SCHEMA of the relation
CREATE FUNCTION bench_proto.guard_sql(kind text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT NULL::text $$;

-- ... with the parameters as literals ($1 schema, $2 relation, $3/$4 the
-- tagged sessions: none, $5 column).
CREATE FUNCTION bench_proto.guard_query(kind text, nsp text, rel text, att text)
RETURNS text LANGUAGE sql STABLE AS $f$
SELECT replace(replace(replace(replace(replace(bench_proto.guard_sql(kind),
       '$5', coalesce(quote_literal(att), 'NULL::pg_catalog.text')),
       '$4', $$'{}'::pg_catalog.text[]$$),
       '$3', $$'{}'::pg_catalog.text[]$$),
       '$2', quote_literal(rel)),
       '$1', quote_literal(nsp))
$f$;

-- Tier 1: one row per distinct live version, for the changed column only,
-- plus whether the version inserts into the relation.  relation_writers
-- stands for an index ON rollguard.contract (nspname, relname, version)
-- WHERE writes (not created on rollguard's table here, so that the guard's
-- own queries are measured with their own indexes only).
CREATE TABLE bench_proto.relation_writers AS
SELECT DISTINCT nspname, relname, version FROM rollguard.contract WHERE writes;
ALTER TABLE bench_proto.relation_writers ADD PRIMARY KEY (nspname, relname, version);

CREATE FUNCTION bench_proto.tier1_query(nsp text, rel text, att text)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
SELECT format(
 'WITH lv AS (SELECT DISTINCT d.version FROM rollguard.deployment_state d)'
 ' SELECT lv.version, c.writes, c.nullable,'
 '        EXISTS (SELECT 1 FROM bench_proto.relation_writers w'
 '                 WHERE w.nspname = %1$L AND w.relname = %2$L AND w.version = lv.version) AS inserts'
 '   FROM lv LEFT JOIN rollguard.effective_contract c'
 '     ON c.version = lv.version AND c.nspname = %1$L AND c.relname = %2$L AND c.attname = %3$L',
 nsp, rel, att)
$$;

-- Tier 2: counters over the distinct live versions.
--   live_column(t, c): users, nullable_users, writers
--   live_relation(t):  users, inserters
-- A change is allowed without reading anything else when:
--   drop/rename/retype column      users(t,c) = 0
--   drop/rename/move relation      users(t) = 0
--   SET NOT NULL / CHECK NOT NULL  nullable_users(t,c) = 0 and
--                                  (has default or inserters(t) = writers(t,c))
--   DROP DEFAULT, ADD NOT NULL     inserters(t) = writers(t,c)
--   GENERATED ALWAYS               writers(t,c) = 0
-- Only a refusal needs the per-deployment rows (for its DETAIL).
CREATE TABLE bench_proto.live_column (
    nspname text, relname text, attname text,
    users integer NOT NULL, nullable_users integer NOT NULL, writers integer NOT NULL,
    PRIMARY KEY (nspname, relname, attname));
CREATE TABLE bench_proto.live_relation (
    nspname text, relname text,
    users integer NOT NULL, inserters integer NOT NULL,
    PRIMARY KEY (nspname, relname));

-- Full rebuild from the registry (ms).
CREATE FUNCTION bench_proto.rebuild_live_counters()
RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz := clock_timestamp();
BEGIN
    TRUNCATE bench_proto.live_column, bench_proto.live_relation;
    INSERT INTO bench_proto.live_column
    SELECT c.nspname, c.relname, c.attname, count(*),
           count(*) FILTER (WHERE c.nullable), count(*) FILTER (WHERE c.writes)
      FROM (SELECT DISTINCT version FROM rollguard.deployment_state) lv
      JOIN rollguard.effective_contract c USING (version)
     GROUP BY 1, 2, 3;
    INSERT INTO bench_proto.live_relation
    SELECT c.nspname, c.relname, count(DISTINCT c.version),
           count(DISTINCT c.version) FILTER (WHERE c.writes)
      FROM (SELECT DISTINCT version FROM rollguard.deployment_state) lv
      JOIN rollguard.effective_contract c USING (version)
     GROUP BY 1, 2;
    ANALYZE bench_proto.live_column, bench_proto.live_relation;
    RETURN extract(epoch FROM clock_timestamp() - t0) * 1000;
END
$$;

-- What a deploy step would pay to keep the counters when a version becomes
-- live (its whole contract added), and when it stops being live: ms for one
-- version's add + remove (the state is left unchanged).
CREATE FUNCTION bench_proto.counter_maintenance_ms(v text)
RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz := clock_timestamp();
    sign integer;
BEGIN
    FOREACH sign IN ARRAY ARRAY[1, -1] LOOP
        INSERT INTO bench_proto.live_column AS l
        SELECT c.nspname, c.relname, c.attname, sign,
               CASE WHEN c.nullable THEN sign ELSE 0 END, CASE WHEN c.writes THEN sign ELSE 0 END
          FROM rollguard.effective_contract c WHERE c.version = v
        ON CONFLICT (nspname, relname, attname) DO UPDATE
           SET users = l.users + EXCLUDED.users,
               nullable_users = l.nullable_users + EXCLUDED.nullable_users,
               writers = l.writers + EXCLUDED.writers;
        INSERT INTO bench_proto.live_relation AS l
        SELECT c.nspname, c.relname, sign, CASE WHEN bool_or(c.writes) THEN sign ELSE 0 END
          FROM rollguard.effective_contract c WHERE c.version = v
         GROUP BY 1, 2
        ON CONFLICT (nspname, relname) DO UPDATE
           SET users = l.users + EXCLUDED.users,
               inserters = l.inserters + EXCLUDED.inserters;
    END LOOP;
    RETURN extract(epoch FROM clock_timestamp() - t0) * 1000;
END
$$;

CREATE FUNCTION bench_proto.tier2_query(nsp text, rel text, att text)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
SELECT format(
 'SELECT r.users, r.inserters, u.users AS col_users, u.nullable_users, u.writers'
 '  FROM bench_proto.live_relation r'
 '  LEFT JOIN bench_proto.live_column u'
 '    ON u.nspname = r.nspname AND u.relname = r.relname AND u.attname = %3$L'
 ' WHERE r.nspname = %1$L AND r.relname = %2$L', nsp, rel, att)
$$;

-- Do the tier 2 counters agree with rollguard.check() (the guard's own
-- rules)?  One row per statement: both verdicts.
CREATE FUNCTION bench_proto.tier2_agrees(OUT statement text, OUT rollguard_blocks boolean,
                                         OUT tier2_blocks boolean)
RETURNS SETOF record LANGUAGE plpgsql AS $$
DECLARE
    r record;
    c record;
BEGIN
    FOR r IN SELECT * FROM (VALUES
        ('ALTER TABLE used_7 DROP COLUMN c002', 'column', 'c002'),
        ('ALTER TABLE used_7 DROP COLUMN c100', 'column', 'c100'),
        ('ALTER TABLE used_7 RENAME COLUMN c040 TO x', 'column', 'c040'),
        ('ALTER TABLE used_7 ALTER COLUMN c002 SET NOT NULL', 'not_null', 'c002'),
        ('ALTER TABLE used_7 ALTER COLUMN c100 SET NOT NULL', 'not_null', 'c100'),
        ('ALTER TABLE used_7 RENAME TO y', 'relation', NULL),
        ('ALTER TABLE free_7 RENAME TO y', 'relation', NULL)) AS t(ddl, kind, col)
    LOOP
        statement := r.ddl;
        rollguard_blocks := EXISTS (SELECT 1 FROM rollguard.check(r.ddl));
        SELECT lr.users AS rel_users, lr.inserters, coalesce(lc.users, 0) AS users,
               coalesce(lc.nullable_users, 0) AS nullable_users, coalesce(lc.writers, 0) AS writers
          INTO c
          FROM (SELECT 1) one
          LEFT JOIN bench_proto.live_relation lr
            ON lr.nspname = 'public' AND lr.relname = substring(r.ddl from 'ALTER TABLE (\w+)')
          LEFT JOIN bench_proto.live_column lc
            ON lc.nspname = lr.nspname AND lc.relname = lr.relname AND lc.attname = r.col;
        tier2_blocks := CASE r.kind
            WHEN 'column' THEN c.users > 0
            WHEN 'relation' THEN coalesce(c.rel_users, 0) > 0
            -- the columns here have no default
            WHEN 'not_null' THEN c.nullable_users > 0 OR coalesce(c.inserters, 0) > c.writers
        END;
        RETURN NEXT;
    END LOOP;
END
$$;

-- One line of the curve: every timing at the current registry state.
CREATE FUNCTION bench_proto.measure(OUT deployments bigint, OUT live_versions bigint,
                                    OUT not_null_rows bigint, OUT not_null_ms float8,
                                    OUT column_ms float8,
                                    OUT tier1_ms float8, OUT tier2_ms float8,
                                    OUT rebuild_ms float8)
LANGUAGE plpgsql AS $$
BEGIN
    SELECT count(*), count(DISTINCT version) INTO deployments, live_versions
      FROM rollguard.deployment_state;
    rebuild_ms := bench_proto.rebuild_live_counters();
    SELECT e.ms, e.rows INTO not_null_ms, not_null_rows
      FROM bench_proto.exec_ms(bench_proto.guard_query('not_null', 'public', 'used_7', 'c001'), 3) e;
    column_ms := (bench_proto.exec_ms(bench_proto.guard_query('column', 'public', 'used_7', 'c100'), 5)).ms;
    tier1_ms := (bench_proto.exec_ms(bench_proto.tier1_query('public', 'used_7', 'c001'), 5)).ms;
    tier2_ms := (bench_proto.exec_ms(bench_proto.tier2_query('public', 'used_7', 'c001'), 5)).ms;
END
$$;

-- Where the time of the guard's queries goes (one relation, at the current
-- registry state).
CREATE FUNCTION bench_proto.breakdown(nsp text, rel text)
RETURNS TABLE (variant text, ms float8, rows bigint, plan_ms float8)
LANGUAGE plpgsql AS $$
DECLARE
    nn text := bench_proto.guard_query('not_null', nsp, rel, 'c001');
BEGIN
    variant := '0 SET NOT NULL query, relation no version uses (free_7)';
    SELECT * INTO ms, rows, plan_ms FROM bench_proto.exec_ms(bench_proto.guard_query('not_null', nsp, 'free_7', 'c001'), 9);
    RETURN NEXT;
    variant := '1 SET NOT NULL query, column every version writes (work_mem ' || current_setting('work_mem') || ')';
    SELECT * INTO ms, rows, plan_ms FROM bench_proto.exec_ms(nn, 5);
    RETURN NEXT;
    PERFORM set_config('work_mem', '64MB', true);
    variant := '2 the same, work_mem 64MB (the sort stays in memory)';
    SELECT * INTO ms, rows, plan_ms FROM bench_proto.exec_ms(nn, 5);
    RETURN NEXT;
    PERFORM set_config('work_mem', (SELECT boot_val FROM pg_settings WHERE name = 'work_mem') || 'kB', true);
    variant := '3 the same without its ORDER BY (ICU sort keys and the sort)';
    SELECT * INTO ms, rows, plan_ms FROM bench_proto.exec_ms(regexp_replace(nn, ' ORDER BY [^$]*$', ''), 5);
    RETURN NEXT;
    variant := '4 column query (DROP/RENAME COLUMN), column no version uses (c100)';
    SELECT * INTO ms, rows, plan_ms FROM bench_proto.exec_ms(bench_proto.guard_query('column', nsp, rel, 'c100'), 5);
    RETURN NEXT;
    variant := '5 column query, column every version uses (c002: what a refused DROP COLUMN reads)';
    SELECT * INTO ms, rows, plan_ms FROM bench_proto.exec_ms(bench_proto.guard_query('column', nsp, rel, 'c002'), 5);
    RETURN NEXT;
    variant := '6 relation query (DROP/RENAME TABLE: every column of every live deployment)';
    SELECT * INTO ms, rows, plan_ms FROM bench_proto.exec_ms(bench_proto.guard_query('relation', nsp, rel, NULL), 3);
    RETURN NEXT;
    variant := '7 effective_contract of the relation, every registered version';
    SELECT * INTO ms, rows, plan_ms FROM bench_proto.exec_ms(format(
        'SELECT * FROM rollguard.effective_contract c WHERE c.nspname = %L AND c.relname = %L', nsp, rel), 5);
    RETURN NEXT;
    variant := '8 proposed tier 1 (changed column, per distinct live version)';
    SELECT * INTO ms, rows, plan_ms FROM bench_proto.exec_ms(bench_proto.tier1_query(nsp, rel, 'c001'), 5);
    RETURN NEXT;
    variant := '9 proposed tier 2 (counter lookup)';
    SELECT * INTO ms, rows, plan_ms FROM bench_proto.exec_ms(bench_proto.tier2_query(nsp, rel, 'c001'), 5);
    RETURN NEXT;
END
$$;
