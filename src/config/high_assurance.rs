//! Configuration of high-assurance clients (issue 21): client assertions and their `jwks_uri`
//! (RFC 7523), DPoP (RFC 9449) and pushed authorization requests (RFC 9126).

use serde::{Deserialize, Serialize};

use super::Seconds;

/// `private_key_jwt` (README "private_key_jwt").
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientAssertionConfig {
    /// The longest an assertion may live: `exp` at most this long after `iat` (or now).
    pub max_lifetime: Seconds,
    /// How long a client's JWK Set fetched from its `jwks_uri` is used before it is fetched again.
    pub jwks_cache_ttl: Seconds,
    /// How long one fetch of a `jwks_uri` may take.
    pub jwks_fetch_timeout: Seconds,
    /// The largest JWK Set document accepted from a `jwks_uri`, in bytes.
    pub jwks_max_bytes: u64,
}

impl Default for ClientAssertionConfig {
    fn default() -> Self {
        Self {
            max_lifetime: Seconds(300),
            jwks_cache_ttl: Seconds(300),
            jwks_fetch_timeout: Seconds(5),
            jwks_max_bytes: 64 * 1024,
        }
    }
}

/// DPoP (README "DPoP").
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DpopConfig {
    /// Demand a server nonce (`use_dpop_nonce`, RFC 9449 §8) in proofs sent to /token.
    pub require_nonce: bool,
    /// Demand one in proofs sent to /userinfo too (RFC 9449 §9: a resource's own nonce; here
    /// the same nonces, so one from /token serves).
    pub require_nonce_at_userinfo: bool,
    /// How long a nonce is valid: nonces rotate every this many seconds, and the previous one
    /// is still accepted.
    pub nonce_lifetime: Seconds,
    /// How old (by `iat`) a proof may be; its `jti` is remembered this long.
    pub proof_max_age: Seconds,
    /// How far in the future a proof's `iat` may be (clock skew).
    pub proof_max_skew: Seconds,
}

impl Default for DpopConfig {
    fn default() -> Self {
        Self {
            require_nonce: false,
            require_nonce_at_userinfo: false,
            nonce_lifetime: Seconds(300),
            proof_max_age: Seconds(300),
            proof_max_skew: Seconds(60),
        }
    }
}
