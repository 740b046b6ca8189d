--
-- properties: whether a column can still take NULL, and whether it still
-- gets a value when an INSERT leaves it out, are judged by what the
-- database will do, not by how the statement spells it.
--
--   A default counts only if it yields a value: DEFAULT nullif(now(),
--   now()), DEFAULT NULL::int, a CASE without ELSE, current_setting(...,
--   true) of a setting that is not there, a PL/pgSQL function (it may
--   return NULL) are no default at all.  now(), nextval(), gen_random_uuid(),
--   constants, casts and COALESCE with a constant are.
--   A CHECK rejects NULL in c when, with c NULL, it comes out false in any
--   spelling (c IS DISTINCT FROM NULL, coalesce(c, '') <> '', num_nonnulls),
--   and may reject it when the outcome then depends on other columns
--   (c IS NOT NULL OR d IS NOT NULL): both are refused like SET NOT NULL.
--   A type change to a domain that rejects NULL, and ATTACH PARTITION with a
--   bound that rejects NULL, tighten the column as well.
--   A widening type change keeps code working only if it keeps the
--   collation (ALTER ... TYPE without COLLATE resets it to the type's).
--   An ALTER TABLE's sub-commands are judged in the order PostgreSQL runs
--   them (every DROP first, defaults and identities last): swapping one
--   default for another in one statement breaks nothing.
--
CREATE EXTENSION rollguard;
\set VERBOSITY default

-- What a table's columns are now, to show what a refused statement left.
CREATE FUNCTION columns_of(rel regclass)
RETURNS TABLE ("column" name, type text, collation name, not_null boolean, "default" text)
LANGUAGE sql STABLE
AS $$
    SELECT a.attname, format_type(a.atttypid, a.atttypmod),
           CASE WHEN a.attcollation <> 0 THEN (SELECT collname FROM pg_collation WHERE oid = a.attcollation) END,
           a.attnotnull,
           CASE WHEN a.attidentity <> '' THEN 'identity'
                ELSE pg_get_expr(d.adbin, d.adrelid) END
      FROM pg_attribute a
      LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
     WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped
     ORDER BY a.attnum
$$;

CREATE SEQUENCE account_seq;
CREATE TABLE account (
    id      integer NOT NULL DEFAULT nextval('account_seq'),
    name    text,
    email   text NOT NULL,
    created timestamptz NOT NULL DEFAULT now(),
    score   integer NOT NULL DEFAULT 0,
    code    varchar(20) COLLATE "C",
    label   varchar(20),
    note    text,
    other   text
);

-- Version 1.0 leaves id, created, score and note to the database, may
-- write NULL to name, always writes email, code and label.
SELECT rollguard.register_version('1.0', '{"relations": {"public.account": {
    "id":    {"writes": false, "nullable": false},
    "name":  {"nullable": true},
    "email": {"nullable": false},
    "code":  {"nullable": false},
    "label": {"nullable": false}}}}');
SELECT rollguard.deploy('original', '1.0');
SELECT rollguard.deploy('mirror', '1.0');

------------------------------------------------------------------------------
-- Defaults that are NULL however they are spelled: each is refused like
-- DROP DEFAULT, since version 1.0 inserts without writing created/score.
------------------------------------------------------------------------------
ALTER TABLE account ALTER COLUMN created SET DEFAULT nullif(now(), now());
ALTER TABLE account ALTER COLUMN score SET DEFAULT NULL::integer;
ALTER TABLE account ALTER COLUMN score SET DEFAULT CASE WHEN false THEN 1 END;
ALTER TABLE account ALTER COLUMN score SET DEFAULT current_setting('rollguard_test.missing', true)::integer;
-- A PL/pgSQL function may return NULL: in doubt, refused.
CREATE FUNCTION next_score() RETURNS integer LANGUAGE plpgsql VOLATILE
AS $$ BEGIN RETURN NULL; END $$;
ALTER TABLE account ALTER COLUMN score SET DEFAULT next_score();
-- Defaults that yield a value: allowed.
ALTER TABLE account ALTER COLUMN score SET DEFAULT 1;
ALTER TABLE account ALTER COLUMN score SET DEFAULT coalesce(NULL::integer, 7);
ALTER TABLE account ALTER COLUMN score SET DEFAULT length(lower('ABC'));
ALTER TABLE account ALTER COLUMN score SET DEFAULT (random() * 100)::integer;
ALTER TABLE account ALTER COLUMN created SET DEFAULT clock_timestamp();
ALTER TABLE account ALTER COLUMN created SET DEFAULT now() + interval '1 day';
ALTER TABLE account ALTER COLUMN id SET DEFAULT nextval('account_seq'::regclass);
SELECT "column", "default" FROM columns_of('account') WHERE "column" IN ('id', 'created', 'score');

