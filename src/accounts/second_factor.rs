//! Checking a second factor at sign-in: a TOTP code (RFC 6238) or a recovery code. A guess is
//! treated as a password guess is (`accounts::check`): the sign-in rate limits first, then an
//! attempt reserved toward the account lockout before the code is checked, given back when it
//! proves right. A malformed code is no guess: it is refused before anything is counted.

use std::net::IpAddr;

use crate::audit::{Event, Kind};
use crate::clock::UnixTime;
use crate::error::Error;
use crate::metrics::LoginFailure;
use crate::mfa::{amr, recovery, secret, totp};
use crate::rate_limit::{self, Limited};
use crate::state::AppState;
use crate::store::{MfaFactor, User, TOTP};

/// What the user typed.
#[derive(Clone, Copy)]
pub enum Presented<'a> {
    /// A code from the authenticator app (the `otp` field).
    Totp(&'a str),
    /// One of the recovery codes (the `recovery_code` field).
    RecoveryCode(&'a str),
}

/// Which factors the code is checked against.
#[derive(Clone, Copy)]
pub enum Against<'a> {
    /// The user's confirmed factors (and recovery codes).
    Enrolled,
    /// A self-service enrolment waiting for its first code: only its secret.
    Pending(&'a MfaFactor),
}

pub enum Checked {
    /// Right: the RFC 8176 value the session gains.
    Accepted(&'static str),
    /// Too many attempts: nothing was checked.
    Limited(Limited),
    /// Malformed: not counted, nothing stored.
    Malformed,
    /// Wrong, replayed, or the account is locked (one message for all).
    Refused,
}

/// Where the check happens, for the audit log.
pub struct Context<'a> {
    pub server_id: &'a str,
    pub ip: IpAddr,
    pub via: &'static str,
}

pub async fn check(
    state: &AppState,
    cx: Context<'_>,
    user: &User,
    presented: Presented<'_>,
    against: Against<'_>,
    now: UnixTime,
) -> Result<Checked, Error> {
    // A malformed value cannot be right: refused before it counts or touches anything.
    let well_formed = match presented {
        Presented::Totp(code) => totp::normalize(code).is_some(),
        Presented::RecoveryCode(code) => {
            recovery::normalize(code).is_some() && matches!(against, Against::Enrolled)
        }
    };
    if !well_formed {
        return Ok(Checked::Malformed);
    }
    let limits = &state.config.rate_limits;
    if let Err(limited) =
        rate_limit::check_sign_in(&state.store, limits, cx.ip, &user.username, now).await?
    {
        state.audit.record(
            Event::new(Kind::RateLimited, now)
                .server(cx.server_id)
                .actor(format!("ip:{}", cx.ip))
                .subject(user.id.as_str())
                .detail("limit", limited.limit)
                .detail("via", cx.via),
        );
        return Ok(Checked::Limited(limited));
    }
    let _turn = state.login_turns.take(&user.id).await;
    let login = &state.config.login;
    let attempt = state
        .store
        .reserve_login_attempt(
            &user.id,
            login.max_failed_attempts,
            login.lockout.as_i64(),
            now,
        )
        .await?;
    let Some(attempt) = attempt else {
        state.metrics.login_failure(LoginFailure::Locked);
        audit_failure(state, &cx, user, "locked", now);
        return Ok(Checked::Refused);
    };
    let outcome = match presented {
        Presented::Totp(code) => check_totp(state, user, code, against, now).await?,
        Presented::RecoveryCode(code) => check_recovery_code(state, user, code, now).await?,
    };
    let factor = match outcome {
        Ok(factor) => factor,
        Err(reason) => {
            if let Some(until) = attempt.locks_until {
                tracing::warn!(user = %user.id, "account locked after repeated wrong second factors");
                state.audit.record(
                    Event::new(Kind::Lockout, now)
                        .subject(user.id.as_str())
                        .detail("username", user.username.as_str())
                        .detail("until", until),
                );
            }
            state.metrics.login_failure(LoginFailure::BadCredentials);
            audit_failure(state, &cx, user, reason, now);
            return Ok(Checked::Refused);
        }
    };
    state.store.release_login_attempt(&user.id, attempt).await?;
    rate_limit::sign_in_succeeded(&state.store, limits, cx.ip, &user.username, now).await?;
    let kind = if factor == amr::RECOVERY {
        Kind::MfaRecoveryCodeUsed
    } else {
        Kind::MfaVerified
    };
    let mut event = Event::new(kind, now)
        .server(cx.server_id)
        .actor(format!("ip:{}", cx.ip))
        .subject(user.id.as_str())
        .detail("via", cx.via)
        .detail("factor", factor);
    if factor == amr::RECOVERY {
        event = event.detail("left", state.store.recovery_codes_left(&user.id).await?);
    }
    state.audit.record(event);
    Ok(Checked::Accepted(factor))
}

fn audit_failure(state: &AppState, cx: &Context<'_>, user: &User, reason: &str, now: UnixTime) {
    tracing::info!(server = %cx.server_id, user = %user.id, reason, via = cx.via, "second factor refused");
    state.audit.record(
        Event::new(Kind::MfaFailed, now)
            .server(cx.server_id)
            .actor(format!("ip:{}", cx.ip))
            .subject(user.id.as_str())
            .detail("via", cx.via)
            .detail("reason", reason),
    );
}

/// The code against each candidate secret; then the step, once per user (RFC 6238 §5.2).
async fn check_totp(
    state: &AppState,
    user: &User,
    code: &str,
    against: Against<'_>,
    now: UnixTime,
) -> Result<Result<&'static str, &'static str>, Error> {
    let candidates = match against {
        Against::Pending(factor) => vec![factor.clone()],
        Against::Enrolled => state
            .store
            .mfa_factors_of(&user.id)
            .await?
            .into_iter()
            .filter(|f| f.kind == TOTP && f.confirmed_at.is_some())
            .collect(),
    };
    let keks = state.keys.keks()?;
    for factor in candidates {
        let secret = secret::open(
            keks,
            &factor.secret_storage,
            &factor.secret,
            &user.id,
            &factor.id,
        )
        .map_err(Error::internal)?;
        if let Some(step) = totp::matching_step(&secret, code, now) {
            if !state.store.claim_totp_step(&user.id, step).await? {
                return Ok(Err("replayed_code"));
            }
            if factor.confirmed_at.is_some() {
                state.store.touch_mfa_factor(&factor.id, now).await?;
            }
            return Ok(Ok(amr::OTP));
        }
    }
    Ok(Err("wrong_code"))
}

async fn check_recovery_code(
    state: &AppState,
    user: &User,
    code: &str,
    now: UnixTime,
) -> Result<Result<&'static str, &'static str>, Error> {
    let Some(normalized) = recovery::normalize(code) else {
        return Ok(Err("wrong_code"));
    };
    if state
        .store
        .use_recovery_code(&user.id, &recovery::hash(&normalized), now)
        .await?
    {
        Ok(Ok(amr::RECOVERY))
    } else {
        Ok(Err("wrong_recovery_code"))
    }
}

/// Does a sign-in of `user` for `client` need a second factor: the stricter of the server's and
/// the client's policy, or a request for one (`acr_values`). The database is asked whether the
/// user has a factor only under `optional`, the one policy that depends on it.
pub async fn needed(
    state: &AppState,
    server: &crate::store::AuthorizationServer,
    client: &crate::store::Client,
    user: &User,
    requested: bool,
) -> Result<bool, Error> {
    use crate::mfa::policy::{self, MfaPolicy};
    let policy = policy::effective(MfaPolicy::from_stored(&server.mfa), client.mfa);
    let has_factor =
        policy == MfaPolicy::Optional && !requested && state.store.has_mfa_factor(&user.id).await?;
    Ok(policy::second_factor_needed(policy, requested, has_factor))
}
