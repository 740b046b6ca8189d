--
-- manifest: what register_version accepts as a manifest, and how it
-- refuses a malformed one.  Every mistake is an error (SQLSTATE 22023
-- invalid_parameter_value unless said otherwise) whose message names the
-- offending place as a JSON path ($, $.relations."schema.table"."column"),
-- with a DETAIL saying what is wrong; nothing is registered.
--
-- The form:  {"relations": {"schema.table": {"column": {"writes": bool,
--                                                      "nullable": bool}}}}
--
CREATE EXTENSION rollguard;
\set VERBOSITY default
\set SHOW_CONTEXT never

CREATE TABLE person (id int PRIMARY KEY, name text NOT NULL);

-- How the errors look to a deploy script.
SELECT rollguard.register_version('1.0', '[]');
\echo SQLSTATE :SQLSTATE
SELECT rollguard.register_version('1.0', '{"relations": {"person": {}}}');
\echo SQLSTATE :SQLSTATE

-- The remaining cases in tables: try_register() calls register_version('1.0',
-- manifest) and returns the SQLSTATE, message and DETAIL of its error.
CREATE FUNCTION pg_temp.try_register(manifest jsonb, version text DEFAULT '1.0')
RETURNS TABLE (state text, message text, detail text)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM rollguard.register_version(version, manifest);
    state := '00000';
    message := 'registered';
    RETURN NEXT;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE,
                            message = MESSAGE_TEXT,
                            detail = PG_EXCEPTION_DETAIL;
    RETURN NEXT;
END
$$;

-- The manifest must be a JSON object: not an array, string, number, or the
-- JSON literal null.
SELECT m AS manifest, r.*
  FROM (VALUES ('[]'::jsonb), ('"relations"'), ('42'), ('null')) AS t(m),
       pg_temp.try_register(m) AS r;

-- The version label is checked too: a SQL NULL label is refused (22004).
SELECT r.* FROM pg_temp.try_register('{"relations": {"person": {"id": {}}}}', NULL) AS r;

-- The top level has exactly one key, "relations", holding an object.  A
-- misspelt key is reported as unknown rather than as "relations" missing.
SELECT m AS manifest, r.*
  FROM (VALUES ('{}'::jsonb),
               ('{"relations": {"person": {"id": {}}}, "version": "1.0"}'),
               ('{"relation": {"person": {"id": {}}}}'),
               ('{"relations": []}'),
               ('{"relations": "person"}'),
               ('{"relations": null}')) AS t(m),
       pg_temp.try_register(m) AS r;

-- Each relation maps column names to objects, and lists at least one
-- column.
SELECT m AS manifest, r.*
  FROM (VALUES ('{"relations": {"person": []}}'::jsonb),
               ('{"relations": {"person": ["id", "name"]}}'),
               ('{"relations": {"person": "id"}}'),
               ('{"relations": {"person": true}}'),
               ('{"relations": {"person": {}}}')) AS t(m),
       pg_temp.try_register(m) AS r;

