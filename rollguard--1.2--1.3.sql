/* rollguard--1.2--1.3.sql: the guard's verdict from counters of live use,
 * and observed usage of tagged sessions */

\echo Use "ALTER EXTENSION rollguard UPDATE TO '1.3'" to load this file. \quit

------------------------------------------------------------------------------
-- Counters of live use (the guard's fast verdict)
------------------------------------------------------------------------------

-- The guard's common answer is "nothing live breaks".  Rather than read the
-- contracts of every live deployment for that, it reads two rows kept here:
-- per column and per relation, how many live versions use it, may write
-- NULL to it, write it, insert into the relation.  Two primary-key probes,
-- however many deployments and versions there are.  Only a change that the
-- counters say may break something is then judged deployment by deployment,
-- which also words the refusal.
--
-- Derived data, kept by triggers on everything they derive from
-- (deployment_state, contract, declaration), so that deploy steps, direct
-- edits by a superuser and pg_restore (in any table order) keep them right.
-- rollguard._rebuild_live() recomputes them from scratch.

-- (Counts change in place: half of every page is left free, so that an
-- update stays on its page and leaves no index entry behind.)

-- Versions at least one deployment runs (or is rolling out), and how many.
CREATE TABLE rollguard.live_version (
    version     text PRIMARY KEY,
    deployments integer NOT NULL CHECK (deployments > 0)
) WITH (fillfactor = 50);

-- Per column: live versions whose effective contract lists it (users), of
-- those the ones that may write NULL to it (nullable_users) and the ones
-- that write it on INSERT (writers).
CREATE TABLE rollguard.live_column (
    nspname        text NOT NULL,
    relname        text NOT NULL,
    attname        text NOT NULL,
    users          integer NOT NULL CHECK (users > 0),
    nullable_users integer NOT NULL CHECK (nullable_users BETWEEN 0 AND users),
    writers        integer NOT NULL CHECK (writers BETWEEN 0 AND users),
    PRIMARY KEY (nspname, relname, attname)
) WITH (fillfactor = 50);

-- Per relation: live versions that use any of its columns (users), and
-- those that write any of them, i.e. insert into it (inserters).
CREATE TABLE rollguard.live_relation (
    nspname   text NOT NULL,
    relname   text NOT NULL,
    users     integer NOT NULL CHECK (users > 0),
    inserters integer NOT NULL CHECK (inserters BETWEEN 0 AND users),
    PRIMARY KEY (nspname, relname)
) WITH (fillfactor = 50);

REVOKE ALL ON rollguard.live_version, rollguard.live_column, rollguard.live_relation FROM PUBLIC;

-- Whoever changes the counters holds this lock until commit: deploy steps
-- and registrations take it first thing (rollguard._lock_deployment,
-- rollguard._register_version), the triggers below take it for direct
-- edits.  One order for everyone, so no deadlocks, and each recount sees
-- the previous one committed.  A table lock, not an advisory one: only
-- rollguard's own functions (and superusers) may take it, so no other
-- role can hold deploy steps up.  Reading the counters (the guard) does not
-- wait for it.
CREATE FUNCTION rollguard._lock_live(read_committed boolean DEFAULT true)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- A recount from an old snapshot would be wrong for good.
    IF read_committed AND current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'deploy steps must run at isolation level READ COMMITTED'
            USING ERRCODE = 'invalid_transaction_state',
                  DETAIL = format('At isolation level %s, the registry''s counters of live use could be computed from an outdated snapshot.',
                                  upper(current_setting('transaction_isolation'))),
                  HINT = 'Run it in a transaction of its own, or begin the transaction with BEGIN ISOLATION LEVEL READ COMMITTED.';
    END IF;
    LOCK TABLE rollguard.live_version IN EXCLUSIVE MODE;
END
$$;

-- Recounts the counters of the given relations from scratch.
CREATE FUNCTION rollguard._recount_relations(nspnames text[], relnames text[])
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    DELETE FROM rollguard.live_column l
     USING unnest(nspnames, relnames) AS r(nspname, relname)
     WHERE (l.nspname, l.relname) = (r.nspname, r.relname);
    DELETE FROM rollguard.live_relation l
     USING unnest(nspnames, relnames) AS r(nspname, relname)
     WHERE (l.nspname, l.relname) = (r.nspname, r.relname);
    INSERT INTO rollguard.live_column (nspname, relname, attname, users, nullable_users, writers)
    SELECT e.nspname, e.relname, e.attname, count(*),
           count(*) FILTER (WHERE e.nullable), count(*) FILTER (WHERE e.writes)
      FROM (SELECT DISTINCT * FROM unnest(nspnames, relnames)) AS r(nspname, relname)
      JOIN rollguard.effective_contract e ON (e.nspname, e.relname) = (r.nspname, r.relname)
      JOIN rollguard.live_version lv ON lv.version = e.version
     GROUP BY 1, 2, 3;
    INSERT INTO rollguard.live_relation (nspname, relname, users, inserters)
    SELECT e.nspname, e.relname, count(DISTINCT e.version),
           count(DISTINCT e.version) FILTER (WHERE e.writes)
      FROM (SELECT DISTINCT * FROM unnest(nspnames, relnames)) AS r(nspname, relname)
      JOIN rollguard.effective_contract e ON (e.nspname, e.relname) = (r.nspname, r.relname)
      JOIN rollguard.live_version lv ON lv.version = e.version
     GROUP BY 1, 2;
$$;

-- A version became live (sign 1) or stopped being live (sign -1): add its
-- effective contract to the counters, or take it away.
CREATE FUNCTION rollguard._count_version(v text, sign integer)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO rollguard.live_column AS l (nspname, relname, attname, users, nullable_users, writers)
    SELECT e.nspname, e.relname, e.attname, 1, e.nullable::integer, e.writes::integer
      FROM rollguard.effective_contract e
     WHERE e.version = v AND sign > 0
    ON CONFLICT (nspname, relname, attname) DO UPDATE
       SET users = l.users + 1,
           nullable_users = l.nullable_users + EXCLUDED.nullable_users,
           writers = l.writers + EXCLUDED.writers;
    INSERT INTO rollguard.live_relation AS l (nspname, relname, users, inserters)
    SELECT e.nspname, e.relname, 1, bool_or(e.writes)::integer
      FROM rollguard.effective_contract e
     WHERE e.version = v AND sign > 0
     GROUP BY 1, 2
    ON CONFLICT (nspname, relname) DO UPDATE
       SET users = l.users + 1, inserters = l.inserters + EXCLUDED.inserters;
    IF sign > 0 THEN
        RETURN;
    END IF;
    -- the last user of a column or relation takes its row with it
    DELETE FROM rollguard.live_column l
     USING rollguard.effective_contract e
     WHERE e.version = v AND l.users = 1
       AND (l.nspname, l.relname, l.attname) = (e.nspname, e.relname, e.attname);
    UPDATE rollguard.live_column l
       SET users = l.users - 1,
           nullable_users = l.nullable_users - e.nullable::integer,
           writers = l.writers - e.writes::integer
      FROM rollguard.effective_contract e
     WHERE e.version = v
       AND (l.nspname, l.relname, l.attname) = (e.nspname, e.relname, e.attname);
    DELETE FROM rollguard.live_relation l
     USING (SELECT DISTINCT e.nspname, e.relname FROM rollguard.effective_contract e
             WHERE e.version = v) r
     WHERE l.users = 1 AND (l.nspname, l.relname) = (r.nspname, r.relname);
    UPDATE rollguard.live_relation l
       SET users = l.users - 1, inserters = l.inserters - r.writes::integer
      FROM (SELECT e.nspname, e.relname, bool_or(e.writes) AS writes
              FROM rollguard.effective_contract e
             WHERE e.version = v GROUP BY 1, 2) r
     WHERE (l.nspname, l.relname) = (r.nspname, r.relname);
END
$$;

-- deployment_state changed by (version, +/- deployments): versions that
-- gained their first deployment or lost their last one move in or out of
-- the counters.
CREATE FUNCTION rollguard._apply_deployment_delta(versions text[], deltas integer[])
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t record;
BEGIN
    PERFORM rollguard._lock_live();
    FOR t IN
        SELECT d.version, coalesce(lv.deployments, 0) AS before, d.n
          FROM (SELECT x.version, sum(x.n)::integer AS n
                  FROM unnest(versions, deltas) AS x(version, n)
                 GROUP BY 1 HAVING sum(x.n) <> 0) d
          LEFT JOIN rollguard.live_version lv ON lv.version = d.version
         ORDER BY d.version COLLATE "C"
    LOOP
        IF t.before + t.n < 0 THEN
            RAISE EXCEPTION 'counters of live use are out of step with deployment_state for version "%"', t.version
                USING ERRCODE = 'data_corrupted',
                      HINT = 'Run SELECT rollguard._rebuild_live(); as a superuser.';
        ELSIF t.before + t.n = 0 THEN
            DELETE FROM rollguard.live_version WHERE version = t.version;
            PERFORM rollguard._count_version(t.version, -1);
        ELSIF t.before = 0 THEN
            INSERT INTO rollguard.live_version (version, deployments) VALUES (t.version, t.n);
            PERFORM rollguard._count_version(t.version, 1);
        ELSE
            UPDATE rollguard.live_version SET deployments = deployments + t.n
             WHERE version = t.version;
        END IF;
    END LOOP;
END
$$;

-- (Transition tables exist only for the event a trigger names, so each
-- event has its trigger, and each branch reads only its own tables.)
CREATE FUNCTION rollguard._deployment_state_changed()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    versions text[];
    deltas   integer[];
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM rollguard._rebuild_live();
        RETURN NULL;
    ELSIF TG_OP = 'INSERT' THEN
        SELECT array_agg(s.version), array_agg(1) INTO versions, deltas FROM new_rows s;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(s.version), array_agg(-1) INTO versions, deltas FROM old_rows s;
    ELSE
        SELECT array_agg(x.version), array_agg(x.n) INTO versions, deltas
          FROM (SELECT s.version, 1 AS n FROM new_rows s
                UNION ALL SELECT s.version, -1 FROM old_rows s) x;
    END IF;
    IF versions IS NOT NULL THEN
        PERFORM rollguard._apply_deployment_delta(versions, deltas);
    END IF;
    RETURN NULL;
END
$$;

-- contract or declaration rows changed: recount the relations they name,
-- if that can concern a live version.  Rare: deploy steps change only the
-- contracts of versions not yet live; pg_restore may load contracts after
-- deployment_state; declarations amend the contracts of live versions.
CREATE FUNCTION rollguard._contract_changed()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    nsps     text[];
    rels     text[];
    versions text[];
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM rollguard._rebuild_live();
        RETURN NULL;
    ELSIF TG_OP = 'INSERT' THEN
        SELECT array_agg(c.nspname), array_agg(c.relname) INTO nsps, rels
          FROM (SELECT DISTINCT x.nspname, x.relname FROM new_rows x) c;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(c.nspname), array_agg(c.relname) INTO nsps, rels
          FROM (SELECT DISTINCT x.nspname, x.relname FROM old_rows x) c;
    ELSE
        SELECT array_agg(c.nspname), array_agg(c.relname) INTO nsps, rels
          FROM (SELECT x.nspname, x.relname FROM new_rows x
                UNION SELECT x.nspname, x.relname FROM old_rows x) c;
    END IF;
    IF nsps IS NULL THEN
        RETURN NULL;
    END IF;
    -- the lock first: a deploy step committing meanwhile would count the
    -- version without these rows
    PERFORM rollguard._lock_live(false);
    IF TG_TABLE_NAME = 'contract' THEN
        IF TG_OP = 'INSERT' THEN
            SELECT array_agg(DISTINCT x.version) INTO versions FROM new_rows x;
        ELSIF TG_OP = 'DELETE' THEN
            SELECT array_agg(DISTINCT x.version) INTO versions FROM old_rows x;
        ELSE
            SELECT array_agg(DISTINCT x.version) INTO versions
              FROM (SELECT y.version FROM new_rows y UNION ALL SELECT y.version FROM old_rows y) x;
        END IF;
        IF NOT EXISTS (SELECT 1 FROM rollguard.live_version lv WHERE lv.version = ANY (versions)) THEN
            RETURN NULL;
        END IF;
    END IF;
    PERFORM rollguard._lock_live();
    PERFORM rollguard._recount_relations(nsps, rels);
    RETURN NULL;
END
$$;

-- The triggers: one per event (a trigger with transition tables serves
-- one event), all per statement.
DO $$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT * FROM (VALUES ('deployment_state', '_deployment_state_changed'),
                                   ('contract', '_contract_changed'),
                                   ('declaration', '_contract_changed')) AS x(tab, fn)
    LOOP
        EXECUTE format('CREATE TRIGGER live_insert AFTER INSERT ON rollguard.%I'
                       ' REFERENCING NEW TABLE AS new_rows'
                       ' FOR EACH STATEMENT EXECUTE FUNCTION rollguard.%I()', t.tab, t.fn);
        EXECUTE format('CREATE TRIGGER live_update AFTER UPDATE ON rollguard.%I'
                       ' REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows'
                       ' FOR EACH STATEMENT EXECUTE FUNCTION rollguard.%I()', t.tab, t.fn);
        EXECUTE format('CREATE TRIGGER live_delete AFTER DELETE ON rollguard.%I'
                       ' REFERENCING OLD TABLE AS old_rows'
                       ' FOR EACH STATEMENT EXECUTE FUNCTION rollguard.%I()', t.tab, t.fn);
        EXECUTE format('CREATE TRIGGER live_truncate AFTER TRUNCATE ON rollguard.%I'
                       ' FOR EACH STATEMENT EXECUTE FUNCTION rollguard.%I()', t.tab, t.fn);
    END LOOP;
END
$$;

-- Recomputes every counter from scratch (after a data-only restore with
-- --disable-triggers, say).  Superuser only, like every function here
-- not granted otherwise.
CREATE FUNCTION rollguard._rebuild_live()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    nsps text[];
    rels text[];
BEGIN
    PERFORM rollguard._lock_live();
    DELETE FROM rollguard.live_version;
    INSERT INTO rollguard.live_version (version, deployments)
    SELECT s.version, count(*) FROM rollguard.deployment_state s GROUP BY 1;
    DELETE FROM rollguard.live_column;
    DELETE FROM rollguard.live_relation;
    SELECT array_agg(c.nspname), array_agg(c.relname) INTO nsps, rels
      FROM (SELECT DISTINCT x.nspname, x.relname FROM rollguard.contract x
              JOIN rollguard.live_version lv ON lv.version = x.version) c;
    IF nsps IS NOT NULL THEN
        PERFORM rollguard._recount_relations(nsps, rels);
    END IF;
END
$$;

-- The counters that differ from a recount from scratch: none, always
-- (the test suites check it after every scenario).
CREATE FUNCTION rollguard._live_drift()
RETURNS TABLE (counter text, key text, stored text, recounted text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH lv AS (SELECT s.version, count(*)::integer AS deployments
                  FROM rollguard.deployment_state s GROUP BY 1),
    lc AS (SELECT e.nspname, e.relname, e.attname, count(*)::integer AS users,
                  (count(*) FILTER (WHERE e.nullable))::integer AS nullable_users,
                  (count(*) FILTER (WHERE e.writes))::integer AS writers
             FROM rollguard.effective_contract e JOIN lv ON lv.version = e.version
            GROUP BY 1, 2, 3),
    lr AS (SELECT e.nspname, e.relname, count(DISTINCT e.version)::integer AS users,
                  (count(DISTINCT e.version) FILTER (WHERE e.writes))::integer AS inserters
             FROM rollguard.effective_contract e JOIN lv ON lv.version = e.version
            GROUP BY 1, 2)
    SELECT 'live_version', coalesce(a.version, b.version),
           a.deployments::text, b.deployments::text
      FROM rollguard.live_version a FULL JOIN lv b ON a.version = b.version
     WHERE a.deployments IS DISTINCT FROM b.deployments
    UNION ALL
    SELECT 'live_column', format('%s.%s.%s', coalesce(a.nspname, b.nspname),
                                 coalesce(a.relname, b.relname), coalesce(a.attname, b.attname)),
           format('%s/%s/%s', a.users, a.nullable_users, a.writers),
           format('%s/%s/%s', b.users, b.nullable_users, b.writers)
      FROM rollguard.live_column a
      FULL JOIN lc b ON (a.nspname, a.relname, a.attname) = (b.nspname, b.relname, b.attname)
     WHERE (a.users, a.nullable_users, a.writers) IS DISTINCT FROM (b.users, b.nullable_users, b.writers)
    UNION ALL
    SELECT 'live_relation', format('%s.%s', coalesce(a.nspname, b.nspname), coalesce(a.relname, b.relname)),
           format('%s/%s', a.users, a.inserters), format('%s/%s', b.users, b.inserters)
      FROM rollguard.live_relation a
      FULL JOIN lr b ON (a.nspname, a.relname) = (b.nspname, b.relname)
     WHERE (a.users, a.inserters) IS DISTINCT FROM (b.users, b.inserters)
     ORDER BY 1, 2
$$;

-- Deploy steps take the counters' lock first: see rollguard._lock_live().
CREATE OR REPLACE FUNCTION rollguard._lock_deployment(deployment text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    LOCK TABLE rollguard.deployment_state IN ROW EXCLUSIVE MODE;
    PERFORM rollguard._lock_live();
    PERFORM pg_advisory_xact_lock(hashtext('rollguard.deployment:' || deployment));
END
$$;

-- Registrations take the counters' lock before the version's own (as
-- deploy steps do): a deploy script registers and deploys in one
-- transaction while other mirrors deploy the same version.
ALTER FUNCTION rollguard._register_version(text, jsonb) RENAME TO _store_version;
REVOKE ALL ON FUNCTION rollguard._store_version(text, jsonb) FROM PUBLIC, rollguard_deploy;
CREATE FUNCTION rollguard._register_version(version text, manifest jsonb)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM rollguard._lock_live(false);
    PERFORM rollguard._store_version(version, manifest);
END
$$;
REVOKE ALL ON FUNCTION rollguard._register_version(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION rollguard._register_version(text, jsonb) TO rollguard_deploy;

-- Installs from 1.0 files older than this index lack it.
CREATE INDEX IF NOT EXISTS contract_writers_idx ON rollguard.contract (nspname, relname, version) WHERE writes;

REVOKE ALL ON FUNCTION rollguard._lock_live(boolean), rollguard._recount_relations(text[], text[]),
                       rollguard._count_version(text, integer),
                       rollguard._apply_deployment_delta(text[], integer[]),
                       rollguard._deployment_state_changed(), rollguard._contract_changed(),
                       rollguard._rebuild_live(), rollguard._live_drift() FROM PUBLIC;

SELECT rollguard._rebuild_live();

------------------------------------------------------------------------------
-- Observed usage
------------------------------------------------------------------------------

-- The columns that tagged sessions' statements read or write, per version
-- (recorded in shared memory by the library; see README, "Observed usage"),
-- in this database.  relation is schema-qualified, unquoted, as in
-- manifests.
CREATE FUNCTION rollguard._observed(OUT version text, OUT relation text, OUT "column" name,
                                    OUT reads boolean, OUT writes boolean,
                                    OUT first_seen timestamptz, OUT last_seen timestamptz)
RETURNS SETOF record
LANGUAGE C STRICT VOLATILE
AS 'MODULE_PATHNAME', 'rollguard_observed';

CREATE VIEW rollguard.observed AS
SELECT version, relation, "column", reads, writes, first_seen, last_seen
  FROM rollguard._observed();

COMMENT ON VIEW rollguard.observed IS
'Columns that tagged sessions were seen reading or writing, per version: each counts as used by that version';

-- The table's state for the whole server: entries (every database), the
-- limit (rollguard.max_observed), uses not recorded since the server
-- started because the table was full, and when it was last saved to disk.
CREATE FUNCTION rollguard._observed_stats(OUT entries bigint, OUT max_entries integer,
                                          OUT dropped bigint, OUT saved_at timestamptz)
RETURNS record
LANGUAGE C STRICT VOLATILE
AS 'MODULE_PATHNAME', 'rollguard_observed_stats';

CREATE VIEW rollguard.observed_stats AS
SELECT entries, max_entries, dropped, saved_at FROM rollguard._observed_stats();

COMMENT ON VIEW rollguard.observed_stats IS
'Observed uses: how many are kept, the limit, how many were not recorded because it was reached, when last saved';

-- Like rollguard.sessions (and pg_stat_activity), visible to everyone: they
-- name columns of the schema and version labels, nothing more.
GRANT EXECUTE ON FUNCTION rollguard._observed(), rollguard._observed_stats() TO PUBLIC;
GRANT SELECT ON rollguard.observed, rollguard.observed_stats TO PUBLIC;

CREATE FUNCTION rollguard._clear_observed(version text, nspname name, relname name, attname name)
RETURNS bigint
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'rollguard_clear_observed';

REVOKE ALL ON FUNCTION rollguard._clear_observed(text, name, name, name) FROM PUBLIC;

-- Forgets observed uses of this database: of a version, a relation, a
-- column, or any combination (NULL: any).  Returns how many were removed,
-- and records the call in rollguard.history.  A session that still uses a
-- column records it again at its next use.
CREATE FUNCTION rollguard.clear_observed(version text DEFAULT NULL,
                                         relation pg_catalog.regclass DEFAULT NULL,
                                         "column" name DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    nsp     name;
    rel     name;
    removed bigint;
BEGIN
    IF $1 IS NOT NULL THEN
        PERFORM rollguard._check_label('version label', $1);
    END IF;
    IF $2 IS NOT NULL THEN
        SELECT n.nspname, c.relname INTO nsp, rel
          FROM pg_catalog.pg_class c
          JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
         WHERE c.oid OPERATOR(pg_catalog.=) $2;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'relation with OID % does not exist', $2::oid
                USING ERRCODE = 'undefined_table';
        END IF;
    END IF;
    removed := rollguard._clear_observed($1, nsp, rel, $3);
    PERFORM rollguard._log('clear_observed', NULL, $1,
                           CASE WHEN nsp IS NOT NULL THEN nsp OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) rel END,
                           $3, NULL, pg_catalog.jsonb_build_object('removed', removed));
    RETURN removed;
END
$$;

COMMENT ON FUNCTION rollguard.clear_observed(text, pg_catalog.regclass, name) IS
'Forgets observed uses of a version, relation or column (NULL: any); administrators only';

REVOKE ALL ON FUNCTION rollguard.clear_observed(text, pg_catalog.regclass, name) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION rollguard.clear_observed(text, pg_catalog.regclass, name) TO rollguard_admin;
