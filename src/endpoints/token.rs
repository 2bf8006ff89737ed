//! `POST /token` (RFC 6749 §3.2): parse the form, authenticate the client, dispatch to the
//! grant. Every grant's logic lives in `grants/`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::client_auth;
use crate::endpoints::{post_form, AuthServer};
use crate::error::{Error, ErrorCode};
use crate::grants::{self, GrantContext};
use crate::protocol::{FormParams, GrantType};

pub async fn token(
    State(state): State<AppState>,
    server: AuthServer,
    method: Method,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Error> {
    let (form, grant) = parse_request(&method, &headers, body)?;
    let client = client_auth::authenticate(&state.store, server.id(), &headers, &form).await?;
    if !client.allows(grant) {
        return Err(Error::unauthorized_client(format!(
            "this client may not use the {grant} grant"
        )));
    }
    let now = state.now();
    let context = GrantContext {
        state: &state,
        server: &server,
        client: &client,
        form: &form,
        now,
    };
    let response = grants::dispatch(grant, context).await?;
    Ok(response.into_response())
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
