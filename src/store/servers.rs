//! Authorization servers.

use super::{on_pool, or_already_exists, Store, StoreError};
use crate::clock::UnixTime;

pub const DEFAULT_SERVER: &str = "default";

/// An authorization server. NULL policy values fall back to the configuration.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
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
    /// The JWS algorithm of its tokens: `RS256` or `ES256`.
    pub signing_alg: String,
    /// PKCE required of every client, confidential ones too (RFC 9700 §2.1.1); public clients
    /// always need it.
    pub require_pkce: bool,
    pub created_at: i64,
    /// RFC 9126 §5: every client must push its authorization requests (PAR).
    pub require_pushed_authorization_requests: bool,
    pub updated_at: i64,
    pub version: i64,
    /// Second factors at sign-in: `off`, `optional` or `required` (`mfa::MfaPolicy`).
    pub mfa: String,
}

impl AuthorizationServer {
    /// The `default` server's issuer is the base URL; every other's is `{base}/oauth2/{id}`.
    pub fn issuer(&self, base: &str) -> String {
        issuer_of(base, &self.id)
    }
}

/// Changes to a server. `None` leaves a value as it is; for a lifetime, `Some(None)` clears the
/// override back to the configuration's default.
#[derive(Debug, Clone, Default)]
pub struct ServerChanges {
    pub name: Option<String>,
    pub audience: Option<String>,
    pub access_token_ttl: Option<Option<i64>>,
    pub id_token_ttl: Option<Option<i64>>,
    pub refresh_token_ttl: Option<Option<i64>>,
    pub refresh_idle_ttl: Option<Option<i64>>,
    pub refresh_reuse_grace: Option<Option<i64>>,
    pub refresh_requires_offline_access: Option<bool>,
    pub signing_alg: Option<String>,
    pub require_pkce: Option<bool>,
    pub require_pushed_authorization_requests: Option<bool>,
}

impl ServerChanges {
    fn apply(&self, server: &mut AuthorizationServer) {
        fn set<T: Clone>(target: &mut T, change: &Option<T>) {
            if let Some(value) = change {
                *target = value.clone();
            }
        }
        set(&mut server.name, &self.name);
        set(&mut server.audience, &self.audience);
        set(&mut server.access_token_ttl, &self.access_token_ttl);
        set(&mut server.id_token_ttl, &self.id_token_ttl);
        set(&mut server.refresh_token_ttl, &self.refresh_token_ttl);
        set(&mut server.refresh_idle_ttl, &self.refresh_idle_ttl);
        set(&mut server.refresh_reuse_grace, &self.refresh_reuse_grace);
        set(
            &mut server.refresh_requires_offline_access,
            &self.refresh_requires_offline_access,
        );
        set(&mut server.signing_alg, &self.signing_alg);
        set(&mut server.require_pkce, &self.require_pkce);
        set(
            &mut server.require_pushed_authorization_requests,
            &self.require_pushed_authorization_requests,
        );
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
    refresh_idle_ttl, refresh_reuse_grace, refresh_requires_offline_access, signing_alg, require_pkce, created_at, updated_at, version, mfa, \
    require_pushed_authorization_requests";

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
        self.cache.invalidate_server(DEFAULT_SERVER);
        Ok(())
    }

