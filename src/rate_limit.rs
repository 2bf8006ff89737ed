//! Rate limits, in fixed windows of `rate_limits.window` seconds.
//!
//! - Password checks (login form and password grant together), per client IP and per username:
//!   counted in the database (`rate_limits`, atomic upserts), so the limits hold across
//!   replicas. They are checked before the password is hashed, so a flood cannot buy argon2
//!   time. Every check reserves a failure per IP and per username, given back when the password
//!   was right: only failures count, so many users behind one address can sign in, and a burst
//!   cannot slip past the count. All checks per IP count toward a higher ceiling. Bucket names
//!   are hashes: the table is not a list of usernames or addresses.
//!   The per-username limit only slows guessing spread over many addresses; it ends with its
//!   window, and the account lockout (`accounts`) stays the protection of the account.
//! - `/token` per client: counted in memory, per replica. A database write per token request
//!   would cost more than issuing the token; with N replicas a client gets up to N × the limit,
//!   as documented for `rate_limits.token_per_client`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use axum::http::{header, HeaderValue, StatusCode};

use crate::clock::UnixTime;
use crate::config::RateLimitConfig;
use crate::error::{Error, ErrorCode};
use crate::security::{base64url, sha256};
use crate::store::{Store, StoreError};

/// A refused request: how long until its window ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub retry_after: i64,
    pub limit: &'static str,
}

impl Limited {
    pub fn retry_after_header(&self) -> HeaderValue {
        HeaderValue::from(self.retry_after.max(1))
    }

    /// RFC 6749 names no error code for rate limiting. `temporarily_unavailable` is the one code
    /// of RFC 6749 that means "try again later" (§4.1.2.1), and RFC 6585 §4 gives the status:
    /// 429 with `Retry-After`. Clients that do not know 429 still read a standard code.
    pub fn into_error(self) -> Error {
        Error::new(
            ErrorCode::TemporarilyUnavailable,
            "too many requests; retry after the time in Retry-After",
        )
        .with_status(StatusCode::TOO_MANY_REQUESTS)
        .with_header(header::RETRY_AFTER, self.retry_after_header())
    }
}

/// The per-replica counters of the in-memory limit.
#[derive(Default)]
pub struct RateLimiter {
    // bucket → (window start, hits). Old windows are swept when a new window begins, and a
    // window holds at most `MAX_TOKEN_BUCKETS` buckets: memory stays bounded whatever arrives.
    token: Mutex<(UnixTime, HashMap<String, u64>)>,
}

/// Buckets of the `/token` limit in one window (a few MiB at most). Past it, a public client's
/// new addresses share the client's own bucket, as every request did before buckets per address.
const MAX_TOKEN_BUCKETS: usize = 100_000;

impl RateLimiter {
    /// Count a `/token` request of `client_id`. A confidential client authenticated, so its
    /// budget is its own. A public client is named by its `client_id` alone, which anyone can
    /// send (RFC 6749 §2.1): its budget is kept per client and address (`public_from`), so
    /// nobody can spend another user's.
    pub fn check_token(
        &self,
        config: &RateLimitConfig,
        client_id: &str,
        public_from: Option<IpAddr>,
        now: UnixTime,
    ) -> Result<(), Limited> {
        if !config.enabled || config.token_per_client == 0 {
            return Ok(());
        }
        let (start, retry_after) = window(config, now);
        let hits = {
            let mut guard = self.token.lock().unwrap_or_else(|p| p.into_inner());
            let (window_start, counts) = &mut *guard;
            if *window_start != start {
                *window_start = start;
                counts.clear();
            }
            let key = match public_from {
                Some(ip) => format!("{client_id} {}", ip_key(ip)),
                None => client_id.to_string(),
            };
            let key = if counts.len() < MAX_TOKEN_BUCKETS || counts.contains_key(&key) {
                key
            } else {
                client_id.to_string()
            };
            let hits = counts.entry(key).or_insert(0);
            *hits += 1;
            *hits
        };
        if hits > config.token_per_client {
            return Err(Limited {
                retry_after,
                limit: "token_per_client",
            });
        }
        Ok(())
    }
}

/// Count a password check from `ip` for `username` (login form or password grant), in the
/// database, before the password is hashed: one attempt from `ip`, and one failure from `ip`
/// and for `username`, reserved now and given back by [`sign_in_succeeded`]. Every counter
/// advances, so an address cannot spread over usernames, nor a username over addresses.
pub async fn check_sign_in(
    store: &Store,
    config: &RateLimitConfig,
    ip: IpAddr,
    username: &str,
    now: UnixTime,
) -> Result<Result<(), Limited>, StoreError> {
    if !config.enabled {
        return Ok(Ok(()));
    }
    let (start, retry_after) = window(config, now);
    let attempts = store
        .hit_rate_limit(&bucket("sign_in_ip_all", &ip_key(ip)), start)
        .await?;
    let by_ip = store.hit_rate_limit(&ip_bucket(ip), start).await?;
    let by_user = store.hit_rate_limit(&user_bucket(username), start).await?;
    let limited = |limit| Ok(Err(Limited { retry_after, limit }));
    if attempts > limit(config.sign_in_attempts_per_ip) {
        return limited("sign_in_attempts_per_ip");
    }
    if by_ip > limit(config.sign_in_per_ip) {
        return limited("sign_in_per_ip");
    }
    if by_user > limit(config.sign_in_per_username) {
        return limited("sign_in_per_username");
    }
    Ok(Ok(()))
}

