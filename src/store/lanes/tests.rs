//! What a lane must never do: hand a connection with a reply still in flight or a transaction
//! still open to the next statement, or starve when more statements than connections wait.
//! On a real SQLite file, and on PostgreSQL when PORTCULLIS_TEST_POSTGRES_URL was set at build
//! time (as for the integration tests).
//!
//! sqlx's connections recover from the first two by themselves as well (the next statement
//! drains a cancelled reply; a dropped transaction queues its rollback), and a lane hands such a
//! connection back to sqlx's pool to be tested on top of that: these tests pin the behaviour
//! whichever mechanism provides it.

use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{Database, Executor, IntoArguments, Sqlite};

use super::Lanes;

/// What a test needs of a backend.
struct Backend<DB: Database> {
    lanes: Lanes<DB>,
    /// A statement that runs for well over the 50 ms a test waits for it.
    slow: &'static str,
    /// A table of its own (dropped with the temporary directory or at the end).
    table: String,
    _dir: Option<tempfile::TempDir>,
}

async fn sqlite(max_connections: u32) -> Backend<Sqlite> {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = SqliteConnectOptions::new()
        .filename(dir.path().join("lanes.db"))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal);
    let pool = SqlitePoolOptions::new()
        .max_connections(max_connections)
        .test_before_acquire(false)
        .connect_with(options)
        .await
        .expect("SQLite pool");
    Backend {
        lanes: Lanes::new(pool, max_connections, 0),
        slow: "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) \
               SELECT count(*) FROM c",
        table: "lanes_test".into(),
        _dir: Some(dir),
    }
}

#[cfg(portcullis_pg_tests)]
async fn postgres(max_connections: u32) -> Backend<sqlx::Postgres> {
    let url = std::env::var("PORTCULLIS_TEST_POSTGRES_URL")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| option_env!("PORTCULLIS_TEST_POSTGRES_URL").map(str::to_string))
        .expect("PORTCULLIS_TEST_POSTGRES_URL");
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(max_connections)
        .connect(&url)
        .await
        .expect("PostgreSQL pool");
    Backend {
        lanes: Lanes::new(pool, max_connections, 1),
        slow: "SELECT pg_sleep(1)",
        table: format!(
            "lanes_test_{}",
            crate::security::random_token(12)
                .to_lowercase()
                .replace(['-', '_'], "x")
        ),
        _dir: None,
    }
}

