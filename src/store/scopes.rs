//! Custom scopes of a server.

use super::{on_pool, Store, StoreError};
use crate::protocol::ScopeSet;

impl Store {
    pub async fn scope_names(&self, server_id: &str) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT name FROM scopes WHERE server_id = $1 ORDER BY name",
        )
        .bind(server_id)
        .fetch_all(pool)
        .await?);
        Ok(rows.into_iter().map(|(name,)| name).collect())
    }

    /// Register scopes a client is given, if the server does not know them yet.
    pub async fn ensure_scopes(
        &self,
        server_id: &str,
        scopes: &ScopeSet,
        now: i64,
    ) -> Result<(), StoreError> {
        for scope in scopes.iter() {
            on_pool!(self, pool => sqlx::query(
                "INSERT INTO scopes (server_id, name, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (server_id, name) DO NOTHING",
            )
            .bind(server_id)
            .bind(scope)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected());
        }
        Ok(())
    }
}

impl Store {
    /// (name, description) of a server's custom scopes, for the consent page.
    pub async fn scope_descriptions(
        &self,
        server_id: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query_as(
            "SELECT name, description FROM scopes WHERE server_id = $1 ORDER BY name",
        )
        .bind(server_id)
        .fetch_all(pool)
        .await?))
    }
}