-- A new NOT NULL column whose default is NULL has no default.
CREATE TABLE ledger (id integer PRIMARY KEY, amount numeric NOT NULL);
SELECT rollguard.register_version('1.1', '{"relations": {"public.account": {
    "id":    {"writes": false, "nullable": false},
    "name":  {"nullable": true},
    "email": {"nullable": false},
    "code":  {"nullable": false},
    "label": {"nullable": false}},
  "public.ledger": {"id": {"nullable": false}, "amount": {"nullable": false}}}}');
SELECT rollguard.deploy('mirror', '1.1');
ALTER TABLE ledger ADD COLUMN booked date NOT NULL DEFAULT nullif(current_date, current_date);
ALTER TABLE ledger ADD COLUMN booked date NOT NULL DEFAULT current_date;

-- A domain's default is judged the same way.
CREATE DOMAIN grade AS integer NOT NULL DEFAULT 3;
ALTER TABLE ledger ADD COLUMN grade grade;
ALTER DOMAIN grade SET DEFAULT nullif(1, 1);
ALTER DOMAIN grade SET DEFAULT 4;

------------------------------------------------------------------------------
-- CHECK constraints that reject NULL, in any spelling.
------------------------------------------------------------------------------
-- name: version 1.0 may write NULL to it.
ALTER TABLE account ADD CONSTRAINT name_present CHECK (name IS DISTINCT FROM NULL);
ALTER TABLE account ADD CONSTRAINT name_present CHECK (coalesce(name, '') <> '') NOT VALID;
ALTER TABLE account ADD CONSTRAINT name_present CHECK (num_nonnulls(name) = 1);
ALTER TABLE account ADD CONSTRAINT name_present CHECK ((name IS NULL) IS FALSE);
-- note: version 1.0 inserts without writing it; "may reject" is enough.
ALTER TABLE account ADD CONSTRAINT note_or_other CHECK (note IS NOT NULL OR other IS NOT NULL);
-- Constraints that take NULL: allowed.
ALTER TABLE account ADD CONSTRAINT name_short CHECK (length(name) < 100);
ALTER TABLE account ADD CONSTRAINT name_or_null CHECK (name IS NULL OR name <> '');
ALTER TABLE account ADD CONSTRAINT note_or_name CHECK (note > '' OR name > '');
ALTER TABLE account ADD CONSTRAINT score_bounds CHECK (score BETWEEN 0 AND 1000);
SELECT conname FROM pg_constraint WHERE conrelid = 'account'::regclass ORDER BY conname;

-- A new column with such a CHECK and no default is a NOT NULL column.
ALTER TABLE ledger ADD COLUMN memo text CHECK (memo IS DISTINCT FROM NULL);
ALTER TABLE ledger ADD COLUMN memo text CHECK (memo <> '');

-- A domain's CHECK, in any spelling.
CREATE DOMAIN short_text AS text;
CREATE TABLE tag (id integer, name short_text);
SELECT rollguard.register_version('1.2', '{"relations": {"public.tag": {"id": {}, "name": {}}}}');
SELECT rollguard.deploy('tagger', '1.2');
ALTER DOMAIN short_text ADD CONSTRAINT present CHECK (VALUE IS DISTINCT FROM NULL);
ALTER DOMAIN short_text ADD CONSTRAINT short CHECK (length(VALUE) < 50);

