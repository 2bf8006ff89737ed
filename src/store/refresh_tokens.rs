//! Refresh tokens: opaque 256-bit values stored only as SHA-256 hashes. Each belongs to a grant
//! (its family); rotation retires the presented token and records its successor.

use std::sync::LazyLock;

use sqlx::FromRow;

use super::users::{joined_user_columns, JoinedUserRow};
use super::{on_pool, qualified, Db, Store, StoreError, User};
use crate::clock::UnixTime;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RefreshToken {
    pub grant_id: String,
    pub server_id: String,
    pub client_id: String,
    pub user_id: String,
    pub scope: String,
    pub auth_time: i64,
    pub session_sid: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub idle_expires_at: i64,
    pub rotated_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// The key its successor is derived under (`security::derive_successor`); `None` on rows
    /// stored before keys were kept.
    pub successor_key: Option<SuccessorKey>,
    /// RFC 9449 §5: the DPoP key (thumbprint) a public client's token is bound to.
    pub dpop_jkt: Option<String>,
}

/// Random bytes kept with a refresh token, never sent anywhere; with the token itself they give
/// its successor, so `Debug` does not print them.
#[derive(Clone, PartialEq, Eq, sqlx::Type)]
#[sqlx(transparent)]
pub struct SuccessorKey(pub Vec<u8>);

impl SuccessorKey {
    pub fn generate() -> Self {
        Self(crate::security::random_bytes(32))
    }
}

impl std::fmt::Debug for SuccessorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SuccessorKey([redacted])")
    }
}

const COLUMNS: &str = "grant_id, server_id, client_id, user_id, scope, auth_time, session_sid, \
    created_at, expires_at, idle_expires_at, rotated_at, revoked_at, successor_key, dpop_jkt";

/// What presenting a refresh token for rotation found.
#[derive(Debug)]
pub enum Rotation {
    /// This call retired it; the successor is stored.
    Rotated(RefreshToken),
    /// Another request retired it first (at `rotated_at`).
    AlreadyRotated(RefreshToken),
    /// Unknown or revoked.
    Unusable,
}

impl Store {
    pub async fn insert_refresh_token(
        &self,
        hash: &[u8],
        t: &RefreshToken,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => bind_token(sqlx::query(INSERT).bind(hash), t)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(())
    }

