-- rollguard cluster only: tools for the curve and the profile.
--
--  * bench_proto.set_deployments(n, live): n deployments mirror-1..mirror-n,
--    mirror-i on version v(i mod live + 1) -- with live = 200 exactly the rows
--    rollguard.deploy() left for the first n mirrors.  Direct writes (as the
--    superuser) so that the 10,000-deployment point does not take minutes of
--    deploy() calls (deploy() itself is benchmarked separately).  Only the
--    rows that differ are deleted, updated, inserted; rollguard's triggers on
--    deployment_state keep its counters of live use, as for any direct
--    edit: a version that gains its first deployment or loses its last is
--    added to or taken from the counters.  Returns the milliseconds it took.
--  * bench_proto.exec_ms(query): median server-side execution and planning
--    time of a query (EXPLAIN ANALYZE, TIMING OFF).
--  * bench_proto.guard_ms(kind, ...): the guard's registry queries, extracted
--    from src/registry.c by bench/guard_sql.py (loaded after this file),
--    PREPAREd with the parameter types the C code gives them and timed as
--    generic plans -- as the guard runs them (CURSOR_OPT_GENERIC_PLAN).
--  * bench_proto.measure(): one line of the curve.
-- Nothing here changes rollguard's objects other than deployment_state
-- (set_deployments) and what its triggers keep.
CREATE SCHEMA bench_proto;

