-- A refresh token's successor is derived (HMAC of the token under this key) instead of drawn at
-- random, so a retry of one token within the reuse grace gets the same successor and never forks
-- the family (RFC 9700 §4.14.2; src/security.rs derive_successor). The key never leaves the
-- server; rows from before this migration have none, and their retries are refused.
ALTER TABLE refresh_tokens ADD COLUMN successor_key BLOB;
