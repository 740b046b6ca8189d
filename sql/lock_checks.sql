--
-- lock_checks: the downtime guard, the second family of checks beside the
-- compatibility rules.  A change that breaks no deployed code can still
-- stall it: a table rewrite, an index build, a constraint validated under a
-- strong lock, an ACCESS EXCLUSIVE request queued behind a long-running
-- session.  Each is judged with what the server knows: the table's real
-- size (pg_relation_size, reltuples), whether it was created in this
-- transaction, which constraints are valid, which locks this transaction
-- and other sessions hold, lock_timeout.
--
-- rollguard.lock_checks = off | warn (default) | on; tables smaller than
-- rollguard.lock_checks_min_size (default 10MB) are never flagged.  A
-- refusal has SQLSTATE 55000 (object_not_in_prerequisite_state), where a
-- compatibility refusal has 55006 (object_in_use).  Here the threshold is
-- set low and the tables are loaded and ANALYZEd, so that "big" (3000 rows)
-- is large and "small" (10 rows) is not.
--
CREATE EXTENSION rollguard;
\set VERBOSITY default
\set SHOW_CONTEXT never

-- The defaults: warn, 10 MB.  Only a superuser may change either.
SHOW rollguard.lock_checks;
SHOW rollguard.lock_checks_min_size;
CREATE ROLE rg_app LOGIN;
SET ROLE rg_app;
SET rollguard.lock_checks = off;
SET rollguard.lock_checks_min_size = '1GB';
RESET ROLE;

SET rollguard.lock_checks = on;
SET rollguard.lock_checks_min_size = '64kB';

CREATE TABLE big (id int PRIMARY KEY, n int, label varchar(50), note text);
INSERT INTO big SELECT g, g % 100, 'label ' || g, NULL FROM generate_series(1, 3000) g;
CREATE TABLE small (id int PRIMARY KEY, n int, label varchar(50), note text);
INSERT INTO small SELECT g, g, 'label ' || g, NULL FROM generate_series(1, 10) g;
CREATE TABLE customer (id int PRIMARY KEY);
INSERT INTO customer SELECT g FROM generate_series(0, 99) g;
ANALYZE big, small, customer;
SELECT relname, pg_size_pretty(pg_relation_size(oid)), reltuples
  FROM pg_class WHERE relname IN ('big', 'small') ORDER BY relname;

