//! `GET /mfa/passkeys`: the signed-in user's passkeys, "Add a passkey" (`POST /mfa/passkeys`
//! starts the registration, `POST /mfa/passkeys/finish` completes it) and "Remove" (`POST
//! /mfa/passkeys/remove`). Like
//! `/mfa/recovery-codes`, only for a session that presented a second factor: a password alone
//! must not be a way to add a factor. Outside a sign-in request, the challenge is bound to the
//! session (instead of an interaction) and the browser.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::json;

use super::mfa_recovery::signed_in_with_factor;
use super::passkey::{self, Fail};
use crate::audit::{Event, Kind};
use crate::auth_server::AuthServer;
use crate::authorize::interaction::{check_csrf, csrf_token};
use crate::authorize::AuthorizeError;
use crate::error::Error;
use crate::mfa::webauthn::{self, Refused};
use crate::protocol::FormParams;
use crate::security::{base64url, constant_time_eq, hash_secret, random_bytes};
use crate::state::AppState;
use crate::store::{Session, User, WebauthnChallenge};

const PURPOSE: &str = "passkeys";
const FINISH: &str = "passkeys-finish";

/// What stands for the interaction in a challenge of this page: the session.
fn binding(session: &Session) -> Vec<u8> {
    hash_secret(&format!("session\0{}", session.sid))
}

async fn list_page(
    state: &AppState,
    server: &AuthServer,
    session: &Session,
    user: &User,
    browser: &str,
    notice: Option<&str>,
    error: Option<&str>,
) -> Result<Response, Error> {
    let passkeys = state.store.passkeys_of(&user.id).await?;
    let mut page = state.pages.render(
        StatusCode::OK,
        "passkeys.html",
        json!({
            "username": user.username,
            "passkeys": passkeys.iter().map(|p| json!({
                "id": p.id,
                "name": p.name,
                "created_at": p.created_at,
                "last_used_at": p.last_used_at,
            })).collect::<Vec<_>>(),
            "action": server.endpoint("/mfa/passkeys"),
            "remove_action": server.endpoint("/mfa/passkeys/remove"),
            "csrf_token": csrf_token(PURPOSE, &session.sid, browser),
            "notice": notice,
            "error": error,
        }),
        &[],
        HeaderMap::new(),
    );
    if error.is_some() {
        *page.status_mut() = StatusCode::UNAUTHORIZED;
    }
    Ok(page)
}

pub async fn show(
    State(state): State<AppState>,
    server: AuthServer,
    headers: HeaderMap,
) -> Response {
    let result = async {
        let now = state.now();
        let (session, user, browser) =
            signed_in_with_factor(&state, &server, &headers, now).await?;
        list_page(&state, &server, &session, &user, &browser, None, None).await
    }
    .await;
    result.unwrap_or_else(|e| AuthorizeError::page(e).render(&state.pages))
}

pub async fn begin(
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
        let rp = passkey::relying_party(&server)?;
        let challenge = base64url(&random_bytes(32));
        let options = passkey::creation_options(&state, &rp, &user, &challenge).await?;
        state
            .store
            .insert_webauthn_challenge(
                &WebauthnChallenge {
                    challenge_hash: hash_secret(&challenge),
                    server_id: server.id().to_string(),
                    ceremony: "register".to_string(),
                    interaction_hash: binding(&session),
                    browser: passkey::browser_binding(&browser),
                    user_id: Some(user.id.clone()),
                    expires_at: now + passkey::CHALLENGE_TTL,
                },
                now,
            )
            .await?;
        Ok::<_, Error>(state.pages.render(
            StatusCode::OK,
            "passkey.html",
            json!({
                "register": true,
                "client_name": "your account",
                "options": options.to_string(),
                "action": server.endpoint("/mfa/passkeys/finish"),
                "script": server.endpoint("/mfa/passkey.js"),
                "interaction": "",
                "csrf_token": csrf_token(FINISH, &session.sid, &browser),
                "ceremony": "register",
            }),
            &[],
            HeaderMap::new(),
        ))
    }
    .await;
    result.unwrap_or_else(|e| AuthorizeError::page(e).render(&state.pages))
}

pub async fn finish(
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
        check_csrf(FINISH, &session.sid, Some(&browser), form.get("csrf_token"))?;
        let outcome = async {
            let credential = webauthn::decode(form.get("credential").unwrap_or(""))?;
            let challenge = webauthn::challenge_of(&credential.client_data_json)?;
            let row = state
                .store
                .take_webauthn_challenge(&hash_secret(&challenge))
                .await?
                .ok_or(Refused("unknown_challenge"))?;
            if row.expires_at <= now {
                return Err(Refused("stale_challenge").into());
            }
            let bound = row.server_id == server.id()
                && row.ceremony == "register"
                && row.interaction_hash == binding(&session)
                && row.user_id.as_deref() == Some(user.id.as_str())
                && constant_time_eq(&row.browser, &passkey::browser_binding(&browser));
            if !bound {
                return Err(Refused("challenge_of_another_ceremony").into());
            }
            let rp = passkey::relying_party(&server)?;
            passkey::store_registration(&state, &server, &user, &rp, &challenge, &credential, now)
                .await
        }
        .await;
        match outcome {
            Ok(_) => {
                list_page(
                    &state,
                    &server,
                    &session,
                    &user,
                    &browser,
                    Some("Passkey added."),
                    None,
                )
                .await
            }
            Err(Fail::Error(e)) => Err(e),
            Err(Fail::Refused(reason)) => {
                state.audit.record(
                    Event::new(Kind::MfaFailed, now)
                        .server(server.id())
                        .actor(format!("user:{}", user.id))
                        .subject(user.id.as_str())
                        .detail("via", "passkey")
                        .detail("ceremony", "register")
                        .detail("reason", reason),
                );
                list_page(
                    &state,
                    &server,
                    &session,
                    &user,
                    &browser,
                    None,
                    Some(passkey::FAILED),
                )
                .await
            }
        }
    }
    .await;
    result.unwrap_or_else(|e| AuthorizeError::page(e).render(&state.pages))
}

/// Remove one of the user's own passkeys (audited as `mfa_reset`, as the CLI's).
pub async fn remove(
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
        let id = form.require("passkey")?;
        let own = state
            .store
            .passkeys_of(&user.id)
            .await?
            .into_iter()
            .any(|p| p.id == id);
        if !own || state.store.reset_mfa(&user.id, Some(id)).await? != 1 {
            return Err(Error::invalid_request("no such passkey"));
        }
        state.audit.record(
            Event::new(Kind::MfaReset, now)
                .server(server.id())
                .actor(format!("user:{}", user.id))
                .subject(user.id.as_str())
                .detail("factor", id),
        );
        list_page(
            &state,
            &server,
            &session,
            &user,
            &browser,
            Some("Passkey removed."),
            None,
        )
        .await
    }
    .await;
    result.unwrap_or_else(|e| AuthorizeError::page(e).render(&state.pages))
}
