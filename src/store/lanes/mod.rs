//! Connections kept out of sqlx's pool between statements, so a statement costs one round
//! trip to the database and nothing more.
//!
//! sqlx's `Pool` tests a connection whenever it gets one back (`return_to_pool` pings, in sqlx
//! 0.8 unconditionally) and, unless told otherwise, before lending it out. On PostgreSQL each
//! ping is a network round trip; on SQLite it is a hand-off to the connection's worker thread
//! and back. Lent per statement, that doubled or tripled the cost of every query (the ping on
//! release alone was 4.5 % of the server's CPU in the code-flow benchmark).
//!
//! The ping exists for connections left in an unknown state: a future dropped mid-statement
//! (PostgreSQL may still have a reply in flight), or an I/O or protocol error. So a `Lane` goes
//! back to the idle list only when its statement finished, successfully or with an error the
//! database itself reported; in every other case the connection is handed back to sqlx, which
//! tests it as before (and closes it if broken). sqlx's pool keeps opening, bounding and
//! closing connections; this only keeps the healthy ones we already hold.

use std::fmt;
use std::sync::Mutex;

use futures_util::TryStreamExt;
use sqlx::pool::PoolConnection;
use sqlx::{Database, Either, Execute, Executor, Pool};
use tokio::sync::{Notify, Semaphore, SemaphorePermit};

pub(crate) struct Lanes<DB: Database> {
    pool: Pool<DB>,
    /// Connections that finished their last statement cleanly, most recent last (a warm
    /// connection: on SQLite its page cache is the freshest).
    idle: Mutex<Vec<PoolConnection<DB>>>,
    /// One per lane that may be out at once: waiters queue here in order, never inside
    /// `pool.acquire()` behind connections that sit in `idle`.
    permits: Semaphore,
    /// A connection went back to `idle` (what `detached` may be waiting for).
    released: Notify,
}

impl<DB: Database> Lanes<DB> {
    /// `reserved`: connections left to callers that take one from sqlx's pool directly and
    /// hold it (PostgreSQL's housekeeping lock), so lanes never wait for them.
    pub(crate) fn new(pool: Pool<DB>, max_connections: u32, reserved: u32) -> Self {
        let lanes = max_connections.saturating_sub(reserved).max(1);
        Self {
            pool,
            idle: Mutex::new(Vec::with_capacity(lanes as usize)),
            permits: Semaphore::new(lanes as usize),
            released: Notify::new(),
        }
    }

    /// A connection for one statement or one transaction.
    pub(crate) async fn acquire(&self) -> Result<Lane<'_, DB>, sqlx::Error> {
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?;
        let conn = match self.pop_idle() {
            Some(conn) => conn,
            None => self.pool.acquire().await?,
        };
        Ok(Lane {
            lanes: self,
            conn: Some(conn),
            clean: false,
            _permit: permit,
        })
    }

    /// A connection to keep outside the lanes (a session-level lock), handed back to sqlx's
    /// pool when dropped. An idle lane's connection if there is one: connections released by
    /// lanes go to `idle`, not to the pool, so waiting on the pool alone could wait for ever
    /// while every connection sits in `idle`.
    pub(crate) async fn detached(&self) -> Result<PoolConnection<DB>, sqlx::Error> {
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            // Registered before looking, so a release in between is not missed.
            released.as_mut().enable();
            if let Some(conn) = self.pop_idle() {
                return Ok(conn);
            }
            tokio::select! {
                conn = self.pool.acquire() => return conn,
                () = &mut released => {}
            }
        }
    }

    /// sqlx's pool underneath (its connect options, for a connection of one's own).
    pub(crate) fn pool(&self) -> &Pool<DB> {
        &self.pool
    }

    fn pop_idle(&self) -> Option<PoolConnection<DB>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop()
    }

    fn idle_count(&self) -> usize {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Open connections, and how many of them are idle (in sqlx's pool or here).
    pub(crate) fn stats(&self) -> (u32, usize) {
        (self.pool.size(), self.pool.num_idle() + self.idle_count())
    }

    /// Close the pool. sqlx's `close` waits until every connection it lent is back, and a lane
    /// still out gives its connection back to sqlx, not to `idle`, once the lanes are closed.
    pub(crate) async fn close(&self) {
        self.permits.close();
        let idle = std::mem::take(&mut *self.idle.lock().unwrap_or_else(|p| p.into_inner()));
        drop(idle);
        self.pool.close().await;
    }
}

impl<DB: Database> fmt::Debug for Lanes<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lanes")
            .field("available", &self.permits.available_permits())
            .field("idle", &self.idle_count())
            .finish()
    }
}

