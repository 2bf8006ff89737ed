//! Single logout: where each client hears of a logout (`client_logout`), and the durable outbox
//! of back-channel deliveries (`logout_deliveries`). A delivery is queued in the transaction
//! that ends its session, leased by one replica at a time (an UPDATE that only one caller can
//! win, `SKIP LOCKED` on PostgreSQL), and deleted when delivered or given up. A replica that
//! dies holding a lease loses nothing: the lease runs out and another replica sends it.

use std::collections::HashMap;
use std::sync::LazyLock;

use super::{on_pool, Db, Store, StoreError};
use crate::clock::UnixTime;

/// A client's logout URIs (OpenID Connect Back-Channel Logout 1.0 §2.2, Front-Channel Logout
/// 1.0 §2).
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct ClientLogout {
    pub backchannel_logout_uri: Option<String>,
    pub backchannel_session_required: bool,
    pub frontchannel_logout_uri: Option<String>,
    pub frontchannel_session_required: bool,
}

impl ClientLogout {
    /// A client that registered no logout URIs: the specifications' defaults for the flags.
    pub fn unregistered() -> Self {
        Self {
            backchannel_session_required: true,
            frontchannel_session_required: true,
            ..Self::default()
        }
    }
}

/// A client to show in a front-channel iframe when a session ends.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FrontChannelLogout {
    pub client_id: String,
    pub uri: String,
    pub session_required: bool,
}

/// One back-channel notification waiting to be sent.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LogoutDelivery {
    /// Also the logout token's `jti`.
    pub id: String,
    pub server_id: String,
    pub client_id: String,
    pub uri: String,
    pub subject: String,
    pub sid: Option<String>,
    /// When it was queued: the sender gives up `logout.retry_for` after.
    pub created_at: i64,
    /// Attempts so far, this one included.
    pub attempts: i32,
}

