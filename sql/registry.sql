--
-- registry: rollguard.register_version(version, manifest DEFAULT NULL)
-- declares a build of the application and its contract.  With a manifest
-- the contract is declared (the columns the code uses); without one it is
-- inferred from the schema when the version first goes live.  A build does
-- not change: registering again is idempotent for the same manifest and an
-- error for a different one.
--
CREATE EXTENSION rollguard;
\set VERBOSITY default
\set SHOW_CONTEXT never

CREATE TABLE person (id serial PRIMARY KEY, name text NOT NULL, weight numeric);
CREATE TABLE site_settings (key text PRIMARY KEY, value text);

-- Without a manifest: an inferred contract, not taken yet (no columns until
-- the version goes live).  Registering it again, with or without an
-- explicit NULL manifest, changes nothing.
SELECT rollguard.register_version('41');
SELECT rollguard.register_version('41');
SELECT rollguard.register_version('41', NULL);
SELECT version, contract, registered_at IS NOT NULL AS registered,
       registered_by = current_user AS by_me,
       contract_taken_at IS NULL AS not_taken_yet, columns, live_in
  FROM rollguard.versions;

-- With a manifest (the example of the SPEC): a declared contract.  Missing
-- properties take their defaults (writes true, nullable true), and the bare
-- name site_settings is stored schema-qualified.
SELECT rollguard.register_version('42', '{"relations": {
    "public.person": {"id":     {"writes": false, "nullable": false},
                      "name":   {"nullable": false},
                      "weight": {"nullable": true}},
    "site_settings": {"key": {}, "value": {}}}}');
SELECT version, contract, contract_taken_at IS NULL AS no_taking, columns, live_in
  FROM rollguard.versions ORDER BY rollguard.version_sort_key(version);
SELECT nspname, relname, attname, writes, nullable
  FROM rollguard.effective_contract WHERE version = '42'
 ORDER BY nspname, relname, attname;

-- Idempotent: the same manifest again, in another key order, with the
-- defaults spelled out, or naming public.person bare and site_settings
-- qualified, is the same contract: no error, nothing changes.
SELECT rollguard.register_version('42', '{"relations": {
    "public.person": {"id":     {"writes": false, "nullable": false},
                      "name":   {"nullable": false},
                      "weight": {"nullable": true}},
    "site_settings": {"key": {}, "value": {}}}}');
SELECT rollguard.register_version('42', '{"relations": {
    "site_settings": {"value": {}, "key": {}},
    "public.person": {"weight": {"nullable": true},
                      "name":   {"nullable": false},
                      "id":     {"nullable": false, "writes": false}}}}');
SELECT rollguard.register_version('42', '{"relations": {
    "person":               {"id":     {"writes": false, "nullable": false},
                             "name":   {"writes": true,  "nullable": false},
                             "weight": {"writes": true,  "nullable": true}},
    "public.site_settings": {"key":    {"writes": true,  "nullable": true},
                             "value":  {"writes": true,  "nullable": true}}}}');
SELECT version, contract, columns FROM rollguard.versions
 ORDER BY rollguard.version_sort_key(version);

-- A different manifest for a known version is refused: the DETAIL names
-- each column that differs.  The registered contract is unchanged.
SELECT rollguard.register_version('42', '{"relations": {
    "public.person": {"id":     {"writes": false, "nullable": false},
                      "name":   {"nullable": false}},
    "site_settings": {"key": {}, "value": {}}}}');
\echo SQLSTATE :SQLSTATE
SELECT rollguard.register_version('42', '{"relations": {
    "public.person": {"id":     {"writes": false, "nullable": false},
                      "name":   {"nullable": false},
                      "weight": {"nullable": true},
                      "email":  {}},
    "site_settings": {"key": {}}}}');
\echo SQLSTATE :SQLSTATE
SELECT version, contract, columns FROM rollguard.versions
 ORDER BY rollguard.version_sort_key(version);

