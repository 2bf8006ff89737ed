//! Signing keys.

use super::{is_unique_violation, on_pool, Store, StoreError};

#[derive(Clone, sqlx::FromRow)]
pub struct StoredKey {
    pub kid: String,
    pub server_id: String,
    pub generation: i64,
    pub alg: String,
    pub private_key: Vec<u8>,
    pub public_jwk: String,
    pub created_at: i64,
    pub not_before: i64,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("server_id", &self.server_id)
            .field("generation", &self.generation)
            .field("alg", &self.alg)
            .field("private_key", &"[redacted]")
            .field("not_before", &self.not_before)
            .finish()
    }
}

impl Store {
    /// Every key of a server, oldest generation first.
    pub async fn keys(&self, server_id: &str) -> Result<Vec<StoredKey>, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query_as::<_, StoredKey>(
            "SELECT kid, server_id, generation, alg, private_key, public_jwk, created_at, not_before \
             FROM signing_keys WHERE server_id = $1 ORDER BY generation",
        )
        .bind(server_id)
        .fetch_all(pool)
        .await?))
    }

    /// Insert a key as the next generation. Returns false when another writer took that
    /// generation first (two replicas generating or rotating at once: exactly one wins).
    pub async fn insert_key(&self, key: &StoredKey) -> Result<bool, StoreError> {
        let result = on_pool!(self, pool => sqlx::query(
            "INSERT INTO signing_keys \
             (kid, server_id, generation, alg, private_key, public_jwk, created_at, not_before) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (server_id, generation) DO NOTHING",
        )
        .bind(&key.kid)
        .bind(&key.server_id)
        .bind(key.generation)
        .bind(&key.alg)
        .bind(&key.private_key)
        .bind(&key.public_jwk)
        .bind(key.created_at)
        .bind(key.not_before)
        .execute(pool)
        .await
        .map(|done| done.rows_affected()));
        match result {
            Ok(rows) => Ok(rows == 1),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Remove keys that are no longer published (housekeeping).
    pub async fn delete_key(&self, kid: &str) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query("DELETE FROM signing_keys WHERE kid = $1")
            .bind(kid)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(())
    }

    /// The newest generation of a server's keys, if any.
    pub async fn latest_key_generation(&self, server_id: &str) -> Result<Option<i64>, StoreError> {
        let row: (Option<i64>,) = on_pool!(self, pool => sqlx::query_as(
            "SELECT MAX(generation) FROM signing_keys WHERE server_id = $1",
        )
        .bind(server_id)
        .fetch_one(pool)
        .await?);
        Ok(row.0)
    }
}
