-- How a signing key's private part is stored: `plain` (PKCS#8 DER, development without a
-- key-encryption key) or `aes-256-gcm` (an envelope sealed under keys.kek; see src/keys/kek.rs).
ALTER TABLE signing_keys ADD COLUMN key_storage TEXT NOT NULL DEFAULT 'plain';

-- The algorithm a server signs with: RS256 or ES256. Changing it rotates in a key of that type.
ALTER TABLE authorization_servers ADD COLUMN signing_alg TEXT NOT NULL DEFAULT 'RS256';
