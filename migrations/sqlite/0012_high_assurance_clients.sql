-- High-assurance clients (issue 21): private_key_jwt (RFC 7523), pushed authorization requests
-- (RFC 9126), signed request objects (RFC 9101) and DPoP (RFC 9449).

-- A client's public keys (a JWK Set, registered inline) or where to fetch them; and what it must
-- use. Columns of clients, so the per-replica cache carries them (the config_version trigger of
-- migration 0004 already fires on every update of clients).
ALTER TABLE clients ADD COLUMN jwks TEXT;
ALTER TABLE clients ADD COLUMN jwks_uri TEXT;
ALTER TABLE clients ADD COLUMN require_dpop BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE clients ADD COLUMN require_par BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE clients ADD COLUMN require_signed_request_object BOOLEAN NOT NULL DEFAULT FALSE;

-- JWT ids already used, until the JWT expires: client assertions (per client) and DPoP proofs
-- (per key thumbprint). The primary key makes the first INSERT win on every replica.
CREATE TABLE used_jtis (
    kind        TEXT NOT NULL,      -- client_assertion | dpop_proof | request_object
    issuer      TEXT NOT NULL,      -- the client id, or the DPoP key's thumbprint
    jti         TEXT NOT NULL,
    expires_at  BIGINT NOT NULL,
    PRIMARY KEY (kind, issuer, jti)
);
CREATE INDEX used_jtis_by_expiry ON used_jtis (expires_at);

-- The key DPoP nonces are derived from (HMAC of a time window), shared by every replica; sealed
-- under the KEK when one is configured, like signing keys.
CREATE TABLE dpop_nonce_keys (
    id          TEXT PRIMARY KEY,
    storage     TEXT NOT NULL,      -- plain | aes-256-gcm
    secret      BLOB NOT NULL,
    created_at  BIGINT NOT NULL
);

-- RFC 9449 §10: the key an authorization code (dpop_jkt at /authorize) and a public client's
-- refresh tokens are bound to.
ALTER TABLE authorization_codes ADD COLUMN dpop_jkt TEXT;
ALTER TABLE refresh_tokens ADD COLUMN dpop_jkt TEXT;

-- RFC 9126: pushed authorization requests, keyed by the hash of their request_uri, single use.
CREATE TABLE pushed_requests (
    request_hash    BLOB PRIMARY KEY,
    server_id       TEXT NOT NULL,
    client_id       TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    parameters      TEXT NOT NULL,      -- the authorization request's parameters, JSON
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    consumed_at     BIGINT
);
CREATE INDEX pushed_requests_by_expiry ON pushed_requests (expires_at);

-- RFC 9126 §5: require_pushed_authorization_requests for every client of a server.
ALTER TABLE authorization_servers ADD COLUMN require_pushed_authorization_requests BOOLEAN NOT NULL DEFAULT FALSE;
