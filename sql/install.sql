--
-- install: the library is preloaded (test/rollguard.conf); until CREATE
-- EXTENSION runs in a database, rollguard does nothing there.
--

-- Without the extension, every statement behaves as in stock PostgreSQL.
CREATE TABLE before_install (id int PRIMARY KEY, note text);
ALTER TABLE before_install ALTER COLUMN note SET NOT NULL;
ALTER TABLE before_install DROP COLUMN note;
DROP TABLE before_install;

-- The setting exists as soon as the library is loaded.
SHOW rollguard.enforce;

CREATE EXTENSION rollguard;

-- Fixed schema, not relocatable.
SELECT extname, extversion, extrelocatable, extnamespace::regnamespace
  FROM pg_extension WHERE extname = 'rollguard';

-- The public interface.
SELECT p.oid::regprocedure AS function
  FROM pg_proc p
 WHERE p.pronamespace = 'rollguard'::regnamespace AND p.proname !~ '^_'
 ORDER BY p.oid::regprocedure::text COLLATE "C";
SELECT c.relname AS view FROM pg_class c
 WHERE c.relnamespace = 'rollguard'::regnamespace AND c.relkind = 'v'
   AND c.relname IN ('deployments', 'versions', 'declarations')
 ORDER BY 1;

-- The registry tables are kept by pg_dump.
SELECT c::regclass AS dumped
  FROM pg_extension, unnest(extconfig) c
 WHERE extname = 'rollguard' ORDER BY c::regclass::text COLLATE "C";

-- Installed but nothing registered: nothing is ever blocked.
CREATE TABLE t (id int PRIMARY KEY, a text, b int);
ALTER TABLE t ALTER COLUMN a SET NOT NULL, ALTER COLUMN b TYPE smallint;
ALTER TABLE t RENAME COLUMN a TO aa;
ALTER TABLE t DROP COLUMN aa;
ALTER TABLE t ADD COLUMN c int NOT NULL;
ALTER TABLE t RENAME TO t2;
DROP TABLE t2;

-- Nothing registered, so nothing to report.
SELECT * FROM rollguard.deployments;
SELECT * FROM rollguard.versions;

-- The extension cannot be created twice, and can be dropped and recreated.
CREATE EXTENSION rollguard;
DROP EXTENSION rollguard;
CREATE EXTENSION rollguard;
DROP EXTENSION rollguard;
