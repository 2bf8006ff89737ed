//! A browser sign-in with a username and password, as the login page and the device page both
//! take it: the sign-in rate limits first (before any argon2 time), then the password check,
//! then a new session; each outcome audited alike, with `via` naming the page.

use std::net::IpAddr;

use axum::http::{HeaderMap, HeaderValue};

use super::check_password;
use crate::audit::{Event, Kind};
use crate::clock::UnixTime;
use crate::error::Error;
use crate::rate_limit::{self, Limited};
use crate::security::Secret;
use crate::sessions;
use crate::state::AppState;
use crate::store::{Session, User};

/// Where the form was, and what it was for.
pub struct SignInForm<'a> {
    pub server_id: &'a str,
    pub ip: IpAddr,
    /// The browser's headers: a session it already has is replaced.
    pub headers: &'a HeaderMap,
    pub username: &'a str,
    pub password: &'a Secret,
    /// `login` or `device`, in the audit events.
    pub via: &'static str,
    /// The client the sign-in is for, when the page knows it.
    pub client_id: Option<&'a str>,
}

pub enum SignIn {
    /// Too many attempts: the form shows the rate-limit message, nothing was checked.
    Limited(Limited),
    /// The password check failed (whatever failed: the form shows one message).
    Failed,
    /// A new session, with its cookie (boxed: it dwarfs the other variants).
    SignedIn(Box<Started>),
}

pub struct Started {
    pub session: Session,
    pub user: User,
    pub cookie: HeaderValue,
}

pub async fn sign_in(
    state: &AppState,
    form: SignInForm<'_>,
    now: UnixTime,
) -> Result<SignIn, Error> {
    let SignInForm {
        server_id,
        ip,
        headers,
        username,
        password,
        via,
        client_id,
    } = form;
    let limits = &state.config.rate_limits;
    // Before the password is hashed: a flood of guesses buys no argon2 time.
    if let Err(limited) = rate_limit::check_sign_in(&state.store, limits, ip, username, now).await?
    {
        state.audit.record(
            Event::new(Kind::RateLimited, now)
                .server(server_id)
                .actor(format!("ip:{ip}"))
                .detail("limit", limited.limit)
                .typed_username(username),
        );
        return Ok(SignIn::Limited(limited));
    }
    let user = match check_password(state, username, password, ip, now).await? {
        Ok(user) => user,
        Err(why) => {
            tracing::info!(server = %server_id, reason = ?why, via, "failed sign-in");
            state.audit.record(
                Event::new(Kind::SignInFailed, now)
                    .server(server_id)
                    .actor(format!("ip:{ip}"))
                    .detail("via", via)
                    .typed_username(username)
                    .detail("reason", why.as_str()),
            );
            return Ok(SignIn::Failed);
        }
    };
    let previous = sessions::current(state, server_id, headers, now).await?;
    let (session, cookie) =
        sessions::start(state, server_id, &user.id, previous.as_ref(), now).await?;
    tracing::info!(server = %server_id, user = %user.id, sid = %session.sid, via, "signed in");
    let mut event = Event::new(Kind::SignIn, now)
        .server(server_id)
        .actor(format!("ip:{ip}"))
        .subject(user.id.as_str())
        .detail("via", via)
        .detail("username", username);
    if let Some(client_id) = client_id {
        event = event.detail("client_id", client_id);
    }
    state.audit.record(event);
    Ok(SignIn::SignedIn(Box::new(Started {
        session,
        user,
        cookie,
    })))
}
