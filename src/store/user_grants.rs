//! What a user has granted, for the management API: the grants in force (one per sign-in to a
//! client, or per device or password grant, with their refresh tokens) and the consents
//! remembered per client. Withdrawing one is one transaction: the grant (or every grant of the
//! client) and its refresh tokens together, so nothing is left half revoked.

use serde::Serialize;

use super::{on_pool, Store, StoreError};
use crate::clock::UnixTime;

/// A grant in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct UserGrant {
    pub id: String,
    pub server_id: String,
    pub client_id: String,
    pub scope: String,
    /// The grant type that started it (absent for grants stored before it was recorded).
    pub grant_type: Option<String>,
    /// The sign-in session it was made in (code and implicit flows).
    pub session_sid: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

/// Consent a user gave a client, remembered so the consent page is not shown again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct UserConsent {
    pub server_id: String,
    pub client_id: String,
    pub scope: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A grant's position in a user's list, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantKey {
    pub created_at: i64,
    pub id: String,
}

const GRANT_COLUMNS: &str =
    "id, server_id, client_id, scope, grant_type, session_sid, created_at, expires_at";

impl Store {
    /// A page of the user's grants in force at `now`, newest first, after `after`.
    pub async fn user_grants(
        &self,
        user_id: &str,
        now: UnixTime,
        after: Option<&GrantKey>,
        limit: i64,
    ) -> Result<Vec<UserGrant>, StoreError> {
        let sql = format!(
            "SELECT {GRANT_COLUMNS} FROM grants WHERE user_id = $1 AND revoked_at IS NULL \
             AND expires_at > $2 AND ($3 IS NULL OR (created_at, id) < ($3, $4)) \
             ORDER BY created_at DESC, id DESC LIMIT $5"
        );
        Ok(on_pool!(self, pool => sqlx::query_as::<_, UserGrant>(&sql)
            .bind(user_id)
            .bind(now)
            .bind(after.map(|k| k.created_at))
            .bind(after.map(|k| k.id.as_str()))
            .bind(limit)
            .fetch_all(pool)
            .await?))
    }

    /// One of the user's grants in force.
    pub async fn user_grant(
        &self,
        user_id: &str,
        grant_id: &str,
        now: UnixTime,
    ) -> Result<Option<UserGrant>, StoreError> {
        let sql = format!(
            "SELECT {GRANT_COLUMNS} FROM grants WHERE id = $1 AND user_id = $2 \
             AND revoked_at IS NULL AND expires_at > $3"
        );
        Ok(on_pool!(self, pool => sqlx::query_as::<_, UserGrant>(&sql)
            .bind(grant_id)
            .bind(user_id)
            .bind(now)
            .fetch_optional(pool)
            .await?))
    }

    /// Withdraw the user's grants (one, those of one client, or all) with their refresh
    /// tokens, in one transaction. Access tokens name their grant (`gid`), so /userinfo and
    /// introspection refuse them from now on. With `forget_consent`, the client's remembered
    /// consent goes too (the next sign-in asks again). The number of grants withdrawn.
    pub async fn withdraw_user_grants(
        &self,
        user_id: &str,
        which: UserGrants<'_>,
        forget_consent: bool,
        now: UnixTime,
    ) -> Result<u64, StoreError> {
        let (grant_id, client_id) = match which {
            UserGrants::One(id) => (Some(id), None),
            UserGrants::OfClient(client) => (None, Some(client)),
            UserGrants::All => (None, None),
        };
        const CONDITION: &str = "user_id = $1 AND ($2 IS NULL OR id = $2) \
             AND ($3 IS NULL OR client_id = $3)";
        Ok(on_pool!(self, pool => {
            let mut lane = pool.acquire().await?;
            let mut tx = lane.begin().await?;
            sqlx::query(&format!(
                "UPDATE refresh_tokens SET revoked_at = $4 WHERE revoked_at IS NULL \
                 AND grant_id IN (SELECT id FROM grants WHERE {CONDITION})"
            ))
            .bind(user_id)
            .bind(grant_id)
            .bind(client_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let revoked = sqlx::query(&format!(
                "UPDATE grants SET revoked_at = $4 WHERE {CONDITION} AND revoked_at IS NULL \
                 AND expires_at > $4"
            ))
            .bind(user_id)
            .bind(grant_id)
            .bind(client_id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if forget_consent {
                sqlx::query(
                    "DELETE FROM consents WHERE user_id = $1 AND ($2 IS NULL OR client_id = $2)",
                )
                .bind(user_id)
                .bind(client_id)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            lane.release();
            revoked
        }))
    }

    /// A page of the user's remembered consents, by client id, after `after`.
    pub async fn user_consents(
        &self,
        user_id: &str,
        page: super::Page<'_>,
    ) -> Result<Vec<UserConsent>, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query_as::<_, UserConsent>(
            "SELECT server_id, client_id, scope, created_at, updated_at FROM consents \
             WHERE user_id = $1 AND ($2 IS NULL OR client_id > $2) ORDER BY client_id LIMIT $3",
        )
        .bind(user_id)
        .bind(page.after)
        .bind(page.sql_limit())
        .fetch_all(pool)
        .await?))
    }

    /// The user's remembered consent to one client.
    pub async fn user_consent(
        &self,
        user_id: &str,
        client_id: &str,
    ) -> Result<Option<UserConsent>, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query_as::<_, UserConsent>(
            "SELECT server_id, client_id, scope, created_at, updated_at FROM consents \
             WHERE user_id = $1 AND client_id = $2",
        )
        .bind(user_id)
        .bind(client_id)
        .fetch_optional(pool)
        .await?))
    }
}

/// Which of a user's grants to withdraw.
#[derive(Debug, Clone, Copy)]
pub enum UserGrants<'a> {
    One(&'a str),
    OfClient(&'a str),
    All,
}
