--
-- shadowing: no object of the caller's is ever called by rollguard.
--
-- A role that may create objects in a schema on the search_path of the
-- deploy role, the application or an administrator (public, often) puts
-- its own operators, functions, aggregates, types and tables there: the
-- same names and argument types as pg_catalog's (which win where public
-- comes first in search_path), and more specific ones (=(oid, regclass),
-- to_json(text), format(text, text), array_agg(text), ...) that win overload
-- resolution even when pg_catalog is searched first.  Each of them counts
-- its calls (a sequence: the count survives a rollback) and warns; "->"
-- raises.  Then every function of the extension (pg_proc is enumerated:
-- a new function that this suite does not call makes it fail) is called by
-- sql/shadowing_exercise.psql, with search_path = public, pg_catalog and
-- with the default search_path, and everything it leaves in the registry
-- is compared with a run without the attacker's objects.
--
-- Every function written in SQL or PL/pgSQL runs with search_path =
-- pg_catalog, pg_temp, but rollguard.register_version(), which takes its
-- caller's search_path down (bare relation names in a manifest resolve
-- against it) and names only schema-qualified objects; the C functions'
-- SQL (the guard reads the registry through SPI) qualifies every object
-- and operator.
--
CREATE EXTENSION rollguard;
\set VERBOSITY terse
\set SHOW_CONTEXT never