------------------------------------------------------------------------------
-- A type change to a domain that rejects NULL tightens the column.  (note
-- is used by no version: only the NOT NULL rule applies.)
------------------------------------------------------------------------------
CREATE DOMAIN required_text AS text NOT NULL;
CREATE DOMAIN present_text AS text CHECK (VALUE IS DISTINCT FROM NULL);
ALTER TABLE account ALTER COLUMN note TYPE required_text;
ALTER TABLE account ALTER COLUMN note TYPE present_text;
ALTER TABLE account ALTER COLUMN note TYPE short_text;
SELECT "column", type, not_null FROM columns_of('account') WHERE "column" = 'note';

------------------------------------------------------------------------------
-- ATTACH PARTITION: a range bound rejects NULL in the key.  Version 1.3
-- inserts into the table events_2026 itself and may leave "at" NULL.
------------------------------------------------------------------------------
CREATE TABLE events (at date, kind text) PARTITION BY RANGE (at);
CREATE TABLE events_2026 (at date, kind text);
SELECT rollguard.register_version('1.3', '{"relations": {"public.events_2026": {"at": {}, "kind": {}}}}');
SELECT rollguard.deploy('collector', '1.3');
ALTER TABLE events ATTACH PARTITION events_2026 FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
SELECT count(*) AS partitions FROM pg_inherits WHERE inhparent = 'events'::regclass;
-- Attached to a table that is not partitioned: PostgreSQL's own error.
ALTER TABLE events_2026 ATTACH PARTITION events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
-- As the DEFAULT partition it still takes NULL: allowed.
ALTER TABLE events ATTACH PARTITION events_2026 DEFAULT;
ALTER TABLE events DETACH PARTITION events_2026;
-- In a transaction, attached and detached again: nothing left to judge.
BEGIN;
ALTER TABLE events ATTACH PARTITION events_2026 FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
ALTER TABLE events DETACH PARTITION events_2026;
COMMIT;

------------------------------------------------------------------------------
-- Widening keeps code working only with the same collation.
------------------------------------------------------------------------------
-- code is COLLATE "C": TYPE text alone resets it to the default.
ALTER TABLE account ALTER COLUMN code TYPE text;
ALTER TABLE account ALTER COLUMN code TYPE varchar(40) COLLATE "POSIX";
-- The same collation, said again: allowed.
ALTER TABLE account ALTER COLUMN code TYPE varchar(40) COLLATE "C";
ALTER TABLE account ALTER COLUMN label TYPE text COLLATE "default";
-- label is default-collated: a new collation is refused.
ALTER TABLE account ALTER COLUMN label TYPE text COLLATE "C";
SELECT "column", type, "collation" FROM columns_of('account') WHERE "column" IN ('code', 'label');
-- In a transaction, judged on what it leaves: changed and changed back.
BEGIN;
ALTER TABLE account ALTER COLUMN code TYPE text;
ALTER TABLE account ALTER COLUMN code TYPE text COLLATE "C";
COMMIT;
SELECT "column", type, "collation" FROM columns_of('account') WHERE "column" = 'code';

------------------------------------------------------------------------------
-- One ALTER TABLE, in PostgreSQL's passes: swapping defaults is allowed.
------------------------------------------------------------------------------
-- serial to identity (what Django's and Rails' upgrade guides write)
ALTER TABLE account ALTER COLUMN id DROP DEFAULT,
    ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY;
-- and back
ALTER TABLE account ALTER COLUMN id DROP IDENTITY,
    ALTER COLUMN id SET DEFAULT nextval('account_seq');