-- A version registered without a manifest cannot get one later, and a
-- version registered with one cannot be registered again without it.
SELECT rollguard.register_version('41', '{"relations": {"person": {"id": {}}}}');
\echo SQLSTATE :SQLSTATE
SELECT rollguard.register_version('42');
\echo SQLSTATE :SQLSTATE
SELECT version, contract, columns FROM rollguard.versions
 ORDER BY rollguard.version_sort_key(version);

-- The views.  rollguard.versions: every registered version, its kind of
-- contract, how many columns it uses and where it is live (deployment names
-- in version order, mirror-2 before mirror-10).  rollguard.deployments: one
-- row per live (deployment, version).  Deploying 41 takes its inferred
-- contract: every column of every user relation, 5 here.
SELECT rollguard.deploy('original', '41');
SELECT rollguard.deploy('mirror-10', '42');
SELECT rollguard.deploy('mirror-2', '42');
SELECT version, contract, contract_taken_at IS NOT NULL AS taken, columns, live_in
  FROM rollguard.versions ORDER BY rollguard.version_sort_key(version);
SELECT deployment, version, state, since IS NOT NULL AS has_since, declared_contract
  FROM rollguard.deployments ORDER BY rollguard.version_sort_key(deployment);

-- Bare relation names are resolved through the registering session's
-- search_path: an existing relation where it is found (invoice in app,
-- person in public), a relation that does not exist yet (report) in the
-- first existing schema.  What is stored is always schema-qualified.
CREATE SCHEMA app;
CREATE TABLE app.invoice (id int PRIMARY KEY, total numeric);
SET search_path = app, public;
SELECT rollguard.register_version('43', '{"relations": {
    "invoice": {"id": {}, "total": {}},
    "person":  {"id": {}},
    "report":  {"id": {}}}}');
RESET search_path;
SELECT nspname, relname, attname
  FROM rollguard.effective_contract WHERE version = '43'
 ORDER BY nspname, relname, attname;

-- So the same text registered from another search_path is another contract.
SELECT rollguard.register_version('43', '{"relations": {
    "invoice": {"id": {}, "total": {}},
    "person":  {"id": {}},
    "report":  {"id": {}}}}');
\echo SQLSTATE :SQLSTATE
SELECT rollguard.register_version('43', '{"relations": {
    "app.invoice": {"id": {}, "total": {}},
    "person":      {"id": {}},
    "app.report":  {"id": {}}}}');

-- A bare name with no existing schema in search_path cannot be resolved.
SET search_path = no_such_schema;
SELECT rollguard.register_version('44', '{"relations": {"person": {"id": {}}}}');
\echo SQLSTATE :SQLSTATE
RESET search_path;
SELECT count(*) AS registered_44 FROM rollguard.versions WHERE version = '44';

-- Names are literal catalog names, case-sensitive and never quoted:
-- public.Person is the table created as "Person", a different table from
-- public.person, and its column "Id" is Id.
CREATE TABLE public."Person" ("Id" int PRIMARY KEY, nickname text);
SELECT rollguard.register_version('45', '{"relations": {
    "public.Person": {"Id": {}, "nickname": {}},
    "public.person": {"id": {"writes": false}}}}');
SELECT nspname, relname, attname
  FROM rollguard.effective_contract WHERE version = '45'
 ORDER BY nspname, relname COLLATE "C", attname COLLATE "C";
SELECT rollguard.deploy('site-3', '45');
ALTER TABLE "Person" DROP COLUMN "Id";
\echo SQLSTATE :SQLSTATE

-- Quotes in a manifest name are part of the name: public."Person" names a
-- relation whose name has quote characters, not the table "Person".  Once
-- site-3 runs version 46 instead of 45, nothing uses "Person"."Id" and the
-- drop goes through.
SELECT rollguard.register_version('46', '{"relations": {"public.\"Person\"": {"Id": {}}}}');
SELECT nspname, relname, attname
  FROM rollguard.effective_contract WHERE version = '46';
SELECT rollguard.deploy('site-3', '46');
ALTER TABLE "Person" DROP COLUMN "Id";

SELECT version, contract, columns, live_in
  FROM rollguard.versions ORDER BY rollguard.version_sort_key(version);

DROP EXTENSION rollguard;
DROP TABLE person, site_settings, "Person";
DROP SCHEMA app CASCADE;
