//! Dynamic client registration (RFC 7591/7592): each server's policy, initial access tokens and
//! registration access tokens, the tokens stored only as hashes.

use std::collections::HashMap;

use super::{on_pool, Store, StoreError};
use crate::clock::UnixTime;
use crate::security::verify_secret;

/// Who may register clients at a server's `/register`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationPolicy {
    /// Nobody (the default): no `registration_endpoint`.
    Closed,
    /// Whoever holds an initial access token (`portcullis registration-token create`).
    Token,
    /// Anyone (rate-limited per address).
    Open,
}

impl RegistrationPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Token => "token",
            Self::Open => "open",
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "closed" => Ok(Self::Closed),
            "token" => Ok(Self::Token),
            "open" => Ok(Self::Open),
            _ => Err(format!("`{s}` is not closed, token or open")),
        }
    }
}

/// An initial access token as listed (never the token).
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct RegistrationToken {
    pub id: String,
    pub server_id: String,
    pub expires_at: i64,
    pub uses_left: Option<i64>,
    pub created_at: i64,
}

impl Store {
    pub async fn registration_policy(
        &self,
        server_id: &str,
    ) -> Result<RegistrationPolicy, StoreError> {
        let row: Option<(String,)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT policy FROM server_registration WHERE server_id = $1",
        )
        .bind(server_id)
        .fetch_optional(pool)
        .await?);
        match row {
            None => Ok(RegistrationPolicy::Closed),
            Some((policy,)) => RegistrationPolicy::parse(&policy).map_err(StoreError::Corrupt),
        }
    }

    /// The registration policies of several servers in one query, by server id; a server
    /// without a row is closed.
    pub async fn registration_policies(
        &self,
        server_ids: &[&str],
    ) -> Result<HashMap<String, RegistrationPolicy>, StoreError> {
        if server_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let sql = format!(
            "SELECT server_id, policy FROM server_registration WHERE server_id IN ({})",
            super::placeholders(1, server_ids.len())
        );
        let rows: Vec<(String, String)> = on_pool!(self, pool => {
            let mut query = sqlx::query_as(&sql);
            for id in server_ids {
                query = query.bind(*id);
            }
            query.fetch_all(pool).await?
        });
        let mut policies = HashMap::with_capacity(server_ids.len());
        for (server_id, policy) in rows {
            let policy = RegistrationPolicy::parse(&policy).map_err(StoreError::Corrupt)?;
            policies.insert(server_id, policy);
        }
        for id in server_ids {
            policies
                .entry((*id).to_string())
                .or_insert(RegistrationPolicy::Closed);
        }
        Ok(policies)
    }

    pub async fn set_registration_policy(
        &self,
        server_id: &str,
        policy: RegistrationPolicy,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        if policy == RegistrationPolicy::Closed {
            on_pool!(self, pool => sqlx::query("DELETE FROM server_registration WHERE server_id = $1")
                .bind(server_id)
                .execute(pool)
                .await?
                .rows_affected());
        } else {
            on_pool!(self, pool => sqlx::query(
                "INSERT INTO server_registration (server_id, policy, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (server_id) DO UPDATE SET policy = $2, updated_at = $3",
            )
            .bind(server_id)
            .bind(policy.as_str())
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected());
        }
        // Discovery advertises the endpoint: the server's row moves with the policy, so every
        // replica drops its cached server (and the document rendered from it) at its next check.
        on_pool!(self, pool => sqlx::query(
            "UPDATE authorization_servers SET version = version + 1, updated_at = $2 WHERE id = $1",
        )
        .bind(server_id)
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected());
        self.cache.invalidate_server(server_id);
        Ok(())
    }

    pub async fn insert_registration_token(
        &self,
        token: &RegistrationToken,
        token_hash: &[u8],
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO registration_tokens (id, server_id, token_hash, expires_at, uses_left, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&token.id)
        .bind(&token.server_id)
        .bind(token_hash)
        .bind(token.expires_at)
        .bind(token.uses_left)
        .bind(token.created_at)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(())
    }

    pub async fn registration_tokens(
        &self,
        server_id: &str,
    ) -> Result<Vec<RegistrationToken>, StoreError> {
        Ok(
            on_pool!(self, pool => sqlx::query_as::<_, RegistrationToken>(
            "SELECT id, server_id, expires_at, uses_left, created_at FROM registration_tokens \
             WHERE server_id = $1 ORDER BY created_at, id",
        )
        .bind(server_id)
        .fetch_all(pool)
        .await?),
        )
    }

    pub async fn delete_registration_token(&self, id: &str) -> Result<bool, StoreError> {
        let n = on_pool!(self, pool => sqlx::query("DELETE FROM registration_tokens WHERE id = $1")
            .bind(id)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    /// Spend one use of an initial access token of `server_id`, atomically on both databases:
    /// two registrations racing for the last use cannot both have it. False when the token is
    /// unknown, of another server, expired or used up.
    pub async fn use_registration_token(
        &self,
        server_id: &str,
        token_hash: &[u8],
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let n = on_pool!(self, pool => sqlx::query(
            "UPDATE registration_tokens SET uses_left = uses_left - 1 \
             WHERE token_hash = $1 AND server_id = $2 AND expires_at > $3 \
               AND (uses_left IS NULL OR uses_left > 0)",
        )
        .bind(token_hash)
        .bind(server_id)
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(n == 1)
    }

    /// Set (or replace) a client's registration access token.
    pub async fn set_registration_access_token(
        &self,
        client_id: &str,
        token_hash: &[u8],
        now: UnixTime,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO client_registrations (client_id, access_token_hash, created_at) \
             VALUES ($1, $2, $3) ON CONFLICT (client_id) DO UPDATE SET access_token_hash = $2",
        )
        .bind(client_id)
        .bind(token_hash)
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(())
    }

    /// Does `presented` match the registration access token of `client_id`? Compared in
    /// constant time; false for a client registered any other way.
    pub async fn registration_access_token_matches(
        &self,
        client_id: &str,
        presented: &str,
    ) -> Result<bool, StoreError> {
        let row: Option<(Vec<u8>,)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT access_token_hash FROM client_registrations WHERE client_id = $1",
        )
        .bind(client_id)
        .fetch_optional(pool)
        .await?);
        Ok(row.is_some_and(|(hash,)| verify_secret(presented, &hash)))
    }
}
