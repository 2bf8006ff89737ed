//! Pushed authorization requests (RFC 9126): the parameters a client pushed, keyed by the hash
//! of the `request_uri` it was given, each redeemable once before it expires.

use super::{on_pool, Store, StoreError};
use crate::clock::UnixTime;

/// A pushed request, as /authorize takes it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PushedRequest {
    pub server_id: String,
    pub client_id: String,
    /// The authorization request's parameters, a JSON object of strings.
    pub parameters: String,
}

impl Store {
    pub async fn insert_pushed_request(
        &self,
        request_hash: &[u8],
        request: &PushedRequest,
        now: UnixTime,
        expires_at: UnixTime,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO pushed_requests (request_hash, server_id, client_id, parameters, \
             created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(request_hash)
        .bind(&request.server_id)
        .bind(&request.client_id)
        .bind(&request.parameters)
        .bind(now)
        .bind(expires_at)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(())
    }

    /// Take a pushed request: at most once, before it expires, atomically on either database
    /// (the conditional UPDATE succeeds for exactly one caller on any replica). `None` when it
    /// is unknown, used or expired.
    pub async fn take_pushed_request(
        &self,
        request_hash: &[u8],
        now: UnixTime,
    ) -> Result<Option<PushedRequest>, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query_as::<_, PushedRequest>(
            "UPDATE pushed_requests SET consumed_at = $2 \
             WHERE request_hash = $1 AND consumed_at IS NULL AND expires_at > $2 \
             RETURNING server_id, client_id, parameters",
        )
        .bind(request_hash)
        .bind(now)
        .fetch_optional(pool)
        .await?))
    }

    /// Housekeeping: pushed requests past their expiry, used or not.
    pub async fn delete_expired_pushed_requests(
        &self,
        now: UnixTime,
        limit: u32,
    ) -> Result<u64, StoreError> {
        self.delete_batch(
            "DELETE FROM pushed_requests WHERE request_hash IN \
             (SELECT request_hash FROM pushed_requests WHERE expires_at <= $1 LIMIT $2)",
            now,
            limit,
        )
        .await
    }
}
