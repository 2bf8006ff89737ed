//! The consent page, for clients that are not first-party: lists the requested scopes in
//! words; allow is remembered per user, client and scopes; deny sends `access_denied`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::json;

use crate::auth_server::AuthServer;
use crate::authorize::interaction::{self, csrf_token};
use crate::authorize::{AuthorizeError, Browser};
use crate::error::{Error, ErrorCode};
use crate::http::pages::form_target;
use crate::protocol::FormParams;
use crate::security::hash_secret;
use crate::sessions;
use crate::state::AppState;

pub(crate) fn describe(scope: &str, custom: &[(String, String)]) -> (String, bool) {
    let builtin = match scope {
        "openid" => Some("Sign you in with your account"),
        "profile" => Some("See your profile: name, nickname, picture, locale"),
        "email" => Some("See your email address"),
        "address" => Some("See your postal address"),
        "phone" => Some("See your phone number"),
        "offline_access" => Some("Keep access when you are not using it"),
        _ => None,
    };
    if let Some(text) = builtin {
        return (text.to_string(), false);
    }
    match custom
        .iter()
        .find(|(name, d)| name == scope && !d.is_empty())
    {
        Some((_, d)) => (d.clone(), true),
        None => ("Use the permission".to_string(), true),
    }
}

pub async fn show(
    State(state): State<AppState>,
    server: AuthServer,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let result = async {
        let params = FormParams::from_query(query.as_deref())?;
        let id = params.require("interaction")?;
        let browser = Browser::existing(&headers, state.config.secure_cookies());
        let now = state.now();
        let loaded =
            interaction::load(&state.store, server.id(), id, browser.as_deref(), now).await?;
        let session = sessions::current(&state, server.id(), &headers, now)
            .await?
            .ok_or_else(|| {
                Error::invalid_request(
                    "you are not signed in; go back to the application and start again",
                )
            })?;
        let user = state
            .store
            .user(&session.user_id)
            .await?
            .ok_or_else(|| Error::invalid_request("unknown user"))?;
        let client = state
            .store
            .client(&loaded.request.client_id)
            .await?
            .ok_or_else(|| Error::invalid_request("unknown client"))?;
        let custom = state.store.scope_descriptions(server.id()).await?;
        let scopes: Vec<_> = loaded
            .request
            .scopes()
            .iter()
            .map(|s| {
                let (description, show_name) = describe(s, &custom);
                json!({ "name": s, "description": description, "show_name": show_name })
            })
            .collect();
        Ok::<_, Error>(
            state.pages.render(
                StatusCode::OK,
                "consent.html",
                json!({
                    "action": server.endpoint("/consent"),
                    "interaction": id,
                    "csrf_token": csrf_token("consent", id, browser.as_deref().unwrap_or("")),
                    "client_name": client.name,
                    "username": user.username,
                    "scopes": scopes,
                }),
                &form_target(&loaded.request.redirect_uri)
                    .into_iter()
                    .collect::<Vec<_>>(),
                HeaderMap::new(),
            ),
        )
    }
    .await;
    result.unwrap_or_else(|e| AuthorizeError::page(e).render(&state.pages))
}

pub async fn submit(
    State(state): State<AppState>,
    server: AuthServer,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match decide(&state, &server, &headers, body).await {
        Ok(response) => response,
        Err(e) => e.render(&state.pages),
    }
}

async fn decide(
    state: &AppState,
    server: &AuthServer,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AuthorizeError> {
    let now = state.now();
    let submission = interaction::submitted(
        &state.store,
        server.id(),
        "consent",
        headers,
        state.config.secure_cookies(),
        body,
        now,
    )
    .await?;
    let (id, form) = (submission.id.as_str(), &submission.form);
    let mut loaded = submission.state.clone();
    let session = sessions::current(state, server.id(), headers, now)
        .await?
        .ok_or_else(|| Error::invalid_request("you are not signed in"))?;
    match form.get("decision") {
        Some("allow") => {
            let mut scope = state
                .store
                .consented_scope(server.id(), &session.user_id, &loaded.request.client_id)
                .await
                .map_err(Error::from)?
                .unwrap_or_default();
            for s in loaded.request.scopes().iter() {
                scope.insert(s);
            }
            state
                .store
                .save_consent(
                    server.id(),
                    &session.user_id,
                    &loaded.request.client_id,
                    &scope,
                    now,
                )
                .await
                .map_err(Error::from)?;
            loaded.consented = true;
            interaction::save(&state.store, id, &loaded).await?;
            Ok(Redirect::to(&format!(
                "{}/authorize/resume?interaction={id}",
                server.issuer
            ))
            .into_response())
        }
        Some("deny") => {
            state
                .store
                .take_interaction(&hash_secret(id))
                .await
                .map_err(Error::from)?;
            Err(loaded.request.redirect_error(Error::new(
                ErrorCode::AccessDenied,
                "the user denied the request",
            )))
        }
        _ => Err(AuthorizeError::page(Error::invalid_request(
            "choose allow or deny",
        ))),
    }
}
