//! Custom scopes of a server. The OIDC scopes are built in and never stored; scopes given to a
//! client are registered here too, so discovery lists them.

use super::{on_pool, or_already_exists, Store, StoreError};
use crate::protocol::ScopeSet;

/// A custom scope. Its description is shown on the consent page; a default scope is granted
/// to a client that asks for none and has no default scopes of its own.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct Scope {
    #[serde(rename = "server")]
    pub server_id: String,
    pub name: String,
    pub description: String,
    #[serde(rename = "default")]
    pub is_default: bool,
    pub created_at: i64,
}

const COLUMNS: &str = "server_id, name, description, is_default, created_at";

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
        self.cache.invalidate_server(server_id);
        Ok(())
    }

    pub async fn create_scope(
        &self,
        server_id: &str,
        name: &str,
        description: &str,
        is_default: bool,
        now: i64,
    ) -> Result<Scope, StoreError> {
        let result = on_pool!(self, pool => sqlx::query(
            "INSERT INTO scopes (server_id, name, description, is_default, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(server_id)
        .bind(name)
        .bind(description)
        .bind(is_default)
        .bind(now)
        .execute(pool)
        .await
        .map(|_| ()));
        or_already_exists(result, || format!("scope `{name}` of server `{server_id}`"))?;
        self.cache.invalidate_server(server_id);
        self.scope(server_id, name)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("scope `{name}`")))
    }

    pub async fn scope(&self, server_id: &str, name: &str) -> Result<Option<Scope>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM scopes WHERE server_id = $1 AND name = $2");
        Ok(on_pool!(self, pool => sqlx::query_as::<_, Scope>(&sql)
            .bind(server_id)
            .bind(name)
            .fetch_optional(pool)
            .await?))
    }

    pub async fn scopes(&self, server_id: &str) -> Result<Vec<Scope>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM scopes WHERE server_id = $1 ORDER BY name");
        Ok(on_pool!(self, pool => sqlx::query_as::<_, Scope>(&sql)
            .bind(server_id)
            .fetch_all(pool)
            .await?))
    }

    /// A page of a server's custom scopes by name (`Page::after` is a scope name): keyset
    /// paging on the primary key (server_id, name).
    pub async fn list_scopes(
        &self,
        server_id: &str,
        page: super::Page<'_>,
    ) -> Result<Vec<Scope>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM scopes WHERE server_id = $1 AND ($2 IS NULL OR name > $2) \
             ORDER BY name LIMIT $3"
        );
        Ok(on_pool!(self, pool => sqlx::query_as::<_, Scope>(&sql)
            .bind(server_id)
            .bind(page.after)
            .bind(page.sql_limit())
            .fetch_all(pool)
            .await?))
    }

    /// The server's default scopes.
    pub async fn default_scopes(&self, server_id: &str) -> Result<ScopeSet, StoreError> {
        let rows: Vec<(String,)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT name FROM scopes WHERE server_id = $1 AND is_default = $2",
        )
        .bind(server_id)
        .bind(true)
        .fetch_all(pool)
        .await?);
        ScopeSet::from_tokens(rows.into_iter().map(|(name,)| name))
            .map_err(|e| StoreError::Corrupt(format!("scope of server {server_id}: {e}")))
    }

    /// Change a scope's description or default flag (`None` leaves it as it is).
    pub async fn update_scope(
        &self,
        server_id: &str,
        name: &str,
        description: Option<&str>,
        is_default: Option<bool>,
    ) -> Result<Option<Scope>, StoreError> {
        let done = on_pool!(self, pool => sqlx::query(
            "UPDATE scopes SET description = COALESCE($1, description), \
             is_default = COALESCE($2, is_default) WHERE server_id = $3 AND name = $4",
        )
        .bind(description)
        .bind(is_default)
        .bind(server_id)
        .bind(name)
        .execute(pool)
        .await?
        .rows_affected());
        self.cache.invalidate_server(server_id);
        if done == 0 {
            return Ok(None);
        }
        self.scope(server_id, name).await
    }

    pub async fn delete_scope(&self, server_id: &str, name: &str) -> Result<bool, StoreError> {
        let done = on_pool!(self, pool => sqlx::query(
            "DELETE FROM scopes WHERE server_id = $1 AND name = $2",
        )
        .bind(server_id)
        .bind(name)
        .execute(pool)
        .await?
        .rows_affected());
        self.cache.invalidate_server(server_id);
        Ok(done == 1)
    }

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
