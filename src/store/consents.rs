//! Remembered consent, per server, user and client.

use super::{on_pool, Store, StoreError};
use crate::clock::UnixTime;
use crate::protocol::ScopeSet;

impl Store {
    pub async fn consented_scope(
        &self,
        server_id: &str,
        user_id: &str,
        client_id: &str,
    ) -> Result<Option<ScopeSet>, StoreError> {
        let row: Option<(String,)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT scope FROM consents WHERE server_id = $1 AND user_id = $2 AND client_id = $3",
        )
        .bind(server_id)
        .bind(user_id)
        .bind(client_id)
        .fetch_optional(pool)
        .await?);
        row.map(|(s,)| ScopeSet::parse(&s).map_err(|e| StoreError::Corrupt(e.to_string())))
            .transpose()
    }

    /// Remember consent to `scope` (added to what was consented before).
    pub async fn save_consent(
        &self,
        server_id: &str,
        user_id: &str,
        client_id: &str,
        scope: &ScopeSet,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO consents (server_id, user_id, client_id, scope, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (server_id, user_id, client_id) \
             DO UPDATE SET scope = excluded.scope, updated_at = excluded.updated_at",
        )
        .bind(server_id)
        .bind(user_id)
        .bind(client_id)
        .bind(scope.to_string())
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(())
    }
}
