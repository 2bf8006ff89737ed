//! `POST /introspect` (RFC 7662): a resource server asks whether a token is active and what it
//! says.
//!
//! Who may ask: any confidential client of this server, authenticated as at /token (§2.1: the
//! endpoint MUST require authorization). Public clients hold no credentials and are refused.
//! Resource servers need to introspect access tokens issued to other clients, so any
//! confidential client of the server learns about any of its access tokens (as Okta does).
//! A refresh token is only ever presented by the client it was issued to, so only that client
//! learns it is active; to every other client it is `{"active": false}` (§2.2: a caller not
//! allowed to introspect a token MUST be told it is not active).
//!
//! Every token that is not active (expired, revoked, withdrawn with its grant, retired by a
//! rotation, malformed, of another server, unknown) gets the same `{"active": false}`, so the
//! answer tells nothing about why (§2.2).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::auth_server::AuthServer;
use crate::client_auth;
use crate::clock::UnixTime;
use crate::error::Error;
use crate::http::post_form;
use crate::state::AppState;
use crate::store::{Client, RefreshToken, User};
use crate::tokens::presented::{
    access_token_in_force, identify, refresh_token_expiry, refresh_token_in_force, Presented,
    TokenKind,
};
use crate::tokens::AccessTokenClaims;

pub async fn introspect(
    State(state): State<AppState>,
    server: AuthServer,
    method: Method,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Error> {
    let form = post_form("introspection", &method, &headers, body)?;
    let now = state.now();
    let client =
        client_auth::authenticate_counted(&state, server.id(), &headers, &form, now).await?;
    if client.is_public() {
        return Err(Error::invalid_client(
            "a public client may not introspect tokens",
        ));
    }
    // §2.1: `token` is REQUIRED, `token_type_hint` OPTIONAL.
    let token = form.require("token")?;
    let hint = TokenKind::from_hint(form.get("token_type_hint"));
    let answer = match identify(&state, &server, token, hint, now).await? {
        Some(Presented::AccessToken(claims)) => access_token(&state, &server, claims, now).await?,
        Some(Presented::RefreshToken(t)) => refresh_token(&state, &server, &client, t, now).await?,
        None => Introspection::inactive(),
    };
    tracing::debug!(client_id = %client.id, server = %server.id(), active = answer.active, "token introspected");
    Ok(answer.into_response())
}

/// §2.2: the introspection response. Only `active` when the token is not active.
#[derive(Debug, Default, Serialize)]
struct Introspection {
    active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<UnixTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iat: Option<UnixTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jti: Option<String>,
    /// RFC 9449 §6.2: the DPoP key a bound token is bound to.
    #[serde(skip_serializing_if = "Option::is_none")]
    cnf: Option<serde_json::Value>,
}

impl Introspection {
    fn inactive() -> Self {
        Self::default()
    }
}

impl IntoResponse for Introspection {
    fn into_response(self) -> Response {
        let mut response = Json(self).into_response();
        let headers = response.headers_mut();
        // The answer describes a credential that may be revoked at any moment: never cached.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        response
    }
}

/// An access token of this server: active unless withdrawn, or its client or user is gone
/// (or the user disabled).
async fn access_token(
    state: &AppState,
    server: &AuthServer,
    claims: AccessTokenClaims,
    now: UnixTime,
) -> Result<Introspection, Error> {
    if !access_token_in_force(&state.store, &claims, now).await? {
        return Ok(Introspection::inactive());
    }
    // A deleted client takes its user grants with it, but client credentials tokens carry no
    // grant: check the client itself (from the cache, which a deletion clears: at once on this
    // replica, within `cache.refresh_interval` on the others).
    let client_exists = state
        .store
        .cached_client(&claims.client_id)
        .await?
        .is_some_and(|c| c.server_id == server.id());
    if !client_exists {
        return Ok(Introspection::inactive());
    }
    // A token with a grant id was issued to a user (`sub` is the user's id); without one it
    // is a client credentials token and `sub` is the client (RFC 9068 §2.2).
    let username = match &claims.gid {
        Some(_) => match active_user(state, &claims.sub).await? {
            Some(user) => Some(user.username),
            None => return Ok(Introspection::inactive()),
        },
        None => None,
    };
    Ok(Introspection {
        active: true,
        scope: Some(claims.scope).filter(|s| !s.is_empty()),
        client_id: Some(claims.client_id),
        username,
        // §2.2: the token type of RFC 6749 §5.1 (RFC 9449 §6.2: DPoP when bound).
        token_type: Some(if claims.cnf.is_some() {
            "DPoP"
        } else {
            "Bearer"
        }),
        exp: Some(claims.exp),
        iat: Some(claims.iat),
        sub: Some(claims.sub),
        aud: Some(claims.aud),
        iss: Some(server.issuer.clone()),
        jti: Some(claims.jti),
        cnf: claims.cnf,
    })
}

/// A refresh token of this server: active for the client it was issued to, while it could be
/// redeemed and its user is active.
async fn refresh_token(
    state: &AppState,
    server: &AuthServer,
    client: &Client,
    token: RefreshToken,
    now: UnixTime,
) -> Result<Introspection, Error> {
    if token.client_id != client.id || !refresh_token_in_force(&state.store, &token, now).await? {
        return Ok(Introspection::inactive());
    }
    let Some(user) = active_user(state, &token.user_id).await? else {
        return Ok(Introspection::inactive());
    };
    Ok(Introspection {
        active: true,
        scope: Some(token.scope.clone()).filter(|s| !s.is_empty()),
        exp: Some(refresh_token_expiry(&token)),
        client_id: Some(token.client_id),
        username: Some(user.username),
        token_type: Some("refresh_token"),
        iat: Some(token.created_at),
        sub: Some(token.user_id),
        iss: Some(server.issuer.clone()),
        ..Introspection::default()
    })
}

async fn active_user(state: &AppState, id: &str) -> Result<Option<User>, Error> {
    Ok(state.store.user(id).await?.filter(|u| !u.disabled))
}
