-- Portcullis schema, designed for the whole mission. Times are Unix seconds (BIGINT).
-- Secrets, codes, refresh tokens and session ids are stored only as SHA-256 hashes.

-- Authorization servers: each has its own issuer URI and its own signing keys.
-- NULL policy columns fall back to the configuration's defaults.
CREATE TABLE authorization_servers (
    id                      TEXT PRIMARY KEY,
    name                    TEXT NOT NULL,
    audience                TEXT NOT NULL,
    access_token_ttl        BIGINT,
    id_token_ttl            BIGINT,
    refresh_token_ttl       BIGINT,
    refresh_idle_ttl        BIGINT,
    refresh_reuse_grace     BIGINT,
    refresh_requires_offline_access BOOLEAN NOT NULL DEFAULT FALSE,
    created_at              BIGINT NOT NULL,
    updated_at              BIGINT NOT NULL,
    -- bumped on every change, so replicas can tell their cached copy is stale
    version                 BIGINT NOT NULL DEFAULT 1
);

-- Signing keys. `generation` is unique per server, so two replicas racing to create or
-- rotate a key insert the same generation and exactly one wins.
CREATE TABLE signing_keys (
    kid             TEXT PRIMARY KEY,
    server_id       TEXT NOT NULL REFERENCES authorization_servers(id) ON DELETE CASCADE,
    generation      BIGINT NOT NULL,
    alg             TEXT NOT NULL,
    private_key     BLOB NOT NULL,     -- PKCS#8 DER
    public_jwk      TEXT NOT NULL,         -- the JWK published in /keys
    created_at      BIGINT NOT NULL,
    not_before      BIGINT NOT NULL,       -- signs from this time on; published from creation
    UNIQUE (server_id, generation)
);

