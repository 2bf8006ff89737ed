-- Passkeys (issue 18, WebAuthn): users' credentials and the challenges of ceremonies under way.

-- A credential: its id (base64url, as authenticators name it; unique), the user it was
-- registered for, the relying party id (the issuer's host) it belongs to, its COSE_Key public
-- key, and the signature counter last seen (W3C WebAuthn §6.1.1: it must grow).
CREATE TABLE passkeys (
    id              TEXT PRIMARY KEY,
    credential_id   TEXT NOT NULL UNIQUE,
    user_id         TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    rp_id           TEXT NOT NULL,
    public_key      BYTEA NOT NULL,
    sign_count      BIGINT NOT NULL,
    name            TEXT NOT NULL,
    transports      TEXT NOT NULL DEFAULT '',
    created_at      BIGINT NOT NULL,
    last_used_at    BIGINT
);
CREATE INDEX passkeys_by_user ON passkeys (user_id);

-- A challenge handed to a browser: single use (taken by one DELETE … RETURNING), short-lived,
-- kept here so any replica can finish the ceremony, and bound to the ceremony, the interaction
-- (by the hash of its id), the browser cookie (by its hash) and, after a password, the user.
-- Only the SHA-256 of the challenge is stored.
CREATE TABLE webauthn_challenges (
    challenge_hash  BYTEA PRIMARY KEY,
    server_id       TEXT NOT NULL,
    ceremony        TEXT NOT NULL,          -- register | authenticate | passwordless
    interaction_hash BYTEA NOT NULL,
    browser         TEXT NOT NULL,
    user_id         TEXT,
    expires_at      BIGINT NOT NULL
);
CREATE INDEX webauthn_challenges_by_expiry ON webauthn_challenges (expires_at);
