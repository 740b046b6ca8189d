/* rollguard--1.3--1.4.sql: the registry announces its changes, so that the
 * guard can keep what it read between checks */

\echo Use "ALTER EXTENSION rollguard UPDATE TO '1.4'" to load this file. \quit

-- The guard answers most checks from a few primary-key probes of the
-- registry (the counters of live use, and whether a contract names what a
-- statement removes).  Each backend keeps those answers until the registry
-- changes.  A change is announced the way PostgreSQL announces a change to
-- its own catalogs: a relcache invalidation of the table, which every
-- backend reads when the writing transaction commits (never if it rolls
-- back), before the writer's locks are released.  Every statement that
-- writes to one of these tables sends it, whoever runs it: deploy steps,
-- the counters' own triggers, a superuser's direct edit, pg_restore.
CREATE FUNCTION rollguard._registry_changed()
RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'rollguard_registry_changed';
REVOKE ALL ON FUNCTION rollguard._registry_changed() FROM PUBLIC;

-- ENABLE ALWAYS: also in sessions with session_replication_role =
-- replica.  Logical replication's apply fires row triggers only: for a
-- subscriber that receives the registry, the same function as a row
-- trigger, enabled only there (ENABLE REPLICA).
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['deployment_state', 'contract', 'live_version',
                             'live_column', 'live_relation']
    LOOP
        EXECUTE format('CREATE TRIGGER registry_changed'
                       ' AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON rollguard.%I'
                       ' FOR EACH STATEMENT EXECUTE FUNCTION rollguard._registry_changed()', t);
        EXECUTE format('ALTER TABLE rollguard.%I ENABLE ALWAYS TRIGGER registry_changed', t);
        EXECUTE format('CREATE TRIGGER registry_changed_replica'
                       ' AFTER INSERT OR UPDATE OR DELETE ON rollguard.%I'
                       ' FOR EACH ROW EXECUTE FUNCTION rollguard._registry_changed()', t);
        EXECUTE format('ALTER TABLE rollguard.%I ENABLE REPLICA TRIGGER registry_changed_replica', t);
    END LOOP;
END
$$;