-- one default for another, in either order
ALTER TABLE account ALTER COLUMN score DROP DEFAULT, ALTER COLUMN score SET DEFAULT 5;
ALTER TABLE account ALTER COLUMN score SET DEFAULT 6, ALTER COLUMN score DROP DEFAULT;
SELECT "column", "default" FROM columns_of('account') WHERE "column" IN ('id', 'score');
-- Dropping it alone still breaks version 1.0's inserts.
ALTER TABLE account ALTER COLUMN score DROP DEFAULT;
-- SET NOT NULL and DROP NOT NULL in one statement leave NOT NULL
-- (DROP runs first): refused, as version 1.0 may write NULL to name.
ALTER TABLE account ALTER COLUMN name SET NOT NULL, ALTER COLUMN name DROP NOT NULL;
SELECT "column", not_null FROM columns_of('account') WHERE "column" = 'name';

------------------------------------------------------------------------------
-- The refusal states the reason that applies to its blockers.
------------------------------------------------------------------------------
-- only inserts without writing note (no default)
ALTER TABLE account ALTER COLUMN note SET NOT NULL;
-- one deployment may write NULL (1.0 writes name), the other one inserts
-- without writing it (a version that does not list name)
SELECT rollguard.register_version('1.4', '{"relations": {"public.account": {
    "id": {"writes": false}, "email": {"nullable": false}}}}');
SELECT rollguard.deploy('mirror', '1.4');
ALTER TABLE account ALTER COLUMN name SET NOT NULL;

------------------------------------------------------------------------------
-- Inserts through automatically updatable views are inserts into the base
-- table: version 2.0 knows only the view member_api (and a view over it),
-- and the NOT NULL rules follow them to member's columns.
------------------------------------------------------------------------------
CREATE TABLE member (id integer PRIMARY KEY, name text, nick text,
                     level integer NOT NULL DEFAULT 1, joined date);
CREATE VIEW member_api AS SELECT id, name AS full_name, level FROM member;
CREATE VIEW member_short AS SELECT id, full_name FROM member_api;
CREATE VIEW member_count AS SELECT count(*) AS members FROM member;
SELECT rollguard.register_version('2.0', '{"relations": {
    "public.member_api":   {"id": {}, "level": {}},
    "public.member_short": {"id": {}, "full_name": {}},
    "public.member_count": {"members": {"writes": false}}}}');
SELECT rollguard.deploy('portal', '2.0');
-- full_name is name: 2.0 may write NULL to it through member_short, and
-- inserts through member_api without writing it.
ALTER TABLE member ALTER COLUMN name SET NOT NULL;
-- nick is shown by neither view: inserts through them leave it out.
ALTER TABLE member ALTER COLUMN nick SET NOT NULL;
-- level: inserts through member_short leave it out, and only its default
-- fills it in.
ALTER TABLE member ALTER COLUMN level DROP DEFAULT;
-- Allowed: a column that gets a default, and a change no insert sees
-- (member_count cannot take inserts).
ALTER TABLE member ALTER COLUMN joined SET DEFAULT current_date, ALTER COLUMN joined SET NOT NULL;
SELECT rollguard.remove_deployment('portal');
ALTER TABLE member ALTER COLUMN nick SET NOT NULL;
SELECT "column", not_null FROM columns_of('member') WHERE "column" IN ('nick', 'joined');

------------------------------------------------------------------------------
-- The dry run judges the same properties.
------------------------------------------------------------------------------
SELECT change, "column", deployment FROM rollguard.check($$
    ALTER TABLE account ALTER COLUMN created SET DEFAULT nullif(now(), now());
    ALTER TABLE account ADD CONSTRAINT n CHECK (name IS DISTINCT FROM NULL);
    ALTER TABLE account ALTER COLUMN code TYPE text;
    ALTER TABLE account ALTER COLUMN id DROP DEFAULT, ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY;
$$) ORDER BY 1, 2, 3;

-- Clean up.
SELECT rollguard.remove_deployment(d) FROM unnest(ARRAY['original', 'mirror', 'tagger', 'collector']) d;
DROP VIEW member_short, member_api, member_count;
DROP TABLE account, ledger, tag, events, events_2026, member;
DROP SEQUENCE account_seq;
DROP FUNCTION next_score(), columns_of(regclass);
DROP DOMAIN grade, short_text, required_text, present_text;
DROP EXTENSION rollguard;