impl<DB: Database> Backend<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    i64: for<'q> sqlx::Encode<'q, DB> + for<'r> sqlx::Decode<'r, DB> + sqlx::Type<DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    async fn create_table(&self) {
        let sql = format!("CREATE TABLE {} (x BIGINT PRIMARY KEY)", self.table);
        sqlx::query(&sql)
            .execute(&self.lanes)
            .await
            .expect("create table");
    }

    async fn drop_table(&self) {
        let sql = format!("DROP TABLE IF EXISTS {}", self.table);
        sqlx::query(&sql)
            .execute(&self.lanes)
            .await
            .expect("drop table");
    }

    /// `SELECT n` through the lanes.
    async fn echo(&self, n: i64) -> i64 {
        let (value,): (i64,) = sqlx::query_as("SELECT CAST($1 AS BIGINT)")
            .bind(n)
            .fetch_one(&self.lanes)
            .await
            .expect("echo");
        value
    }

    async fn rows(&self) -> Vec<i64> {
        let sql = format!("SELECT x FROM {} ORDER BY x", self.table);
        let rows: Vec<(i64,)> = sqlx::query_as(&sql)
            .fetch_all(&self.lanes)
            .await
            .expect("rows");
        rows.into_iter().map(|(x,)| x).collect()
    }

    async fn insert(&self, x: i64) -> Result<(), sqlx::Error> {
        let sql = format!("INSERT INTO {} (x) VALUES ($1)", self.table);
        sqlx::query(&sql).bind(x).execute(&self.lanes).await?;
        Ok(())
    }

    /// Connections idle in the lanes (not in sqlx's pool).
    fn idle(&self) -> usize {
        self.lanes.idle_count()
    }

    /// A statement cancelled while the database is still answering it: whichever connection
    /// the next statements get, each gets its own answer, never the abandoned one's.
    async fn cancelled_statement_leaves_no_stale_reply(&self) {
        let slow = sqlx::query(self.slow).execute(&self.lanes);
        let outcome = tokio::time::timeout(Duration::from_millis(50), slow).await;
        assert!(
            outcome.is_err(),
            "the slow statement should still be running"
        );
        for n in 0..20 {
            assert_eq!(self.echo(n).await, n);
        }
    }

    /// A transaction dropped before its commit is rolled back, and the connection does not
    /// carry it into the next statement: a later write is committed on its own.
    async fn abandoned_transaction_is_rolled_back(&self) {
        self.create_table().await;
        {
            let mut lane = self.lanes.acquire().await.expect("lane");
            let mut tx = lane.begin().await.expect("begin");
            let sql = format!("INSERT INTO {} (x) VALUES (1)", self.table);
            sqlx::query(&sql).execute(&mut *tx).await.expect("insert");
            // Neither committed nor released.
        }
        self.insert(2).await.expect("insert 2");
        // A transaction left open would hide row 2 from every other connection: hold the lane
        // that wrote it and read on another one.
        let writer = self.lanes.acquire().await.expect("lane");
        let sql = format!("SELECT x FROM {} ORDER BY x", self.table);
        let mut other = self.lanes.detached().await.expect("connection");
        let rows: Vec<(i64,)> = sqlx::query_as(&sql)
            .fetch_all(&mut *other)
            .await
            .expect("rows");
        drop((other, writer));
        assert_eq!(rows, vec![(2,)]);
        self.drop_table().await;
    }

    /// A transaction committed and released goes back to the idle lanes.
    async fn committed_transaction_keeps_the_connection(&self) {
        self.create_table().await;
        let idle_before = self.idle();
        let mut lane = self.lanes.acquire().await.expect("lane");
        let mut tx = lane.begin().await.expect("begin");
        let sql = format!("INSERT INTO {} (x) VALUES (7)", self.table);
        sqlx::query(&sql).execute(&mut *tx).await.expect("insert");
        tx.commit().await.expect("commit");
        lane.release();
        assert_eq!(self.idle(), idle_before.max(1));
        assert_eq!(self.rows().await, vec![7]);
        self.drop_table().await;
    }

    /// An error the database reports (here a duplicate key) leaves the connection usable: it
    /// stays in the lanes rather than going back to the pool to be tested.
    async fn database_error_keeps_the_connection(&self) {
        self.create_table().await;
        self.insert(1).await.expect("first insert");
        let idle = self.idle();
        let duplicate = self.insert(1).await.expect_err("duplicate key");
        assert!(
            matches!(&duplicate, sqlx::Error::Database(e) if e.is_unique_violation()),
            "{duplicate:?}"
        );
        assert_eq!(self.idle(), idle);
        assert_eq!(self.rows().await, vec![1]);
        self.drop_table().await;
    }

    async fn select_one(lane: &mut super::Lane<'_, DB>) {
        let conn = lane.connection().expect("connection");
        sqlx::query("SELECT 1")
            .execute(conn)
            .await
            .expect("statement");
    }

    /// A connection taken out of the lanes (the housekeeping lock's) is an idle lane's when
    /// there is one, and otherwise the next one a lane releases: connections released by lanes
    /// never return to sqlx's pool, so waiting on the pool alone would wait for ever. The pool
    /// here holds two connections.
    async fn detached_connection_comes_from_the_lanes(&self) {
        let mut lane = self.lanes.acquire().await.expect("lane");
        Self::select_one(&mut lane).await;
        lane.release();
        let first = tokio::time::timeout(Duration::from_secs(5), self.lanes.detached())
            .await
            .expect("the idle lane's connection, at once")
            .expect("connection");
        // The pool's second connection, out in a lane: none is left.
        let mut lane = self.lanes.acquire().await.expect("lane");
        let second = self.lanes.detached();
        tokio::pin!(second);
        let early = tokio::time::timeout(Duration::from_millis(50), second.as_mut()).await;
        assert!(early.is_err(), "no connection is free yet");
        Self::select_one(&mut lane).await;
        lane.release();
        let second = tokio::time::timeout(Duration::from_secs(5), second)
            .await
            .expect("the released lane's connection")
            .expect("connection");
        drop((first, second));
    }

    /// Closing waits for a lane still out, and finishes once it is released: sqlx's `close`
    /// waits for every connection it lent, so a released connection must go back to sqlx.
    async fn close_finishes_when_the_last_lane_is_released(&self) {
        let mut lane = self.lanes.acquire().await.expect("lane");
        Self::select_one(&mut lane).await;
        let close = self.lanes.close();
        tokio::pin!(close);
        let early = tokio::time::timeout(Duration::from_millis(50), close.as_mut()).await;
        assert!(early.is_err(), "a lane is still out");
        lane.release();
        tokio::time::timeout(Duration::from_secs(5), close)
            .await
            .expect("closed once the lane was released");
        assert!(matches!(
            self.lanes.acquire().await.map(|_| ()),
            Err(sqlx::Error::PoolClosed)
        ));
    }

    /// Many more statements at once than there are connections: every one completes, with its
    /// own answer, and every connection comes back.
    async fn more_statements_than_connections_all_complete(&self) {
        let lanes = self.lanes.permits.available_permits();
        let results = futures_util::future::join_all((0..64).map(|n| self.echo(n))).await;
        assert_eq!(results, (0..64).collect::<Vec<_>>());
        assert_eq!(self.lanes.permits.available_permits(), lanes);
    }
}

/// Each behaviour as a test per database: `sqlite::name` and `postgres::name`, both with a pool
/// of two connections (on PostgreSQL one of them is left to detached connections, so one lane).
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::sqlite(2).await.$name().await;
                }
            )*
        }
        #[cfg(portcullis_pg_tests)]
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    super::postgres(2).await.$name().await;
                }
            )*
        }
    };
}

on_both_databases!(
    cancelled_statement_leaves_no_stale_reply,
    abandoned_transaction_is_rolled_back,
    committed_transaction_keeps_the_connection,
    database_error_keeps_the_connection,
    detached_connection_comes_from_the_lanes,
    close_finishes_when_the_last_lane_is_released,
    more_statements_than_connections_all_complete,
);
