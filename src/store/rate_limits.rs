//! Fixed-window counters shared by every replica: one atomic upsert per check.

use super::{on_pool, Store, StoreError};
use crate::clock::UnixTime;

impl Store {
    /// Count one hit in `bucket` for the window starting at `window_start`, and return the hits
    /// of that window so far, this one included. A bucket whose stored window is another one
    /// starts again at 1.
    pub async fn hit_rate_limit(
        &self,
        bucket: &str,
        window_start: UnixTime,
    ) -> Result<i64, StoreError> {
        // The SET expressions read the row as it was before the update (SQLite and PostgreSQL).
        let (hits,): (i64,) = on_pool!(self, pool => sqlx::query_as(
            "INSERT INTO rate_limits (bucket, window_start, hits) VALUES ($1, $2, 1) \
             ON CONFLICT (bucket) DO UPDATE SET \
               hits = CASE WHEN rate_limits.window_start = excluded.window_start \
                      THEN rate_limits.hits + 1 ELSE 1 END, \
               window_start = excluded.window_start \
             RETURNING hits",
        )
        .bind(bucket)
        .bind(window_start)
        .fetch_one(pool)
        .await?);
        Ok(hits)
    }

    /// Give back one hit of `bucket` in the window starting at `window_start`; nothing if the
    /// bucket has moved on to another window.
    pub async fn release_rate_limit(
        &self,
        bucket: &str,
        window_start: UnixTime,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query(
            "UPDATE rate_limits SET hits = hits - 1 \
             WHERE bucket = $1 AND window_start = $2 AND hits > 0",
        )
        .bind(bucket)
        .bind(window_start)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(())
    }
}
