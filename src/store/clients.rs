//! Clients. Each belongs to one authorization server.

use std::sync::{Arc, OnceLock};

use jsonwebtoken::jwk::JwkSet;

use super::client_security::ClientSecurity;
use super::{on_pool, split_list, Store, StoreError};
use crate::protocol::scope::{OFFLINE_ACCESS, OIDC_SCOPES};
use crate::protocol::{ClientAuthMethod, GrantType, ScopeSet};
use crate::security::verify_secret;

/// A registered client, parsed from its row.
#[derive(Clone)]
pub struct Client {
    pub id: String,
    pub server_id: String,
    pub name: String,
    secret_hash: Option<Vec<u8>>,
    pub auth_method: ClientAuthMethod,
    pub first_party: bool,
    pub grant_types: Vec<GrantType>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub scopes: ScopeSet,
    pub default_scopes: ScopeSet,
    pub access_token_ttl: Option<i64>,
    pub id_token_ttl: Option<i64>,
    pub refresh_token_ttl: Option<i64>,
    /// RFC 8693: the audiences this client may exchange tokens for; empty: no token exchange.
    pub token_exchange_audiences: Vec<String>,
    /// Only users assigned to the client (directly or through a group) get tokens.
    pub assignment_required: bool,
    pub created_at: i64,
    pub updated_at: i64,
    /// Second factors at sign-in: the server's policy, or a stricter one of its own.
    pub mfa: crate::mfa::ClientMfa,
    /// Keys and requirements of a high-assurance client (`store::client_security`).
    pub security: ClientSecurity,
    /// `security.jwks` parsed, on first use (`client_keys`). It lives and dies with this value:
    /// the per-replica cache (`store::cache`) drops a client on any change to its row, and the
    /// reloaded `Client` starts with an empty cell, so a changed JWK Set is never served stale.
    parsed_jwks: OnceLock<Result<Arc<JwkSet>, String>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.id)
            .field("server_id", &self.server_id)
            .field("auth_method", &self.auth_method)
            .field("grant_types", &self.grant_types)
            .finish_non_exhaustive()
    }
}

impl Client {
    pub fn is_public(&self) -> bool {
        self.auth_method == ClientAuthMethod::None
    }

    pub fn allows(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }

    /// May this client be granted `scope` for a user? The OIDC scopes, `offline_access` when it
    /// may refresh, and the scopes registered for it.
    pub fn may_request(&self, scope: &str) -> bool {
        OIDC_SCOPES.contains(&scope)
            || (scope == OFFLINE_ACCESS && self.allows(GrantType::RefreshToken))
            || self.scopes.contains(scope)
    }

    /// The inline JWK Set (`security.jwks`), parsed by `parse` the first time it is asked for
    /// and kept with this client; `None` when the client registered none inline.
    pub fn inline_jwks(
        &self,
        parse: impl FnOnce(&str) -> Result<JwkSet, String>,
    ) -> Option<Result<Arc<JwkSet>, String>> {
        let inline = self.security.jwks.as_deref()?;
        Some(
            self.parsed_jwks
                .get_or_init(|| parse(inline).map(Arc::new))
                .clone(),
        )
    }

    /// Constant-time check of a presented secret; a public client has none to match.
    pub fn secret_matches(&self, presented: &str) -> bool {
        match &self.secret_hash {
            Some(hash) => verify_secret(presented, hash),
            None => false,
        }
    }

    /// The JSON shown by `client show|list` (never the secret or its hash).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "client_id": self.id,
            "server": self.server_id,
            "name": self.name,
            "token_endpoint_auth_method": self.auth_method.as_str(),
            "public": self.is_public(),
            "first_party": self.first_party,
            "grant_types": self.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
            "redirect_uris": self.redirect_uris,
            "post_logout_redirect_uris": self.post_logout_redirect_uris,
            "scope": self.scopes.to_string(),
            "default_scope": self.default_scopes.to_string(),
            "access_token_ttl": self.access_token_ttl,
            "id_token_ttl": self.id_token_ttl,
            "refresh_token_ttl": self.refresh_token_ttl,
            "token_exchange_audiences": self.token_exchange_audiences,
            "assignment_required": self.assignment_required,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "mfa": self.mfa.as_str(),
            "jwks": self.security.jwks_json(),
            "jwks_uri": self.security.jwks_uri,
            "require_dpop": self.security.require_dpop,
            "require_pushed_authorization_requests": self.security.require_par,
            "require_signed_request_object": self.security.require_signed_request_object,
        })
    }
}

/// A client about to be stored; the secret is already hashed.
#[derive(Debug, Clone)]
pub struct NewClient {
    pub id: String,
    pub server_id: String,
    pub name: String,
    pub secret_hash: Option<Vec<u8>>,
    pub auth_method: ClientAuthMethod,
    pub first_party: bool,
    pub grant_types: Vec<GrantType>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub scopes: ScopeSet,
    pub default_scopes: ScopeSet,
}

