//! `POST /token` (RFC 6749 §3.2): parse the form, authenticate the client, dispatch to the
//! grant. Every grant's logic lives in `grants/`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::client_auth;
use crate::endpoints::AuthServer;
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
    if method != Method::POST {
        return Err(
            Error::invalid_request("the token endpoint accepts POST only")
                .with_status(StatusCode::METHOD_NOT_ALLOWED)
                .with_header(header::ALLOW, HeaderValue::from_static("POST")),
        );
    }
    let form = FormParams::from_request_body(&headers, body)?;
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