-- Custom scopes of a server (the OIDC scopes are built in).
CREATE TABLE scopes (
    server_id       TEXT NOT NULL REFERENCES authorization_servers(id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    is_default      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (server_id, name)
);

-- Custom claims of a server: a user attribute or a static value, released by some scopes.
CREATE TABLE claims (
    server_id       TEXT NOT NULL REFERENCES authorization_servers(id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    source          TEXT NOT NULL,          -- 'attribute' or 'static'
    value           TEXT NOT NULL,          -- attribute name, or the static JSON value
    scopes          TEXT NOT NULL,          -- space-separated scopes that release it
    token_types     TEXT NOT NULL DEFAULT 'access_token id_token userinfo',
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (server_id, name)
);

CREATE TABLE clients (
    id                          TEXT PRIMARY KEY,
    server_id                   TEXT NOT NULL REFERENCES authorization_servers(id) ON DELETE CASCADE,
    name                        TEXT NOT NULL,
    secret_hash                 BLOB,              -- NULL for public clients
    token_endpoint_auth_method  TEXT NOT NULL,         -- client_secret_basic | client_secret_post | none
    first_party                 BOOLEAN NOT NULL DEFAULT FALSE,
    grant_types                 TEXT NOT NULL,         -- space-separated
    redirect_uris               TEXT NOT NULL DEFAULT '',   -- newline-separated, matched exactly
    post_logout_redirect_uris   TEXT NOT NULL DEFAULT '',   -- newline-separated
    scopes                      TEXT NOT NULL DEFAULT '',   -- space-separated: what it may ask for
    default_scopes              TEXT NOT NULL DEFAULT '',   -- granted when it asks for none
    access_token_ttl            BIGINT,
    id_token_ttl                BIGINT,
    refresh_token_ttl           BIGINT,
    created_at                  BIGINT NOT NULL,
    updated_at                  BIGINT NOT NULL
);
CREATE INDEX clients_by_server ON clients (server_id);

-- Users are org-wide: shared by every authorization server.
CREATE TABLE users (
    id                      TEXT PRIMARY KEY,
    username                TEXT NOT NULL UNIQUE,
    password_hash           TEXT,                  -- argon2id PHC string
    disabled                BOOLEAN NOT NULL DEFAULT FALSE,
    claims                  TEXT NOT NULL DEFAULT '{}',   -- standard OIDC claims, JSON
    failed_logins           BIGINT NOT NULL DEFAULT 0,
    locked_until            BIGINT,
    password_changed_at     BIGINT,
    created_at              BIGINT NOT NULL,
    updated_at              BIGINT NOT NULL
);

-- Browser sessions, per server; the cookie holds a random id, the table its hash.
CREATE TABLE sessions (
    id_hash         BLOB PRIMARY KEY,
    sid             TEXT NOT NULL UNIQUE,          -- the public session id (the `sid` claim)
    server_id       TEXT NOT NULL REFERENCES authorization_servers(id) ON DELETE CASCADE,
    user_id         TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    auth_time       BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    last_seen_at    BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    ended_at        BIGINT
);
CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

-- A pending authorization request between /authorize and the login or consent page.
CREATE TABLE interactions (
    id_hash         BLOB PRIMARY KEY,
    server_id       TEXT NOT NULL REFERENCES authorization_servers(id) ON DELETE CASCADE,
    request         TEXT NOT NULL,                 -- the validated request, JSON
    csrf_hash       BLOB NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL
);
CREATE INDEX interactions_by_expiry ON interactions (expires_at);

-- A grant: one user's (or client's) authorization of one client. Every token issued under it
-- carries its id, so replay of a code or reuse of a refresh token withdraws the whole family.
CREATE TABLE grants (
    id              TEXT PRIMARY KEY,
    server_id       TEXT NOT NULL REFERENCES authorization_servers(id) ON DELETE CASCADE,
    client_id       TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    user_id         TEXT REFERENCES users(id) ON DELETE CASCADE,
    scope           TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    revoked_at      BIGINT
);
CREATE INDEX grants_by_user ON grants (user_id);

CREATE TABLE authorization_codes (
    code_hash               BLOB PRIMARY KEY,
    grant_id                TEXT NOT NULL REFERENCES grants(id) ON DELETE CASCADE,
    server_id               TEXT NOT NULL,
    client_id               TEXT NOT NULL,
    user_id                 TEXT NOT NULL,
    session_sid             TEXT,
    redirect_uri            TEXT NOT NULL,
    scope                   TEXT NOT NULL,
    nonce                   TEXT,
    code_challenge          TEXT,
    code_challenge_method   TEXT,
    auth_time               BIGINT NOT NULL,
    claims_request          TEXT,
    created_at              BIGINT NOT NULL,
    expires_at              BIGINT NOT NULL,
    consumed_at             BIGINT
);
CREATE INDEX codes_by_expiry ON authorization_codes (expires_at);

CREATE TABLE refresh_tokens (
    token_hash      BLOB PRIMARY KEY,
    grant_id        TEXT NOT NULL REFERENCES grants(id) ON DELETE CASCADE,
    server_id       TEXT NOT NULL,
    client_id       TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    scope           TEXT NOT NULL,
    auth_time       BIGINT NOT NULL,
    session_sid     TEXT,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,      -- absolute lifetime
    idle_expires_at BIGINT NOT NULL,      -- idle lifetime
    rotated_at      BIGINT,               -- retired by a rotation
    replaced_by     BLOB,             -- hash of its successor (for the reuse grace period)
    revoked_at      BIGINT
);
CREATE INDEX refresh_by_grant ON refresh_tokens (grant_id);
CREATE INDEX refresh_by_expiry ON refresh_tokens (expires_at);

-- JWT access tokens withdrawn before they expire (RFC 7009), by jti.
CREATE TABLE revoked_tokens (
    jti             TEXT PRIMARY KEY,
    server_id       TEXT NOT NULL,
    revoked_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL
);
CREATE INDEX revoked_by_expiry ON revoked_tokens (expires_at);

-- Remembered consent, per server, user and client.
CREATE TABLE consents (
    server_id       TEXT NOT NULL REFERENCES authorization_servers(id) ON DELETE CASCADE,
    user_id         TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id       TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    scope           TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (server_id, user_id, client_id)
);

-- Fixed-window counters for rate limits, shared by every replica.
CREATE TABLE rate_limits (
    bucket          TEXT PRIMARY KEY,
    window_start    BIGINT NOT NULL,
    hits            BIGINT NOT NULL
);

-- Audit events: never a secret, a password or a whole token.
CREATE TABLE audit_events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    at              BIGINT NOT NULL,
    server_id       TEXT,
    kind            TEXT NOT NULL,
    actor           TEXT,
    subject         TEXT,
    detail          TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_by_time ON audit_events (at);
