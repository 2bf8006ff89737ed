//! `POST /token` (RFC 6749 §3.2): parse the form, authenticate the client, dispatch to the
//! grant. Every grant's logic lives in `grants/`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::audit::{Event, Kind};
use crate::client_auth;
use crate::client_ip::ClientIp;
use crate::endpoints::{post_form, AuthServer};
use crate::error::{Error, ErrorCode};
use crate::grants::{self, GrantContext};
use crate::metrics::TokenKind;
use crate::protocol::{FormParams, GrantType};
use crate::rate_limit;

pub async fn token(
    State(state): State<AppState>,
    server: AuthServer,
    ClientIp(ip): ClientIp,
    method: Method,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Error> {
    let (form, grant) = parse_request(&method, &headers, body)?;
    let client = client_auth::authenticate_counted(&state, server.id(), &headers, &form).await?;
    if !client.allows(grant) {
        return Err(Error::unauthorized_client(format!(
            "this client may not use the {grant} grant"
        )));
    }
    let now = state.now();
    // After authentication, so nobody can spend another client's budget.
    state
        .rate_limits
        .check_token(&state.config.rate_limits, &client.id, now)
        .map_err(|limited| limited.into_error())?;
    if grant == GrantType::Password {
        // Before the password is hashed: a flood of guesses buys no argon2 time.
        let username = form.get("username").unwrap_or("");
        let limits = &state.config.rate_limits;
        if let Err(limited) =
            rate_limit::check_sign_in(&state.store, limits, ip, username, now).await?
        {
            state.audit.record(
                Event::new(Kind::RateLimited, now)
                    .server(server.id())
                    .actor(format!("ip:{ip}"))
                    .detail("limit", limited.limit)
                    .typed_username(username)
                    .detail("client_id", client.id.as_str()),
            );
            return Err(limited.into_error());
        }
    }
    let context = GrantContext {
        state: &state,
        server: &server,
        client: &client,
        form: &form,
        now,
        ip,
    };
    let response = grants::dispatch(grant, context).await?;
    count_issued(&state, grant, &response);
    Ok(response.into_response())
}

/// Every grant's tokens are counted here, where they leave (the implicit flow counts its own).
fn count_issued(state: &AppState, grant: GrantType, response: &grants::TokenResponse) {
    let grant_type = grant.as_str();
    state.metrics.token_issued(grant_type, TokenKind::Access);
    if response.id_token.is_some() {
        state.metrics.token_issued(grant_type, TokenKind::Id);
    }
    if response.refresh_token.is_some() {
        state.metrics.token_issued(grant_type, TokenKind::Refresh);
    }
}

/// The request's form and grant type, before anything touches the store: the parsing the fuzz
/// target `token_request` drives with arbitrary bytes.
pub fn parse_request(
    method: &Method,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(FormParams, GrantType), Error> {
    let form = post_form("token", method, headers, body)?;
    let grant_type = form.require("grant_type")?;
    let grant = grant_type
        .parse::<GrantType>()
        .ok()
        .filter(|g| grants::SUPPORTED.contains(g))
        .ok_or_else(|| {
            Error::new(
                ErrorCode::UnsupportedGrantType,
                format!("grant_type `{grant_type}` is not supported"),
            )
        })?;
    Ok((form, grant))
}
