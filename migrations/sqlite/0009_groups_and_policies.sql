-- Groups (org-wide, like users) and their members; custom user attributes; app assignments;
-- access policies with rules per authorization server (issue 17, README "Groups and access
-- policies").

CREATE TABLE user_groups (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE group_members (
    group_id    TEXT NOT NULL REFERENCES user_groups(id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    added_at    BIGINT NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_by_user ON group_members (user_id);

-- Custom attributes: a JSON object beside the standard claims, read by attribute claims.
ALTER TABLE users ADD COLUMN attributes TEXT NOT NULL DEFAULT '{}';

-- App assignments: with assignment_required, only assigned users (directly or through a group)
-- get tokens for the client.
ALTER TABLE clients ADD COLUMN assignment_required BOOLEAN NOT NULL DEFAULT FALSE;
CREATE TABLE client_assignments (
    client_id   TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    group_id    TEXT REFERENCES user_groups(id) ON DELETE CASCADE,
    user_id     TEXT REFERENCES users(id) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL,
    CHECK ((group_id IS NULL) <> (user_id IS NULL))
);
CREATE UNIQUE INDEX client_assignments_group ON client_assignments (client_id, group_id)
    WHERE group_id IS NOT NULL;
CREATE UNIQUE INDEX client_assignments_user ON client_assignments (client_id, user_id)
    WHERE user_id IS NOT NULL;
CREATE INDEX client_assignments_by_user ON client_assignments (user_id);
CREATE INDEX client_assignments_by_group ON client_assignments (group_id);

-- Access policies of a server: the first (lowest priority) whose clients include the client
-- applies; its first matching rule decides (src/policy/access.rs).
CREATE TABLE access_policies (
    id          TEXT PRIMARY KEY,
    server_id   TEXT NOT NULL REFERENCES authorization_servers(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    priority    BIGINT NOT NULL,
    all_clients BOOLEAN NOT NULL,
    client_ids  TEXT NOT NULL DEFAULT '',   -- space-separated
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    UNIQUE (server_id, name)
);

CREATE TABLE access_rules (
    id                  TEXT PRIMARY KEY,
    policy_id           TEXT NOT NULL REFERENCES access_policies(id) ON DELETE CASCADE,
    name                TEXT NOT NULL,
    priority            BIGINT NOT NULL,
    grant_types         TEXT NOT NULL DEFAULT '',   -- space-separated; empty: any
    everyone            BOOLEAN NOT NULL,
    group_ids           TEXT NOT NULL DEFAULT '',   -- space-separated group ids
    user_ids            TEXT NOT NULL DEFAULT '',   -- space-separated user ids
    any_scope           BOOLEAN NOT NULL,
    scopes              TEXT NOT NULL DEFAULT '',
    access_token_ttl    BIGINT,
    refresh_token_ttl   BIGINT,
    refresh_idle_ttl    BIGINT,
    deny                BOOLEAN NOT NULL,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    UNIQUE (policy_id, name)
);

-- The grant type that started a family: its refreshes are evaluated as that grant. NULL for
-- grants stored before this migration (only rules for any grant type match them).
ALTER TABLE grants ADD COLUMN grant_type TEXT;

-- Policies and rules are cached per replica like the rest of the configuration (migration 0004).
CREATE TRIGGER access_policies_insert_bumps_config AFTER INSERT ON access_policies
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER access_policies_update_bumps_config AFTER UPDATE ON access_policies
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER access_policies_delete_bumps_config AFTER DELETE ON access_policies
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER access_rules_insert_bumps_config AFTER INSERT ON access_rules
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER access_rules_update_bumps_config AFTER UPDATE ON access_rules
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER access_rules_delete_bumps_config AFTER DELETE ON access_rules
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
