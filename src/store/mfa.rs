//! Second factors (TOTP), recovery codes, the per-user replay guard of one-time passwords, the
//! factors of a session, and the MFA policy of servers and clients. Single use is one
//! conditional statement on both databases, as for authorization codes (`grants.rs`).

use super::{on_pool, Store, StoreError};
use crate::clock::UnixTime;

/// A user's factor. `secret` is sealed (`mfa::secret`); only the flow that checks a code
/// opens it.
#[derive(Clone, sqlx::FromRow)]
pub struct MfaFactor {
    pub id: String,
    pub user_id: String,
    pub kind: String,
    pub label: String,
    pub secret_storage: String,
    pub secret: Vec<u8>,
    pub created_at: i64,
    /// None while a self-service enrolment waits for its first valid code.
    pub confirmed_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

impl std::fmt::Debug for MfaFactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MfaFactor")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

pub const TOTP: &str = "totp";

const COLUMNS: &str =
    "id, user_id, kind, label, secret_storage, secret, created_at, confirmed_at, last_used_at";

impl Store {
    pub async fn insert_mfa_factor(&self, f: &MfaFactor) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO mfa_factors (id, user_id, kind, label, secret_storage, secret, \
             created_at, confirmed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&f.id)
        .bind(&f.user_id)
        .bind(&f.kind)
        .bind(&f.label)
        .bind(&f.secret_storage)
        .bind(&f.secret)
        .bind(f.created_at)
        .bind(f.confirmed_at)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(())
    }

    /// A user's factors, confirmed and pending, oldest first.
    pub async fn mfa_factors_of(&self, user_id: &str) -> Result<Vec<MfaFactor>, StoreError> {
        let sql =
            format!("SELECT {COLUMNS} FROM mfa_factors WHERE user_id = $1 ORDER BY created_at, id");
        Ok(on_pool!(self, pool => sqlx::query_as::<_, MfaFactor>(&sql)
            .bind(user_id)
            .fetch_all(pool)
            .await?))
    }

