//! Browser sessions: which user is signed in to which authorization server in this browser.
//! State lives in the database; the cookie holds only a random id (its hash is the key).

use axum::http::{HeaderMap, HeaderValue};

use crate::clock::UnixTime;
use crate::error::Error;
use crate::http::cookies;
use crate::security::{hash_secret, random_secret, random_token};
use crate::state::AppState;
use crate::store::{Session, User};

/// The live session of this browser at `server_id` and its user, if any: one query.
pub async fn current_with_user(
    state: &AppState,
    server_id: &str,
    headers: &HeaderMap,
    now: UnixTime,
) -> Result<Option<(Session, User)>, Error> {
    let (name, _) = cookies::session_cookie(server_id, state.config.secure_cookies());
    let Some(value) = cookies::get(headers, &name) else {
        return Ok(None);
    };
    let found = state
        .store
        .live_session_and_user(&hash_secret(&value), now)
        .await?;
    Ok(found.filter(|(s, _)| s.server_id == server_id))
}

/// The live session of this browser at `server_id`, if any.
pub async fn current(
    state: &AppState,
    server_id: &str,
    headers: &HeaderMap,
    now: UnixTime,
) -> Result<Option<Session>, Error> {
    let (name, _) = cookies::session_cookie(server_id, state.config.secure_cookies());
    let Some(value) = cookies::get(headers, &name) else {
        return Ok(None);
    };
    let session = state.store.live_session(&hash_secret(&value), now).await?;
    Ok(session.filter(|s| s.server_id == server_id))
}

/// Start a session after a successful sign-in. The id is always new (no session fixation); a
/// previous session in this browser ends.
pub async fn start(
    state: &AppState,
    server_id: &str,
    user_id: &str,
    previous: Option<&Session>,
    now: UnixTime,
) -> Result<(Session, HeaderValue), Error> {
    // A password sign-in; a second factor is added by `add_factor`.
    start_with(
        state,
        server_id,
        user_id,
        &crate::mfa::Amr::password(),
        previous,
        now,
    )
    .await
}

/// Start a session signed in with `amr` (a passkey sign-in has no password).
pub async fn start_with(
    state: &AppState,
    server_id: &str,
    user_id: &str,
    amr: &crate::mfa::Amr,
    previous: Option<&Session>,
    now: UnixTime,
) -> Result<(Session, HeaderValue), Error> {
    if let Some(old) = previous {
        state.store.end_session(&old.sid, now).await?;
    }
    let id = random_secret();
    let ttl = state.config.sessions.ttl.as_i64();
    let session = Session {
        sid: random_token(16),
        server_id: server_id.to_string(),
        user_id: user_id.to_string(),
        auth_time: now,
        created_at: now,
        last_seen_at: now,
        expires_at: now + ttl,
        ended_at: None,
        amr: amr.to_string(),
    };
    state
        .store
        .insert_session(&hash_secret(id.expose()), &session)
        .await?;
    let (name, path) = cookies::session_cookie(server_id, state.config.secure_cookies());
    let cookie = cookies::set(
        &name,
        id.expose(),
        &path,
        state.config.secure_cookies(),
        Some(ttl),
    );
    Ok((session, cookie))
}

/// A second factor was presented in `session`: record it with the others, and make now its
/// `auth_time` (OIDC Core §2: the time of the last factor). The session keeps its id.
pub async fn add_factor(
    state: &AppState,
    session: &Session,
    factor: &str,
    now: UnixTime,
) -> Result<crate::mfa::Amr, Error> {
    add_factors(state, session, &[factor], now).await
}

/// `add_factor` for several factors presented at once (a passkey with user verification).
pub async fn add_factors(
    state: &AppState,
    session: &Session,
    factors: &[&str],
    now: UnixTime,
) -> Result<crate::mfa::Amr, Error> {
    let amr = factors
        .iter()
        .fold(crate::mfa::Amr::parse(&session.amr), |amr, f| amr.with(f));
    if !state
        .store
        .add_session_factor(&session.sid, &amr.to_string(), now)
        .await?
    {
        return Err(Error::invalid_request(
            "your session has ended; go back to the application and start again",
        ));
    }
    Ok(amr)
}

/// A `Set-Cookie` that removes the session cookie.
pub fn clear_cookie(state: &AppState, server_id: &str) -> HeaderValue {
    let (name, path) = cookies::session_cookie(server_id, state.config.secure_cookies());
    cookies::set(&name, "", &path, state.config.secure_cookies(), Some(0))
}
