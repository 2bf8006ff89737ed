//! `POST /token` (RFC 6749 §3.2): parse the request, authenticate the client, let the grant
//! decide, have the issuer issue, and answer (§5.1). Every grant's logic lives in `grants/`,
//! every token is minted in `issuer`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::audit::{Event, Kind};
use crate::auth_server::AuthServer;
use crate::client_auth;
use crate::dpop;
use crate::error::Error;
use crate::grants::{self, GrantContext};
use crate::http::client_ip::ClientIp;
use crate::http::post_form;
use crate::issuer::{Issued, Issuer};
use crate::protocol::{FormParams, TokenGrant};
use crate::rate_limit;
use crate::state::AppState;

pub async fn token(
    State(state): State<AppState>,
    server: AuthServer,
    ClientIp(ip): ClientIp,
    method: Method,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Error> {
    let (form, grant) = parse_request(&method, &headers, body)?;
    let now = state.now();
    let client =
        client_auth::authenticate_counted(&state, server.id(), &headers, &form, now).await?;
    if !client.allows(grant.grant_type()) {
        return Err(Error::unauthorized_client(format!(
            "this client may not use the {} grant",
            grant.grant_type()
        )));
    }
    // After authentication, so nobody can spend another client's budget.
    state
        .rate_limits
        .check_token(
            &state.config.rate_limits,
            &client.id,
            client.is_public().then_some(ip),
            now,
        )
        .map_err(|limited| limited.into_error())?;
    if grant == TokenGrant::Password {
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
    let request = grant.parse_request(&form)?;
    // RFC 9449 §5: a DPoP proof binds what is issued to its key.
    let proof = dpop::at_token_endpoint(&state, &server, &client, &headers, now).await?;
    let dpop_jkt = proof.as_ref().map(|p| p.jkt.as_str());
    let context = GrantContext {
        state: &state,
        server: &server,
        client: &client,
        now,
        ip,
        dpop_jkt,
    };
    let decision = grants::decide(&context, request).await?;
    let issuer = Issuer {
        state: &state,
        server: &server,
        client: &client,
        now,
        dpop_jkt,
    };
    let issued = issuer.issue(decision).await?;
    let mut response = TokenResponse::try_from(issued)?;
    if grant == TokenGrant::TokenExchange {
        // RFC 8693 §2.2.1.
        response.issued_token_type = Some(grants::token_exchange::ACCESS_TOKEN_TYPE);
    }
    let mut response = response.into_response();
    if proof.is_some() {
        if let Some((name, value)) =
            dpop::fresh_nonce(&state, state.config.dpop.require_nonce, now).await?
        {
            response.headers_mut().insert(name, value);
        }
    }
    Ok(response)
}

/// The request's form and grant, before anything touches the store: the parsing the fuzz
/// target `token_request` drives with arbitrary bytes.
pub fn parse_request(
    method: &Method,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(FormParams, TokenGrant), Error> {
    let form = post_form("token", method, headers, body)?;
    let grant = TokenGrant::of(&form)?;
    Ok((form, grant))
}

/// RFC 6749 §5.1.
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// RFC 8693 §2.2.1: in token exchange responses only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<&'static str>,
}

impl TryFrom<Issued> for TokenResponse {
    type Error = Error;

    /// Every grant of the token endpoint issues an access token (`Wanted::TOKEN_ENDPOINT`).
    fn try_from(issued: Issued) -> Result<Self, Error> {
        Ok(Self {
            access_token: issued
                .access_token
                .ok_or_else(|| Error::internal("no access token minted"))?,
            token_type: issued.token_type,
            expires_in: issued.expires_in,
            scope: issued.scope.to_string(),
            refresh_token: issued.refresh_token,
            id_token: issued.id_token,
            issued_token_type: None,
        })
    }
}

impl IntoResponse for TokenResponse {
    fn into_response(self) -> Response {
        let mut response = Json(self).into_response();
        let headers = response.headers_mut();
        // §5.1: tokens are never cached.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        response
    }
}
