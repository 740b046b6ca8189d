/* rollguard--1.5--1.6.sql: no way around the guard, no way to stall it */

\echo Use "ALTER EXTENSION rollguard UPDATE TO '1.6'" to load this file. \quit

-- Each section below says what it changes and why; the full script
-- rollguard--1.6.sql holds the same definitions.

/* ----------------------------------------------------------------------
 * 1.6: deployment keys, for platforms with one database role
 * ---------------------------------------------------------------------- */

-- Where the application's only role must hold rollguard_deploy (Divio gives
-- one DATABASE_URL to every mirror), that role could record or remove any
-- deployment.  A deployment can be bound to a key: a secret that only its
-- own release steps know (an environment variable of that mirror).  Once
-- bound, every deploy step of the deployment and its removal need the key,
-- presented with rollguard.use_key() earlier in the same transaction;
-- administrators and superusers need none.  The first use_key() of a
-- deployment binds it; an administrator can unbind it (reset_key).  Only
-- a SHA-256 of the key is kept.  The check is a trigger on
-- rollguard.deployment_state, so it holds for every function that writes it.
CREATE TABLE rollguard.deployment_key (
    deployment  text PRIMARY KEY,
    key_sha256  bytea NOT NULL,
    bound_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    bound_by    name NOT NULL DEFAULT rollguard._who()
);
SELECT pg_catalog.pg_extension_config_dump('rollguard.deployment_key', '');
REVOKE ALL ON rollguard.deployment_key FROM PUBLIC;

-- Which deployments are bound to a key, since when and by whom (not the key).
CREATE VIEW rollguard.deployment_keys AS
SELECT k.deployment, k.bound_at, k.bound_by FROM rollguard.deployment_key k;
GRANT SELECT ON rollguard.deployment_keys TO PUBLIC;

-- Proof, for the rest of this transaction, that this session presented the
-- deployment's key: a hash of the stored key hash (which no role but the
-- extension's owner may read), the transaction and the backend.  It lives
-- in a placeholder setting; anyone may set that, nobody can compute it
-- without the key.
CREATE FUNCTION rollguard._key_proof(deployment text, key_sha256 bytea)
RETURNS text
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT encode(sha256(key_sha256 || convert_to(
               format('%s/%s/%s', pg_current_xact_id(), pg_backend_pid(), deployment), 'UTF8')), 'hex')
$$;
REVOKE ALL ON FUNCTION rollguard._key_proof(text, bytea) FROM PUBLIC;

CREATE FUNCTION rollguard.use_key(deployment text, key text)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d       text := rollguard._check_label('deployment name', deployment);
    hash    bytea;
    stored  bytea;
BEGIN
    IF key IS NULL OR length(key) < 16 THEN
        RAISE EXCEPTION 'a deployment key must have at least 16 characters'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use a random secret, e.g. the output of "openssl rand -hex 32".';
    END IF;
    IF octet_length(key) > 1000 THEN
        RAISE EXCEPTION 'a deployment key must not be longer than 1000 bytes'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    hash := sha256(convert_to(key, 'UTF8'));
    PERFORM rollguard._lock_deployment(d);
    SELECT k.key_sha256 INTO stored FROM rollguard.deployment_key k WHERE k.deployment = d;
    IF NOT FOUND THEN
        INSERT INTO rollguard.deployment_key (deployment, key_sha256) VALUES (d, hash);
        PERFORM rollguard._log('bind_key', d, NULL);
        stored := hash;
    ELSIF stored <> hash THEN
        RAISE EXCEPTION 'wrong key for deployment "%"', d
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'The deployment is bound to another key.',
                  HINT = 'Present the key its own release steps use; an administrator can unbind it with rollguard.reset_key().';
    END IF;
    PERFORM set_config('rollguard_key.k' || md5(d), rollguard._key_proof(d, stored), false);
END
$$;

COMMENT ON FUNCTION rollguard.use_key(text, text) IS
'Presents the deployment''s key for the rest of this transaction (binds it if the deployment has none)';

CREATE FUNCTION rollguard.reset_key(deployment text)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d text := rollguard._check_label('deployment name', deployment);
BEGIN
    PERFORM rollguard._lock_deployment(d);
    DELETE FROM rollguard.deployment_key k WHERE k.deployment = d;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'deployment "%" is not bound to a key', d USING ERRCODE = 'undefined_object';
    END IF;
    PERFORM rollguard._log('reset_key', d, NULL);
END
$$;

COMMENT ON FUNCTION rollguard.reset_key(text) IS
'Unbinds the deployment from its key (administrators only): the next use_key() binds it again';

-- The check: before any row of a bound deployment is written.
CREATE FUNCTION rollguard._deployment_key_check()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d       text := CASE WHEN TG_OP = 'DELETE' THEN OLD.deployment ELSE NEW.deployment END;
    who     name := rollguard._who();
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.deployment <> NEW.deployment THEN
        PERFORM rollguard._deployment_key_require(OLD.deployment, who);
    END IF;
    PERFORM rollguard._deployment_key_require(d, who);
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$$;

CREATE FUNCTION rollguard._deployment_key_require(deployment text, who name)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    stored  bytea;
BEGIN
    SELECT k.key_sha256 INTO stored FROM rollguard.deployment_key k WHERE k.deployment = _deployment_key_require.deployment;
    IF NOT FOUND
       OR current_setting('rollguard_key.k' || md5(deployment), true) = rollguard._key_proof(deployment, stored)
       OR (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = who)
       OR pg_catalog.pg_has_role(who, 'rollguard_admin', 'USAGE') THEN
        RETURN;
    END IF;
    RAISE EXCEPTION 'deployment "%" is bound to a key', deployment
        USING ERRCODE = 'insufficient_privilege',
              DETAIL = 'Its deploy steps and its removal need the key it was bound to.',
              HINT = format('Call rollguard.use_key(%L, <its key>) earlier in the same transaction (manage.py rollguard_deploy and contrib/deploy/rollguard_step.sh do so when ROLLGUARD_KEY is set).', deployment);
END
$$;

REVOKE ALL ON FUNCTION rollguard._deployment_key_check(), rollguard._deployment_key_require(text, name) FROM PUBLIC;

CREATE TRIGGER deployment_key_check
    BEFORE INSERT OR UPDATE OR DELETE ON rollguard.deployment_state
    FOR EACH ROW EXECUTE FUNCTION rollguard._deployment_key_check();

REVOKE ALL ON FUNCTION rollguard.use_key(text, text), rollguard.reset_key(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION rollguard.use_key(text, text) TO rollguard_deploy;
GRANT EXECUTE ON FUNCTION rollguard.reset_key(text) TO rollguard_admin;
