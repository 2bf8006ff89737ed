-- What every replica caches (servers, clients, scopes, claims) carries one version: every
-- write to those tables bumps it, whoever writes (CLI, a replica, a hand-written UPDATE). Each
-- replica re-reads it every cache.refresh_interval and drops its cache when it moved
-- (src/store/cache.rs).
CREATE TABLE config_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO config_version (id, version) VALUES (1, 0);

CREATE TRIGGER authorization_servers_insert_bumps_config AFTER INSERT ON authorization_servers
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER authorization_servers_update_bumps_config AFTER UPDATE ON authorization_servers
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER authorization_servers_delete_bumps_config AFTER DELETE ON authorization_servers
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;

CREATE TRIGGER clients_insert_bumps_config AFTER INSERT ON clients
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER clients_update_bumps_config AFTER UPDATE ON clients
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER clients_delete_bumps_config AFTER DELETE ON clients
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;

CREATE TRIGGER scopes_insert_bumps_config AFTER INSERT ON scopes
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER scopes_update_bumps_config AFTER UPDATE ON scopes
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER scopes_delete_bumps_config AFTER DELETE ON scopes
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;

CREATE TRIGGER claims_insert_bumps_config AFTER INSERT ON claims
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER claims_update_bumps_config AFTER UPDATE ON claims
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER claims_delete_bumps_config AFTER DELETE ON claims
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