/// The password was right: give back the failures [`check_sign_in`] reserved, in the window
/// it reserved them in (a reservation of a window that has ended is gone with it).
pub async fn sign_in_succeeded(
    store: &Store,
    config: &RateLimitConfig,
    ip: IpAddr,
    username: &str,
    now: UnixTime,
) -> Result<(), StoreError> {
    if !config.enabled {
        return Ok(());
    }
    let (start, _) = window(config, now);
    store.release_rate_limit(&ip_bucket(ip), start).await?;
    store
        .release_rate_limit(&user_bucket(username), start)
        .await
}

/// A password check that reserved no attempt (an unknown username, or a locked account) makes a
/// write of its own. A check of a known username costs a committed `UPDATE users` (the
/// reservation of its attempt, `accounts`); on PostgreSQL a commit is the slow part of a
/// sign-in short of argon2, so without an equivalent write the response time would tell which
/// usernames exist. One upsert of one row keyed by a hash of the username, in `rate_limits`
/// (swept with the other buckets by housekeeping), whether or not the limits are enabled.
pub async fn count_unmatched_sign_in(
    store: &Store,
    config: &RateLimitConfig,
    username: &str,
    now: UnixTime,
) -> Result<(), StoreError> {
    let (start, _) = window(config, now);
    let key = username.trim().to_lowercase();
    store
        .hit_rate_limit(&bucket("sign_in_unmatched", &key), start)
        .await
        .map(|_| ())
}

/// Failed password checks from an address.
fn ip_bucket(ip: IpAddr) -> String {
    bucket("sign_in_ip", &ip_key(ip))
}

/// Failed password checks for a username, as the user would type it again: case and spaces
/// aside.
fn user_bucket(username: &str) -> String {
    bucket("sign_in_user", &username.trim().to_lowercase())
}

/// Count a pending sign-in (an interaction, stored for an /authorize request without a session)
/// started from `ip`, in the database.
pub async fn check_interaction(
    store: &Store,
    config: &RateLimitConfig,
    ip: IpAddr,
    now: UnixTime,
) -> Result<Result<(), Limited>, StoreError> {
    if !config.enabled || config.interactions_per_ip == 0 {
        return Ok(Ok(()));
    }
    let (start, retry_after) = window(config, now);
    let hits = store
        .hit_rate_limit(&bucket("interaction_ip", &ip_key(ip)), start)
        .await?;
    if hits > limit(config.interactions_per_ip) {
        return Ok(Err(Limited {
            retry_after,
            limit: "interactions_per_ip",
        }));
    }
    Ok(Ok(()))
}

/// Count a dynamic client registration (RFC 7591) from `ip`, in the database, whatever its
/// outcome: registrations write rows, so the limit bounds what one address can make us store.
pub async fn check_registration(
    store: &Store,
    config: &RateLimitConfig,
    ip: IpAddr,
    now: UnixTime,
) -> Result<Result<(), Limited>, StoreError> {
    if !config.enabled || config.registrations_per_ip == 0 {
        return Ok(Ok(()));
    }
    let (start, retry_after) = window(config, now);
    let hits = store
        .hit_rate_limit(&bucket("registration_ip", &ip_key(ip)), start)
        .await?;
    if hits > limit(config.registrations_per_ip) {
        return Ok(Err(Limited {
            retry_after,
            limit: "registrations_per_ip",
        }));
    }
    Ok(Ok(()))
}

/// Count a user code entered on `/device` from `ip` in the browser session `sid` (RFC 8628
/// §5.1), in the database, before it is looked up: one failure per address and per session,
/// reserved now and given back by [`user_code_matched`], so only wrong codes count.
pub async fn check_user_code(
    store: &Store,
    config: &RateLimitConfig,
    ip: IpAddr,
    sid: &str,
    now: UnixTime,
) -> Result<Result<(), Limited>, StoreError> {
    if !config.enabled {
        return Ok(Ok(()));
    }
    let (start, retry_after) = window(config, now);
    for (bucket, max, name) in [
        (
            user_code_ip_bucket(ip),
            config.device_user_code_per_ip,
            "device_user_code_per_ip",
        ),
        (
            user_code_session_bucket(sid),
            config.device_user_code_per_session,
            "device_user_code_per_session",
        ),
    ] {
        if max == 0 {
            continue;
        }
        if store.hit_rate_limit(&bucket, start).await? > limit(max) {
            return Ok(Err(Limited {
                retry_after,
                limit: name,
            }));
        }
    }
    Ok(Ok(()))
}

