//! What housekeeping needs from the store beyond each aggregate's own `delete_expired_*`: the
//! batched DELETE they share, the rate-limit windows, and (on PostgreSQL) a lock so that one
//! replica at a time does the work.
//!
//! Every delete removes at most `limit` rows per statement (a short lock) and is idempotent, so
//! two replicas running at once, or a run cut short, leave nothing inconsistent.

use sqlx::pool::PoolConnection;
use sqlx::Postgres;

use super::{on_pool, Db, Store, StoreError};
use crate::clock::UnixTime;

/// An arbitrary constant naming housekeeping's advisory lock.
const ADVISORY_LOCK_KEY: i64 = 0x706f_7274_6375_6c6c; // "portcull"

/// Held while a run works. On PostgreSQL it holds the connection that owns the advisory lock.
pub struct HousekeepingLock {
    conn: Option<PoolConnection<Postgres>>,
}

impl Store {
    /// Run `sql` (`$1` = now, `$2` = limit) once: the rows it deleted.
    pub(super) async fn delete_batch(
        &self,
        sql: &str,
        now: UnixTime,
        limit: u32,
    ) -> Result<u64, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query(sql)
            .bind(now)
            .bind(i64::from(limit))
            .execute(pool)
            .await?
            .rows_affected()))
    }

    /// Rate-limit windows that started before `before`: nothing counts them any more.
    pub async fn delete_stale_rate_limits(
        &self,
        before: UnixTime,
        limit: u32,
    ) -> Result<u64, StoreError> {
        self.delete_batch(
            "DELETE FROM rate_limits WHERE bucket IN \
             (SELECT bucket FROM rate_limits WHERE window_start < $1 LIMIT $2)",
            before,
            limit,
        )
        .await
    }

    /// On PostgreSQL, `pg_try_advisory_lock`: `None` when another replica is already at work.
    /// SQLite has one process by design (and serialises writers anyway): always granted.
    pub async fn try_lock_housekeeping(&self) -> Result<Option<HousekeepingLock>, StoreError> {
        let lanes = match &self.db {
            Db::Sqlite(_) => return Ok(Some(HousekeepingLock { conn: None })),
            Db::Postgres(lanes) => lanes,
        };
        let mut conn = lanes.detached().await?;
        let (locked,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock($1)")
            .bind(ADVISORY_LOCK_KEY)
            .fetch_one(&mut *conn)
            .await?;
        Ok(locked.then_some(HousekeepingLock { conn: Some(conn) }))
    }
}

impl HousekeepingLock {
    pub async fn release(mut self) {
        if let Some(mut conn) = self.conn.take() {
            let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(ADVISORY_LOCK_KEY)
                .execute(&mut *conn)
                .await;
            if unlocked.is_err() {
                // Never hand a connection that may still hold the lock back to the pool.
                drop(conn.detach());
            }
        }
    }
}

impl Drop for HousekeepingLock {
    /// Not released (an error or a cancelled task): closing the connection ends the session,
    /// and PostgreSQL releases the lock with it.
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            drop(conn.detach());
        }
    }
}