------------------------------------------------------------------------------
-- CREATE INDEX without CONCURRENTLY blocks writes for the whole build.
------------------------------------------------------------------------------
-- large: refused, and the hint is the statement with CONCURRENTLY
CREATE INDEX big_n ON big (n);
CREATE UNIQUE INDEX /* a comment */ big_label ON public.big (label) WHERE n > 0;
-- small: silent
CREATE INDEX small_n ON small (n);
-- the safe form: silent
CREATE INDEX CONCURRENTLY big_n ON big (n);
-- a table created in this transaction: nobody else can see it, never flagged
BEGIN;
CREATE TABLE fresh AS SELECT * FROM big;
CREATE INDEX fresh_n ON fresh (n);
ALTER TABLE fresh ALTER COLUMN n TYPE bigint;
ALTER TABLE fresh ADD PRIMARY KEY (id);
COMMIT;
-- a temporary table: no other session can use it (nor the system catalogs,
-- nor rollguard's own tables, which the family never looks at)
CREATE TEMP TABLE scratch AS SELECT * FROM big;
ANALYZE scratch;
CREATE INDEX scratch_n ON scratch (n);
-- IF NOT EXISTS of an index that exists builds nothing
CREATE INDEX IF NOT EXISTS big_n ON big (n);

------------------------------------------------------------------------------
-- DROP INDEX and REINDEX without CONCURRENTLY
------------------------------------------------------------------------------
DROP INDEX big_n;
REINDEX INDEX big_n;
REINDEX (VERBOSE false) TABLE big;
-- small, or the safe forms: silent
DROP INDEX small_n;
REINDEX TABLE small;
REINDEX INDEX CONCURRENTLY big_n;
DROP INDEX CONCURRENTLY big_n;

------------------------------------------------------------------------------
-- Table rewrites: judged as PostgreSQL decides whether it rewrites.
------------------------------------------------------------------------------
-- a type change that is not binary-coercible
ALTER TABLE big ALTER COLUMN n TYPE bigint;
-- a USING that only casts the column is the same change (Django writes it)
ALTER TABLE big ALTER COLUMN n TYPE bigint USING n::bigint;
-- an explicit cast, or any other USING expression, rewrites
ALTER TABLE big ALTER COLUMN note TYPE int USING note::int;
ALTER TABLE big ALTER COLUMN n TYPE int USING n + 0;
-- one that does not rewrite: varchar(50) to varchar(100), or to text
ALTER TABLE big ALTER COLUMN label TYPE varchar(100);
ALTER TABLE big ALTER COLUMN label TYPE text;
-- ADD COLUMN with a volatile default, serial, identity, stored generated
ALTER TABLE big ADD COLUMN token float8 DEFAULT random();
ALTER TABLE big ADD COLUMN seq serial;
ALTER TABLE big ADD COLUMN ident bigint GENERATED ALWAYS AS IDENTITY;
ALTER TABLE big ADD COLUMN twice int GENERATED ALWAYS AS (n * 2) STORED;
-- a stable or constant default is stored once, without a rewrite: silent
ALTER TABLE big ADD COLUMN created timestamptz DEFAULT now();
ALTER TABLE big ADD COLUMN flag boolean NOT NULL DEFAULT false;
-- SET UNLOGGED rewrites; VACUUM FULL and CLUSTER rewrite
ALTER TABLE big SET UNLOGGED;
VACUUM FULL big;
CLUSTER big USING big_pkey;
-- small: silent
ALTER TABLE small ALTER COLUMN n TYPE bigint;
VACUUM FULL small;

------------------------------------------------------------------------------
-- Constraints validated under a strong lock
------------------------------------------------------------------------------
-- FOREIGN KEY and CHECK without NOT VALID
ALTER TABLE big ADD CONSTRAINT big_n_fkey FOREIGN KEY (n) REFERENCES customer (id);
ALTER TABLE big ADD FOREIGN KEY (n) REFERENCES customer;
ALTER TABLE big ADD CONSTRAINT big_n_positive CHECK (n >= 0);
-- NOT VALID, then VALIDATE in a transaction of its own: silent
ALTER TABLE big ADD CONSTRAINT big_n_fkey FOREIGN KEY (n) REFERENCES customer (id) NOT VALID;
ALTER TABLE big VALIDATE CONSTRAINT big_n_fkey;
-- VALIDATE in the transaction that added it NOT VALID: the add's lock is
-- still held while every row is checked
BEGIN;
ALTER TABLE big ADD CONSTRAINT big_n_positive CHECK (n >= 0) NOT VALID;
ALTER TABLE big VALIDATE CONSTRAINT big_n_positive;
ROLLBACK;
-- small: silent
ALTER TABLE small ADD CONSTRAINT small_n_positive CHECK (n >= 0);

------------------------------------------------------------------------------
-- SET NOT NULL scans the table, unless a valid CHECK proves the column
-- NOT NULL (PostgreSQL 12 and later then skip the scan)
------------------------------------------------------------------------------
ALTER TABLE big ALTER COLUMN label SET NOT NULL;
-- a NOT VALID check proves nothing yet
ALTER TABLE big ADD CONSTRAINT big_label_not_null CHECK (label IS NOT NULL) NOT VALID;
ALTER TABLE big ALTER COLUMN label SET NOT NULL;
-- validated (in its own transaction): SET NOT NULL is silent
ALTER TABLE big VALIDATE CONSTRAINT big_label_not_null;
ALTER TABLE big ALTER COLUMN label SET NOT NULL;
ALTER TABLE big DROP CONSTRAINT big_label_not_null;
-- small: silent
ALTER TABLE small ALTER COLUMN label SET NOT NULL;

------------------------------------------------------------------------------
-- ADD PRIMARY KEY / UNIQUE builds its index under ACCESS EXCLUSIVE
------------------------------------------------------------------------------
ALTER TABLE big ADD CONSTRAINT big_label_key UNIQUE (label);
ALTER TABLE big ADD UNIQUE (id, label);
-- the safe form: the index built concurrently, then attached
CREATE UNIQUE INDEX CONCURRENTLY big_label_key ON big (label);
ALTER TABLE big ADD CONSTRAINT big_label_key UNIQUE USING INDEX big_label_key;
ALTER TABLE small ADD UNIQUE (label);

------------------------------------------------------------------------------
-- DETACH PARTITION without CONCURRENTLY locks the whole partitioned table
------------------------------------------------------------------------------
CREATE TABLE measure (at int, v int) PARTITION BY RANGE (at);
CREATE TABLE measure_1 PARTITION OF measure FOR VALUES FROM (0) TO (2000);
CREATE TABLE measure_2 PARTITION OF measure FOR VALUES FROM (2000) TO (4000);
INSERT INTO measure SELECT g, g FROM generate_series(0, 3999) g;
ANALYZE measure;
ALTER TABLE measure DETACH PARTITION measure_2;
-- and an index on it: built partition by partition
CREATE INDEX measure_v ON measure (v);
ALTER TABLE measure DETACH PARTITION measure_2 CONCURRENTLY;
-- with a DEFAULT partition there is no concurrent form: not flagged
CREATE TABLE measure_rest PARTITION OF measure DEFAULT;
ALTER TABLE measure DETACH PARTITION measure_1;
ALTER TABLE measure ATTACH PARTITION measure_1 FOR VALUES FROM (0) TO (2000);

------------------------------------------------------------------------------
-- ACCESS EXCLUSIVE without lock_timeout on a table another session holds a
-- lock on: the request would wait as long as that session runs, and every
-- query on the table after it would queue behind it.  (Small tables too:
-- the wait does not depend on the size.)  The other session here is a
-- prepared transaction.
------------------------------------------------------------------------------
BEGIN;
LOCK TABLE small IN ACCESS SHARE MODE;
PREPARE TRANSACTION 'reader';
ALTER TABLE small ADD COLUMN extra int;
-- with lock_timeout the guard lets it try; PostgreSQL gives up in time
SET lock_timeout = '10ms';
ALTER TABLE small ADD COLUMN extra int;
RESET lock_timeout;
-- a lock that does not conflict with what is held: CREATE INDEX (SHARE)
CREATE INDEX small_label ON small (label);
ROLLBACK PREPARED 'reader';
-- nobody holds a lock: silent
ALTER TABLE small ADD COLUMN extra int;

------------------------------------------------------------------------------
-- rollguard.check() reports the family too: a last column, "family", says
-- 'compatibility' (would break deployed code) or 'downtime' (would stall
-- it); downtime rows have no deployment or version.
------------------------------------------------------------------------------
SELECT rollguard.register_version('1', '{"relations": {"public.big": {"id": {}, "n": {}, "label": {"nullable": false}, "note": {}}}}');
SELECT rollguard.deploy('web', '1');
SELECT family, change, relation, "column", deployment, version, reason
  FROM rollguard.check($$
    ALTER TABLE big DROP COLUMN note;
    CREATE INDEX big_n ON big (n);
    ALTER TABLE big ALTER COLUMN n TYPE bigint;
    ALTER TABLE small ALTER COLUMN n TYPE int;
  $$);
-- the script is one transaction: a table it creates is new; a NOT VALID add
-- then VALIDATE in it holds the add's lock; a SET lock_timeout in it counts
SELECT family, change, relation, statement
  FROM rollguard.check($$
    CREATE TABLE audit (id int, at timestamptz);
    CREATE INDEX audit_at ON audit (at);
    ALTER TABLE big ADD CONSTRAINT big_id_positive CHECK (id > 0) NOT VALID;
    ALTER TABLE big VALIDATE CONSTRAINT big_id_positive;
  $$);
BEGIN;
LOCK TABLE small IN ACCESS SHARE MODE;
PREPARE TRANSACTION 'reader';
SELECT family, change, relation, reason FROM rollguard.check('ALTER TABLE small ADD COLUMN more int');
SELECT family, change, relation, reason FROM rollguard.check($$
    SET lock_timeout = '5s';
    ALTER TABLE small ADD COLUMN more int;
  $$);
ROLLBACK PREPARED 'reader';
-- off: check() reports no downtime rows either
SET rollguard.lock_checks = off;
SELECT family, change FROM rollguard.check('CREATE INDEX big_n ON big (n)');
SET rollguard.lock_checks = on;
SELECT rollguard.remove_deployment('web');

------------------------------------------------------------------------------
-- warn: each finding is a WARNING, the statement goes through, and it is
-- appended to rollguard.history; off: nothing is looked at.
------------------------------------------------------------------------------
SET rollguard.lock_checks = warn;
CREATE INDEX big_n ON big (n);
SELECT action, relation, "column", detail->>'check' AS check, detail->>'statement' AS statement,
       detail->>'size_bytes' AS size_bytes, detail->>'rows' AS rows
  FROM rollguard.history WHERE action LIKE 'let through%' ORDER BY id;
DROP INDEX big_n;
SET rollguard.lock_checks = off;
CREATE INDEX big_n ON big (n);
DROP INDEX big_n;
SELECT count(*) FROM rollguard.history WHERE action LIKE 'let through%';

------------------------------------------------------------------------------
-- An administrator's override on the relation lets the downtime checks on it
-- through for the transaction, with a NOTICE, recorded in rollguard.history
-- (a column's override covers the findings about that column).
------------------------------------------------------------------------------
SET rollguard.lock_checks = on;
BEGIN;
SELECT rollguard.override('big', NULL, 'maintenance window: the application is down');
CREATE INDEX big_n ON big (n);
COMMIT;
BEGIN;
SELECT rollguard.override('big', 'n', 'n is rewritten tonight, in a maintenance window');
ALTER TABLE big ALTER COLUMN n TYPE bigint;
COMMIT;
-- the override is gone with its transaction
DROP INDEX big_n;
SELECT action, relation, "column", reason, detail->>'check' AS check, detail->>'family' AS family
  FROM rollguard.history WHERE action LIKE 'override%' ORDER BY id;

-- Clean up.
DROP TABLE big, small, customer, fresh, measure, measure_2;
DROP ROLE rg_app;
DROP EXTENSION rollguard;