CREATE FUNCTION bench_proto.set_deployments(n integer, live integer)
RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz := clock_timestamp();
BEGIN
    -- One statement per kind of edit, each firing the counters' statement
    -- triggers once: a mirror that moves to another version is an UPDATE
    -- (not a DELETE and an INSERT, which would take a version that keeps
    -- deployments out of the counters and put it back).
    DELETE FROM rollguard.deployment_state s
     WHERE NOT EXISTS (SELECT 1 FROM generate_series(1, n) i WHERE s.deployment = 'mirror-' || i);
    UPDATE rollguard.deployment_state s
       SET version = 'v' || (i % live + 1), state = 'running', since = now()
      FROM generate_series(1, n) i
     WHERE s.deployment = 'mirror-' || i
       AND (s.version <> 'v' || (i % live + 1) OR s.state <> 'running');
    INSERT INTO rollguard.deployment_state (deployment, version, state)
    SELECT 'mirror-' || i, 'v' || (i % live + 1), 'running'
      FROM generate_series(1, n) i
     WHERE NOT EXISTS (SELECT 1 FROM rollguard.deployment_state s
                        WHERE s.deployment = 'mirror-' || i);
    ANALYZE rollguard.deployment_state, rollguard.live_version,
            rollguard.live_column, rollguard.live_relation;
    RETURN extract(epoch FROM clock_timestamp() - t0) * 1000;
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
--   kind 'counts'    the counters of live use: the verdict for every change
--   kind 'not_null'  per live deployment: refused SET NOT NULL, DROP DEFAULT, ...
--   kind 'column'    per live deployment: refused DROP / RENAME / retype COLUMN
--   kind 'relation'  per live deployment: refused DROP / RENAME / SET SCHEMA
CREATE FUNCTION bench_proto.guard_sql(kind text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT NULL::text $$;
CREATE FUNCTION bench_proto.guard_argtypes(kind text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT NULL::text $$;

-- The arguments the guard passes, as SQL literals: no tagged sessions, no
-- observed uses, the registry's deployments read.
CREATE FUNCTION bench_proto.guard_args(kind text, nsp text, rel text, att text)
RETURNS text[] LANGUAGE sql IMMUTABLE AS $f$
SELECT CASE WHEN kind = 'counts' THEN
    -- $1 schema, $2 relation, $3 column, $4 sessions' versions, $5 observed versions
    ARRAY[quote_literal(nsp), quote_literal(rel), coalesce(quote_literal(att), 'NULL::pg_catalog.text'),
          $$'{}'::pg_catalog.text[]$$, $$'{}'::pg_catalog.text[]$$]
ELSE
    -- $1 schema, $2 relation, $3/$4 sessions' deployments/versions, $5 column,
    -- $6 read the registry's deployments
    ARRAY[quote_literal(nsp), quote_literal(rel), $$'{}'::pg_catalog.text[]$$,
          $$'{}'::pg_catalog.text[]$$, coalesce(quote_literal(att), 'NULL::pg_catalog.text'), 'true']
END
$f$;

-- ... the query with its parameters replaced by them (a custom plan: for
-- EXPLAIN's sake; the guard's own plans are generic, see guard_ms).
CREATE FUNCTION bench_proto.guard_query(kind text, nsp text, rel text, att text)
RETURNS text LANGUAGE plpgsql STABLE AS $f$
DECLARE
    q text := bench_proto.guard_sql(kind);
    args text[] := bench_proto.guard_args(kind, nsp, rel, att);
BEGIN
    IF q IS NULL THEN
        RETURN NULL;
    END IF;
    FOR i IN REVERSE array_length(args, 1)..1 LOOP
        q := replace(q, '$' || i, args[i]);
    END LOOP;
    RETURN q;
END
$f$;

-- PREPAREs the query as bench_guard_<kind> (once per session) and returns
-- 'EXECUTE bench_guard_<kind>(...)' with the arguments the guard passes.
-- Run it with plan_cache_mode = force_generic_plan (guard_ms does) to get
-- the plan the guard gets.
CREATE FUNCTION bench_proto.guard_execute(kind text, nsp text, rel text, att text)
RETURNS text LANGUAGE plpgsql AS $f$
DECLARE
    q text := bench_proto.guard_sql(kind);
    types text := bench_proto.guard_argtypes(kind);
    n integer;
BEGIN
    IF q IS NULL OR types IS NULL THEN
        RETURN NULL;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_prepared_statements WHERE name = 'bench_guard_' || kind) THEN
        EXECUTE format('PREPARE %I(%s) AS %s', 'bench_guard_' || kind, types, q);
    END IF;
    n := array_length(string_to_array(types, ','), 1);
    RETURN format('EXECUTE %I(%s)', 'bench_guard_' || kind,
                  array_to_string((bench_proto.guard_args(kind, nsp, rel, att))[1:n], ', '));
END
$f$;

-- The guard's query timed as the guard runs it: a generic plan.
CREATE FUNCTION bench_proto.guard_ms(kind text, nsp text, rel text, att text, reps integer DEFAULT 5,
                                     OUT ms float8, OUT rows bigint, OUT plan_ms float8)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('plan_cache_mode', 'force_generic_plan', true);
    SELECT * INTO ms, rows, plan_ms FROM bench_proto.exec_ms(bench_proto.guard_execute(kind, nsp, rel, att), reps);
    PERFORM set_config('plan_cache_mode', 'auto', true);
END
$$;

-- EXPLAIN (ANALYZE, BUFFERS) of the guard's query, generic plan.
CREATE FUNCTION bench_proto.guard_explain(kind text, nsp text, rel text, att text)
RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    q text := bench_proto.guard_execute(kind, nsp, rel, att);
BEGIN
    IF q IS NULL THEN
        RETURN NEXT 'n/a: the query could not be extracted from src/registry.c';
        RETURN;
    END IF;
    PERFORM set_config('plan_cache_mode', 'force_generic_plan', true);
    RETURN QUERY EXECUTE 'EXPLAIN (ANALYZE, BUFFERS) ' || q;
    PERFORM set_config('plan_cache_mode', 'auto', true);
END
$$;

-- One line of the curve, at the current registry state: the counters query
-- (what every checked statement runs), the per-deployment queries a refusal
-- runs to name its blockers, how many it names, and whether the counters
-- agree with a recount from scratch (drift rows: must be 0).
CREATE FUNCTION bench_proto.measure(OUT deployments bigint, OUT live_versions bigint,
                                    OUT drift bigint,
                                    OUT counts_ms float8, OUT counts_plan_ms float8,
                                    OUT blockers bigint,
                                    OUT column_query_ms float8, OUT not_null_query_ms float8,
                                    OUT not_null_rows bigint, OUT relation_query_ms float8,
                                    OUT relation_rows bigint)
LANGUAGE plpgsql AS $$
BEGIN
    SELECT count(*), count(DISTINCT version) INTO deployments, live_versions
      FROM rollguard.deployment_state;
    drift := (SELECT count(*) FROM rollguard._live_drift());
    SELECT e.ms, e.plan_ms INTO counts_ms, counts_plan_ms
      FROM bench_proto.guard_ms('counts', 'public', 'used_7', 'c001', 9) e;
    blockers := (SELECT count(*) FROM rollguard.check('ALTER TABLE public.used_7 DROP COLUMN c002'));
    column_query_ms := (bench_proto.guard_ms('column', 'public', 'used_7', 'c002', 3)).ms;
    SELECT e.ms, e.rows INTO not_null_query_ms, not_null_rows
      FROM bench_proto.guard_ms('not_null', 'public', 'used_7', 'c002', 3) e;
    SELECT e.ms, e.rows INTO relation_query_ms, relation_rows
      FROM bench_proto.guard_ms('relation', 'public', 'used_7', NULL, 3) e;
END
$$;

-- Where the time of the guard's queries goes (one relation, at the current
-- registry state), generic plans as the guard runs them.
CREATE FUNCTION bench_proto.breakdown(nsp text, rel text)
RETURNS TABLE (variant text, ms float8, rows bigint, plan_ms float8)
LANGUAGE plpgsql AS $$
BEGIN
    variant := '1 counters, SET NOT NULL of a column every version writes non-NULL (c001): allowed';
    SELECT * INTO ms, rows, plan_ms FROM bench_proto.guard_ms('counts', nsp, rel, 'c001', 9);
    RETURN NEXT;
    variant := '2 counters, RENAME/DROP of a column no version uses (c100): allowed';
    SELECT * INTO ms, rows, plan_ms FROM bench_proto.guard_ms('counts', nsp, rel, 'c100', 9);
    RETURN NEXT;
    variant := '3 counters, a relation no version uses (free_7)';
    SELECT * INTO ms, rows, plan_ms FROM bench_proto.guard_ms('counts', nsp, 'free_7', 'c001', 9);
    RETURN NEXT;
    variant := '4 refusal: column query, column every version uses (c002: DROP COLUMN)';
    SELECT * INTO ms, rows, plan_ms FROM bench_proto.guard_ms('column', nsp, rel, 'c002', 5);
    RETURN NEXT;
    variant := '5 refusal: NOT NULL query, column every version may write NULL (c002: SET NOT NULL)';
    SELECT * INTO ms, rows, plan_ms FROM bench_proto.guard_ms('not_null', nsp, rel, 'c002', 5);
    RETURN NEXT;
    variant := '6 the same without its ORDER BY (ICU sort keys and the sort), custom plan';
    SELECT * INTO ms, rows, plan_ms FROM bench_proto.exec_ms(
        regexp_replace(bench_proto.guard_query('not_null', nsp, rel, 'c002'), ' ORDER BY [^$]*$', ''), 5);
    RETURN NEXT;
    variant := '7 refusal: relation query (DROP/RENAME TABLE: every column of every live deployment)';
    SELECT * INTO ms, rows, plan_ms FROM bench_proto.guard_ms('relation', nsp, rel, NULL, 3);
    RETURN NEXT;
END
$$;

-- What a deploy step pays to keep the counters when one version becomes
-- live (its effective contract added) and when it stops being live (taken
-- away): ms of rollguard._count_version(v, 1) and (v, -1), run and rolled
-- back (nothing is left changed).
CREATE FUNCTION bench_proto.counter_maintenance_ms(v text, OUT columns bigint,
                                                   OUT add_ms float8, OUT remove_ms float8)
LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz;
BEGIN
    columns := (SELECT count(*) FROM rollguard.effective_contract e WHERE e.version = v);
    BEGIN
        t0 := clock_timestamp();
        PERFORM rollguard._count_version(v, 1);
        add_ms := extract(epoch FROM clock_timestamp() - t0) * 1000;
        t0 := clock_timestamp();
        PERFORM rollguard._count_version(v, -1);
        remove_ms := extract(epoch FROM clock_timestamp() - t0) * 1000;
        RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'bench: roll back';
    EXCEPTION WHEN raise_exception THEN
        NULL;
    END;
END
$$;