impl NewClient {
    /// The client this registration becomes once stored at `now`, without a database: for
    /// parsing requests in isolation (the fuzz targets).
    pub fn into_client(self, now: i64) -> Client {
        Client {
            id: self.id,
            server_id: self.server_id,
            name: self.name,
            secret_hash: self.secret_hash,
            auth_method: self.auth_method,
            first_party: self.first_party,
            grant_types: self.grant_types,
            redirect_uris: self.redirect_uris,
            post_logout_redirect_uris: self.post_logout_redirect_uris,
            scopes: self.scopes,
            default_scopes: self.default_scopes,
            access_token_ttl: None,
            id_token_ttl: None,
            refresh_token_ttl: None,
            token_exchange_audiences: Vec::new(),
            assignment_required: false,
            created_at: now,
            updated_at: now,
            mfa: crate::mfa::ClientMfa::Default,
            security: ClientSecurity::default(),
            parsed_jwks: OnceLock::new(),
        }
    }
}

#[derive(sqlx::FromRow)]
struct ClientRow {
    id: String,
    server_id: String,
    name: String,
    secret_hash: Option<Vec<u8>>,
    token_endpoint_auth_method: String,
    first_party: bool,
    grant_types: String,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    scopes: String,
    default_scopes: String,
    access_token_ttl: Option<i64>,
    id_token_ttl: Option<i64>,
    refresh_token_ttl: Option<i64>,
    token_exchange_audiences: String,
    assignment_required: bool,
    created_at: i64,
    updated_at: i64,
    mfa: String,
    #[sqlx(flatten)]
    security: ClientSecurity,
}

impl TryFrom<ClientRow> for Client {
    type Error = StoreError;
    fn try_from(row: ClientRow) -> Result<Self, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("client {}: {what}", row.id));
        let grant_types = split_list(&row.grant_types)
            .iter()
            .map(|g| g.parse())
            .collect::<Result<Vec<GrantType>, _>>()
            .map_err(|e| corrupt(&e))?;
        Ok(Client {
            auth_method: row
                .token_endpoint_auth_method
                .parse()
                .map_err(|e: String| corrupt(&e))?,
            scopes: ScopeSet::parse(&row.scopes).map_err(|e| corrupt(&e.to_string()))?,
            default_scopes: ScopeSet::parse(&row.default_scopes)
                .map_err(|e| corrupt(&e.to_string()))?,
            grant_types,
            redirect_uris: split_list(&row.redirect_uris),
            post_logout_redirect_uris: split_list(&row.post_logout_redirect_uris),
            id: row.id,
            server_id: row.server_id,
            name: row.name,
            secret_hash: row.secret_hash,
            first_party: row.first_party,
            access_token_ttl: row.access_token_ttl,
            id_token_ttl: row.id_token_ttl,
            refresh_token_ttl: row.refresh_token_ttl,
            token_exchange_audiences: split_list(&row.token_exchange_audiences),
            assignment_required: row.assignment_required,
            created_at: row.created_at,
            updated_at: row.updated_at,
            mfa: crate::mfa::ClientMfa::from_stored(&row.mfa),
            security: row.security,
            parsed_jwks: OnceLock::new(),
        })
    }
}

const COLUMNS: &str = "id, server_id, name, secret_hash, token_endpoint_auth_method, first_party, \
    grant_types, redirect_uris, post_logout_redirect_uris, scopes, default_scopes, \
    access_token_ttl, id_token_ttl, refresh_token_ttl, token_exchange_audiences, \
    assignment_required, created_at, updated_at, mfa, \
    jwks, jwks_uri, require_dpop, require_par, require_signed_request_object";

fn join(items: impl IntoIterator<Item = impl AsRef<str>>, sep: &str) -> String {
    items
        .into_iter()
        .map(|s| s.as_ref().to_string())
        .collect::<Vec<_>>()
        .join(sep)
}

/// A client's position in the order of client lists.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClientKey {
    pub server_id: String,
    pub name: String,
    pub id: String,
}