-- The functions of the extension that run with the caller's search_path:
-- written in C, and register_version().
SELECT p.oid::regprocedure AS unpinned, l.lanname
  FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
 WHERE p.pronamespace = 'rollguard'::regnamespace
   AND NOT COALESCE('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false)
   AND l.lanname <> 'c'
 ORDER BY 1;

-- The roles: the application (it owns the tables and runs migrations), the
-- deploy role, an administrator, and the attacker, who has nothing but
-- CREATE on public (PostgreSQL 15 no longer grants it to PUBLIC; databases
-- created by older versions, and many set-ups, still do).
CREATE ROLE rg_app;
CREATE ROLE rg_deployer IN ROLE rollguard_deploy;
CREATE ROLE rg_dba IN ROLE rollguard_admin;
CREATE ROLE rg_attacker;
GRANT CREATE ON SCHEMA public TO rg_attacker;
CREATE TABLE person (id serial PRIMARY KEY, name text NOT NULL, weight integer, nickname text);
CREATE TABLE item (id serial PRIMARY KEY, label text);
ALTER TABLE person OWNER TO rg_app;
ALTER TABLE item OWNER TO rg_app;

-- Every function's calls are counted (pg_stat_user_functions).
SET track_functions = 'all';

-- What a run leaves behind: the registry (without timestamps), and which
-- functions of the extension it never called.
CREATE TEMP TABLE outcome (run text, registry jsonb, never_called text[]);
CREATE FUNCTION pg_temp.outcome(run text) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO pg_temp.outcome
    SELECT run, jsonb_build_object(
        'versions', (SELECT jsonb_agg(to_jsonb(v) - 'registered_at' - 'contract_taken_at' ORDER BY v.version)
                       FROM rollguard.version_registry v),
        -- (an inferred contract takes every relation there is, the
        -- attacker's too: only the application's are compared)
        'contract', (SELECT jsonb_agg(to_jsonb(c) ORDER BY c.version, c.nspname, c.relname, c.attname)
                       FROM rollguard.contract c WHERE c.relname IN ('person', 'item')),
        'deployments', (SELECT jsonb_agg(to_jsonb(d) - 'since' ORDER BY d.deployment, d.version)
                          FROM rollguard.deployment_state d),
        'declarations', (SELECT jsonb_agg(to_jsonb(d) - 'declared_at' ORDER BY d.nspname, d.relname, d.attname, d.kind)
                           FROM rollguard.declaration d),
        'removed', (SELECT jsonb_agg(to_jsonb(r) - 'removed_at' ORDER BY r.nspname, r.relname, r.attname)
                      FROM rollguard.removed_column r),
        'history', (SELECT jsonb_agg(to_jsonb(h) - 'id' - 'at' ORDER BY h.id) FROM rollguard.history h),
        'live', (SELECT jsonb_agg(to_jsonb(l) ORDER BY l.version) FROM rollguard.live_version l)),
        ARRAY(SELECT p.oid::regprocedure::text FROM pg_proc p
               WHERE p.pronamespace = 'rollguard'::regnamespace
                 AND NOT EXISTS (SELECT 1 FROM pg_stat_user_functions f
                                  WHERE f.funcid = p.oid AND f.calls > 0)
               ORDER BY p.oid::regprocedure::text COLLATE "C")
$$;

------------------------------------------------------------------------------
-- The run without the attacker's objects (default search_path).
------------------------------------------------------------------------------
-- (psql names the file it includes in its messages: relative, so that they
-- do not depend on where the tests run)
\getenv abs_srcdir PG_ABS_SRCDIR
\cd :abs_srcdir
\set exercise sql/shadowing_exercise.psql
\set path DEFAULT
\i :exercise
SELECT pg_stat_force_next_flush();
SELECT pg_temp.outcome('without the attack');

------------------------------------------------------------------------------
-- The attacker's objects, all in public.
------------------------------------------------------------------------------
SET ROLE rg_attacker;
SET search_path = pg_catalog, pg_temp;
CREATE SEQUENCE public.attack_calls;
GRANT USAGE ON SEQUENCE public.attack_calls TO PUBLIC;
-- Counts a call and says whose; true, for CHECK constraints and WHERE.
CREATE FUNCTION public.rg_attacked(what text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_catalog.nextval('public.attack_calls');
    RAISE WARNING 'the attacker''s % was called by %', what, current_user;
    RETURN true;
END
$$;

-- Operators: where public comes first, the same argument types win; the
-- others are more specific than any pg_catalog has.  Each one but "->"
-- returns what pg_catalog's would.
DO $$
DECLARE
    o record;
    n integer := 0;
BEGIN
    FOR o IN SELECT * FROM (VALUES
        ('->',  'jsonb', 'text', 'jsonb', NULL),
        ('->>', 'jsonb', 'text', 'text', 'a OPERATOR(pg_catalog.->>) b'),
        ('?',   'jsonb', 'text', 'bool', 'a OPERATOR(pg_catalog.?) b'),
        ('||',  'jsonb', 'jsonb', 'jsonb', 'a OPERATOR(pg_catalog.||) b'),
        ('=',   'jsonb', 'jsonb', 'bool', 'a OPERATOR(pg_catalog.=) b'),
        ('=',   'text', 'text', 'bool', 'a OPERATOR(pg_catalog.=) b'),
        ('<>',  'text', 'text', 'bool', 'a OPERATOR(pg_catalog.<>) b'),
        ('||',  'text', 'text', 'text', 'a OPERATOR(pg_catalog.||) b'),
        ('=',   'name', 'name', 'bool', 'a OPERATOR(pg_catalog.=) b'),
        ('=',   'name', 'text', 'bool', 'a OPERATOR(pg_catalog.=) b'),
        ('=',   'oid', 'oid', 'bool', 'a OPERATOR(pg_catalog.=) b'),
        ('>',   'int4', 'int4', 'bool', 'a OPERATOR(pg_catalog.>) b'),
        ('>=',  'int4', 'int4', 'bool', 'a OPERATOR(pg_catalog.>=) b'),
        -- more specific: pg_catalog has none of these exactly
        ('=',   'oid', 'regclass', 'bool', 'a OPERATOR(pg_catalog.=) b::pg_catalog.oid'),
        ('=',   'regclass', 'oid', 'bool', 'a::pg_catalog.oid OPERATOR(pg_catalog.=) b'),
        ('||',  'text', 'bool', 'text', 'a OPERATOR(pg_catalog.||) b::pg_catalog.text'),
        ('=',   'text', 'varchar', 'bool', 'a OPERATOR(pg_catalog.=) b::pg_catalog.text'),
        ('=',   'name', 'varchar', 'bool', 'a OPERATOR(pg_catalog.=) b::pg_catalog.text')
      ) AS x(op, l, r, res, genuine)
    LOOP
        n := n + 1;
        EXECUTE pg_catalog.format(
            'CREATE FUNCTION public.shadow_op_%s(a pg_catalog.%s, b pg_catalog.%s) RETURNS pg_catalog.%s'
            ' LANGUAGE plpgsql AS %L', n, o.l, o.r, o.res,
            pg_catalog.format('BEGIN PERFORM public.rg_attacked(%L); %s END',
                              pg_catalog.format('operator %s(%s, %s)', o.op, o.l, o.r),
                              CASE WHEN o.genuine IS NULL
                                   THEN 'RAISE EXCEPTION ''the attacker''''s operator was called'';'
                                   ELSE 'RETURN ' OPERATOR(pg_catalog.||) o.genuine OPERATOR(pg_catalog.||) ';' END));
        EXECUTE pg_catalog.format('CREATE OPERATOR public.%s (LEFTARG = pg_catalog.%s, RIGHTARG = pg_catalog.%s,'
                                  ' FUNCTION = public.shadow_op_%s)', o.op, o.l, o.r, n);
    END LOOP;
END
$$;

-- Functions: pg_catalog's names, with pg_catalog's argument types or more
-- specific ones (format(text, text) beats format(text, VARIADIC "any"),
-- to_json(text) beats to_json(anyelement), unnest(name[]) beats
-- unnest(anyarray)); and two of rollguard's own names.
DO $$
DECLARE
    f record;
    n integer := 0;
BEGIN
    FOR f IN SELECT * FROM (VALUES
        ('jsonb_typeof', 'a pg_catalog.jsonb', 'pg_catalog.text', 'pg_catalog.jsonb_typeof(a)'),
        ('format', 'a pg_catalog.text, b pg_catalog.text', 'pg_catalog.text', 'pg_catalog.format(a, b)'),
        ('format', 'a pg_catalog.text, b pg_catalog.text, c pg_catalog.text', 'pg_catalog.text', 'pg_catalog.format(a, b, c)'),
        ('to_json', 'a pg_catalog.text', 'pg_catalog.json', 'pg_catalog.to_json(a)'),
        ('jsonb_build_object', 'a pg_catalog.text, b pg_catalog.text', 'pg_catalog.jsonb', 'pg_catalog.jsonb_build_object(a, b)'),
        ('jsonb_build_object', 'a pg_catalog.text, b pg_catalog.int8', 'pg_catalog.jsonb', 'pg_catalog.jsonb_build_object(a, b)'),
        ('concat', 'a pg_catalog.text, b pg_catalog.text', 'pg_catalog.text', 'pg_catalog.concat(a, b)'),
        ('lower', 'a pg_catalog.text', 'pg_catalog.text', 'pg_catalog.lower(a)'),
        ('upper', 'a pg_catalog.text', 'pg_catalog.text', 'pg_catalog.upper(a)'),
        ('length', 'a pg_catalog.text', 'pg_catalog.int4', 'pg_catalog.length(a)'),
        ('octet_length', 'a pg_catalog.text', 'pg_catalog.int4', 'pg_catalog.octet_length(a)'),
        ('strpos', 'a pg_catalog.text, b pg_catalog.text', 'pg_catalog.int4', 'pg_catalog.strpos(a, b)'),
        ('quote_ident', 'a pg_catalog.text', 'pg_catalog.text', 'pg_catalog.quote_ident(a)'),
        ('to_regclass', 'a pg_catalog.text', 'pg_catalog.regclass', 'pg_catalog.to_regclass(a)'),
        ('current_setting', 'a pg_catalog.text', 'pg_catalog.text', 'pg_catalog.current_setting(a)'),
        ('current_schemas', 'a pg_catalog.bool', 'pg_catalog.name[]', 'pg_catalog.current_schemas(a)'),
        ('now', '', 'pg_catalog.timestamptz', 'pg_catalog.now()'),
        ('pg_has_role', 'a pg_catalog.name, b pg_catalog.text', 'pg_catalog.bool', 'pg_catalog.pg_has_role(a, b)'),
        ('version_cmp', 'a pg_catalog.text, b pg_catalog.text', 'pg_catalog.int4', 'rollguard.version_cmp(a, b)'),
        ('version_sort_key', 'a pg_catalog.text', 'pg_catalog.bytea', 'rollguard.version_sort_key(a)')
      ) AS x(name, args, res, genuine)
    LOOP
        n := n + 1;
        EXECUTE pg_catalog.format(
            'CREATE FUNCTION public.%I(%s) RETURNS %s LANGUAGE plpgsql AS %L',
            f.name, f.args, f.res,
            pg_catalog.format('BEGIN PERFORM public.rg_attacked(%L); RETURN %s; END',
                              pg_catalog.format('function %s(%s)', f.name, f.args), f.genuine));
    END LOOP;
END
$$;
CREATE FUNCTION public.unnest(a pg_catalog.name[]) RETURNS SETOF pg_catalog.name
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM public.rg_attacked('function unnest(name[])');
    RETURN QUERY SELECT pg_catalog.unnest(a);
END
$$;
-- Aggregates: array_agg(text) beats array_agg(anynonarray); string_agg
-- has pg_catalog's argument types.
CREATE FUNCTION public.shadow_agg_step(s pg_catalog.text[], v pg_catalog.text) RETURNS pg_catalog.text[]
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM public.rg_attacked('an aggregate');
    RETURN pg_catalog.array_append(s, v);
END
$$;
CREATE AGGREGATE public.array_agg(pg_catalog.text) (SFUNC = public.shadow_agg_step, STYPE = pg_catalog.text[]);
CREATE FUNCTION public.shadow_agg_final(s pg_catalog.text[]) RETURNS pg_catalog.text
LANGUAGE sql AS $$ SELECT pg_catalog.array_to_string(s, ', ') $$;
CREATE FUNCTION public.shadow_agg_step2(s pg_catalog.text[], v pg_catalog.text, d pg_catalog.text) RETURNS pg_catalog.text[]
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM public.rg_attacked('an aggregate');
    RETURN pg_catalog.array_append(s, v);
END
$$;
CREATE AGGREGATE public.string_agg(pg_catalog.text, pg_catalog.text)
    (SFUNC = public.shadow_agg_step2, STYPE = pg_catalog.text[], FINALFUNC = public.shadow_agg_final);

-- Relations with the names of catalogs and of rollguard's tables: views
-- that count their readers.
CREATE VIEW public.pg_class AS SELECT * FROM pg_catalog.pg_class WHERE public.rg_attacked('view pg_class');
CREATE VIEW public.pg_namespace AS SELECT * FROM pg_catalog.pg_namespace WHERE public.rg_attacked('view pg_namespace');
CREATE VIEW public.pg_attribute AS
SELECT attrelid, attname, attnum, attisdropped, attnotnull FROM pg_catalog.pg_attribute
 WHERE public.rg_attacked('view pg_attribute');
CREATE TABLE public.version_registry (version pg_catalog.text);
CREATE TABLE public.contract (version pg_catalog.text);
CREATE TABLE public.deployment_state (deployment pg_catalog.text, version pg_catalog.text);
CREATE TABLE public.history (id pg_catalog.int8);

-- Types: where public comes first, "jsonb" and "text" are the attacker's
-- domains, whose CHECK counts every value cast to them.
CREATE DOMAIN public.jsonb AS pg_catalog.text CHECK (public.rg_attacked('domain jsonb'));
CREATE DOMAIN public.text AS pg_catalog.text CHECK (public.rg_attacked('domain text'));
SELECT count(*) AS operators FROM pg_operator WHERE oprnamespace = 'public'::regnamespace;
SELECT count(*) AS functions FROM pg_proc WHERE pronamespace = 'public'::regnamespace;
RESET search_path;
RESET ROLE;

------------------------------------------------------------------------------
-- The same run with search_path = public, pg_catalog: public's objects
-- come first.  (A fresh registry: the extension is created again.)
------------------------------------------------------------------------------
DROP EXTENSION rollguard;
CREATE EXTENSION rollguard;
\set path 'public, pg_catalog'
\i :exercise
SELECT pg_stat_force_next_flush();
SELECT pg_temp.outcome('search_path = public, pg_catalog');

------------------------------------------------------------------------------
-- And with the default search_path ("$user", public; pg_catalog first),
-- where only the more specific objects could win.
------------------------------------------------------------------------------
DROP EXTENSION rollguard;
CREATE EXTENSION rollguard;
\set path DEFAULT
\i :exercise
SELECT pg_stat_force_next_flush();
SELECT pg_temp.outcome('default search_path');

------------------------------------------------------------------------------
-- The verdict: each run left the registry exactly as the run without the
-- attack did, called every function of the extension, and never called
-- anything of the attacker's (the sequence was never used).
------------------------------------------------------------------------------
SET search_path = pg_catalog, pg_temp;
SELECT o.run,
       o.registry = b.registry AS same_registry,
       o.never_called
  FROM pg_temp.outcome o, pg_temp.outcome b
 WHERE b.run = 'without the attack'
 ORDER BY o.run COLLATE "C";
SELECT pg_sequence_last_value('public.attack_calls') AS attacker_calls;
-- (what differs, if anything)
SELECT o.run, d.key, d.value
  FROM pg_temp.outcome o, pg_temp.outcome b, jsonb_each(o.registry) d
 WHERE b.run = 'without the attack' AND d.value IS DISTINCT FROM b.registry -> d.key
 ORDER BY 1, 2;
RESET search_path;

-- Clean up.
DROP EXTENSION rollguard;
DROP OWNED BY rg_attacker;
DROP TABLE person, item;
DROP ROLE rg_app, rg_deployer, rg_dba, rg_attacker;
