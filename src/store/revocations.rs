//! Revoked JWT access tokens, by `jti`, kept until they would have expired anyway.

use super::{on_pool, Store, StoreError};

impl Store {
    pub async fn jti_is_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        let row: Option<(String,)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT jti FROM revoked_tokens WHERE jti = $1",
        )
        .bind(jti)
        .fetch_optional(pool)
        .await?);
        Ok(row.is_some())
    }
}
