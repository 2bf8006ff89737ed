//! Grants and authorization codes. Every token carries its grant id, so a replayed code
//! withdraws everything issued under that grant.

use std::sync::LazyLock;

use super::{on_pool, Db, Store, StoreError};
use crate::clock::UnixTime;
use crate::protocol::GrantType;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuthorizationCode {
    pub grant_id: String,
    pub server_id: String,
    pub client_id: String,
    pub user_id: String,
    pub session_sid: Option<String>,
    pub redirect_uri: String,
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub auth_time: i64,
    pub claims_request: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    /// The session's factors when the code was issued (`mfa::Amr`, space-separated).
    pub amr: Option<String>,
    /// The `acr` its ID token carries, when requested or when an MFA policy applied.
    pub acr: Option<String>,
    /// RFC 9449 §10: the DPoP key (`dpop_jkt` at /authorize) the code is bound to.
    pub dpop_jkt: Option<String>,
}

/// What redeeming a code found.
#[derive(Debug)]
pub enum Redemption {
    /// This call consumed it, and whether its grant is still active (not revoked, expired or
    /// gone), read by the same statement. Boxed: the record dwarfs the other variants
    /// (clippy::large_enum_variant).
    Redeemed {
        code: Box<AuthorizationCode>,
        grant_active: bool,
    },
    /// It was consumed before: a replay. The grant it belongs to.
    Replayed {
        grant_id: String,
    },
    Unknown,
}

const CODE_COLUMNS: &str = "grant_id, server_id, client_id, user_id, session_sid, redirect_uri, \
    scope, nonce, code_challenge, code_challenge_method, auth_time, claims_request, created_at, expires_at, amr, acr, \
    dpop_jkt";

impl Store {
    /// A grant made outside a browser session (the password grant).
    #[allow(clippy::too_many_arguments)]
    pub async fn insert_grant(
        &self,
        id: &str,
        server_id: &str,
        client_id: &str,
        user_id: Option<&str>,
        scope: &str,
        now: UnixTime,
        expires_at: UnixTime,
        grant_type: GrantType,
    ) -> Result<(), StoreError> {
        self.insert_session_grant(
            id, server_id, client_id, user_id, None, scope, now, expires_at, grant_type,
        )
        .await
    }

