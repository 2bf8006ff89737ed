//! Authorization servers.

use super::{is_unique_violation, on_pool, Store, StoreError};
use crate::clock::UnixTime;

pub const DEFAULT_SERVER: &str = "default";

/// An authorization server. NULL policy values fall back to the configuration.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct AuthorizationServer {
    pub id: String,
    pub name: String,
    pub audience: String,
    pub access_token_ttl: Option<i64>,
    pub id_token_ttl: Option<i64>,
    pub refresh_token_ttl: Option<i64>,
    pub refresh_idle_ttl: Option<i64>,
    pub refresh_reuse_grace: Option<i64>,
    pub refresh_requires_offline_access: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
}

impl AuthorizationServer {
    /// The `default` server's issuer is the base URL; every other's is `{base}/oauth2/{id}`.
    pub fn issuer(&self, base: &str) -> String {
        issuer_of(base, &self.id)
    }
}

pub fn issuer_of(base: &str, id: &str) -> String {
    if id == DEFAULT_SERVER {
        base.to_string()
    } else {
        format!("{base}/oauth2/{id}")
    }
}

/// Server ids appear in URLs: keep them to a safe alphabet.
pub fn is_valid_server_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

const COLUMNS: &str = "id, name, audience, access_token_ttl, id_token_ttl, refresh_token_ttl, \
    refresh_idle_ttl, refresh_reuse_grace, refresh_requires_offline_access, created_at, updated_at, version";

impl Store {
    /// The `default` server always exists; replicas racing here insert it once.
    pub async fn ensure_default_server(&self, now: UnixTime) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO authorization_servers (id, name, audience, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $4) ON CONFLICT (id) DO NOTHING",
        )
        .bind(DEFAULT_SERVER)
        .bind("Default")
        .bind("api://default")
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(())
    }

    pub async fn create_server(
        &self,
        id: &str,
        name: &str,
        audience: &str,
        now: UnixTime,
    ) -> Result<AuthorizationServer, StoreError> {
        let result = on_pool!(self, pool => sqlx::query(
            "INSERT INTO authorization_servers (id, name, audience, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $4)",
        )
        .bind(id)
        .bind(name)
        .bind(audience)
        .bind(now)
        .execute(pool)
        .await
        .map(|_| ()));
        match result {
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::AlreadyExists(format!("server `{id}`")));
            }
            other => other?,
        }
        self.server(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("server `{id}`")))
    }

    pub async fn server(&self, id: &str) -> Result<Option<AuthorizationServer>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM authorization_servers WHERE id = $1");
        Ok(
            on_pool!(self, pool => sqlx::query_as::<_, AuthorizationServer>(&sql)
            .bind(id)
            .fetch_optional(pool)
            .await?),
        )
    }

    pub async fn servers(&self) -> Result<Vec<AuthorizationServer>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM authorization_servers ORDER BY id");
        Ok(
            on_pool!(self, pool => sqlx::query_as::<_, AuthorizationServer>(&sql)
            .fetch_all(pool)
            .await?),
        )
    }

    /// The longest lifetime of a JWT this server may have signed, across its clients'
    /// overrides: a retired key stays published at least this long.
    pub async fn max_jwt_ttl(&self, server_id: &str) -> Result<Option<i64>, StoreError> {
        let row: (Option<i64>, Option<i64>) = on_pool!(self, pool => sqlx::query_as(
            "SELECT MAX(access_token_ttl), MAX(id_token_ttl) FROM clients WHERE server_id = $1",
        )
        .bind(server_id)
        .fetch_one(pool)
        .await?);
        Ok(row.0.max(row.1))
    }
}
