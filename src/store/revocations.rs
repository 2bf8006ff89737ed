//! Revoked JWT access tokens, by `jti`, kept until they would have expired anyway.

use super::{on_pool, Store, StoreError};
use crate::clock::UnixTime;

/// A query that returns one row when an access token is withdrawn (its `jti` revoked, or its
/// grant, when it has one, revoked, expired or gone) and none otherwise, with the given
/// placeholders for the jti, the grant id (NULL: none) and now. A text column, not a boolean or
/// a bare literal: both backends decode it alike.
pub(super) fn withdrawn_query(jti: &str, grant_id: &str, now: &str) -> String {
    format!(
        "SELECT jti FROM revoked_tokens WHERE jti = {jti} \
         UNION ALL \
         SELECT {grant_id} WHERE {grant_id} IS NOT NULL AND NOT EXISTS \
           (SELECT id FROM grants WHERE id = {grant_id} AND revoked_at IS NULL AND expires_at > {now}) \
         LIMIT 1"
    )
}

impl Store {
    /// Is an access token withdrawn: its `jti` revoked, or its grant (when it has one) revoked,
    /// expired or gone? One query, as /userinfo and introspection ask it of every token.
    pub async fn access_token_withdrawn(
        &self,
        jti: &str,
        grant_id: Option<&str>,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let sql = withdrawn_query("$1", "$2", "$3");
        let row: Option<(String,)> = on_pool!(self, pool => sqlx::query_as(&sql)
        .bind(jti)
        .bind(grant_id)
        .bind(now)
        .fetch_optional(pool)
        .await?);
        Ok(row.is_some())
    }

    /// RFC 7009 §2.1: withdraw one access token of `server_id` until `expires_at` (its `exp`;
    /// after that it is refused as expired and the row can go). Revoking it again, or on
    /// another replica at the same moment, changes nothing: the first revocation stands.
    pub async fn revoke_jti(
        &self,
        jti: &str,
        server_id: &str,
        now: UnixTime,
        expires_at: UnixTime,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO revoked_tokens (jti, server_id, revoked_at, expires_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti)
        .bind(server_id)
        .bind(now)
        .bind(expires_at)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(())
    }

    /// Housekeeping: denylist entries of tokens past their `exp`, which are refused as expired
    /// anyway (verification allows no leeway).
    pub async fn delete_expired_revocations(
        &self,
        now: UnixTime,
        limit: u32,
    ) -> Result<u64, StoreError> {
        self.delete_batch(
            "DELETE FROM revoked_tokens WHERE jti IN \
             (SELECT jti FROM revoked_tokens WHERE expires_at <= $1 LIMIT $2)",
            now,
            limit,
        )
        .await
    }
}
