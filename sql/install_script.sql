--
-- install_script: CREATE EXTENSION rollguard installs the current version
-- from its full script (rollguard--1.7.sql); an installation of 1.0 updated
-- through every update script ends in the same catalog.  Compared: every
-- function (signature, language, body, volatility, strictness, security,
-- settings, privileges, comment), table, view, index and sequence (columns
-- in order, types, defaults, NOT NULL, options, privileges, comments, view
-- definitions), constraint, trigger (and whether it is enabled), event
-- trigger, the tables pg_dump keeps, and the roles the scripts create.
--
\set VERBOSITY default

-- A description of everything the extension is made of, one row per fact
-- (its body names the schema the extension creates: not checked now).
SET check_function_bodies = off;
CREATE FUNCTION rollguard_catalog()
RETURNS TABLE (kind text, name text, fact text)
LANGUAGE sql STABLE
AS $$
    SELECT 'function', p.oid::regprocedure::text,
           concat_ws(' | ', l.lanname, p.prokind, p.provolatile, p.proisstrict,
                     p.prosecdef, p.proparallel, p.proretset,
                     pg_catalog.format_type(p.prorettype, NULL),
                     p.proconfig::text, p.probin, p.prosrc, p.proacl::text,
                     obj_description(p.oid, 'pg_proc'))
      FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
     WHERE p.pronamespace = 'rollguard'::regnamespace
    UNION ALL
    SELECT 'relation', c.oid::regclass::text,
           concat_ws(' | ', c.relkind, c.reloptions::text, c.relacl::text,
                     c.relpersistence, obj_description(c.oid, 'pg_class'),
                     CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END,
                     CASE WHEN c.relkind = 'i' THEN pg_get_indexdef(c.oid) END)
      FROM pg_class c
     WHERE c.relnamespace = 'rollguard'::regnamespace
    UNION ALL
    SELECT 'column', format('%s #%s', a.attrelid::regclass,
                            row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum)),
           concat_ws(' | ', a.attname, format_type(a.atttypid, a.atttypmod),
                     a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attidentity,
                     a.attgenerated, a.attacl::text, col_description(a.attrelid, a.attnum))
      FROM pg_attribute a
      JOIN pg_class c ON c.oid = a.attrelid
      LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
     WHERE c.relnamespace = 'rollguard'::regnamespace
       AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT 'constraint', format('%s %s', k.conrelid::regclass, k.conname),
           pg_get_constraintdef(k.oid)
      FROM pg_constraint k
     WHERE k.connamespace = 'rollguard'::regnamespace
    UNION ALL
    SELECT 'trigger', format('%s %s', t.tgrelid::regclass, t.tgname),
           concat_ws(' | ', pg_get_triggerdef(t.oid), t.tgenabled)
      FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
     WHERE c.relnamespace = 'rollguard'::regnamespace AND NOT t.tgisinternal
    UNION ALL
    SELECT 'type', t.oid::regtype::text, concat_ws(' | ', t.typtype, t.typacl::text)
      FROM pg_type t
     WHERE t.typnamespace = 'rollguard'::regnamespace AND t.typtype NOT IN ('c', 'b')
    UNION ALL
    SELECT 'dumped table', cfg::regclass::text, coalesce(e.extcondition[i], '')
      FROM pg_extension e, unnest(e.extconfig) WITH ORDINALITY AS u(cfg, i)
     WHERE e.extname = 'rollguard'
    UNION ALL
    SELECT 'schema', n.nspname, concat_ws(' | ', n.nspacl::text, obj_description(n.oid, 'pg_namespace'))
      FROM pg_namespace n WHERE n.nspname = 'rollguard'
    UNION ALL
    SELECT 'role', r.rolname,
           concat_ws(' | ', r.rolcanlogin, r.rolsuper,
                     (SELECT string_agg(g.rolname, ', ' ORDER BY g.rolname)
                        FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
                       WHERE m.member = r.oid),
                     shobj_description(r.oid, 'pg_authid'))
      FROM pg_roles r WHERE r.rolname LIKE 'rollguard\_%'
    UNION ALL
    SELECT 'event trigger', t.evtname,
           concat_ws(' | ', t.evtevent, t.evtfoid::regprocedure::text, t.evtenabled, t.evttags::text)
      FROM pg_event_trigger t
      JOIN pg_depend d ON d.classid = 'pg_event_trigger'::regclass AND d.objid = t.oid
                      AND d.deptype = 'e'
      JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'rollguard'
$$;
RESET check_function_bodies;

-- Installed from scratch: the full script of the current version.
CREATE EXTENSION rollguard;
SELECT extversion FROM pg_extension WHERE extname = 'rollguard';
CREATE TEMP TABLE fresh AS SELECT * FROM rollguard_catalog();
DROP EXTENSION rollguard;

-- Installed as 1.0, and updated through every update script.
CREATE EXTENSION rollguard VERSION '1.0';
ALTER EXTENSION rollguard UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'rollguard';
CREATE TEMP TABLE updated AS SELECT * FROM rollguard_catalog();

-- What there is to compare ...
SELECT kind, count(*) FROM fresh GROUP BY kind ORDER BY kind;
-- ... and the differences: none either way.
(SELECT 'only fresh' AS "where", * FROM fresh EXCEPT SELECT 'only fresh', * FROM updated)
UNION ALL
(SELECT 'only updated', * FROM updated EXCEPT SELECT 'only updated', * FROM fresh)
ORDER BY 2, 3, 1;

DROP EXTENSION rollguard;
DROP FUNCTION rollguard_catalog();
