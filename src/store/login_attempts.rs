//! Counting failed password checks, for account lockout. Atomic increments, so several
//! replicas counting the same account never lose an attempt.

use super::{on_pool, Store, StoreError};
use crate::clock::UnixTime;

impl Store {
    /// Count a failure; at `max` failures the account locks until `now + lockout` and the
    /// count starts again. True if this failure locked the account.
    pub async fn record_login_failure(
        &self,
        user_id: &str,
        max: u32,
        lockout: i64,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let row: Option<(Option<i64>,)> = on_pool!(self, pool => sqlx::query_as(
            "UPDATE users SET \
               locked_until = CASE WHEN failed_logins + 1 >= $2 THEN $3 ELSE locked_until END, \
               failed_logins = CASE WHEN failed_logins + 1 >= $2 THEN 0 ELSE failed_logins + 1 END \
             WHERE id = $1 RETURNING locked_until",
        )
        .bind(user_id)
        .bind(i64::from(max))
        .bind(now + lockout)
        .fetch_optional(pool)
        .await?);
        Ok(row
            .and_then(|(until,)| until)
            .is_some_and(|until| until > now))
    }

    /// A successful sign-in clears the count.
    pub async fn record_login_success(&self, user_id: &str) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query(
            "UPDATE users SET failed_logins = 0 WHERE id = $1 AND failed_logins <> 0",
        )
        .bind(user_id)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(())
    }
}
