-- What every replica caches (servers, clients, scopes, claims) carries one version: every
-- write to those tables bumps it, whoever writes (CLI, a replica, a hand-written UPDATE). Each
-- replica re-reads it every cache.refresh_interval and drops its cache when it moved
-- (src/store/cache.rs).
CREATE TABLE config_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO config_version (id, version) VALUES (1, 0);

CREATE FUNCTION bump_config_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE config_version SET version = version + 1 WHERE id = 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER authorization_servers_bump_config
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON authorization_servers
    FOR EACH STATEMENT EXECUTE FUNCTION bump_config_version();
CREATE TRIGGER clients_bump_config
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON clients
    FOR EACH STATEMENT EXECUTE FUNCTION bump_config_version();
CREATE TRIGGER scopes_bump_config
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON scopes
    FOR EACH STATEMENT EXECUTE FUNCTION bump_config_version();
CREATE TRIGGER claims_bump_config
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON claims
    FOR EACH STATEMENT EXECUTE FUNCTION bump_config_version();
