//! A high-assurance client's keys and requirements (migration 0012): its JWK Set, registered
//! inline or by `jwks_uri` (RFC 7591 §2), and whether it must use DPoP (RFC 9449 §5.2), pushed
//! authorization requests (RFC 9126 §6) and signed request objects (RFC 9101 §10.5). Read with
//! the client (columns of `clients`, so the per-replica cache holds them).

use super::{on_pool, Store, StoreError};
use crate::clock::UnixTime;
use crate::protocol::ClientAuthMethod;

#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct ClientSecurity {
    /// A JWK Set (JSON), registered inline.
    pub jwks: Option<String>,
    /// Where the client publishes its JWK Set (https).
    pub jwks_uri: Option<String>,
    /// Refuse token requests without a DPoP proof.
    pub require_dpop: bool,
    /// Refuse authorization requests that were not pushed (PAR).
    pub require_par: bool,
    /// Refuse authorization requests without a signed request object.
    pub require_signed_request_object: bool,
}

impl ClientSecurity {
    /// The inline JWK Set as JSON, for `client show`.
    pub fn jwks_json(&self) -> serde_json::Value {
        self.jwks
            .as_deref()
            .and_then(|j| serde_json::from_str(j).ok())
            .unwrap_or(serde_json::Value::Null)
    }

    /// Does the client have keys to verify its JWTs with?
    pub fn has_keys(&self) -> bool {
        self.jwks.is_some() || self.jwks_uri.is_some()
    }
}

impl Store {
    /// Replace a client's keys and requirements.
    pub async fn set_client_security(
        &self,
        client_id: &str,
        security: &ClientSecurity,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let done = on_pool!(self, pool => sqlx::query(
            "UPDATE clients SET jwks = $1, jwks_uri = $2, require_dpop = $3, require_par = $4, \
             require_signed_request_object = $5, updated_at = $6 WHERE id = $7",
        )
        .bind(&security.jwks)
        .bind(&security.jwks_uri)
        .bind(security.require_dpop)
        .bind(security.require_par)
        .bind(security.require_signed_request_object)
        .bind(now)
        .bind(client_id)
        .execute(pool)
        .await?
        .rows_affected());
        self.cache.invalidate();
        Ok(done == 1)
    }

    /// Change how a confidential client authenticates. `secret_hash` is its new secret's
    /// (moving to a secret method), or `None` (moving to `private_key_jwt`: the old secret is
    /// dropped, so it cannot be used any more).
    pub async fn set_client_auth_method(
        &self,
        client_id: &str,
        method: ClientAuthMethod,
        secret_hash: Option<&[u8]>,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let done = on_pool!(self, pool => sqlx::query(
            "UPDATE clients SET token_endpoint_auth_method = $1, \
             secret_hash = COALESCE($2, CASE WHEN $1 = 'private_key_jwt' THEN NULL ELSE secret_hash END), \
             updated_at = $3 WHERE id = $4 AND token_endpoint_auth_method <> 'none'",
        )
        .bind(method.as_str())
        .bind(secret_hash)
        .bind(now)
        .bind(client_id)
        .execute(pool)
        .await?
        .rows_affected());
        self.cache.invalidate();
        Ok(done == 1)
    }
}
