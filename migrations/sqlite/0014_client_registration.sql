-- Dynamic client registration (RFC 7591) and its management protocol (RFC 7592).

-- A server's registration policy: a row only for servers that accept registrations ('token':
-- with an initial access token; 'open': anyone). No row: closed, the default.
CREATE TABLE server_registration (
    server_id   TEXT PRIMARY KEY REFERENCES authorization_servers(id) ON DELETE CASCADE,
    policy      TEXT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- Initial access tokens (RFC 7591 §3), stored only as their SHA-256 hash, each for one server,
-- until expires_at, for uses_left more registrations (NULL: any number).
CREATE TABLE registration_tokens (
    id          TEXT PRIMARY KEY,
    server_id   TEXT NOT NULL REFERENCES authorization_servers(id) ON DELETE CASCADE,
    token_hash  BLOB NOT NULL UNIQUE,
    expires_at  BIGINT NOT NULL,
    uses_left   BIGINT,
    created_at  BIGINT NOT NULL
);

-- The registration access token of a client registered through RFC 7591 (RFC 7592 §3), stored
-- only as its hash and replaced on every update.
CREATE TABLE client_registrations (
    client_id           TEXT PRIMARY KEY REFERENCES clients(id) ON DELETE CASCADE,
    access_token_hash   BLOB NOT NULL UNIQUE,
    created_at          BIGINT NOT NULL
);
