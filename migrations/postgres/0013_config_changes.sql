-- Incremental cache refresh (issue 23): every write to what replicas cache still bumps
-- config_version (migration 0004), and now also records which authorization server it touched,
-- under the version it produced. A replica that sees the version move from v to v' reads the
-- changes in (v, v'] and drops only those servers' entries; when it cannot account for every
-- version in between (too many changes, rows already purged, a TRUNCATE) it drops everything,
-- as before (src/store/cache.rs). The triggers become row-level: a statement that changes no
-- row (INSERT … ON CONFLICT DO NOTHING at every start) no longer counts as a change. The
-- version bump holds config_version's row lock until commit, so versions commit in order and
-- a replica never skips one that commits late. server_id '' stands for a change whose server
-- could no longer be found (an access rule deleted with its policy: the policy's own change
-- names the server).
CREATE TABLE config_changes (
    version     BIGINT PRIMARY KEY,
    server_id   TEXT NOT NULL,
    changed_at  BIGINT NOT NULL
);

CREATE FUNCTION record_config_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed RECORD;
    server TEXT;
    bumped BIGINT;
BEGIN
    IF TG_OP = 'DELETE' THEN changed := OLD; ELSE changed := NEW; END IF;
    IF TG_TABLE_NAME = 'authorization_servers' THEN
        server := changed.id;
    ELSIF TG_TABLE_NAME = 'access_rules' THEN
        SELECT server_id INTO server FROM access_policies WHERE id = changed.policy_id;
    ELSE
        server := changed.server_id;
    END IF;
    UPDATE config_version SET version = version + 1 WHERE id = 1 RETURNING version INTO bumped;
    INSERT INTO config_changes (version, server_id, changed_at)
        VALUES (bumped, COALESCE(server, ''), EXTRACT(EPOCH FROM now())::BIGINT);
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS authorization_servers_bump_config ON authorization_servers;
CREATE TRIGGER authorization_servers_record_config_change
    AFTER INSERT OR UPDATE OR DELETE ON authorization_servers
    FOR EACH ROW EXECUTE FUNCTION record_config_change();
CREATE TRIGGER authorization_servers_truncate_bumps_config
    AFTER TRUNCATE ON authorization_servers
    FOR EACH STATEMENT EXECUTE FUNCTION bump_config_version();
DROP TRIGGER IF EXISTS clients_bump_config ON clients;
CREATE TRIGGER clients_record_config_change
    AFTER INSERT OR UPDATE OR DELETE ON clients
    FOR EACH ROW EXECUTE FUNCTION record_config_change();
CREATE TRIGGER clients_truncate_bumps_config
    AFTER TRUNCATE ON clients
    FOR EACH STATEMENT EXECUTE FUNCTION bump_config_version();
DROP TRIGGER IF EXISTS scopes_bump_config ON scopes;
CREATE TRIGGER scopes_record_config_change
    AFTER INSERT OR UPDATE OR DELETE ON scopes
    FOR EACH ROW EXECUTE FUNCTION record_config_change();
CREATE TRIGGER scopes_truncate_bumps_config
    AFTER TRUNCATE ON scopes
    FOR EACH STATEMENT EXECUTE FUNCTION bump_config_version();
DROP TRIGGER IF EXISTS claims_bump_config ON claims;
CREATE TRIGGER claims_record_config_change
    AFTER INSERT OR UPDATE OR DELETE ON claims
    FOR EACH ROW EXECUTE FUNCTION record_config_change();
CREATE TRIGGER claims_truncate_bumps_config
    AFTER TRUNCATE ON claims
    FOR EACH STATEMENT EXECUTE FUNCTION bump_config_version();
DROP TRIGGER IF EXISTS access_policies_bump_config ON access_policies;
CREATE TRIGGER access_policies_record_config_change
    AFTER INSERT OR UPDATE OR DELETE ON access_policies
    FOR EACH ROW EXECUTE FUNCTION record_config_change();
CREATE TRIGGER access_policies_truncate_bumps_config
    AFTER TRUNCATE ON access_policies
    FOR EACH STATEMENT EXECUTE FUNCTION bump_config_version();
DROP TRIGGER IF EXISTS access_rules_bump_config ON access_rules;
CREATE TRIGGER access_rules_record_config_change
    AFTER INSERT OR UPDATE OR DELETE ON access_rules
    FOR EACH ROW EXECUTE FUNCTION record_config_change();
CREATE TRIGGER access_rules_truncate_bumps_config
    AFTER TRUNCATE ON access_rules
    FOR EACH STATEMENT EXECUTE FUNCTION bump_config_version();

-- `client list --after`: pages in the list's order without sorting every client.
CREATE INDEX clients_by_server_name ON clients (server_id, name, id);
