//! Pending authorization requests, between /authorize and the login or consent page. Stored
//! in the database (any replica may serve the next step), keyed by the hash of a random id.

use super::{on_pool, Store, StoreError};
use crate::clock::UnixTime;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredInteraction {
    pub server_id: String,
    /// The validated request and its progress, JSON.
    pub request: String,
    pub csrf_hash: Vec<u8>,
    pub created_at: i64,
    pub expires_at: i64,
}

impl Store {
    pub async fn insert_interaction(
        &self,
        id_hash: &[u8],
        i: &StoredInteraction,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO interactions (id_hash, server_id, request, csrf_hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id_hash)
        .bind(&i.server_id)
        .bind(&i.request)
        .bind(&i.csrf_hash)
        .bind(i.created_at)
        .bind(i.expires_at)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(())
    }

    pub async fn interaction(
        &self,
        id_hash: &[u8],
        now: UnixTime,
    ) -> Result<Option<StoredInteraction>, StoreError> {
        Ok(
            on_pool!(self, pool => sqlx::query_as::<_, StoredInteraction>(
            "SELECT server_id, request, csrf_hash, created_at, expires_at FROM interactions \
             WHERE id_hash = $1 AND expires_at > $2",
        )
        .bind(id_hash)
        .bind(now)
        .fetch_optional(pool)
        .await?),
        )
    }

    pub async fn update_interaction(
        &self,
        id_hash: &[u8],
        request: &str,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query("UPDATE interactions SET request = $2 WHERE id_hash = $1")
            .bind(id_hash)
            .bind(request)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(())
    }

    /// Remove an interaction; true if this call removed it (single use across replicas).
    pub async fn take_interaction(&self, id_hash: &[u8]) -> Result<bool, StoreError> {
        let n = on_pool!(self, pool => sqlx::query("DELETE FROM interactions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    /// Housekeeping: pending interactions nobody finished in time.
    pub async fn delete_expired_interactions(
        &self,
        now: UnixTime,
        limit: u32,
    ) -> Result<u64, StoreError> {
        self.delete_batch(
            "DELETE FROM interactions WHERE id_hash IN \
             (SELECT id_hash FROM interactions WHERE expires_at <= $1 LIMIT $2)",
            now,
            limit,
        )
        .await
    }
}
