//! SQLite's WAL checkpoints, off the request path.
//!
//! In WAL mode a commit appends its pages to the `-wal` file, and a checkpoint copies them back
//! into the database file, with an fsync of each file. SQLite runs the checkpoint inside the
//! commit that takes the WAL past `wal_autocheckpoint` pages, so on the one connection the
//! server writes through (`Config::database_pool_size`) every statement queued behind it waits:
//! the code flow writes about 15 pages a round trip, so that was twenty stalls a second.
//!
//! So the server checkpoints every `INTERVAL` on a connection of its own, in PASSIVE mode (it
//! never waits for, nor blocks, a reader or the writer), and moves the writer's own checkpoint
//! to `AUTOCHECKPOINT_PAGES`. When that one comes there is little left to copy, and it lets the
//! WAL start again from its beginning, which under a continuous load only a checkpoint by the
//! writing connection itself can (the WAL stays under about 16 MiB). Measured with bench
//! (refresh flow, two rounds each): 1,584-1,586 → 1,670-1,684 refreshes/s, p99 26.6 →
//! 23.8-25.0 ms; code flow 1,200-1,270 → 1,343-1,345 round trips/s, p99 35.6-36.2 → 32.9-33.0 ms.

use std::time::Duration;

use sqlx::ConnectOptions;
use tokio::task::JoinHandle;

use super::{Db, Store};

/// How often the background checkpoint runs.
pub const INTERVAL: Duration = Duration::from_millis(50);

/// `PRAGMA wal_autocheckpoint` of the store's connections (SQLite's default is 1,000 pages).
pub const AUTOCHECKPOINT_PAGES: u32 = 4_000;

impl Store {
    /// On SQLite, start checkpointing the WAL every `INTERVAL` on a connection of its own; the
    /// task runs until aborted. `None` on PostgreSQL.
    pub fn spawn_wal_checkpoints(&self) -> Option<JoinHandle<()>> {
        let Db::Sqlite(lanes) = &self.db else {
            return None;
        };
        let options = lanes.pool().connect_options();
        Some(tokio::spawn(async move {
            let mut conn = match options.connect().await {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot open the WAL checkpoint connection; SQLite checkpoints in the writing connection instead");
                    return;
                }
            };
            let mut ticks = tokio::time::interval(INTERVAL);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                // (busy, frames in the WAL, frames checkpointed); busy is 1 when the writer's own
                // checkpoint was running, and the next tick tries again.
                let done: Result<(i64, i64, i64), _> =
                    sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
                        .fetch_one(&mut conn)
                        .await;
                if let Err(e) = done {
                    tracing::debug!(error = %e, "WAL checkpoint failed");
                }
            }
        }))
    }
}
