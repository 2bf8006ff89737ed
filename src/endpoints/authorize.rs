//! `/authorize` (GET, and POST as a form, OIDC Core §3.1.2.1) and its resumption after the
//! login and consent pages.

use std::net::IpAddr;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;

use crate::auth_server::AuthServer;
use crate::authorize::decision::session_for;
use crate::authorize::{interaction, pushed, request, AuthorizeError, Browser, Continuing, Flow};
use crate::error::Error;
use crate::http::client_ip::ClientIp;
use crate::policy;
use crate::protocol::FormParams;
use crate::state::AppState;
use crate::tokens::verify::{verify, Expected};

pub async fn authorize(
    State(state): State<AppState>,
    server: AuthServer,
    ClientIp(ip): ClientIp,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match start(&state, &server, ip, &method, &headers, query, body).await {
        Ok(response) => response,
        Err(e) => e.render(&state.pages),
    }
}

async fn start(
    state: &AppState,
    server: &AuthServer,
    ip: IpAddr,
    method: &Method,
    headers: &HeaderMap,
    query: Option<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AuthorizeError> {
    let params = match *method {
        Method::GET => FormParams::from_query(query.as_deref())?,
        Method::POST => FormParams::from_request_body(headers, body)?,
        _ => {
            return Err(AuthorizeError::page(
                Error::invalid_request("use GET or POST")
                    .with_status(StatusCode::METHOD_NOT_ALLOWED),
            ))
        }
    };
    let now = state.now();
    // RFC 9126 §4, RFC 9101 §5: pushed or signed parameters replace the request's.
    let resolved = pushed::resolve(state, server, params, now).await?;
    let params = &resolved.params;
    let client_id = params
        .get("client_id")
        .ok_or_else(|| AuthorizeError::page(Error::invalid_request("missing client_id")))?;
    let client = request::check_client(
        state
            .store
            .cached_client(client_id)
            .await
            .map_err(Error::from)?,
        server.id(),
    )?;
    pushed::check_required(server, &client, &resolved)?;
    let target = request::check_redirect(params, &client, &server.issuer)?;
    let default_scope = policy::default_scope(&state.store, &client).await?;
    let mut request = request::check_rest(
        params,
        &client,
        &default_scope,
        server.server.require_pkce,
        target,
    )?;
    if let Some(hint) = params.get("id_token_hint") {
        let keys = state
            .keys
            .key_set(&server.server, now)
            .await
            .map_err(Error::from)?;
        let claims: serde_json::Value =
            verify(hint, &keys, &server.issuer, "", Expected::IdTokenHint, now).map_err(|_| {
                request.redirect_error(Error::invalid_request(
                    "id_token_hint is not an ID token of this server",
                ))
            })?;
        request.hinted_subject = claims
            .get("sub")
            .and_then(|s| s.as_str())
            .map(str::to_string);
    }
    let signed_in = session_for(state, server, headers, now).await?;
    let flow = Flow {
        state,
        server,
        client: &client,
        browser: Browser::from_headers(headers, state.config.secure_cookies()),
        ip,
        now,
    };
    flow.proceed(request, signed_in, None).await
}

/// `GET /authorize/resume?interaction=…`: continue after the login or consent page.
pub async fn resume(
    State(state): State<AppState>,
    server: AuthServer,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    match continue_flow(&state, &server, ip, &headers, query).await {
        Ok(response) => response,
        Err(e) => e.render(&state.pages),
    }
}

async fn continue_flow(
    state: &AppState,
    server: &AuthServer,
    ip: IpAddr,
    headers: &HeaderMap,
    query: Option<String>,
) -> Result<Response, AuthorizeError> {
    let params = FormParams::from_query(query.as_deref())?;
    let id = params.require("interaction")?;
    let now = state.now();
    let browser = Browser::existing(headers, state.config.secure_cookies());
    let interaction_state =
        interaction::load(&state.store, server.id(), id, browser.as_deref(), now).await?;
    let client = request::check_client(
        state
            .store
            .client(&interaction_state.request.client_id)
            .await
            .map_err(Error::from)?
            .map(std::sync::Arc::new),
        server.id(),
    )?;
    let signed_in = session_for(state, server, headers, now).await?;
    let flow = Flow {
        state,
        server,
        client: &client,
        browser: Browser {
            value: browser.unwrap_or_default(),
            is_new: false,
        },
        ip,
        now,
    };
    let request = interaction_state.request.clone();
    flow.proceed(
        request,
        signed_in,
        Some(Continuing {
            id: id.to_string(),
            state: interaction_state,
        }),
    )
    .await
}
