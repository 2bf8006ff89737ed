//! Browser sessions. The cookie holds a random id; the table holds its SHA-256 hash, so a
//! database leak does not hand out live sessions. Every replica sees every session.

use std::sync::LazyLock;

use super::users::{joined_user_columns, JoinedUserRow};
use super::{on_pool, qualified, Store, StoreError, User};
use crate::clock::UnixTime;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Session {
    /// The public session id: the `sid` claim of ID tokens.
    pub sid: String,
    pub server_id: String,
    pub user_id: String,
    pub auth_time: i64,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub ended_at: Option<i64>,
    /// The factors signed in with (RFC 8176 values, space-separated; `mfa::Amr`).
    pub amr: String,
}

const COLUMNS: &str =
    "sid, server_id, user_id, auth_time, created_at, last_seen_at, expires_at, ended_at, amr";

impl Store {
    pub async fn insert_session(&self, id_hash: &[u8], s: &Session) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO sessions (id_hash, sid, server_id, user_id, auth_time, created_at, \
             last_seen_at, expires_at, amr) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(id_hash)
        .bind(&s.sid)
        .bind(&s.server_id)
        .bind(&s.user_id)
        .bind(s.auth_time)
        .bind(s.created_at)
        .bind(s.last_seen_at)
        .bind(s.expires_at)
        .bind(&s.amr)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(())
    }

    /// A live session by the hash of its cookie value.
    pub async fn live_session(
        &self,
        id_hash: &[u8],
        now: UnixTime,
    ) -> Result<Option<Session>, StoreError> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {COLUMNS} FROM sessions \
                 WHERE id_hash = $1 AND ended_at IS NULL AND expires_at > $2"
            )
        });
        Ok(on_pool!(self, pool => sqlx::query_as::<_, Session>(&SQL)
        .bind(id_hash)
        .bind(now)
        .fetch_optional(pool)
        .await?))
    }

    /// A live session and its user, in one query: what /authorize needs to decide whether the
    /// browser is signed in. `None` also when the user is gone.
    pub async fn live_session_and_user(
        &self,
        id_hash: &[u8],
        now: UnixTime,
    ) -> Result<Option<(Session, User)>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Joined {
            #[sqlx(flatten)]
            session: Session,
            #[sqlx(flatten)]
            user: JoinedUserRow,
        }
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {}, {} FROM sessions s JOIN users u ON u.id = s.user_id \
                 WHERE s.id_hash = $1 AND s.ended_at IS NULL AND s.expires_at > $2",
                qualified(COLUMNS, "s", ""),
                joined_user_columns()
            )
        });
        let row = on_pool!(self, pool => sqlx::query_as::<_, Joined>(&SQL)
            .bind(id_hash)
            .bind(now)
            .fetch_optional(pool)
            .await?);
        row.map(|r| Ok((r.session, User::try_from(r.user)?)))
            .transpose()
    }

    pub async fn end_session(&self, sid: &str, now: UnixTime) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query(
            "UPDATE sessions SET ended_at = $2 WHERE sid = $1 AND ended_at IS NULL",
        )
        .bind(sid)
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(())
    }

    /// A user's live sessions, newest first (`portcullis user sessions list`).
    pub async fn live_sessions_of(
        &self,
        user_id: &str,
        now: UnixTime,
    ) -> Result<Vec<Session>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM sessions WHERE user_id = $1 AND ended_at IS NULL \
             AND expires_at > $2 ORDER BY created_at DESC, sid"
        );
        Ok(on_pool!(self, pool => sqlx::query_as::<_, Session>(&sql)
            .bind(user_id)
            .bind(now)
            .fetch_all(pool)
            .await?))
    }

    /// Housekeeping: sessions past their expiry (ended ones go when they would have expired).
    pub async fn delete_expired_sessions(
        &self,
        now: UnixTime,
        limit: u32,
    ) -> Result<u64, StoreError> {
        self.delete_batch(
            "DELETE FROM sessions WHERE id_hash IN \
             (SELECT id_hash FROM sessions WHERE expires_at <= $1 LIMIT $2)",
            now,
            limit,
        )
        .await
    }
}
