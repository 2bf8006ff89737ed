//! Device authorization requests (RFC 8628). The device code and the user code are stored as
//! hashes only. Every change is one conditional statement, so replicas agree without locks: a
//! user code is decided once (`status` leaves `pending`), a device code is redeemed once
//! (`redeemed_at`), and the polling interval grows in the row itself (§3.5 `slow_down`).

use super::{is_unique_violation, on_pool, Store, StoreError};
use crate::clock::UnixTime;

/// RFC 8628 §3.5: what `slow_down` adds to the interval.
pub const SLOW_DOWN_STEP: i64 = 5;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeviceCode {
    pub server_id: String,
    pub client_id: String,
    pub scope: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub poll_interval: i64,
    /// `pending`, `approved` or `denied`.
    pub status: String,
    pub user_id: Option<String>,
    pub session_sid: Option<String>,
    pub auth_time: Option<i64>,
    pub grant_id: Option<String>,
    pub redeemed_at: Option<i64>,
}

/// A device authorization request about to be stored.
#[derive(Debug, Clone)]
pub struct NewDeviceCode {
    pub device_code_hash: Vec<u8>,
    pub user_code_hash: Vec<u8>,
    pub server_id: String,
    pub client_id: String,
    pub scope: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub poll_interval: i64,
}

/// What one poll of the token endpoint found.
#[derive(Debug)]
pub enum DevicePoll {
    /// Approved, and this call redeemed it: the only one that ever will.
    Redeemed(Box<DeviceCode>),
    /// Not redeemed by this call: the row after the poll, and whether the poll came sooner
    /// than the interval allowed (the interval has then grown by `SLOW_DOWN_STEP`).
    Polled {
        code: Box<DeviceCode>,
        too_fast: bool,
    },
    /// No such device code for this client at this server.
    Unknown,
}

/// The user's answer on the verification page.
#[derive(Debug)]
pub enum DeviceDecision<'a> {
    Approve {
        user_id: &'a str,
        session_sid: &'a str,
        auth_time: UnixTime,
        grant_id: &'a str,
    },
    Deny,
}

/// An approved code not yet redeemed and not expired (`$2`: now).
const REDEEMABLE: &str = "status = 'approved' AND redeemed_at IS NULL AND expires_at > $2";
/// A poll sooner than the interval after the last one.
const TOO_FAST: &str = "last_polled_at IS NOT NULL AND $2 - last_polled_at < poll_interval";

const COLUMNS: &str = "server_id, client_id, scope, created_at, expires_at, poll_interval, \
    status, user_id, session_sid, auth_time, grant_id, redeemed_at";