/// One connection, lent until dropped.
pub(crate) struct Lane<'a, DB: Database> {
    lanes: &'a Lanes<DB>,
    conn: Option<PoolConnection<DB>>,
    /// The last statement finished and the connection is in a known state.
    clean: bool,
    _permit: SemaphorePermit<'a>,
}

impl<DB: Database> Lane<'_, DB> {
    /// Begin a transaction on this connection.
    pub(crate) async fn begin(&mut self) -> Result<sqlx::Transaction<'_, DB>, sqlx::Error> {
        let conn = self.conn.as_mut().ok_or(sqlx::Error::PoolClosed)?;
        sqlx::Connection::begin(&mut **conn).await
    }

    /// The work is done (a transaction committed or rolled back): the connection may be lent
    /// again as it is.
    pub(crate) fn release(mut self) {
        self.clean = true;
    }

    /// The connection, for sqlx APIs that take one (the migrator).
    pub(crate) fn connection(&mut self) -> Result<&mut DB::Connection, sqlx::Error> {
        Ok(&mut **self.conn.as_mut().ok_or(sqlx::Error::PoolClosed)?)
    }

    /// Note how a statement ended: a result, or an error the database reported, leaves the
    /// connection usable; anything else (I/O, protocol, a crashed worker) does not.
    fn finished<T>(&mut self, result: &Result<T, sqlx::Error>) {
        self.clean = matches!(result, Ok(_) | Err(sqlx::Error::Database(_)));
    }
}

impl<DB: Database> Drop for Lane<'_, DB> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            // Checked under the lock that `close` drains `idle` with, so no connection slips in
            // after the drain.
            let mut idle = self.lanes.idle.lock().unwrap_or_else(|p| p.into_inner());
            if self.clean && !self.lanes.permits.is_closed() {
                idle.push(conn);
                drop(idle);
                self.lanes.released.notify_waiters();
            }
            // Otherwise dropping it returns it to sqlx's pool, which tests it (or, closing,
            // closes it).
        }
    }
}

/// Statements run on `&Lanes` as they ran on `&Pool`: one lane per statement.
impl<'p, DB: Database> Executor<'p> for &'p Lanes<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    type Database = DB;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> futures_util::stream::BoxStream<'e, Result<Either<DB::QueryResult, DB::Row>, sqlx::Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, DB>,
    {
        // Collected, then streamed: the lane is back before the caller looks at the rows. Every
        // statement of ours returns a bounded number of rows (lists and deletions have limits).
        let collected = async move {
            let mut lane = self.acquire().await?;
            let result: Result<Vec<_>, sqlx::Error> =
                lane.connection()?.fetch_many(query).try_collect().await;
            lane.finished(&result);
            result
        };
        Box::pin(
            futures_util::stream::once(collected)
                .map_ok(|items| futures_util::stream::iter(items.into_iter().map(Ok)))
                .try_flatten(),
        )
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> futures_util::future::BoxFuture<'e, Result<Option<DB::Row>, sqlx::Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, DB>,
    {
        Box::pin(async move {
            let mut lane = self.acquire().await?;
            let result = lane.connection()?.fetch_optional(query).await;
            lane.finished(&result);
            result
        })
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [DB::TypeInfo],
    ) -> futures_util::future::BoxFuture<'e, Result<DB::Statement<'q>, sqlx::Error>>
    where
        'p: 'e,
    {
        Box::pin(async move {
            let mut lane = self.acquire().await?;
            let result = lane.connection()?.prepare_with(sql, parameters).await;
            lane.finished(&result);
            result
        })
    }

    fn describe<'e, 'q: 'e>(
        self,
        sql: &'q str,
    ) -> futures_util::future::BoxFuture<'e, Result<sqlx::Describe<DB>, sqlx::Error>>
    where
        'p: 'e,
    {
        Box::pin(async move {
            let mut lane = self.acquire().await?;
            let result = lane.connection()?.describe(sql).await;
            lane.finished(&result);
            result
        })
    }
}

#[cfg(test)]
mod tests;
