-- Incremental cache refresh (issue 23): every write to what replicas cache still bumps
-- config_version (migration 0004), and now also records which authorization server it touched,
-- under the version it produced. A replica that sees the version move from v to v' reads the
-- changes in (v, v'] and drops only those servers' entries; when it cannot account for every
-- version in between (too many changes, or rows already purged) it drops everything, as before
-- (src/store/cache.rs). server_id '' stands for a change whose server could no longer be found
-- (an access rule deleted with its policy: the policy's own change names the server).
CREATE TABLE config_changes (
    version     BIGINT PRIMARY KEY,
    server_id   TEXT NOT NULL,
    changed_at  BIGINT NOT NULL
);

DROP TRIGGER IF EXISTS authorization_servers_insert_bumps_config;
DROP TRIGGER IF EXISTS authorization_servers_update_bumps_config;
DROP TRIGGER IF EXISTS authorization_servers_delete_bumps_config;
DROP TRIGGER IF EXISTS clients_insert_bumps_config;
DROP TRIGGER IF EXISTS clients_update_bumps_config;
DROP TRIGGER IF EXISTS clients_delete_bumps_config;
DROP TRIGGER IF EXISTS scopes_insert_bumps_config;
DROP TRIGGER IF EXISTS scopes_update_bumps_config;
DROP TRIGGER IF EXISTS scopes_delete_bumps_config;
DROP TRIGGER IF EXISTS claims_insert_bumps_config;
DROP TRIGGER IF EXISTS claims_update_bumps_config;
DROP TRIGGER IF EXISTS claims_delete_bumps_config;
DROP TRIGGER IF EXISTS access_policies_insert_bumps_config;
DROP TRIGGER IF EXISTS access_policies_update_bumps_config;
DROP TRIGGER IF EXISTS access_policies_delete_bumps_config;
DROP TRIGGER IF EXISTS access_rules_insert_bumps_config;
DROP TRIGGER IF EXISTS access_rules_update_bumps_config;
DROP TRIGGER IF EXISTS access_rules_delete_bumps_config;

CREATE TRIGGER authorization_servers_insert_bumps_config AFTER INSERT ON authorization_servers
BEGIN
    UPDATE config_version SET version = version + 1 WHERE id = 1;
    INSERT INTO config_changes (version, server_id, changed_at)
        SELECT version, NEW.id, CAST(strftime('%s', 'now') AS INTEGER) FROM config_version WHERE id = 1;
END;
CREATE TRIGGER authorization_servers_update_bumps_config AFTER UPDATE ON authorization_servers
BEGIN
    UPDATE config_version SET version = version + 1 WHERE id = 1;
    INSERT INTO config_changes (version, server_id, changed_at)
        SELECT version, NEW.id, CAST(strftime('%s', 'now') AS INTEGER) FROM config_version WHERE id = 1;
END;
CREATE TRIGGER authorization_servers_delete_bumps_config AFTER DELETE ON authorization_servers
BEGIN
    UPDATE config_version SET version = version + 1 WHERE id = 1;
    INSERT INTO config_changes (version, server_id, changed_at)
        SELECT version, OLD.id, CAST(strftime('%s', 'now') AS INTEGER) FROM config_version WHERE id = 1;
END;
CREATE TRIGGER clients_insert_bumps_config AFTER INSERT ON clients
BEGIN
    UPDATE config_version SET version = version + 1 WHERE id = 1;
    INSERT INTO config_changes (version, server_id, changed_at)
        SELECT version, NEW.server_id, CAST(strftime('%s', 'now') AS INTEGER) FROM config_version WHERE id = 1;
END;
CREATE TRIGGER clients_update_bumps_config AFTER UPDATE ON clients
BEGIN
    UPDATE config_version SET version = version + 1 WHERE id = 1;
    INSERT INTO config_changes (version, server_id, changed_at)
        SELECT version, NEW.server_id, CAST(strftime('%s', 'now') AS INTEGER) FROM config_version WHERE id = 1;
END;
CREATE TRIGGER clients_delete_bumps_config AFTER DELETE ON clients
BEGIN
    UPDATE config_version SET version = version + 1 WHERE id = 1;
    INSERT INTO config_changes (version, server_id, changed_at)
        SELECT version, OLD.server_id, CAST(strftime('%s', 'now') AS INTEGER) FROM config_version WHERE id = 1;
END;
CREATE TRIGGER scopes_insert_bumps_config AFTER INSERT ON scopes
BEGIN
    UPDATE config_version SET version = version + 1 WHERE id = 1;
    INSERT INTO config_changes (version, server_id, changed_at)
        SELECT version, NEW.server_id, CAST(strftime('%s', 'now') AS INTEGER) FROM config_version WHERE id = 1;
END;
CREATE TRIGGER scopes_update_bumps_config AFTER UPDATE ON scopes
BEGIN
    UPDATE config_version SET version = version + 1 WHERE id = 1;
    INSERT INTO config_changes (version, server_id, changed_at)
        SELECT version, NEW.server_id, CAST(strftime('%s', 'now') AS INTEGER) FROM config_version WHERE id = 1;
END;
CREATE TRIGGER scopes_delete_bumps_config AFTER DELETE ON scopes
BEGIN
    UPDATE config_version SET version = version + 1 WHERE id = 1;
    INSERT INTO config_changes (version, server_id, changed_at)
        SELECT version, OLD.server_id, CAST(strftime('%s', 'now') AS INTEGER) FROM config_version WHERE id = 1;
END;
CREATE TRIGGER claims_insert_bumps_config AFTER INSERT ON claims
BEGIN
    UPDATE config_version SET version = version + 1 WHERE id = 1;
    INSERT INTO config_changes (version, server_id, changed_at)
        SELECT version, NEW.server_id, CAST(strftime('%s', 'now') AS INTEGER) FROM config_version WHERE id = 1;
END;
CREATE TRIGGER claims_update_bumps_config AFTER UPDATE ON claims
BEGIN
    UPDATE config_version SET version = version + 1 WHERE id = 1;
    INSERT INTO config_changes (version, server_id, changed_at)
        SELECT version, NEW.server_id, CAST(strftime('%s', 'now') AS INTEGER) FROM config_version WHERE id = 1;
END;
CREATE TRIGGER claims_delete_bumps_config AFTER DELETE ON claims
BEGIN
    UPDATE config_version SET version = version + 1 WHERE id = 1;
    INSERT INTO config_changes (version, server_id, changed_at)
        SELECT version, OLD.server_id, CAST(strftime('%s', 'now') AS INTEGER) FROM config_version WHERE id = 1;
END;
CREATE TRIGGER access_policies_insert_bumps_config AFTER INSERT ON access_policies
BEGIN
    UPDATE config_version SET version = version + 1 WHERE id = 1;
    INSERT INTO config_changes (version, server_id, changed_at)
        SELECT version, NEW.server_id, CAST(strftime('%s', 'now') AS INTEGER) FROM config_version WHERE id = 1;
END;
CREATE TRIGGER access_policies_update_bumps_config AFTER UPDATE ON access_policies
BEGIN
    UPDATE config_version SET version = version + 1 WHERE id = 1;
    INSERT INTO config_changes (version, server_id, changed_at)
        SELECT version, NEW.server_id, CAST(strftime('%s', 'now') AS INTEGER) FROM config_version WHERE id = 1;
END;
CREATE TRIGGER access_policies_delete_bumps_config AFTER DELETE ON access_policies
BEGIN
    UPDATE config_version SET version = version + 1 WHERE id = 1;
    INSERT INTO config_changes (version, server_id, changed_at)
        SELECT version, OLD.server_id, CAST(strftime('%s', 'now') AS INTEGER) FROM config_version WHERE id = 1;
END;
CREATE TRIGGER access_rules_insert_bumps_config AFTER INSERT ON access_rules
BEGIN
    UPDATE config_version SET version = version + 1 WHERE id = 1;
    INSERT INTO config_changes (version, server_id, changed_at)
        SELECT version, COALESCE((SELECT server_id FROM access_policies WHERE id = NEW.policy_id), ''), CAST(strftime('%s', 'now') AS INTEGER) FROM config_version WHERE id = 1;
END;
CREATE TRIGGER access_rules_update_bumps_config AFTER UPDATE ON access_rules
BEGIN
    UPDATE config_version SET version = version + 1 WHERE id = 1;
    INSERT INTO config_changes (version, server_id, changed_at)
        SELECT version, COALESCE((SELECT server_id FROM access_policies WHERE id = NEW.policy_id), ''), CAST(strftime('%s', 'now') AS INTEGER) FROM config_version WHERE id = 1;
END;
CREATE TRIGGER access_rules_delete_bumps_config AFTER DELETE ON access_rules
BEGIN
    UPDATE config_version SET version = version + 1 WHERE id = 1;
    INSERT INTO config_changes (version, server_id, changed_at)
        SELECT version, COALESCE((SELECT server_id FROM access_policies WHERE id = OLD.policy_id), ''), CAST(strftime('%s', 'now') AS INTEGER) FROM config_version WHERE id = 1;
END;

-- `client list --after`: pages in the list's order without sorting every client.
CREATE INDEX clients_by_server_name ON clients (server_id, name, id);
