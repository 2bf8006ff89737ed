//! `POST /par` (RFC 9126 §2): an authenticated client pushes its authorization request and
//! gets the `request_uri` to send the browser to /authorize with.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::auth_server::AuthServer;
use crate::authorize::pushed;
use crate::client_auth;
use crate::dpop;
use crate::error::Error;
use crate::http::post_form;
use crate::state::AppState;

pub async fn par(
    State(state): State<AppState>,
    server: AuthServer,
    method: Method,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Error> {
    let form = post_form("pushed authorization request", &method, &headers, body)?;
    let now = state.now();
    // §2: the client authenticates as at the token endpoint.
    let client =
        client_auth::authenticate_counted(&state, server.id(), &headers, &form, now).await?;
    // RFC 9449 §10.1: a DPoP proof here binds the code to its key, like dpop_jkt.
    let proof = dpop::at_par(&state, &server, &headers, now).await?;
    let dpop_jkt = proof.as_ref().map(|p| p.jkt.as_str());
    let pushed = pushed::push(&state, &server, &client, form, dpop_jkt, now).await?;
    // §2.2: 201 Created, never cached.
    let mut response = (
        StatusCode::CREATED,
        Json(json!({
            "request_uri": pushed.request_uri,
            "expires_in": pushed.expires_in,
        })),
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(response)
}