    /// Has the user a confirmed factor? (The policy `optional` asks only those who have.)
    pub async fn has_mfa_factor(&self, user_id: &str) -> Result<bool, StoreError> {
        // A real column, not `SELECT 1`: PostgreSQL types a literal 1 as INT4.
        let row: Option<(String,)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT id FROM mfa_factors WHERE user_id = $1 AND confirmed_at IS NOT NULL \
             UNION ALL SELECT id FROM passkeys WHERE user_id = $1 LIMIT 1",
        )
        .bind(user_id)
        .fetch_optional(pool)
        .await?);
        Ok(row.is_some())
    }

    /// Confirm a pending enrolment; false when it is gone (reset meanwhile) or was confirmed.
    pub async fn confirm_mfa_factor(
        &self,
        id: &str,
        user_id: &str,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let done = on_pool!(self, pool => sqlx::query(
            "UPDATE mfa_factors SET confirmed_at = $3, last_used_at = $3 \
             WHERE id = $1 AND user_id = $2 AND confirmed_at IS NULL",
        )
        .bind(id)
        .bind(user_id)
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(done == 1)
    }

    pub async fn touch_mfa_factor(&self, id: &str, now: UnixTime) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query("UPDATE mfa_factors SET last_used_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(())
    }

    /// Remove the user's pending (unconfirmed) enrolments: a new enrolment page replaces them.
    pub async fn delete_pending_mfa_factors(&self, user_id: &str) -> Result<u64, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query(
            "DELETE FROM mfa_factors WHERE user_id = $1 AND confirmed_at IS NULL",
        )
        .bind(user_id)
        .execute(pool)
        .await?
        .rows_affected()))
    }

    /// Remove one factor of the user, or all of them with their recovery codes (`user mfa
    /// reset`), in one transaction. The number of factors removed.
    pub async fn reset_mfa(&self, user_id: &str, factor: Option<&str>) -> Result<u64, StoreError> {
        Ok(on_pool!(self, pool => {
            let mut lane = pool.acquire().await?;
            let mut tx = lane.begin().await?;
            let removed = sqlx::query(
                "DELETE FROM mfa_factors WHERE user_id = $1 AND ($2 IS NULL OR id = $2)",
            )
            .bind(user_id)
            .bind(factor)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                + sqlx::query(
                    "DELETE FROM passkeys WHERE user_id = $1 AND ($2 IS NULL OR id = $2)",
                )
                .bind(user_id)
                .bind(factor)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if factor.is_none() {
                sqlx::query("DELETE FROM mfa_recovery_codes WHERE user_id = $1")
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            lane.release();
            removed
        }))
    }

    /// RFC 6238 §5.2: accept the one-time password of `step` once per user. One conditional
    /// UPDATE: of two replicas checking the same code at once, only one succeeds; a step at or
    /// before the last accepted one is refused.
    pub async fn claim_totp_step(&self, user_id: &str, step: i64) -> Result<bool, StoreError> {
        let done = on_pool!(self, pool => sqlx::query(
            "UPDATE users SET totp_last_step = $2 \
             WHERE id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2)",
        )
        .bind(user_id)
        .bind(step)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(done == 1)
    }

    /// Replace the user's recovery codes with these hashes, in one transaction.
    pub async fn replace_recovery_codes(
        &self,
        user_id: &str,
        hashes: &[Vec<u8>],
        now: UnixTime,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            let mut lane = pool.acquire().await?;
            let mut tx = lane.begin().await?;
            sqlx::query("DELETE FROM mfa_recovery_codes WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            for hash in hashes {
                sqlx::query(
                    "INSERT INTO mfa_recovery_codes (user_id, code_hash, created_at) \
                     VALUES ($1, $2, $3)",
                )
                .bind(user_id)
                .bind(hash)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            lane.release();
        });
        Ok(())
    }

    /// Use a recovery code: single use, in one conditional UPDATE.
    pub async fn use_recovery_code(
        &self,
        user_id: &str,
        hash: &[u8],
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let done = on_pool!(self, pool => sqlx::query(
            "UPDATE mfa_recovery_codes SET used_at = $3 \
             WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
        )
        .bind(user_id)
        .bind(hash)
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(done == 1)
    }

    /// How many unused recovery codes the user has.
    pub async fn recovery_codes_left(&self, user_id: &str) -> Result<i64, StoreError> {
        let row: (i64,) = on_pool!(self, pool => sqlx::query_as(
            "SELECT COUNT(*) FROM mfa_recovery_codes WHERE user_id = $1 AND used_at IS NULL",
        )
        .bind(user_id)
        .fetch_one(pool)
        .await?);
        Ok(row.0)
    }

    /// A second factor was presented in a live session: record it (`amr`) and move
    /// `auth_time` to now (the time of the last factor).
    pub async fn add_session_factor(
        &self,
        sid: &str,
        amr: &str,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let done = on_pool!(self, pool => sqlx::query(
            "UPDATE sessions SET amr = $2, auth_time = $3, last_seen_at = $3 \
             WHERE sid = $1 AND ended_at IS NULL",
        )
        .bind(sid)
        .bind(amr)
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(done == 1)
    }

    /// `server update --mfa`: a change of policy, versioned like the server's other settings.
    pub async fn set_server_mfa(
        &self,
        id: &str,
        mfa: &str,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let done = on_pool!(self, pool => sqlx::query(
            "UPDATE authorization_servers SET mfa = $2, updated_at = $3, version = version + 1 \
             WHERE id = $1 AND mfa <> $2",
        )
        .bind(id)
        .bind(mfa)
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected());
        self.cache.invalidate();
        Ok(done == 1)
    }

    /// `client update --mfa`.
    pub async fn set_client_mfa(
        &self,
        id: &str,
        mfa: &str,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let done = on_pool!(self, pool => sqlx::query(
            "UPDATE clients SET mfa = $2, updated_at = $3 WHERE id = $1",
        )
        .bind(id)
        .bind(mfa)
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected());
        self.cache.invalidate();
        Ok(done == 1)
    }
}
