//! `GET /mfa/recovery-codes` and `POST /mfa/recovery-codes`: a user signed in with their second
//! factor replaces their recovery codes with ten new ones, shown once (the old ones stop
//! working). Only a session that presented a second factor may: a password alone must not be
//! a way to mint codes that skip the second factor.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::json;

use crate::audit::{Event, Kind};
use crate::auth_server::AuthServer;
use crate::authorize::interaction::{check_csrf, csrf_token};
use crate::authorize::{AuthorizeError, Browser};
use crate::clock::UnixTime;
use crate::error::{Error, ErrorCode};
use crate::mfa::{enrol, Amr};
use crate::protocol::FormParams;
use crate::sessions;
use crate::state::AppState;
use crate::store::{Session, User};

const PURPOSE: &str = "recovery-codes";

pub async fn show(
    State(state): State<AppState>,
    server: AuthServer,
    headers: HeaderMap,
) -> Response {
    let result = async {
        let now = state.now();
        let (session, user, browser) =
            signed_in_with_factor(&state, &server, &headers, now).await?;
        Ok::<_, Error>(state.pages.render(
            StatusCode::OK,
            "mfa_recovery_codes.html",
            json!({
                "action": server.endpoint("/mfa/recovery-codes"),
                "csrf_token": csrf_token(PURPOSE, &session.sid, &browser),
                "username": user.username,
                "codes": [],
            }),
            &[],
            HeaderMap::new(),
        ))
    }
    .await;
    result.unwrap_or_else(|e| AuthorizeError::page(e).render(&state.pages))
}

pub async fn regenerate(
    State(state): State<AppState>,
    server: AuthServer,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = async {
        let now = state.now();
        let form = FormParams::from_request_body(&headers, body)?;
        let (session, user, browser) =
            signed_in_with_factor(&state, &server, &headers, now).await?;
        check_csrf(
            PURPOSE,
            &session.sid,
            Some(&browser),
            form.get("csrf_token"),
        )?;
        let codes = enrol::recovery_codes(&state.store, &user.id, now).await?;
        state.audit.record(
            Event::new(Kind::MfaRecoveryCodesGenerated, now)
                .server(server.id())
                .actor(format!("user:{}", user.id))
                .subject(user.id.as_str())
                .detail("count", codes.len()),
        );
        Ok::<_, Error>(state.pages.render(
            StatusCode::OK,
            "mfa_recovery_codes.html",
            json!({ "codes": codes.iter().map(|c| c.expose()).collect::<Vec<_>>() }),
            &[],
            HeaderMap::new(),
        ))
    }
    .await;
    result.unwrap_or_else(|e| AuthorizeError::page(e).render(&state.pages))
}

/// The browser's session, its user and the browser cookie; refused unless the session
/// presented a second factor and the user still has one.
pub(crate) async fn signed_in_with_factor(
    state: &AppState,
    server: &AuthServer,
    headers: &HeaderMap,
    now: UnixTime,
) -> Result<(Session, User, String), Error> {
    let refused = || {
        Error::new(
            ErrorCode::AccessDenied,
            "sign in with your second factor first, then come back to this page",
        )
        .with_status(StatusCode::FORBIDDEN)
    };
    let browser = Browser::existing(headers, state.config.secure_cookies()).ok_or_else(refused)?;
    let (session, user) = sessions::current_with_user(state, server.id(), headers, now)
        .await?
        .filter(|(s, u)| !u.disabled && Amr::parse(&s.amr).is_multi_factor())
        .ok_or_else(refused)?;
    if !state.store.has_mfa_factor(&user.id).await? {
        return Err(refused());
    }
    Ok((session, user, browser))
}