impl Store {
    /// Store a new request. `AlreadyExists` when the user code is taken (the caller draws
    /// another).
    pub async fn insert_device_code(&self, new: &NewDeviceCode) -> Result<(), StoreError> {
        let result = on_pool!(self, pool => sqlx::query(
            "INSERT INTO device_codes (device_code_hash, user_code_hash, server_id, client_id, \
             scope, created_at, expires_at, poll_interval) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&new.device_code_hash)
        .bind(&new.user_code_hash)
        .bind(&new.server_id)
        .bind(&new.client_id)
        .bind(&new.scope)
        .bind(new.created_at)
        .bind(new.expires_at)
        .bind(new.poll_interval)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()));
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(StoreError::AlreadyExists("user code".into())),
            Err(e) => Err(e.into()),
        }
    }

    /// The pending, unexpired request a user code names at this server.
    pub async fn pending_device_code(
        &self,
        user_code_hash: &[u8],
        server_id: &str,
        now: UnixTime,
    ) -> Result<Option<DeviceCode>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM device_codes WHERE user_code_hash = $1 AND server_id = $2 \
             AND status = 'pending' AND expires_at > $3"
        );
        Ok(on_pool!(self, pool => sqlx::query_as::<_, DeviceCode>(&sql)
            .bind(user_code_hash)
            .bind(server_id)
            .bind(now)
            .fetch_optional(pool)
            .await?))
    }

    /// Record the user's decision, once: false when the request is no longer pending (decided
    /// in another tab, or expired).
    pub async fn decide_device_code(
        &self,
        user_code_hash: &[u8],
        server_id: &str,
        decision: DeviceDecision<'_>,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let (status, user_id, sid, auth_time, grant_id) = match decision {
            DeviceDecision::Approve {
                user_id,
                session_sid,
                auth_time,
                grant_id,
            } => (
                "approved",
                Some(user_id),
                Some(session_sid),
                Some(auth_time),
                Some(grant_id),
            ),
            DeviceDecision::Deny => ("denied", None, None, None, None),
        };
        let changed = on_pool!(self, pool => sqlx::query(
            "UPDATE device_codes SET status = $3, user_id = $4, session_sid = $5, auth_time = $6, \
             grant_id = $7, decided_at = $8 \
             WHERE user_code_hash = $1 AND server_id = $2 AND status = 'pending' AND expires_at > $8",
        )
        .bind(user_code_hash)
        .bind(server_id)
        .bind(status)
        .bind(user_id)
        .bind(sid)
        .bind(auth_time)
        .bind(grant_id)
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(changed == 1)
    }

    /// One poll of the token endpoint by `client_id` (RFC 8628 §3.4). An approved code is
    /// redeemed by exactly one caller, however many replicas race; any other poll records its
    /// time and, when it came sooner than the interval, adds `SLOW_DOWN_STEP` to it (§3.5), in
    /// the same statement.
    pub async fn poll_device_code(
        &self,
        device_code_hash: &[u8],
        client_id: &str,
        server_id: &str,
        now: UnixTime,
    ) -> Result<DevicePoll, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Polled {
            #[sqlx(flatten)]
            code: DeviceCode,
            polled_too_fast: bool,
            redeemed_by_poll: bool,
        }
        // One statement, one round trip per poll. Every SET expression reads the row as it was
        // before the statement, on both databases, and a concurrent poll of the same row waits
        // for this one and then reads what it wrote: exactly one poll redeems.
        let poll = format!(
            "UPDATE device_codes SET \
             redeemed_by_poll = ({REDEEMABLE}), \
             redeemed_at = CASE WHEN {REDEEMABLE} THEN $2 ELSE redeemed_at END, \
             polled_too_fast = ({TOO_FAST}), \
             poll_interval = CASE WHEN {TOO_FAST} \
                 THEN poll_interval + {SLOW_DOWN_STEP} ELSE poll_interval END, \
             last_polled_at = $2 \
             WHERE device_code_hash = $1 AND client_id = $3 AND server_id = $4 \
             RETURNING {COLUMNS}, polled_too_fast, redeemed_by_poll"
        );
        let polled = on_pool!(self, pool => sqlx::query_as::<_, Polled>(&poll)
            .bind(device_code_hash)
            .bind(now)
            .bind(client_id)
            .bind(server_id)
            .fetch_optional(pool)
            .await?);
        Ok(match polled {
            Some(p) if p.redeemed_by_poll => DevicePoll::Redeemed(Box::new(p.code)),
            Some(p) => DevicePoll::Polled {
                code: Box::new(p.code),
                too_fast: p.polled_too_fast,
            },
            None => DevicePoll::Unknown,
        })
    }

    /// Housekeeping: requests past their expiry, decided or not (what they issued lives on in
    /// its grant).
    pub async fn delete_expired_device_codes(
        &self,
        now: UnixTime,
        limit: u32,
    ) -> Result<u64, StoreError> {
        self.delete_batch(
            "DELETE FROM device_codes WHERE device_code_hash IN \
             (SELECT device_code_hash FROM device_codes WHERE expires_at <= $1 LIMIT $2)",
            now,
            limit,
        )
        .await
    }
}
