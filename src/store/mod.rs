//! The SQL store. One `Store` over SQLite (the embedded default) or PostgreSQL (several
//! replicas), one module per aggregate. SQL lives here only.
//!
//! sqlx's SQLite driver accepts `$N` placeholders, so every statement is written once and runs on
//! either pool: `on_pool!` expands the same code for each arm. Statements that truly differ
//! between the dialects sit side by side in an explicit `match`.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Postgres, Sqlite};

use lanes::Lanes;

mod access_policies;
mod audit;
mod cache;
mod claims;
mod clients;
mod consents;
mod device_codes;
mod grants;
mod groups;
mod housekeeping;
mod interactions;
mod keys;
mod lanes;
mod locks;
mod login_attempts;
pub mod logout;
mod mfa;
mod passkeys;
mod rate_limits;
mod refresh_tokens;
pub mod registration;
mod revocations;
mod scopes;
pub mod servers;
mod sessions;
mod user_grants;
mod users;
pub mod wal;
// High-assurance clients (issue 21).
mod client_security;
mod dpop_nonce;
mod jti;
mod pushed_requests;

pub use access_policies::{AccessPolicy, AccessRule, People, PolicyClients};
pub use audit::{AuditEvent, AuditFilter, NewAuditEvent};
pub use claims::{ClaimSource, ClaimTarget, CustomClaim, GroupFilter, GroupPattern, GroupsClaim};
pub use clients::{Client, ClientKey, NewClient};
pub use device_codes::{DeviceCode, DeviceDecision, DevicePoll, NewDeviceCode, SLOW_DOWN_STEP};
pub use grants::{AuthorizationCode, Redemption};
pub use groups::{Assignee, Group};
pub use housekeeping::HousekeepingLock;
pub use interactions::StoredInteraction;
pub use keys::{DueRotation, NewestKey, Rewrapped, StoredKey};
pub use login_attempts::LoginAttempt;
pub use logout::{ClientLogout, FrontChannelLogout, LogoutDelivery, Sessions};
pub use mfa::{MfaFactor, TOTP};
pub use passkeys::{Passkey, WebauthnChallenge};
pub use refresh_tokens::{RefreshToken, Rotation as RefreshRotation, SuccessorKey};
pub use scopes::Scope;
pub use servers::{AuthorizationServer, ServerChanges};
pub use sessions::Session;
pub use user_grants::{GrantKey, UserConsent, UserGrant, UserGrants};
pub use users::{NewUser, User, Username};
// High-assurance clients (issue 21).
pub use client_security::ClientSecurity;
pub use jti::{JtiKind, JtiUse};
pub use pushed_requests::PushedRequest;

#[derive(Clone)]
pub struct Store {
    db: Db,
    /// Servers, clients, claims and scopes as this replica last read them (`cache.rs`).
    cache: std::sync::Arc<cache::Cache>,
}

#[derive(Clone)]
enum Db {
    Sqlite(Arc<Lanes<Sqlite>>),
    Postgres(Arc<Lanes<Postgres>>),
}

/// Run the same sqlx code on whichever database the store holds: `$pool` is a `&Lanes`, an
/// executor like sqlx's `&Pool` (one connection per statement), whose `acquire()` lends one
/// connection for a transaction.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.db {
            $crate::store::Db::Sqlite(lanes) => {
                let $pool = &**lanes;
                $body
            }
            $crate::store::Db::Postgres(lanes) => {
                let $pool = &**lanes;
                $body
            }
        }
    };
}
pub(crate) use on_pool;

/// `$first, $first + 1, …`: the placeholders of an `IN (…)` over `n` values bound in order,
/// for the batch lookups that give a page of a list its related rows in one query instead of
/// one per item. `n` is at most a page (the management API's 200).
pub(crate) fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One page of a list (keyset paging): the rows after the key `after` in the list's order, at
/// most `limit` of them (all without a limit). Used by the CLI's `--after` / `--limit` and
/// meant for the management API's lists.
#[derive(Debug, Clone, Copy, Default)]
pub struct Page<'a> {
    pub after: Option<&'a str>,
    pub limit: Option<u32>,
}

impl Page<'_> {
    /// The limit as bound in SQL (both databases accept a huge LIMIT as "no limit").
    pub(crate) fn sql_limit(&self) -> i64 {
        self.limit.map_or(i64::MAX, i64::from)
    }
}

