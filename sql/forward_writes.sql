--
-- forward_writes: the forward check for writes (1.6).  deploy() and
-- begin_rollout() refuse a version whose inserts would fail on a NOT NULL
-- column, as they refuse one whose code uses columns that no longer exist:
--
--   * it inserts into a relation (writes one of its columns) without
--     writing a column that is NOT NULL (or of a NOT NULL domain) and has
--     no default (no default of its own or of its domain, no identity, not
--     generated);
--   * it may write NULL to a column ("nullable": true, the default) that no
--     longer takes NULL: made NOT NULL since the build was registered (the
--     guard records it), or since an inferred contract was taken.
--
-- The refusal names every offending column; the HINT says what to do.
--
CREATE EXTENSION rollguard;
\set VERBOSITY default
\set SHOW_CONTEXT never

CREATE DOMAIN required_text AS text NOT NULL;
CREATE DOMAIN defaulted_text AS text NOT NULL DEFAULT 'none';
CREATE TABLE person (id serial PRIMARY KEY,
                     name text NOT NULL,
                     legacy text NOT NULL,
                     email text,
                     code int GENERATED ALWAYS AS IDENTITY,
                     total int GENERATED ALWAYS AS (length(name)) STORED,
                     created timestamptz NOT NULL DEFAULT now(),
                     tag defaulted_text);
CREATE TABLE lookup (key text PRIMARY KEY, label required_text);

-- Version 1 writes every NOT NULL column without a default: deployed.
SELECT rollguard.register_version('1', jsonb_build_object('relations', jsonb_build_object(
  'public.person', jsonb_build_object(
    'id', jsonb_build_object('writes', false, 'nullable', false),
    'name', jsonb_build_object('nullable', false),
    'legacy', jsonb_build_object('nullable', false),
    'email', jsonb_build_object()))));
SELECT rollguard.deploy('web', '1');

-- Version 2 no longer writes legacy (its model dropped the field; the
-- column is still NOT NULL without a default): its inserts would fail.
-- Refused, by deploy() and by begin_rollout(), naming the column.  The
-- columns the database fills in (serial, identity, generated, a default,
-- a domain's default) do not matter.
SELECT rollguard.register_version('2', jsonb_build_object('relations', jsonb_build_object(
  'public.person', jsonb_build_object(
    'id', jsonb_build_object('writes', false, 'nullable', false),
    'name', jsonb_build_object('nullable', false),
    'email', jsonb_build_object()))));
SELECT rollguard.deploy('mirror', '2');
SELECT rollguard.begin_rollout('web', '2');

-- Listing the column as not written is the same.
SELECT rollguard.register_version('2b', jsonb_build_object('relations', jsonb_build_object(
  'public.person', jsonb_build_object(
    'name', jsonb_build_object('nullable', false),
    'legacy', jsonb_build_object('writes', false)))));
SELECT rollguard.deploy('mirror', '2b');

-- Every offending column is named, in every relation the version inserts
-- into: also a column of a NOT NULL domain without a default.
SELECT rollguard.register_version('3', jsonb_build_object('relations', jsonb_build_object(
  'public.person', jsonb_build_object('email', jsonb_build_object()),
  'public.lookup', jsonb_build_object('key', jsonb_build_object('nullable', false)))));
SELECT rollguard.deploy('mirror', '3');

-- A version that only reads a relation does not insert into it: nothing
-- to refuse.
SELECT rollguard.register_version('4', jsonb_build_object('relations', jsonb_build_object(
  'public.person', jsonb_build_object('name', jsonb_build_object('writes', false)),
  'public.lookup', jsonb_build_object('key', jsonb_build_object('writes', false)))));
SELECT rollguard.deploy('reports', '4');

-- The migration that gives legacy a default comes first: then version 2
-- can be deployed.  (And while 2 is live, the guard refuses to take the
-- default away again: the rule and the forward check agree.)
ALTER TABLE person ALTER COLUMN legacy SET DEFAULT '';
SELECT rollguard.deploy('mirror', '2');
ALTER TABLE person ALTER COLUMN legacy DROP DEFAULT;

--
-- Writing NULL.  Version 5 may write NULL to email (so may 2, by
-- default); while they are live, SET NOT NULL is refused.  Once no live
-- version may write NULL to it, the migration goes through, and the guard
-- records it: version 5 may no longer be deployed (its inserts would write
-- NULL to a column that no longer takes it), neither by deploy() nor by
-- begin_rollout().
--
SELECT rollguard.register_version('5', jsonb_build_object('relations', jsonb_build_object(
  'public.person', jsonb_build_object(
    'name', jsonb_build_object('nullable', false),
    'legacy', jsonb_build_object('nullable', false),
    'email', jsonb_build_object('nullable', true)))));
SELECT rollguard.deploy('web', '5');
ALTER TABLE person ALTER COLUMN email SET NOT NULL;
SELECT rollguard.register_version('6', jsonb_build_object('relations', jsonb_build_object(
  'public.person', jsonb_build_object(
    'name', jsonb_build_object('nullable', false),
    'legacy', jsonb_build_object('nullable', false),
    'email', jsonb_build_object('nullable', false)))));
SELECT rollguard.deploy('web', '6');
SELECT rollguard.deploy('mirror', '6');
ALTER TABLE person ALTER COLUMN email SET NOT NULL;
SELECT relname, attname, change FROM rollguard.removed_column ORDER BY 1, 2;
SELECT rollguard.deploy('web', '5');
SELECT rollguard.begin_rollout('web', '5');

-- A build registered after the migration, whose manifest leaves email's
-- "nullable" at its default, was made against the column as it is: not
-- refused (like a column that never existed, it is not "no longer").
SELECT rollguard.register_version('7', jsonb_build_object('relations', jsonb_build_object(
  'public.person', jsonb_build_object(
    'name', jsonb_build_object(),
    'legacy', jsonb_build_object(),
    'email', jsonb_build_object()))));
SELECT rollguard.deploy('mirror', '7');

-- An inferred contract is taken when the version first goes live: email
-- was nullable then.  Made NOT NULL since, the version is refused when it
-- is deployed again.
ALTER TABLE person ALTER COLUMN email DROP NOT NULL;
SELECT rollguard.deploy('mirror', '6');
SELECT rollguard.deploy('canary', 'inferred-1');
SELECT rollguard.deploy('canary', '6');
ALTER TABLE person ALTER COLUMN email SET NOT NULL;
SELECT rollguard.deploy('canary', 'inferred-1');

SELECT deployment, version, state FROM rollguard.deployments ORDER BY 1, 2;
SELECT * FROM rollguard._live_drift();

DROP EXTENSION rollguard;
DROP TABLE person, lookup;
DROP DOMAIN required_text, defaulted_text;
