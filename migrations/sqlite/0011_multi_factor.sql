-- Multi-factor sign-in (issue 18): TOTP factors, recovery codes, per-server and per-client
-- policy, and the factors each session and each token family was signed in with.

-- Policy: `off`, `optional` (asked of users who have a factor) or `required`; a client's
-- `default` follows its server, otherwise the stricter of the two applies.
ALTER TABLE authorization_servers ADD COLUMN mfa TEXT NOT NULL DEFAULT 'off';
ALTER TABLE clients ADD COLUMN mfa TEXT NOT NULL DEFAULT 'default';

-- RFC 6238 §5.2: a one-time password is accepted once. The last time step accepted for the
-- user, whichever of their factors it came from: a code of that step or an earlier one is
-- refused, in one conditional UPDATE (atomic across replicas).
ALTER TABLE users ADD COLUMN totp_last_step BIGINT;

-- The factors a session was signed in with (RFC 8176 `amr` values, space-separated);
-- `auth_time` is the time of the last one.
ALTER TABLE sessions ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';

-- Carried from the session to the ID token of the code.
ALTER TABLE authorization_codes ADD COLUMN amr TEXT;
ALTER TABLE authorization_codes ADD COLUMN acr TEXT;

-- A user's second factors. `secret` is sealed under the KEK like a signing key
-- (`secret_storage` says how), with the AAD bound to the user and the factor id.
-- `confirmed_at` is NULL while a self-service enrolment waits for its first valid code.
CREATE TABLE mfa_factors (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind            TEXT NOT NULL,          -- totp
    label           TEXT NOT NULL,
    secret_storage  TEXT NOT NULL,          -- plain | aes-256-gcm
    secret          BLOB NOT NULL,
    created_at      BIGINT NOT NULL,
    confirmed_at    BIGINT,
    last_used_at    BIGINT
);
CREATE INDEX mfa_factors_by_user ON mfa_factors (user_id);

-- Single-use recovery codes, stored as SHA-256 hashes (80 random bits each).
CREATE TABLE mfa_recovery_codes (
    user_id         TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash       BLOB NOT NULL,
    created_at      BIGINT NOT NULL,
    used_at         BIGINT,
    PRIMARY KEY (user_id, code_hash)
);
