/* rollguard--1.1--1.2.sql: live tagged sessions (rollguard.sessions) */

\echo Use "ALTER EXTENSION rollguard UPDATE TO '1.2'" to load this file. \quit

-- Every session connected to this database that says which deployment and
-- version it runs: by the settings rollguard.deployment and
-- rollguard.version (source 'setting'), or by application_name
-- 'rollguard:<deployment>@<version>' (source 'application_name').
CREATE FUNCTION rollguard._sessions(OUT deployment text, OUT version text,
                                    OUT pid integer, OUT source text)
RETURNS SETOF record
LANGUAGE C STRICT VOLATILE
AS 'MODULE_PATHNAME', 'rollguard_sessions';

-- While connected, each counts as live evidence: its version is live for
-- its deployment.  registered: whether the registry knows the version (if
-- it has no contract there, the guard counts it as using every column).
CREATE VIEW rollguard.sessions AS
SELECT s.deployment, s.version, s.pid, s.source,
       EXISTS (SELECT 1 FROM rollguard.version_registry v
                WHERE v.version OPERATOR(pg_catalog.=) s.version) AS registered
  FROM rollguard._sessions() s;

COMMENT ON VIEW rollguard.sessions IS
'Tagged sessions connected to this database now: each counts as live evidence that its deployment runs its version';

-- Like pg_stat_activity, visible to everyone.
GRANT EXECUTE ON FUNCTION rollguard._sessions() TO PUBLIC;
GRANT SELECT ON rollguard.sessions TO PUBLIC;