impl Store {
    pub async fn insert_client(&self, new: &NewClient, now: i64) -> Result<Client, StoreError> {
        let grant_types = join(new.grant_types.iter().map(|g| g.as_str()), " ");
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO clients (id, server_id, name, secret_hash, token_endpoint_auth_method, \
             first_party, grant_types, redirect_uris, post_logout_redirect_uris, scopes, \
             default_scopes, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)",
        )
        .bind(&new.id)
        .bind(&new.server_id)
        .bind(&new.name)
        .bind(&new.secret_hash)
        .bind(new.auth_method.as_str())
        .bind(new.first_party)
        .bind(&grant_types)
        .bind(join(&new.redirect_uris, "\n"))
        .bind(join(&new.post_logout_redirect_uris, "\n"))
        .bind(new.scopes.to_string())
        .bind(new.default_scopes.to_string())
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected());
        self.cache.invalidate_server(&new.server_id);
        self.client(&new.id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("client `{}`", new.id)))
    }

    pub async fn client(&self, id: &str) -> Result<Option<Client>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM clients WHERE id = $1");
        let row = on_pool!(self, pool => sqlx::query_as::<_, ClientRow>(&sql)
            .bind(id)
            .fetch_optional(pool)
            .await?);
        row.map(Client::try_from).transpose()
    }

    pub async fn clients(&self, server_id: Option<&str>) -> Result<Vec<Client>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM clients WHERE ($1 IS NULL OR server_id = $1) ORDER BY server_id, name, id"
        );
        let rows = on_pool!(self, pool => sqlx::query_as::<_, ClientRow>(&sql)
            .bind(server_id)
            .fetch_all(pool)
            .await?);
        rows.into_iter().map(Client::try_from).collect()
    }

    /// A page of clients, of one server or of all, in the order of `clients` (server, name,
    /// id); `Page::after` is a client id. `NotFound` when that client does not exist.
    pub async fn list_clients(
        &self,
        server_id: Option<&str>,
        page: super::Page<'_>,
    ) -> Result<Vec<Client>, StoreError> {
        let after = match page.after {
            None => None,
            Some(after) => {
                let client = self
                    .client(after)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("client `{after}`")))?;
                Some(ClientKey {
                    server_id: client.server_id,
                    name: client.name,
                    id: client.id,
                })
            }
        };
        self.clients_after(server_id, after.as_ref(), page.sql_limit())
            .await
    }

    /// A page of clients after a position in the order (server, name, id), which need not be a
    /// client that still exists (the management API's cursor outlives a deleted client).
    pub async fn clients_after(
        &self,
        server_id: Option<&str>,
        after: Option<&ClientKey>,
        limit: i64,
    ) -> Result<Vec<Client>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM clients WHERE ($1 IS NULL OR server_id = $1) \
             AND ($2 IS NULL OR (server_id, name, id) > ($2, $3, $4)) \
             ORDER BY server_id, name, id LIMIT $5"
        );
        let rows = on_pool!(self, pool => sqlx::query_as::<_, ClientRow>(&sql)
            .bind(server_id)
            .bind(after.map(|k| k.server_id.as_str()))
            .bind(after.map(|k| k.name.as_str()))
            .bind(after.map(|k| k.id.as_str()))
            .bind(limit)
            .fetch_all(pool)
            .await?);
        rows.into_iter().map(Client::try_from).collect()
    }

    /// Write back what `client update` may change: everything but the id, the server, the
    /// secret and the authentication method.
    pub async fn update_client(&self, client: &Client, now: i64) -> Result<Client, StoreError> {
        let grant_types = join(client.grant_types.iter().map(|g| g.as_str()), " ");
        let done = on_pool!(self, pool => sqlx::query(
            "UPDATE clients SET name = $1, first_party = $2, grant_types = $3, \
             redirect_uris = $4, post_logout_redirect_uris = $5, scopes = $6, \
             default_scopes = $7, access_token_ttl = $8, id_token_ttl = $9, \
             refresh_token_ttl = $10, updated_at = $11, token_exchange_audiences = $13 \
             WHERE id = $12",
        )
        .bind(&client.name)
        .bind(client.first_party)
        .bind(&grant_types)
        .bind(join(&client.redirect_uris, "\n"))
        .bind(join(&client.post_logout_redirect_uris, "\n"))
        .bind(client.scopes.to_string())
        .bind(client.default_scopes.to_string())
        .bind(client.access_token_ttl)
        .bind(client.id_token_ttl)
        .bind(client.refresh_token_ttl)
        .bind(now)
        .bind(&client.id)
        .bind(join(&client.token_exchange_audiences, " "))
        .execute(pool)
        .await?
        .rows_affected());
        self.cache.invalidate_server(&client.server_id);
        if done == 0 {
            return Err(StoreError::NotFound(format!("client `{}`", client.id)));
        }
        self.client(&client.id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("client `{}`", client.id)))
    }

    /// Replace a confidential client's secret hash. `false` when there is no such client or
    /// it is public (it has no secret, and gets none this way).
    pub async fn set_client_secret(
        &self,
        id: &str,
        secret_hash: &[u8],
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = on_pool!(self, pool => sqlx::query(
            "UPDATE clients SET secret_hash = $1, updated_at = $2 \
             WHERE id = $3 AND secret_hash IS NOT NULL",
        )
        .bind(secret_hash)
        .bind(now)
        .bind(id)
        .execute(pool)
        .await?
        .rows_affected());
        self.cache.invalidate_client(id);
        Ok(done == 1)
    }

    /// Delete a client; its grants, codes and refresh tokens go with it.
    pub async fn delete_client(&self, id: &str) -> Result<bool, StoreError> {
        let done = on_pool!(self, pool => sqlx::query("DELETE FROM clients WHERE id = $1")
            .bind(id)
            .execute(pool)
            .await?
            .rows_affected());
        self.cache.invalidate_client(id);
        Ok(done == 1)
    }
}
