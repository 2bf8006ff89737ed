//! `POST /revoke` (RFC 7009): a client withdraws a token it holds.
//!
//! - A refresh token withdraws its whole grant: every refresh token of the family and, since
//!   access tokens carry the grant id (`gid`), every access token issued under it (§2.1: the
//!   server SHOULD also invalidate the access tokens based on the same grant).
//! - An access token is withdrawn alone, by its `jti`, until it expires; the refresh token it
//!   came with keeps working (§2.1 lets the server choose).
//!
//! A client revokes only tokens issued to it (§2.1). §2.1 has the server refuse a request for
//! another client's token with an error; we leave the token alone and answer 200, as for an
//! invalid or unknown token (§2.2), because a distinct answer would tell the caller that a token
//! it holds is valid and belongs to someone else.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::audit::{Event, Kind};
use crate::auth_server::AuthServer;
use crate::client_auth;
use crate::error::Error;
use crate::http::post_form;
use crate::state::AppState;
use crate::tokens::presented::{identify, Presented, TokenKind};

pub async fn revoke(
    State(state): State<AppState>,
    server: AuthServer,
    method: Method,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Error> {
    let form = post_form("revocation", &method, &headers, body)?;
    // §2.1: the client authenticates as at the token endpoint (RFC 6749 §2.3); a public client
    // identifies itself with its client_id.
    let now = state.now();
    let client =
        client_auth::authenticate_counted(&state, server.id(), &headers, &form, now).await?;
    let token = form.require("token")?;
    // §2.1: the hint may be wrong or unknown; it only orders the search.
    let hint = TokenKind::from_hint(form.get("token_type_hint"));
    match identify(&state, &server, token, hint, now).await? {
        Some(Presented::RefreshToken(t)) if t.client_id == client.id => {
            state.store.revoke_grant(&t.grant_id, now).await?;
            tracing::info!(client_id = %client.id, server = %server.id(), grant = %t.grant_id, "refresh token revoked with its grant");
            state
                .audit
                .commit(
                    Event::new(Kind::TokenRevoked, now)
                        .server(server.id())
                        .actor(format!("client:{}", client.id))
                        .subject(t.user_id.as_str())
                        .detail("token_type", "refresh_token")
                        .detail("grant_id", t.grant_id.as_str()),
                )
                .await?;
        }
        Some(Presented::AccessToken(claims)) if claims.client_id == client.id => {
            state
                .store
                .revoke_jti(&claims.jti, server.id(), now, claims.exp)
                .await?;
            tracing::info!(client_id = %client.id, server = %server.id(), jti = %claims.jti, "access token revoked");
            state
                .audit
                .commit(
                    Event::new(Kind::TokenRevoked, now)
                        .server(server.id())
                        .actor(format!("client:{}", client.id))
                        .subject(claims.sub.as_str())
                        .detail("token_type", "access_token")
                        .detail("jti", claims.jti.as_str()),
                )
                .await?;
        }
        Some(_) => {
            tracing::warn!(client_id = %client.id, server = %server.id(), "another client's token presented for revocation; left alone");
        }
        // §2.2: an invalid, expired or unknown token needs no revoking.
        None => {}
    }
    Ok(revoked())
}

/// §2.2: 200 with an empty body, whatever was (or was not) revoked.
fn revoked() -> Response {
    let mut response = StatusCode::OK.into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
