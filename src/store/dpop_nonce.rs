//! The key DPoP nonces are derived from (`tokens::dpop_nonce`): one row, written once.

use super::{on_pool, Store, StoreError};

const KEY_ID: &str = "current";

impl Store {
    /// The stored key: how it is stored (`plain` or sealed) and the bytes.
    pub async fn dpop_nonce_key(&self) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query_as(
            "SELECT storage, secret FROM dpop_nonce_keys WHERE id = $1",
        )
        .bind(KEY_ID)
        .fetch_optional(pool)
        .await?))
    }

    /// Store the key unless another replica stored one first (then theirs stands).
    pub async fn insert_dpop_nonce_key(
        &self,
        storage: &str,
        secret: &[u8],
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO dpop_nonce_keys (id, storage, secret, created_at) VALUES ($1, $2, $3, 0) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(KEY_ID)
        .bind(storage)
        .bind(secret)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(())
    }
}
