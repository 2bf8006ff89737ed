//! `/keys`: the server's JSON Web Key Set (RFC 7517), public parts only.

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

use crate::auth_server::AuthServer;
use crate::error::Error;
use crate::state::AppState;

pub async fn jwks(State(state): State<AppState>, server: AuthServer) -> Result<Response, Error> {
    let set = state.keys.key_set(&server.server, state.now()).await?;
    // Relying parties may cache the set this long; a rotated-in key is published at least
    // this long (plus the replicas' own cache lifetime) before it signs.
    let cache_control = format!(
        "public, max-age={}",
        state.config.keys.jwks_max_age.as_i64()
    );
    let mut response = set.jwks.clone().into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(value) = HeaderValue::from_str(&cache_control) {
        headers.insert(header::CACHE_CONTROL, value);
    }
    Ok(response)
}
