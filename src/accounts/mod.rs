//! Checking a user's password, for the login form and the password grant alike: one generic
//! failure whatever failed (unknown user, wrong password, disabled, locked), failures counted
//! toward a lockout that both paths share.

use std::net::IpAddr;

pub mod second_factor;
pub mod sign_in;
pub mod turns;

pub use turns::UserTurns;

use crate::audit::{Event, Kind};
use crate::clock::UnixTime;
use crate::error::Error;
use crate::metrics::LoginFailure;
use crate::rate_limit;
use crate::security::Secret;
use crate::state::AppState;
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
    // One check at a time per user on this replica, so a user's concurrent right passwords (a
    // fleet sharing a service account, two tabs) do not hold each other's reservations and
    // trip the lock below; across replicas the atomic reservation alone bounds a burst.
    let _turn = match &user {
        Some(user) => Some(state.login_turns.take(&user.id).await),
        None => None,
    };
    let login = &state.config.login;
    // The attempt is counted as a failure before the password is hashed, in one atomic
    // statement that also checks the lock: a check made first and a failure written after
    // argon2 let a burst of concurrent guesses all pass the check. Now at most
    // `login.max_failed_attempts` guesses are ever checked before the lock; a right password
    // gives its attempt back.
    let attempt = match &user {
        Some(user) => {
            state
                .store
                .reserve_login_attempt(
                    &user.id,
                    login.max_failed_attempts,
                    login.lockout.as_i64(),
                    now,
                )
                .await?
        }
        None => None,
    };
    if attempt.is_none() {
        // An unknown username (or a locked account) reserved nothing: write a row of the same
        // cost, or on PostgreSQL the missing commit would tell which usernames exist.
        rate_limit::count_unmatched_sign_in(&state.store, &state.config.rate_limits, username, now)
            .await?;
    }
    // Verify even for unknown users (against a dummy hash): timing does not tell them apart.
    let password_ok = state
        .passwords
        .verify(password, user.as_ref().and_then(|u| u.password_hash()))
        .await;
    let Some(user) = user else {
        return Ok(Err(Refusal::UnknownOrWrong));
    };
    let Some(attempt) = attempt else {
        return Ok(Err(Refusal::Locked));
    };
    if !password_ok {
        if let Some(until) = attempt.locks_until {
            tracing::warn!(user = %user.id, "account locked after repeated failed sign-ins");
            state.audit.record(
                Event::new(Kind::Lockout, now)
                    .subject(user.id.as_str())
                    .detail("username", username)
                    .detail("until", until),
            );
        }
        return Ok(Err(Refusal::UnknownOrWrong));
    }
    // The right password: not a guess, so not a failure toward the lockout nor the sign-in
    // limits.
    state.store.release_login_attempt(&user.id, attempt).await?;
    rate_limit::sign_in_succeeded(&state.store, &state.config.rate_limits, ip, username, now)
        .await?;
    if user.disabled {
        return Ok(Err(Refusal::Disabled));
    }
    Ok(Ok(user))
}
