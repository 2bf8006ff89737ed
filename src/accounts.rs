//! Checking a user's password, for the login form and the password grant alike: one generic
//! failure whatever failed (unknown user, wrong password, disabled, locked), failures counted
//! toward a lockout that both paths share.

use std::net::IpAddr;

use crate::app::AppState;
use crate::audit::{Event, Kind};
use crate::clock::UnixTime;
use crate::error::Error;
use crate::metrics::LoginFailure;
use crate::rate_limit;
use crate::security::Secret;
use crate::store::User;

/// Why a check failed, for logs only: callers show every caller the same message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    UnknownOrWrong,
    Disabled,
    Locked,
}

impl Refusal {
    /// For the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnknownOrWrong => "unknown_user_or_wrong_password",
            Self::Disabled => "disabled",
            Self::Locked => "locked",
        }
    }
}

/// `ip` is the client's address: a right password gives back the failure that
/// `rate_limit::check_sign_in` reserved for it.
pub async fn check_password(
    state: &AppState,
    username: &str,
    password: &Secret,
    ip: IpAddr,
    now: UnixTime,
) -> Result<Result<User, Refusal>, Error> {
    let outcome = check(state, username, password, ip, now).await?;
    if let Err(refusal) = outcome {
        state.metrics.login_failure(match refusal {
            Refusal::UnknownOrWrong => LoginFailure::BadCredentials,
            Refusal::Locked => LoginFailure::Locked,
            Refusal::Disabled => LoginFailure::Disabled,
        });
    }
    Ok(outcome)
}

async fn check(
    state: &AppState,
    username: &str,
    password: &Secret,
    ip: IpAddr,
    now: UnixTime,
) -> Result<Result<User, Refusal>, Error> {
    let user = state.store.user_by_username(username).await?;
    // Verify even for unknown users (against a dummy hash): timing does not tell them apart.
    let password_ok = state
        .passwords
        .verify(password, user.as_ref().and_then(|u| u.password_hash()))
        .await;
    let Some(user) = user else {
        return Ok(Err(Refusal::UnknownOrWrong));
    };
    if user.is_locked(now) {
        return Ok(Err(Refusal::Locked));
    }
    if !password_ok {
        let login = &state.config.login;
        let locked = state
            .store
            .record_login_failure(
                &user.id,
                login.max_failed_attempts,
                login.lockout.as_i64(),
                now,
            )
            .await?;
        if locked {
            tracing::warn!(user = %user.id, "account locked after repeated failed sign-ins");
            state.audit.record(
                Event::new(Kind::Lockout, now)
                    .subject(user.id.as_str())
                    .detail("username", username)
                    .detail("until", now + login.lockout.as_i64()),
            );
        }
        return Ok(Err(Refusal::UnknownOrWrong));
    }
    // The right password: not a guess, so not a failure toward the sign-in limits.
    rate_limit::sign_in_succeeded(&state.store, &state.config.rate_limits, ip, username, now)
        .await?;
    if user.disabled {
        return Ok(Err(Refusal::Disabled));
    }
    if user.failed_logins != 0 {
        state.store.record_login_success(&user.id).await?;
    }
    Ok(Ok(user))
}
