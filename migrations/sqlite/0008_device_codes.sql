-- RFC 8628: device authorization requests. The device code and the user code are stored only
-- as SHA-256 hashes. A row is pending until the user approves or denies it on /device; the
-- token endpoint redeems an approved one once (`redeemed_at`, one conditional UPDATE).
-- `poll_interval` and `last_polled_at` live here, not in memory, so every replica agrees on
-- when a device polls too fast (§3.5 `slow_down` adds 5 s, per device code).
CREATE TABLE device_codes (
    device_code_hash    BLOB PRIMARY KEY,
    user_code_hash      BLOB NOT NULL UNIQUE,
    server_id           TEXT NOT NULL REFERENCES authorization_servers(id) ON DELETE CASCADE,
    client_id           TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    scope               TEXT NOT NULL,
    created_at          BIGINT NOT NULL,
    expires_at          BIGINT NOT NULL,
    poll_interval       BIGINT NOT NULL,
    last_polled_at      BIGINT,
    -- whether the last poll came sooner than the interval allowed (set and read by one UPDATE)
    polled_too_fast     BOOLEAN NOT NULL DEFAULT FALSE,
    -- whether the last poll redeemed the approved code (set and read by the same UPDATE)
    redeemed_by_poll    BOOLEAN NOT NULL DEFAULT FALSE,
    status              TEXT NOT NULL DEFAULT 'pending',   -- pending | approved | denied
    user_id             TEXT REFERENCES users(id) ON DELETE CASCADE,
    session_sid         TEXT,
    auth_time           BIGINT,
    grant_id            TEXT REFERENCES grants(id) ON DELETE CASCADE,
    decided_at          BIGINT,
    redeemed_at         BIGINT
);
CREATE INDEX device_codes_by_expiry ON device_codes (expires_at);
CREATE INDEX device_codes_by_grant ON device_codes (grant_id);

-- RFC 8693: the audiences a client may exchange tokens for, space-separated; empty: none (the
-- client may not use token exchange at all).
ALTER TABLE clients ADD COLUMN token_exchange_audiences TEXT NOT NULL DEFAULT '';
