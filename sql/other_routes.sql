--
-- other_routes: relations moved, replaced or taken out of a table by
-- statements other than RENAME, SET SCHEMA and DROP, judged like the direct
-- statement.
--
--   ALTER EXTENSION e SET SCHEMA s moves every table the extension owns:
--   each is judged as its own SET SCHEMA (and recorded for deploy's
--   forward check).
--   CREATE RULE "_RETURN" AS ON SELECT TO t ... turns table t into a view
--   (PostgreSQL 15): judged like dropping t.
--   DETACH PARTITION, and DROP TABLE of a partition, when rows that only
--   that partition takes would have nowhere to go (it is the DEFAULT
--   partition, or a hash partition): refused while a live version inserts
--   into the partitioned table.  A range or list partition that is not the
--   default (what retention jobs drop) is not judged.
--
CREATE EXTENSION rollguard;
\set VERBOSITY default
\set SHOW_CONTEXT never

------------------------------------------------------------------------------
-- ALTER EXTENSION ... SET SCHEMA
------------------------------------------------------------------------------
CREATE SCHEMA lookup;
CREATE SCHEMA lookup_v2;
CREATE EXTENSION citext SCHEMA lookup;
CREATE TABLE lookup.country (code lookup.citext PRIMARY KEY, name text);
CREATE TABLE lookup.unused (id integer);
ALTER EXTENSION citext ADD TABLE lookup.country;
ALTER EXTENSION citext ADD TABLE lookup.unused;
SELECT rollguard.register_version('1.0', '{"relations": {"lookup.country": {"code": {}, "name": {}}}}');
SELECT rollguard.deploy('original', '1.0');
-- Refused: it would move lookup.country, which version 1.0 uses.
ALTER EXTENSION citext SET SCHEMA lookup_v2;
SELECT relname, relnamespace::regnamespace FROM pg_class
 WHERE relname IN ('country', 'unused') ORDER BY relname;
-- The dry run says the same.
SELECT change, relation, deployment FROM rollguard.check('ALTER EXTENSION citext SET SCHEMA lookup_v2');
-- Allowed once no live version uses what it owns; the move is recorded for
-- the forward check: deploying 1.0 again is refused.
SELECT rollguard.register_version('1.1', '{"relations": {"public.other": {"id": {}}}}');
SELECT rollguard.deploy('original', '1.1');
ALTER EXTENSION citext SET SCHEMA lookup_v2;
SELECT relname, relnamespace::regnamespace FROM pg_class
 WHERE relname IN ('country', 'unused') ORDER BY relname;
SELECT rollguard.deploy('original', '1.0');

------------------------------------------------------------------------------
-- CREATE RULE "_RETURN": a table becomes a view
------------------------------------------------------------------------------
CREATE TABLE legacy_person (id integer, name text);
CREATE TABLE person (id integer, name text);
SELECT rollguard.register_version('2.0', '{"relations": {"public.legacy_person": {"id": {}, "name": {}}}}');
SELECT rollguard.deploy('original', '2.0');
CREATE RULE "_RETURN" AS ON SELECT TO legacy_person DO INSTEAD SELECT id, name FROM person;
SELECT relkind FROM pg_class WHERE relname = 'legacy_person';
-- Another rule on it is no replacement.
CREATE RULE keep_log AS ON DELETE TO legacy_person DO ALSO NOTHING;
DROP RULE keep_log ON legacy_person;
-- No live version uses it: allowed.
SELECT rollguard.deploy('original', '1.1');
CREATE RULE "_RETURN" AS ON SELECT TO legacy_person DO INSTEAD SELECT id, name FROM person;
SELECT relkind FROM pg_class WHERE relname = 'legacy_person';

------------------------------------------------------------------------------
-- Partitions leaving their table
------------------------------------------------------------------------------
CREATE TABLE reading (at date NOT NULL, value numeric) PARTITION BY RANGE (at);
CREATE TABLE reading_2025 PARTITION OF reading FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE reading_2026 PARTITION OF reading FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE reading_other PARTITION OF reading DEFAULT;
CREATE TABLE session_log (id integer NOT NULL, line text) PARTITION BY HASH (id);
CREATE TABLE session_log_0 PARTITION OF session_log FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE session_log_1 PARTITION OF session_log FOR VALUES WITH (MODULUS 2, REMAINDER 1);
SELECT rollguard.register_version('3.0', '{"relations": {
    "public.reading":     {"at": {}, "value": {}},
    "public.session_log": {"id": {}, "line": {}}}}');
SELECT rollguard.deploy('original', '3.0');
-- Refused: the DEFAULT partition, and a hash partition, take rows nothing
-- else would.
ALTER TABLE reading DETACH PARTITION reading_other;
DROP TABLE reading_other;
ALTER TABLE session_log DETACH PARTITION session_log_1;
DROP TABLE session_log_0;
-- Allowed: last year's range partition (rows go to the DEFAULT partition
-- anyway), detached and dropped.
ALTER TABLE reading DETACH PARTITION reading_2025;
DROP TABLE reading_2025;
DROP TABLE reading_2026;
SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent IN ('reading'::regclass, 'session_log'::regclass)
 ORDER BY 1::text;
-- A version that only reads the table: allowed.
SELECT rollguard.register_version('3.1', '{"relations": {
    "public.reading":     {"at": {"writes": false}, "value": {"writes": false}},
    "public.session_log": {"id": {"writes": false}, "line": {"writes": false}}}}');
SELECT rollguard.deploy('original', '3.1');
ALTER TABLE session_log DETACH PARTITION session_log_1;
DROP TABLE reading_other;

-- Clean up.
SELECT rollguard.remove_deployment('original');
DROP VIEW legacy_person;
DROP TABLE reading, session_log, session_log_1, person;
DROP EXTENSION citext CASCADE;
DROP SCHEMA lookup, lookup_v2;
DROP EXTENSION rollguard;
