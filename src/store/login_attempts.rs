//! Counting failed password checks, for account lockout. Each attempt is counted, atomically,
//! before its password is hashed and given back when the password was right, so several
//! replicas counting the same account never lose an attempt, and a burst of concurrent guesses
//! cannot get more than the maximum checked.

use super::{on_pool, Store, StoreError};
use crate::clock::UnixTime;

/// An attempt counted by [`Store::reserve_login_attempt`], before its password is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginAttempt {
    /// Set when this attempt was the last one allowed: the account is locked until then, unless
    /// the password proves right.
    pub locks_until: Option<UnixTime>,
}

impl Store {
    /// Count an attempt as a failure before its password is checked, if the account is not
    /// locked; None if it is. The attempt that reaches `max` locks the account until
    /// `now + lockout`, and the count starts again. One statement: concurrent attempts (on any
    /// replica) each see the count the previous one left, so no more than `max` pass.
    pub async fn reserve_login_attempt(
        &self,
        user_id: &str,
        max: u32,
        lockout: i64,
        now: UnixTime,
    ) -> Result<Option<LoginAttempt>, StoreError> {
        // The SET expressions read the row as it was before the update (SQLite and PostgreSQL).
        let row: Option<(Option<i64>,)> = on_pool!(self, pool => sqlx::query_as(
            "UPDATE users SET \
               locked_until = CASE WHEN failed_logins + 1 >= $2 THEN $3 ELSE NULL END, \
               failed_logins = CASE WHEN failed_logins + 1 >= $2 THEN 0 ELSE failed_logins + 1 END \
             WHERE id = $1 AND (locked_until IS NULL OR locked_until <= $4) \
             RETURNING locked_until",
        )
        .bind(user_id)
        .bind(i64::from(max))
        .bind(now + lockout)
        .bind(now)
        .fetch_optional(pool)
        .await?);
        Ok(row.map(|(until,)| LoginAttempt { locks_until: until }))
    }

    /// The password was right: a successful sign-in clears the count, and lifts the lock its
    /// own attempt set (not one another attempt set meanwhile).
    pub async fn release_login_attempt(
        &self,
        user_id: &str,
        attempt: LoginAttempt,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query(
            "UPDATE users SET failed_logins = 0, \
               locked_until = CASE WHEN locked_until = $2 THEN NULL ELSE locked_until END \
             WHERE id = $1",
        )
        .bind(user_id)
        .bind(attempt.locks_until)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(())
    }
}