    pub async fn refresh_token(&self, hash: &[u8]) -> Result<Option<RefreshToken>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM refresh_tokens WHERE token_hash = $1");
        Ok(
            on_pool!(self, pool => sqlx::query_as::<_, RefreshToken>(&sql)
            .bind(hash)
            .fetch_optional(pool)
            .await?),
        )
    }

    /// A refresh token, whether its grant is active (not revoked, expired or gone), and its
    /// user, in one query: the refresh grant needs all three. `None` also when the user is gone
    /// (their grants, and with them their refresh tokens, go too).
    pub async fn refresh_token_grant_and_user(
        &self,
        hash: &[u8],
        now: UnixTime,
    ) -> Result<Option<(RefreshToken, bool, User)>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Joined {
            #[sqlx(flatten)]
            token: RefreshToken,
            active_grant: Option<String>,
            #[sqlx(flatten)]
            user: JoinedUserRow,
        }
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {}, \
                 (SELECT g.id FROM grants g WHERE g.id = r.grant_id \
                  AND g.revoked_at IS NULL AND g.expires_at > $2) AS active_grant, {} \
                 FROM refresh_tokens r JOIN users u ON u.id = r.user_id WHERE r.token_hash = $1",
                qualified(COLUMNS, "r", ""),
                joined_user_columns()
            )
        });
        let row = on_pool!(self, pool => sqlx::query_as::<_, Joined>(&SQL)
            .bind(hash)
            .bind(now)
            .fetch_optional(pool)
            .await?);
        row.map(|r| Ok((r.token, r.active_grant.is_some(), User::try_from(r.user)?)))
            .transpose()
    }

    /// Retire `old` in favour of `new` and store `new`, atomically. The conditional UPDATE lets
    /// exactly one of several concurrent requests (on any replica) rotate a token; the others
    /// see `AlreadyRotated` and decide between the grace period and reuse detection.
    pub async fn rotate_refresh_token(
        &self,
        old: &[u8],
        new: &[u8],
        successor: &RefreshToken,
        now: UnixTime,
    ) -> Result<Rotation, StoreError> {
        // Retire `old`, if no one else has: $1 old, $2 now, $3 new.
        static RETIRE: LazyLock<String> = LazyLock::new(|| {
            format!(
                "UPDATE refresh_tokens SET rotated_at = $2, replaced_by = $3 \
                 WHERE token_hash = $1 AND rotated_at IS NULL AND revoked_at IS NULL \
                 RETURNING {COLUMNS}"
            )
        });
        let rotated = match &self.db {
            // One statement, so one round trip: the INSERT reads the UPDATE's RETURNING, so the
            // successor is stored exactly when this statement retired `old`.
            Db::Postgres(lanes) => {
                static SQL: LazyLock<String> = LazyLock::new(|| {
                    format!(
                        "WITH rotated AS ({}), \
                         successor AS (INSERT INTO refresh_tokens (token_hash, grant_id, server_id, \
                         client_id, user_id, scope, auth_time, session_sid, created_at, expires_at, \
                         idle_expires_at, successor_key, dpop_jkt) \
                         SELECT $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15 FROM rotated) \
                         SELECT {COLUMNS} FROM rotated",
                        *RETIRE
                    )
                });
                let query = sqlx::query(&SQL).bind(old).bind(now).bind(new);
                match bind_token(query, successor)
                    .fetch_optional(&**lanes)
                    .await?
                {
                    Some(row) => Some(RefreshToken::from_row(&row)?),
                    None => None,
                }
            }
            // SQLite has no data-modifying CTEs: the UPDATE, then the INSERT, in one transaction.
            Db::Sqlite(lanes) => {
                let mut lane = lanes.acquire().await?;
                let mut tx = lane.begin().await?;
                let row = sqlx::query_as::<_, RefreshToken>(&RETIRE)
                    .bind(old)
                    .bind(now)
                    .bind(new)
                    .fetch_optional(&mut *tx)
                    .await?;
                if row.is_some() {
                    bind_token(sqlx::query(INSERT).bind(new), successor)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                lane.release();
                row
            }
        };
        if let Some(row) = rotated {
            return Ok(Rotation::Rotated(row));
        }
        Ok(match self.refresh_token(old).await? {
            Some(t) if t.revoked_at.is_none() && t.rotated_at.is_some() => {
                Rotation::AlreadyRotated(t)
            }
            _ => Rotation::Unusable,
        })
    }

    /// The refresh tokens of a grant (its family), oldest first.
    pub async fn refresh_tokens_of_grant(
        &self,
        grant_id: &str,
    ) -> Result<Vec<RefreshToken>, StoreError> {
        let sql =
            format!("SELECT {COLUMNS} FROM refresh_tokens WHERE grant_id = $1 ORDER BY created_at");
        Ok(
            on_pool!(self, pool => sqlx::query_as::<_, RefreshToken>(&sql)
            .bind(grant_id)
            .fetch_all(pool)
            .await?),
        )
    }

    /// Housekeeping: the refresh tokens of families that can no longer be used, i.e. none of
    /// whose tokens is unrevoked and within both its lifetimes. A retired token of a family
    /// still in use is kept: presenting it again is how reuse is detected (RFC 9700 §4.14.2).
    pub async fn delete_unusable_refresh_tokens(
        &self,
        now: UnixTime,
        limit: u32,
    ) -> Result<u64, StoreError> {
        self.delete_batch(
            "DELETE FROM refresh_tokens WHERE token_hash IN \
             (SELECT r.token_hash FROM refresh_tokens r \
              WHERE (r.revoked_at IS NOT NULL OR r.expires_at <= $1 OR r.idle_expires_at <= $1) \
              AND NOT EXISTS (SELECT l.token_hash FROM refresh_tokens l WHERE l.grant_id = r.grant_id \
                AND l.revoked_at IS NULL AND l.expires_at > $1 AND l.idle_expires_at > $1) \
              LIMIT $2)",
            now,
            limit,
        )
        .await
    }
}

/// Store a refresh token: its hash is `$1`, then the columns `bind_token` binds.
const INSERT: &str = "INSERT INTO refresh_tokens (token_hash, grant_id, server_id, client_id, \
    user_id, scope, auth_time, session_sid, created_at, expires_at, idle_expires_at, \
    successor_key, dpop_jkt) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)";

/// A token's columns after its hash, in the order of `INSERT`'s (and the rotation's) columns.
fn bind_token<'q, DB: sqlx::Database>(
    query: sqlx::query::Query<'q, DB, DB::Arguments<'q>>,
    t: &'q RefreshToken,
) -> sqlx::query::Query<'q, DB, DB::Arguments<'q>>
where
    &'q String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q Option<String>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q Option<SuccessorKey>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    query
        .bind(&t.grant_id)
        .bind(&t.server_id)
        .bind(&t.client_id)
        .bind(&t.user_id)
        .bind(&t.scope)
        .bind(t.auth_time)
        .bind(&t.session_sid)
        .bind(t.created_at)
        .bind(t.expires_at)
        .bind(t.idle_expires_at)
        .bind(&t.successor_key)
        .bind(&t.dpop_jkt)
}