-- A relation name is "schema.name" or "name"; neither part may be empty.
-- The path quotes the key as JSON does (\" for a quote in it).
SELECT m AS manifest, r.*
  FROM (VALUES ('{"relations": {"": {"id": {}}}}'::jsonb),
               ('{"relations": {".person": {"id": {}}}}'),
               ('{"relations": {"public.": {"id": {}}}}'),
               ('{"relations": {".": {"id": {}}}}'),
               ('{"relations": {"public.\"x\"": []}}')) AS t(m),
       pg_temp.try_register(m) AS r;

-- Names longer than PostgreSQL's 63-byte limit can never match a catalog
-- name (42622 name_too_long).  The limit is in bytes: 32 two-byte
-- characters are too many.
SELECT length(k) AS chars, octet_length(k) AS bytes, r.*
  FROM (VALUES ('public.' || repeat('r', 64)),
               (repeat('s', 64) || '.person')) AS t(k),
       pg_temp.try_register(jsonb_build_object('relations',
           jsonb_build_object(k, '{"id": {}}'::jsonb))) AS r;
SELECT length(k) AS chars, octet_length(k) AS bytes, r.*
  FROM (VALUES (repeat('c', 64)), (repeat('é', 32))) AS t(k),
       pg_temp.try_register(jsonb_build_object('relations',
           jsonb_build_object('public.person', jsonb_build_object(k, '{}'::jsonb)))) AS r;

-- A column name must not be empty, and must map to an object.
SELECT m AS manifest, r.*
  FROM (VALUES ('{"relations": {"person": {"": {}}}}'::jsonb),
               ('{"relations": {"person": {"id": true}}}'),
               ('{"relations": {"person": {"id": []}}}'),
               ('{"relations": {"person": {"id": "x"}}}'),
               ('{"relations": {"person": {"id": 1}}}'),
               ('{"relations": {"person": {"id": null}}}')) AS t(m),
       pg_temp.try_register(m) AS r;

-- The only column properties are "writes" and "nullable" (case-sensitive),
-- and both are JSON booleans: not strings, numbers or null.
SELECT m AS manifest, r.*
  FROM (VALUES ('{"relations": {"person": {"id": {"type": "integer"}}}}'::jsonb),
               ('{"relations": {"person": {"id": {"Writes": false}}}}'),
               ('{"relations": {"person": {"id": {"writes": false, "not_null": true}}}}'),
               ('{"relations": {"person": {"id": {"writes": "yes"}}}}'),
               ('{"relations": {"person": {"id": {"writes": "false"}}}}'),
               ('{"relations": {"person": {"id": {"nullable": 1}}}}'),
               ('{"relations": {"person": {"id": {"nullable": null}}}}')) AS t(m),
       pg_temp.try_register(m) AS r;

-- A column listed twice, under two names of the same relation (bare and
-- schema-qualified), is refused (42701 duplicate_column).
SELECT m AS manifest, r.*
  FROM (VALUES ('{"relations": {"person": {"id": {}}, "public.person": {"id": {"writes": false}}}}'::jsonb),
               ('{"relations": {"person": {"id": {}, "name": {}}, "public.person": {"name": {}}}}')) AS t(m),
       pg_temp.try_register(m) AS r;

-- None of the attempts above registered anything.
SELECT count(*) AS versions FROM rollguard.versions;
SELECT count(*) AS contract_rows FROM rollguard.effective_contract;

-- Valid manifests.  Names are literal: a name is split at its FIRST dot,
-- so the relation part may hold dots ("public.a.b" is relation "a.b" in
-- schema public), and quotes and spaces are ordinary characters.  The
-- longest names (63 bytes) are accepted.  The same relation may appear
-- under two names when they list different columns.
SELECT r.* FROM pg_temp.try_register('{"relations": {
    "public.a.b":      {"c.d": {}},
    "public.my table": {"a \"quoted\" column": {}},
    "My Schema.T":     {"Id": {"writes": false}},
    "person":          {"id": {"writes": false, "nullable": false}},
    "public.person":   {"name": {"nullable": false}}}}', '2.0') AS r;
SELECT r.* FROM pg_temp.try_register(jsonb_build_object('relations',
    jsonb_build_object(repeat('s', 63) || '.' || repeat('r', 63),
                       jsonb_build_object(repeat('c', 63), '{}'::jsonb))), '3.0') AS r;
SELECT nspname, relname, attname, writes, nullable
  FROM rollguard.effective_contract WHERE version = '2.0'
 ORDER BY nspname COLLATE "C", relname COLLATE "C", attname COLLATE "C";
SELECT octet_length(nspname) AS schema_bytes, octet_length(relname) AS relation_bytes,
       octet_length(attname) AS column_bytes
  FROM rollguard.effective_contract WHERE version = '3.0';

-- Registering the same manifest again matches what was stored, names with
-- dots included.
SELECT r.* FROM pg_temp.try_register('{"relations": {
    "public.a.b":      {"c.d": {}},
    "public.my table": {"a \"quoted\" column": {}},
    "My Schema.T":     {"Id": {"writes": false}},
    "person":          {"id": {"writes": false, "nullable": false}},
    "public.person":   {"name": {"nullable": false}}}}', '2.0') AS r;

-- A manifest as the generators (contrib/) write it -- every relation
-- "schema.name", both properties of every column -- is already in the form
-- register_version stores, and is stored as given; any other is normalized
-- first (names qualified, left-out properties spelled out as true).  Both
-- are checked alike: the errors above.
SELECT rollguard.register_version('5.0', '{"relations": {"public.person": {
    "id": {"writes": false, "nullable": false}, "name": {"writes": true, "nullable": true}}}}');
SELECT manifest = '{"relations": {"public.person": {
    "id": {"writes": false, "nullable": false}, "name": {"writes": true, "nullable": true}}}}' AS stored_as_given
  FROM rollguard.version_registry WHERE version = '5.0';
SELECT rollguard.register_version('6.0', '{"relations": {"person": {"id": {"writes": false}, "name": {}}}}');
SELECT manifest FROM rollguard.version_registry WHERE version = '6.0';
SELECT version, relname, attname, writes, nullable FROM rollguard.effective_contract
 WHERE version IN ('5.0', '6.0') ORDER BY version, attname;
-- the same build registered again, its manifest written the other way
SELECT rollguard.register_version('5.0', '{"relations": {"person": {"id": {"writes": false, "nullable": false}, "name": {}}}}');
SELECT rollguard.register_version('6.0', '{"relations": {"public.person": {
    "id": {"writes": false, "nullable": true}, "name": {"writes": true, "nullable": true}}}}');

-- A SQL NULL manifest is not malformed: it registers a version with an
-- inferred contract.
SELECT r.* FROM pg_temp.try_register(NULL, '4.0') AS r;
SELECT version, contract, columns FROM rollguard.versions
 ORDER BY rollguard.version_sort_key(version);

DROP EXTENSION rollguard;
DROP TABLE person;
