//! The login page: `GET /login?interaction=…` shows the form, `POST /login` checks the
//! password and starts a session. One generic failure message, whatever failed.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::json;

use crate::accounts::sign_in::{self, SignIn, SignInForm};
use crate::auth_server::AuthServer;
use crate::authorize::interaction::{self, csrf_token, Authenticated, InteractionState};
use crate::authorize::{AuthorizeError, Browser};
use crate::error::Error;
use crate::http::client_ip::ClientIp;
use crate::http::pages::form_target;
use crate::protocol::FormParams;
use crate::security::Secret;
use crate::state::AppState;

const FAILED: &str = "Incorrect username or password.";
const SLOW_DOWN: &str = "Too many sign-in attempts. Please wait a minute and try again.";

pub async fn show(
    State(state): State<AppState>,
    server: AuthServer,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let result = async {
        let params = FormParams::from_query(query.as_deref())?;
        let id = params.require("interaction")?.to_string();
        let browser = Browser::existing(&headers, state.config.secure_cookies());
        let loaded = interaction::load(
            &state.store,
            server.id(),
            &id,
            browser.as_deref(),
            state.now(),
        )
        .await?;
        let username = loaded.request.login_hint.clone().unwrap_or_default();
        Ok::<_, Error>(
            render(
                &state,
                &server,
                &id,
                browser.as_deref().unwrap_or(""),
                &loaded,
                &username,
                None,
            )
            .await,
        )
    }
    .await;
    result.unwrap_or_else(|e| AuthorizeError::page(e).render(&state.pages))
}

pub(crate) async fn render(
    state: &AppState,
    server: &AuthServer,
    id: &str,
    browser: &str,
    loaded: &InteractionState,
    username: &str,
    error: Option<&str>,
) -> Response {
    let client_name = state
        .store
        .client(&loaded.request.client_id)
        .await
        .ok()
        .flatten()
        .map(|c| c.name)
        .unwrap_or_default();
    let status = if error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    state.pages.render(
        status,
        "login.html",
        json!({
            "action": server.endpoint("/login"),
            "passkey_action": server.endpoint("/mfa/passkey"),
            "interaction": id,
            "csrf_token": csrf_token("login", id, browser),
            "client_name": client_name,
            "username": username,
            "error": error,
        }),
        // The form's POST ends, through redirects, at the client.
        &form_target(&loaded.request.redirect_uri)
            .into_iter()
            .collect::<Vec<_>>(),
        HeaderMap::new(),
    )
}

pub async fn submit(
    State(state): State<AppState>,
    server: AuthServer,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match sign_in(&state, &server, ip, &headers, body).await {
        Ok(response) => response,
        Err(e) => AuthorizeError::page(e).render(&state.pages),
    }
}

async fn sign_in(
    state: &AppState,
    server: &AuthServer,
    ip: std::net::IpAddr,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Error> {
    let now = state.now();
    let submission = interaction::submitted(
        &state.store,
        server.id(),
        "login",
        headers,
        state.config.secure_cookies(),
        body,
        now,
    )
    .await?;
    let (id, form, browser) = (
        submission.id.as_str(),
        &submission.form,
        &submission.browser,
    );
    let mut loaded = submission.state.clone();
    let username = form.get("username").unwrap_or("").trim().to_string();
    let password = Secret::new(form.get("password").unwrap_or(""));
    let signed_in = sign_in::sign_in(
        state,
        SignInForm {
            server_id: server.id(),
            ip,
            headers,
            username: &username,
            password: &password,
            via: "login",
            client_id: Some(loaded.request.client_id.as_str()),
        },
        now,
    )
    .await?;
    let (session, user, cookie) = match signed_in {
        SignIn::Limited(limited) => {
            let mut page = render(
                state,
                server,
                id,
                browser,
                &loaded,
                &username,
                Some(SLOW_DOWN),
            )
            .await;
            *page.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            page.headers_mut()
                .insert(header::RETRY_AFTER, limited.retry_after_header());
            return Ok(page);
        }
        SignIn::Failed => {
            return Ok(render(state, server, id, browser, &loaded, &username, Some(FAILED)).await)
        }
        SignIn::SignedIn(started) => (started.session, started.user, started.cookie),
    };
    loaded.authenticated = Some(Authenticated {
        user_id: user.id.clone(),
        sid: session.sid.clone(),
        auth_time: session.auth_time,
    });
    interaction::save(&state.store, id, &loaded).await?;
    let mut response = Redirect::to(&format!(
        "{}/authorize/resume?interaction={id}",
        server.issuer
    ))
    .into_response();
    response.headers_mut().append(header::SET_COOKIE, cookie);
    Ok(response)
}