/// The user code was right: give back what [`check_user_code`] reserved.
pub async fn user_code_matched(
    store: &Store,
    config: &RateLimitConfig,
    ip: IpAddr,
    sid: &str,
    now: UnixTime,
) -> Result<(), StoreError> {
    if !config.enabled {
        return Ok(());
    }
    let (start, _) = window(config, now);
    if config.device_user_code_per_ip > 0 {
        store
            .release_rate_limit(&user_code_ip_bucket(ip), start)
            .await?;
    }
    if config.device_user_code_per_session > 0 {
        store
            .release_rate_limit(&user_code_session_bucket(sid), start)
            .await?;
    }
    Ok(())
}

fn user_code_ip_bucket(ip: IpAddr) -> String {
    bucket("user_code_ip", &ip_key(ip))
}

fn user_code_session_bucket(sid: &str) -> String {
    bucket("user_code_session", sid)
}

fn limit(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The current window's start and the seconds until it ends.
fn window(config: &RateLimitConfig, now: UnixTime) -> (UnixTime, i64) {
    let length = config.window.as_i64().max(1);
    let start = now - now.rem_euclid(length);
    (start, start + length - now)
}

/// The part of an address that names one client. An IPv4-mapped IPv6 address
/// (`::ffff:192.0.2.1`, RFC 4291 §2.5.5.2) is its IPv4 address. An IPv6 client is its /64: a
/// subscriber gets at least a /64 (RFC 6177 §2, RFC 7421), so keying by the full address
/// would give one client 2^64 buckets.
fn ip_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !u128::from(u64::MAX);
            format!("{}/64", std::net::Ipv6Addr::from(prefix))
        }
    }
}

/// A bucket name that does not reveal the username or address it counts.
fn bucket(kind: &str, key: &str) -> String {
    format!("{kind}:{}", base64url(&sha256(key.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Seconds;

    #[test]
    fn ipv6_addresses_are_keyed_by_their_64_and_mapped_ipv4_as_ipv4() {
        let key = |s: &str| ip_key(s.parse().unwrap());
        assert_eq!(key("2001:db8:1:2::1"), "2001:db8:1:2::/64");
        assert_eq!(
            key("2001:db8:1:2:ffff:ffff:ffff:ffff"),
            key("2001:db8:1:2::7")
        );
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:192.0.2.1"), "192.0.2.1");
        assert_eq!(key("192.0.2.1"), "192.0.2.1");
    }

    #[test]
    fn token_limit_counts_per_client_and_resets_with_the_window() {
        let config = RateLimitConfig {
            token_per_client: 2,
            window: Seconds(60),
            ..RateLimitConfig::default()
        };
        let limiter = RateLimiter::default();
        let now = 6000;
        assert!(limiter.check_token(&config, "a", None, now).is_ok());
        assert!(limiter.check_token(&config, "a", None, now + 1).is_ok());
        let refused = limiter
            .check_token(&config, "a", None, now + 10)
            .unwrap_err();
        assert_eq!(refused.retry_after, 50);
        assert!(limiter.check_token(&config, "b", None, now + 10).is_ok());
        assert!(limiter.check_token(&config, "a", None, now + 60).is_ok());
    }

    #[test]
    fn a_public_clients_budget_is_per_address_and_the_buckets_are_bounded() {
        let config = RateLimitConfig {
            token_per_client: 1,
            window: Seconds(60),
            ..RateLimitConfig::default()
        };
        let limiter = RateLimiter::default();
        let (one, two) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        assert!(limiter.check_token(&config, "spa", Some(one), 0).is_ok());
        assert!(limiter.check_token(&config, "spa", Some(one), 1).is_err());
        assert!(limiter.check_token(&config, "spa", Some(two), 1).is_ok());
        // Full: a new address shares the client's own bucket instead of adding one.
        let limiter = RateLimiter::default();
        for n in 0..MAX_TOKEN_BUCKETS as u32 {
            let ip = std::net::Ipv4Addr::from(n).into();
            assert!(limiter.check_token(&config, "spa", Some(ip), 0).is_ok());
        }
        let newcomer = "203.0.113.9".parse().unwrap();
        assert!(limiter
            .check_token(&config, "spa", Some(newcomer), 0)
            .is_ok());
        assert!(limiter.check_token(&config, "spa", Some(two), 0).is_err());
        let buckets = limiter.token.lock().unwrap().1.len();
        assert_eq!(
            buckets,
            MAX_TOKEN_BUCKETS + 1,
            "the client's own bucket, once"
        );
    }
}