    /// The built-in servers: `default`, and `admin`, whose tokens are the keys to the management
    /// API (ES256: its first key costs nothing to generate at start), with the API's scopes.
    /// Replicas racing here insert each row once.
    pub async fn ensure_builtin_servers(&self, now: UnixTime) -> Result<(), StoreError> {
        use crate::protocol::admin_scopes::{ADMIN_AUDIENCE, ADMIN_SCOPES, ADMIN_SERVER};
        self.ensure_default_server(now).await?;
        let added = on_pool!(self, pool => sqlx::query(
            "INSERT INTO authorization_servers (id, name, audience, signing_alg, created_at, \
             updated_at) VALUES ($1, $2, $3, 'ES256', $4, $4) ON CONFLICT (id) DO NOTHING",
        )
        .bind(ADMIN_SERVER)
        .bind("Portcullis management API")
        .bind(ADMIN_AUDIENCE)
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected());
        let mut scopes_added = 0;
        for (name, description) in ADMIN_SCOPES {
            scopes_added += on_pool!(self, pool => sqlx::query(
                "INSERT INTO scopes (server_id, name, description, is_default, created_at) \
                 VALUES ($1, $2, $3, FALSE, $4) ON CONFLICT (server_id, name) DO NOTHING",
            )
            .bind(ADMIN_SERVER)
            .bind(name)
            .bind(description)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected());
        }
        if added + scopes_added > 0 {
            self.cache.invalidate();
        }
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
        or_already_exists(result, || format!("server `{id}`"))?;
        self.cache.invalidate_server(id);
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

    /// A page of servers by id (`Page::after` is a server id).
    pub async fn list_servers(
        &self,
        page: super::Page<'_>,
    ) -> Result<Vec<AuthorizationServer>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM authorization_servers WHERE ($1 IS NULL OR id > $1) \
             ORDER BY id LIMIT $2"
        );
        Ok(
            on_pool!(self, pool => sqlx::query_as::<_, AuthorizationServer>(&sql)
            .bind(page.after)
            .bind(page.sql_limit())
            .fetch_all(pool)
            .await?),
        )
    }

    /// Apply `changes`; `version` and `updated_at` move only when something changed. The
    /// write is conditional on the version read, so two operators editing at once do not
    /// silently undo each other's change: the loser re-reads and re-applies.
    pub async fn update_server(
        &self,
        id: &str,
        changes: &ServerChanges,
        now: UnixTime,
    ) -> Result<AuthorizationServer, StoreError> {
        for _ in 0..3 {
            let current = self
                .server(id)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("server `{id}`")))?;
            let mut updated = current.clone();
            changes.apply(&mut updated);
            if updated == current {
                return Ok(current);
            }
            let written = on_pool!(self, pool => sqlx::query(
                "UPDATE authorization_servers SET name = $1, audience = $2, \
                 access_token_ttl = $3, id_token_ttl = $4, refresh_token_ttl = $5, \
                 refresh_idle_ttl = $6, refresh_reuse_grace = $7, \
                 refresh_requires_offline_access = $8, signing_alg = $12, require_pkce = $13, \
                 require_pushed_authorization_requests = $14, updated_at = $9, version = version + 1 WHERE id = $10 AND version = $11",
            )
            .bind(&updated.name)
            .bind(&updated.audience)
            .bind(updated.access_token_ttl)
            .bind(updated.id_token_ttl)
            .bind(updated.refresh_token_ttl)
            .bind(updated.refresh_idle_ttl)
            .bind(updated.refresh_reuse_grace)
            .bind(updated.refresh_requires_offline_access)
            .bind(now)
            .bind(id)
            .bind(current.version)
            .bind(&updated.signing_alg)
            .bind(updated.require_pkce)
            .bind(updated.require_pushed_authorization_requests)
            .execute(pool)
            .await?
            .rows_affected());
            if written == 1 {
                self.cache.invalidate_server(id);
                return self
                    .server(id)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("server `{id}`")));
            }
        }
        Err(StoreError::Conflict(format!(
            "server `{id}` is being changed by someone else; try again"
        )))
    }

    /// The longest lifetime of a JWT this server may have signed: its own overrides and its
    /// clients'. A retired key stays published at least this long (the configuration's
    /// defaults are the key ring's to add).
    pub async fn max_jwt_ttl(&self, server_id: &str) -> Result<Option<i64>, StoreError> {
        let row: (Option<i64>,) = on_pool!(self, pool => sqlx::query_as(
            "SELECT MAX(ttl) FROM ( \
                 SELECT access_token_ttl AS ttl FROM clients WHERE server_id = $1 \
                 UNION ALL SELECT id_token_ttl FROM clients WHERE server_id = $1 \
                 UNION ALL SELECT access_token_ttl FROM authorization_servers WHERE id = $1 \
                 UNION ALL SELECT id_token_ttl FROM authorization_servers WHERE id = $1 \
             ) AS ttls",
        )
        .bind(server_id)
        .fetch_one(pool)
        .await?);
        Ok(row.0)
    }
}
