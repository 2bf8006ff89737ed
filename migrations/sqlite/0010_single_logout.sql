-- OpenID Connect Back-Channel and Front-Channel Logout 1.0.

-- Where each client hears of a logout. A row only for clients that registered a logout URI.
CREATE TABLE client_logout (
    client_id                       TEXT PRIMARY KEY REFERENCES clients(id) ON DELETE CASCADE,
    backchannel_logout_uri          TEXT,
    backchannel_session_required    BOOLEAN NOT NULL DEFAULT TRUE,
    frontchannel_logout_uri         TEXT,
    frontchannel_session_required   BOOLEAN NOT NULL DEFAULT TRUE
);

-- The session a grant was made in: the clients that received tokens in a session are those of
-- its grants, so a logout knows whom to tell without a write of its own on the token path.
ALTER TABLE grants ADD COLUMN session_sid TEXT;
CREATE INDEX grants_by_session ON grants (session_sid);
CREATE INDEX refresh_by_session ON refresh_tokens (session_sid);

-- The durable outbox of back-channel logout deliveries: written in the transaction that ends the
-- session, sent by whichever replica leases it first, deleted once delivered or given up.
CREATE TABLE logout_deliveries (
    id              TEXT PRIMARY KEY,       -- also the logout token's jti
    server_id       TEXT NOT NULL,
    client_id       TEXT NOT NULL,
    uri             TEXT NOT NULL,
    subject         TEXT NOT NULL,          -- the user (`sub`)
    sid             TEXT,                   -- the session (`sid`), when the client wants it
    created_at      BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    leased_until    BIGINT,                 -- a replica is sending it until then
    last_error      TEXT
);
CREATE INDEX logout_deliveries_due ON logout_deliveries (next_attempt_at);