    /// A grant, made in browser session `session_sid` when there is one: a logout of that
    /// session tells the grant's client (`store::logout`).
    #[allow(clippy::too_many_arguments)]
    pub async fn insert_session_grant(
        &self,
        id: &str,
        server_id: &str,
        client_id: &str,
        user_id: Option<&str>,
        session_sid: Option<&str>,
        scope: &str,
        now: UnixTime,
        expires_at: UnixTime,
        grant_type: GrantType,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO grants (id, server_id, client_id, user_id, session_sid, scope, created_at, \
             expires_at, grant_type) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(id)
        .bind(server_id)
        .bind(client_id)
        .bind(user_id)
        .bind(session_sid)
        .bind(scope)
        .bind(now)
        .bind(expires_at)
        .bind(grant_type.as_str())
        .execute(pool)
        .await?
        .rows_affected());
        Ok(())
    }

    /// Withdraw a grant and the refresh tokens issued under it. Access tokens carry the grant
    /// id (`gid`), so /userinfo and introspection refuse them from now on.
    pub async fn revoke_grant(&self, id: &str, now: UnixTime) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query("UPDATE grants SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                .bind(id)
                .bind(now)
                .execute(pool)
                .await?;
            sqlx::query(
                "UPDATE refresh_tokens SET revoked_at = $2 WHERE grant_id = $1 AND revoked_at IS NULL",
            )
            .bind(id)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    /// The grant type that started a grant's family (`None` for grants stored before it was
    /// recorded, or an unknown grant).
    pub async fn grant_type_of(&self, id: &str) -> Result<Option<GrantType>, StoreError> {
        let row: Option<(Option<String>,)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT grant_type FROM grants WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(pool)
        .await?);
        Ok(row.and_then(|(g,)| g).and_then(|g| g.parse().ok()))
    }

    /// Is the grant still in force?
    pub async fn grant_is_active(&self, id: &str, now: UnixTime) -> Result<bool, StoreError> {
        // A real column, not `SELECT 1`: PostgreSQL types a literal 1 as INT4.
        let row: Option<(String,)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT id FROM grants WHERE id = $1 AND revoked_at IS NULL AND expires_at > $2",
        )
        .bind(id)
        .bind(now)
        .fetch_optional(pool)
        .await?);
        Ok(row.is_some())
    }

    pub async fn insert_code(
        &self,
        code_hash: &[u8],
        c: &AuthorizationCode,
    ) -> Result<(), StoreError> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "{INSERT_CODE} VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
            )
        });
        on_pool!(self, pool => bind_code(sqlx::query(&SQL), code_hash, c)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(())
    }

    /// Store a user's grant and the authorization code issued under it. On PostgreSQL one
    /// statement (the code's INSERT reads the grant's), so one round trip and atomic; SQLite has
    /// no data-modifying CTEs, and a grant left without its code is harmless (nothing refers to
    /// it, and housekeeping deletes it when it expires).
    pub async fn insert_grant_with_code(
        &self,
        grant_scope: &str,
        grant_expires_at: UnixTime,
        code_hash: &[u8],
        c: &AuthorizationCode,
    ) -> Result<(), StoreError> {
        match &self.db {
            Db::Postgres(lanes) => {
                static SQL: LazyLock<String> = LazyLock::new(|| {
                    format!(
                        "WITH g AS (INSERT INTO grants (id, server_id, client_id, user_id, session_sid, \
                         scope, created_at, expires_at, grant_type) \
                         VALUES ($2, $3, $4, $5, $6, $20, $14, $19, 'authorization_code') RETURNING id) \
                         {INSERT_CODE} \
                         SELECT $1, g.id, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18 FROM g"
                    )
                });
                bind_code(sqlx::query(&SQL), code_hash, c)
                    .bind(grant_expires_at)
                    .bind(grant_scope)
                    .execute(&**lanes)
                    .await?;
                Ok(())
            }
            Db::Sqlite(_) => {
                self.insert_session_grant(
                    &c.grant_id,
                    &c.server_id,
                    &c.client_id,
                    Some(&c.user_id),
                    c.session_sid.as_deref(),
                    grant_scope,
                    c.created_at,
                    grant_expires_at,
                    GrantType::AuthorizationCode,
                )
                .await?;
                self.insert_code(code_hash, c).await
            }
        }
    }

    /// Consume a code at most once, atomically on either database: the conditional UPDATE
    /// succeeds for exactly one caller, however many replicas race.
    pub async fn redeem_code(
        &self,
        code_hash: &[u8],
        now: UnixTime,
    ) -> Result<Redemption, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Consumed {
            #[sqlx(flatten)]
            code: AuthorizationCode,
            active_grant: Option<String>,
        }
        // The grant's state comes back with the code: one statement, not a second query.
        let sql = format!(
            "UPDATE authorization_codes SET consumed_at = $2 \
             WHERE code_hash = $1 AND consumed_at IS NULL RETURNING {CODE_COLUMNS}, \
             (SELECT g.id FROM grants g WHERE g.id = authorization_codes.grant_id \
              AND g.revoked_at IS NULL AND g.expires_at > $2) AS active_grant"
        );
        let redeemed = on_pool!(self, pool => sqlx::query_as::<_, Consumed>(&sql)
            .bind(code_hash)
            .bind(now)
            .fetch_optional(pool)
            .await?);
        if let Some(consumed) = redeemed {
            return Ok(Redemption::Redeemed {
                code: Box::new(consumed.code),
                grant_active: consumed.active_grant.is_some(),
            });
        }
        let previous: Option<(String,)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT grant_id FROM authorization_codes WHERE code_hash = $1",
        )
        .bind(code_hash)
        .fetch_optional(pool)
        .await?);
        Ok(match previous {
            Some((grant_id,)) => Redemption::Replayed { grant_id },
            None => Redemption::Unknown,
        })
    }

    /// Housekeeping: codes that expired unused. A consumed code stays as long as its grant, so
    /// a replay still withdraws what it issued (RFC 6749 §4.1.2).
    pub async fn delete_expired_codes(&self, now: UnixTime, limit: u32) -> Result<u64, StoreError> {
        self.delete_batch(
            "DELETE FROM authorization_codes WHERE code_hash IN \
             (SELECT code_hash FROM authorization_codes \
              WHERE expires_at <= $1 AND consumed_at IS NULL LIMIT $2)",
            now,
            limit,
        )
        .await
    }

    /// Housekeeping: grants past their expiry (the family's absolute lifetime), with their
    /// codes and any refresh tokens left (ON DELETE CASCADE). Nothing issued under them is
    /// accepted any more: every check requires the grant to be active.
    pub async fn delete_expired_grants(
        &self,
        now: UnixTime,
        limit: u32,
    ) -> Result<u64, StoreError> {
        self.delete_batch(
            "DELETE FROM grants WHERE id IN \
             (SELECT id FROM grants WHERE expires_at <= $1 LIMIT $2)",
            now,
            limit,
        )
        .await
    }
}

/// The head of a code's INSERT: its hash and columns, in `bind_code`'s order.
const INSERT_CODE: &str = "INSERT INTO authorization_codes (code_hash, grant_id, server_id, \
    client_id, user_id, session_sid, redirect_uri, scope, nonce, code_challenge, \
    code_challenge_method, auth_time, claims_request, created_at, expires_at, amr, acr, dpop_jkt)";

/// A code's hash and columns, bound as `$1` to `$18` in the order of `INSERT_CODE`'s columns.
fn bind_code<'q, DB: sqlx::Database>(
    query: sqlx::query::Query<'q, DB, DB::Arguments<'q>>,
    code_hash: &'q [u8],
    c: &'q AuthorizationCode,
) -> sqlx::query::Query<'q, DB, DB::Arguments<'q>>
where
    &'q [u8]: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q Option<String>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    query
        .bind(code_hash)
        .bind(&c.grant_id)
        .bind(&c.server_id)
        .bind(&c.client_id)
        .bind(&c.user_id)
        .bind(&c.session_sid)
        .bind(&c.redirect_uri)
        .bind(&c.scope)
        .bind(&c.nonce)
        .bind(&c.code_challenge)
        .bind(&c.code_challenge_method)
        .bind(c.auth_time)
        .bind(&c.claims_request)
        .bind(c.created_at)
        .bind(c.expires_at)
        .bind(&c.amr)
        .bind(&c.acr)
        .bind(&c.dpop_jkt)
}