/// Errors of the store that callers distinguish.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// The database could not be reached, as opposed to a query that failed: no connection
    /// (refused, reset, timed out waiting for one), or the server ending or refusing sessions
    /// (SQLSTATE class 08, 53 and 57P, and 55000 "not currently accepting connections"). The
    /// request may well succeed a moment later, on this replica or another.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Database(e) if crate::error::database_unavailable(e))
    }
}

/// A failed batched write, told to every request that waited on it (`StoreError` is not
/// `Clone`): the audit log's and the used JWT ids' writers.
#[derive(Debug, Clone)]
pub struct BatchFailure {
    /// The database could not be reached (retry shortly) rather than refused the write.
    unavailable: bool,
    message: String,
}

impl BatchFailure {
    pub fn of(e: &StoreError) -> Self {
        Self {
            unavailable: e.is_unavailable(),
            message: e.to_string(),
        }
    }

    /// The request's error: 503 when the database was unavailable, else 500; `what` names
    /// the write in the log.
    pub fn into_error(self, what: &str) -> crate::error::Error {
        let cause = format_args!("{what}: {}", self.message);
        if self.unavailable {
            crate::error::Error::unavailable(cause)
        } else {
            crate::error::Error::internal(cause)
        }
    }
}

impl From<StoreError> for crate::error::Error {
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() {
            crate::error::Error::unavailable(e)
        } else {
            crate::error::Error::internal(e)
        }
    }
}

impl Store {
    /// Connect to `database_url`; a SQLite file is created if missing and put in WAL mode.
    pub async fn connect(database_url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let db = if database_url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(database_url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
                // Most checkpoints run in the background (`wal`); this one, in the writing
                // connection, finishes their work and lets the WAL start again.
                .pragma("wal_autocheckpoint", wal::AUTOCHECKPOINT_PAGES.to_string());
            let pool = SqlitePoolOptions::new()
                .max_connections(max_connections)
                // An in-process SQLite connection cannot drop; the ping sqlx sends by default
                // before lending one out is a round trip to its worker thread for every query.
                .test_before_acquire(false)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await?;
            Db::Sqlite(Arc::new(Lanes::new(pool, max_connections, 0)))
        } else {
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(Duration::from_secs(10))
                .connect(database_url)
                .await?;
            // One connection stays for the housekeeping lock, held for a whole pass.
            Db::Postgres(Arc::new(Lanes::new(pool, max_connections, 1)))
        };
        Ok(Self {
            db,
            cache: std::sync::Arc::new(cache::Cache::new()),
        })
    }

    /// Apply pending migrations. On PostgreSQL sqlx holds an advisory lock meanwhile, so
    /// replicas starting together migrate once.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.db {
            Db::Sqlite(lanes) => {
                let mut lane = lanes.acquire().await?;
                sqlx::migrate!("./migrations/sqlite")
                    .run(lane.connection()?)
                    .await?;
                lane.release();
            }
            Db::Postgres(lanes) => {
                let mut lane = lanes.acquire().await?;
                sqlx::migrate!("./migrations/postgres")
                    .run(lane.connection()?)
                    .await?;
                lane.release();
            }
        }
        Ok(())
    }

    /// `/readyz`: can we reach the database?
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await?.rows_affected());
        Ok(())
    }

    /// Connections the pool holds open, and how many of them are idle (for `/metrics`).
    pub fn pool_stats(&self) -> (u32, usize) {
        on_pool!(self, pool => pool.stats())
    }

    pub fn backend(&self) -> &'static str {
        match &self.db {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await)
    }
}

/// Is this sqlx error a unique-constraint violation (a lost race or a duplicate)?
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// A write that may hit a uniqueness constraint: the duplicate becomes `AlreadyExists(what)`.
pub(crate) fn or_already_exists<T>(
    result: Result<T, sqlx::Error>,
    what: impl FnOnce() -> String,
) -> Result<T, StoreError> {
    result.map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::AlreadyExists(what())
        } else {
            e.into()
        }
    })
}

/// `a, b` as `t.a AS pa, t.b AS pb`: a table's columns in a query that joins another, named
/// so that neither table's columns shadow the other's.
pub(crate) fn qualified(columns: &str, table: &str, prefix: &str) -> String {
    columns
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| format!("{table}.{c} AS {prefix}{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Space- or newline-separated lists are stored as TEXT.
pub(crate) fn split_list(value: &str) -> Vec<String> {
    value
        .split(['\n', ' '])
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}