/// Which sessions a logout ends.
#[derive(Debug, Clone, Copy)]
pub enum Sessions<'a> {
    /// One session, by its `sid` (RP-initiated logout, `user sessions revoke --session`).
    One(&'a str),
    /// Every live session of a user (an operator's sign-out everywhere, disabling the user, a new
    /// password, deleting the user).
    OfUser(&'a str),
}

impl<'a> Sessions<'a> {
    /// The condition on `sessions` (aliased `s`) and its one parameter, `$1`.
    pub(super) fn condition(self) -> (&'static str, &'a str) {
        match self {
            Sessions::One(sid) => ("s.sid = $1", sid),
            Sessions::OfUser(user_id) => ("s.user_id = $1", user_id),
        }
    }
}

const DELIVERY_COLUMNS: &str = "id, server_id, client_id, uri, subject, sid, created_at, attempts";

/// The back-channel clients of the live sessions `Sessions::condition` picks: every client with
/// a back-channel URI that holds a grant made in the session.
pub(super) fn backchannel_targets_sql(condition: &str) -> String {
    format!(
        "SELECT DISTINCT s.sid, s.user_id, s.server_id, g.client_id, cl.backchannel_logout_uri \
         FROM sessions s JOIN grants g ON g.session_sid = s.sid \
         JOIN client_logout cl ON cl.client_id = g.client_id \
         WHERE {condition} AND s.ended_at IS NULL AND cl.backchannel_logout_uri IS NOT NULL"
    )
}

/// Withdraw what the sessions gave, except `offline_access` (which outlives the session by
/// design), then end them. `$1` the condition's parameter, `$2` now.
pub(super) fn end_sessions_sql(condition: &str) -> [String; 3] {
    let live = format!("SELECT s.sid FROM sessions s WHERE {condition} AND s.ended_at IS NULL");
    let online = "(' ' || scope || ' ') NOT LIKE '% offline_access %'";
    [
        format!(
            "UPDATE refresh_tokens SET revoked_at = $2 WHERE session_sid IN ({live}) \
             AND revoked_at IS NULL AND {online}"
        ),
        format!(
            "UPDATE grants SET revoked_at = $2 WHERE session_sid IN ({live}) \
             AND revoked_at IS NULL AND {online}"
        ),
        format!("UPDATE sessions SET ended_at = $2 WHERE sid IN ({live})"),
    ]
}

pub(super) const INSERT_DELIVERY: &str =
    "INSERT INTO logout_deliveries (id, server_id, client_id, \
     uri, subject, sid, created_at, next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)";

#[derive(sqlx::FromRow)]
pub(super) struct Target {
    pub sid: String,
    pub user_id: String,
    pub server_id: String,
    pub client_id: String,
    pub backchannel_logout_uri: String,
}

/// End sessions inside the caller's transaction `$tx`: queue a back-channel delivery for every
/// client that received tokens in them, withdraw their online grants and refresh tokens, and
/// mark them ended. Evaluates to the ids of the deliveries queued.
macro_rules! end_sessions_in {
    ($tx:expr, $which:expr, $now:expr) => {{
        use $crate::store::logout::{
            backchannel_targets_sql, end_sessions_sql, Target, INSERT_DELIVERY,
        };
        let (condition, key) = $which.condition();
        let targets: Vec<Target> = sqlx::query_as(&backchannel_targets_sql(condition))
            .bind(key)
            .fetch_all(&mut *$tx)
            .await?;
        let mut queued = Vec::with_capacity(targets.len());
        for t in targets {
            let id = $crate::security::random_token(16);
            sqlx::query(INSERT_DELIVERY)
                .bind(&id)
                .bind(&t.server_id)
                .bind(&t.client_id)
                .bind(&t.backchannel_logout_uri)
                .bind(&t.user_id)
                .bind(&t.sid)
                .bind($now)
                .execute(&mut *$tx)
                .await?;
            queued.push(id);
        }
        for sql in end_sessions_sql(condition) {
            sqlx::query(&sql)
                .bind(key)
                .bind($now)
                .execute(&mut *$tx)
                .await?;
        }
        queued
    }};
}
pub(crate) use end_sessions_in;

impl Store {
    /// A client's logout URIs; the defaults (none) when it registered none.
    pub async fn client_logout(&self, client_id: &str) -> Result<ClientLogout, StoreError> {
        let row = on_pool!(self, pool => sqlx::query_as::<_, ClientLogout>(
            "SELECT backchannel_logout_uri, backchannel_session_required, \
             frontchannel_logout_uri, frontchannel_session_required \
             FROM client_logout WHERE client_id = $1",
        )
        .bind(client_id)
        .fetch_optional(pool)
        .await?);
        Ok(row.unwrap_or_else(ClientLogout::unregistered))
    }

    /// The logout URIs of several clients in one query (a page of the management API's client
    /// list), by client id; a client without a row has none.
    pub async fn client_logouts(
        &self,
        client_ids: &[&str],
    ) -> Result<HashMap<String, ClientLogout>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            client_id: String,
            #[sqlx(flatten)]
            logout: ClientLogout,
        }
        if client_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let sql = format!(
            "SELECT client_id, backchannel_logout_uri, backchannel_session_required, \
             frontchannel_logout_uri, frontchannel_session_required \
             FROM client_logout WHERE client_id IN ({})",
            super::placeholders(1, client_ids.len())
        );
        let rows: Vec<Row> = on_pool!(self, pool => {
            let mut query = sqlx::query_as::<_, Row>(&sql);
            for id in client_ids {
                query = query.bind(*id);
            }
            query.fetch_all(pool).await?
        });
        let mut found: HashMap<String, ClientLogout> = rows
            .into_iter()
            .map(|row| (row.client_id, row.logout))
            .collect();
        for id in client_ids {
            found
                .entry((*id).to_string())
                .or_insert_with(ClientLogout::unregistered);
        }
        Ok(found)
    }

    /// Replace a client's logout URIs.
    pub async fn set_client_logout(
        &self,
        client_id: &str,
        logout: &ClientLogout,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO client_logout (client_id, backchannel_logout_uri, \
             backchannel_session_required, frontchannel_logout_uri, frontchannel_session_required) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (client_id) DO UPDATE SET \
             backchannel_logout_uri = excluded.backchannel_logout_uri, \
             backchannel_session_required = excluded.backchannel_session_required, \
             frontchannel_logout_uri = excluded.frontchannel_logout_uri, \
             frontchannel_session_required = excluded.frontchannel_session_required",
        )
        .bind(client_id)
        .bind(&logout.backchannel_logout_uri)
        .bind(logout.backchannel_session_required)
        .bind(&logout.frontchannel_logout_uri)
        .bind(logout.frontchannel_session_required)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(())
    }

    /// End `which` sessions (see [`end_sessions_in`]) in one transaction; the deliveries queued.
    pub async fn end_sessions(
        &self,
        which: Sessions<'_>,
        now: UnixTime,
    ) -> Result<Vec<String>, StoreError> {
        Ok(on_pool!(self, pool => {
            let mut lane = pool.acquire().await?;
            let mut tx = lane.begin().await?;
            let queued = end_sessions_in!(tx, which, now);
            tx.commit().await?;
            lane.release();
            queued
        }))
    }

    /// The front-channel logout URIs of the clients that received tokens in session `sid`.
    pub async fn frontchannel_logouts(
        &self,
        sid: &str,
    ) -> Result<Vec<FrontChannelLogout>, StoreError> {
        Ok(
            on_pool!(self, pool => sqlx::query_as::<_, FrontChannelLogout>(
            "SELECT DISTINCT g.client_id, cl.frontchannel_logout_uri AS uri, \
             cl.frontchannel_session_required AS session_required \
             FROM grants g JOIN client_logout cl ON cl.client_id = g.client_id \
             WHERE g.session_sid = $1 AND cl.frontchannel_logout_uri IS NOT NULL \
             ORDER BY g.client_id",
        )
        .bind(sid)
        .fetch_all(pool)
        .await?),
        )
    }

    /// Lease up to `limit` deliveries that are due and not leased by a live sender, until
    /// `leased_until`: each goes to exactly one caller, across replicas.
    pub async fn lease_due_logouts(
        &self,
        now: UnixTime,
        leased_until: UnixTime,
        limit: i64,
    ) -> Result<Vec<LogoutDelivery>, StoreError> {
        static SQLITE: LazyLock<String> = LazyLock::new(|| lease_sql(""));
        static POSTGRES: LazyLock<String> = LazyLock::new(|| lease_sql(" FOR UPDATE SKIP LOCKED"));
        Ok(match &self.db {
            Db::Sqlite(pool) => {
                sqlx::query_as::<_, LogoutDelivery>(&SQLITE)
                    .bind(now)
                    .bind(leased_until)
                    .bind(limit)
                    .fetch_all(&**pool)
                    .await?
            }
            Db::Postgres(pool) => {
                sqlx::query_as::<_, LogoutDelivery>(&POSTGRES)
                    .bind(now)
                    .bind(leased_until)
                    .bind(limit)
                    .fetch_all(&**pool)
                    .await?
            }
        })
    }

    /// Lease one delivery by id (the logout page sending its own at once); `None` if another
    /// sender holds it or it is gone.
    pub async fn lease_logout(
        &self,
        id: &str,
        now: UnixTime,
        leased_until: UnixTime,
    ) -> Result<Option<LogoutDelivery>, StoreError> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "UPDATE logout_deliveries SET leased_until = $3, attempts = attempts + 1 \
                 WHERE id = $1 AND (leased_until IS NULL OR leased_until <= $2) \
                 RETURNING {DELIVERY_COLUMNS}"
            )
        });
        Ok(
            on_pool!(self, pool => sqlx::query_as::<_, LogoutDelivery>(&SQL)
            .bind(id)
            .bind(now)
            .bind(leased_until)
            .fetch_optional(pool)
            .await?),
        )
    }

    /// Delivered or given up: the delivery leaves the outbox.
    pub async fn delete_logout(&self, id: &str) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query("DELETE FROM logout_deliveries WHERE id = $1")
            .bind(id)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(())
    }

    /// Try again at `next_attempt_at`; the lease is released.
    pub async fn retry_logout(
        &self,
        id: &str,
        next_attempt_at: UnixTime,
        error: &str,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query(
            "UPDATE logout_deliveries SET next_attempt_at = $2, leased_until = NULL, \
             last_error = $3 WHERE id = $1",
        )
        .bind(id)
        .bind(next_attempt_at)
        .bind(error)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(())
    }

    /// Deliveries waiting in the outbox (for `/metrics`).
    pub async fn logout_outbox_depth(&self) -> Result<i64, StoreError> {
        let (n,): (i64,) = on_pool!(self, pool => sqlx::query_as(
            "SELECT COUNT(*) FROM logout_deliveries",
        )
        .fetch_one(pool)
        .await?);
        Ok(n)
    }
}

fn lease_sql(locking: &str) -> String {
    format!(
        "UPDATE logout_deliveries SET leased_until = $2, attempts = attempts + 1 \
         WHERE id IN (SELECT id FROM logout_deliveries WHERE next_attempt_at <= $1 \
         AND (leased_until IS NULL OR leased_until <= $1) ORDER BY next_attempt_at LIMIT $3{locking}) \
         AND (leased_until IS NULL OR leased_until <= $1) RETURNING {DELIVERY_COLUMNS}"
    )
}
