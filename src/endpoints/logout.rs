//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): `end_session_endpoint`.
//! With a valid `id_token_hint` naming the signed-in user the session ends at once; without
//! one, or with one naming someone else, the user confirms on a page first, so a third-party
//! page cannot sign users out. `post_logout_redirect_uri` must be registered for the client, or
//! no redirect happens at all.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::json;

use crate::auth_server::AuthServer;
use crate::authorize::interaction::{check_csrf, csrf_token};
use crate::authorize::Browser;
use crate::error::Error;
use crate::logout;
use crate::protocol::FormParams;
use crate::sessions;
use crate::state::AppState;
use crate::store::Sessions;
use crate::tokens::verify::{verify, Expected};

pub async fn logout(
    State(state): State<AppState>,
    server: AuthServer,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match end_session(&state, &server, &method, &headers, query, body).await {
        Ok(r) => r,
        Err(e) => {
            let status = if e.status.is_server_error() {
                e.status
            } else {
                StatusCode::BAD_REQUEST
            };
            state.pages.error(status, e.code.as_str(), e.description())
        }
    }
}

async fn end_session(
    state: &AppState,
    server: &AuthServer,
    method: &Method,
    headers: &HeaderMap,
    query: Option<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Error> {
    let params = if *method == Method::POST {
        FormParams::from_request_body(headers, body)?
    } else {
        FormParams::from_query(query.as_deref())?
    };
    let now = state.now();
    let mut hinted_subject = None;
    let mut client_id = params.get("client_id").map(str::to_string);
    if let Some(hint) = params.get("id_token_hint") {
        let keys = state.keys.key_set(&server.server, now).await?;
        let claims: serde_json::Value =
            verify(hint, &keys, &server.issuer, "", Expected::IdTokenHint, now).map_err(|_| {
                Error::invalid_request("id_token_hint is not an ID token of this server")
            })?;
        let aud = match &claims["aud"] {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Array(a) => a.first().and_then(|v| v.as_str()).map(str::to_string),
            _ => None,
        };
        if client_id.is_some() && client_id != aud {
            return Err(Error::invalid_request(
                "client_id does not match the id_token_hint",
            ));
        }
        client_id = aud;
        hinted_subject = claims["sub"].as_str().map(str::to_string);
    }
    // The redirect target must be registered for the client, checked before anything happens.
    let redirect = match params.get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            let client = match &client_id {
                Some(id) => state
                    .store
                    .client(id)
                    .await?
                    .filter(|c| c.server_id == server.id()),
                None => None,
            };
            let client = client.ok_or_else(|| {
                Error::invalid_request("post_logout_redirect_uri needs id_token_hint or client_id")
            })?;
            if !client.post_logout_redirect_uris.iter().any(|r| r == uri) {
                return Err(Error::invalid_request(
                    "post_logout_redirect_uri is not registered for this client",
                ));
            }
            Some(uri.to_string())
        }
    };
    let browser = Browser::from_headers(headers, state.config.secure_cookies());
    let confirmed = *method == Method::POST && params.get("confirm") == Some("yes");
    let session = sessions::current(state, server.id(), headers, now).await?;
    // RP-Initiated Logout §2: a hint naming another user than the one signed in here proves
    // nothing about this browser's session (any user holds ID tokens of their own): the
    // End-User is asked, as without a hint.
    let hint_names_the_session = match (&session, &hinted_subject) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(session), Some(sub)) => *sub == session.user_id,
    };
    if confirmed {
        check_csrf(
            "logout",
            server.id(),
            Some(&browser.value),
            params.get("csrf_token"),
        )?;
    } else if !hint_names_the_session {
        // No proof the request comes from the user's application: ask the user.
        return Ok(state.pages.render(
            StatusCode::OK,
            "logout.html",
            json!({
                "action": server.endpoint("/logout"),
                "csrf_token": csrf_token("logout", server.id(), &browser.value),
                "post_logout_redirect_uri": redirect,
                "client_id": client_id,
                "state": params.get("state"),
            }),
            &redirect
                .iter()
                .filter_map(|r| crate::http::pages::form_target(r))
                .collect::<Vec<_>>(),
            browser.set_cookie_headers(state.config.secure_cookies()),
        ));
    }
    let mut frames = Vec::new();
    if let Some(session) = session {
        // Back-Channel Logout §2.7: every client that received tokens in the session hears of
        // it (the page waits at most `logout.page_wait`); Front-Channel Logout §2: their
        // front-channel URIs are framed on the page below.
        frames = frontchannel_frames(state, server, &session.sid).await?;
        let notified = logout::end_sessions(state, Sessions::One(&session.sid), now).await?;
        tracing::info!(server = %server.id(), sid = %session.sid, backchannel = notified, frontchannel = frames.len(), "signed out");
    }
    let clear = sessions::clear_cookie(state, server.id());
    let continue_to = match redirect {
        Some(uri) => {
            let mut url = url::Url::parse(&uri)
                .map_err(|_| Error::invalid_request("bad post_logout_redirect_uri"))?;
            if let Some(s) = params.get("state") {
                url.query_pairs_mut().append_pair("state", s);
            }
            Some(url.to_string())
        }
        None => None,
    };
    let mut response = match continue_to {
        // Nothing to frame: straight back to the client.
        Some(url) if frames.is_empty() => Redirect::to(&url).into_response(),
        continue_to => {
            let origins: Vec<String> = frames
                .iter()
                .filter_map(|f| crate::http::pages::form_target(f))
                .collect();
            let mut page = state.pages.render(
                StatusCode::OK,
                "signed_out.html",
                json!({ "continue_to": continue_to, "frontchannel": frames }),
                &[],
                HeaderMap::new(),
            );
            crate::http::pages::allow_frames(&mut page, &origins);
            page
        }
    };
    response.headers_mut().append(header::SET_COOKIE, clear);
    Ok(response)
}

/// Front-Channel Logout 1.0 §2: the front-channel URI of each client that received tokens in
/// session `sid`, with `iss` and `sid` when the client requires them.
async fn frontchannel_frames(
    state: &AppState,
    server: &AuthServer,
    sid: &str,
) -> Result<Vec<String>, Error> {
    let clients = state.store.frontchannel_logouts(sid).await?;
    Ok(clients
        .into_iter()
        .filter_map(|c| {
            let mut url = url::Url::parse(&c.uri).ok()?;
            if c.session_required {
                url.query_pairs_mut()
                    .append_pair("iss", &server.issuer)
                    .append_pair("sid", sid);
            }
            Some(url.to_string())
        })
        .collect())
}
