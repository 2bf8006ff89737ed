//! Short leases on named resources, held in the database so that every replica sees them: the
//! management API holds one while it checks a precondition (`If-Match`) and writes, making the
//! two one step. A lease is taken by one conditional upsert (only a free or expired lease can
//! be taken) and given back by its holder; one whose holder died runs out at `expires_at`.

use super::{on_pool, Store, StoreError};
use crate::clock::UnixTime;

impl Store {
    /// Take the lease on `name` for `holder` until `expires_at`; `false` while another holder
    /// has it and it has not run out at `now`.
    pub async fn try_lock_resource(
        &self,
        name: &str,
        holder: &str,
        now: UnixTime,
        expires_at: UnixTime,
    ) -> Result<bool, StoreError> {
        let done = on_pool!(self, pool => sqlx::query(
            "INSERT INTO resource_locks (name, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
             expires_at = excluded.expires_at WHERE resource_locks.expires_at <= $4",
        )
        .bind(name)
        .bind(holder)
        .bind(expires_at)
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(done == 1)
    }

    /// Give the lease back (only its holder can).
    pub async fn unlock_resource(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query("DELETE FROM resource_locks WHERE name = $1 AND holder = $2")
                .bind(name)
                .bind(holder)
                .execute(pool)
                .await?;
        });
        Ok(())
    }
}
