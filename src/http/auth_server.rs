//! Finding the authorization server a request is addressed to: `default` at the root, or the
//! `{server_id}` of `/oauth2/{server_id}/…`.

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;

use crate::auth_server::AuthServer;
use crate::error::Error;
use crate::state::AppState;
use crate::store::servers::DEFAULT_SERVER;

impl FromRequestParts<AppState> for AuthServer {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let from_path = match RawPathParams::from_request_parts(parts, state).await {
            Ok(params) => params
                .iter()
                .find(|(name, _)| *name == "server_id")
                .map(|(_, value)| value.to_string()),
            Err(_) => None,
        };
        let id = match from_path {
            // The default server lives at the root only: one issuer, one set of URLs.
            Some(id) if id == DEFAULT_SERVER => {
                return Err(Error::not_found("no such authorization server"))
            }
            // Server ids are printable; a control character (a decoded %00 above all, which
            // PostgreSQL cannot even compare) names no server and never reaches a query.
            Some(id) if id.chars().any(char::is_control) => {
                return Err(Error::not_found("no such authorization server"))
            }
            Some(id) => id,
            None => DEFAULT_SERVER.to_string(),
        };
        let server = state
            .store
            .cached_server(&id)
            .await?
            .ok_or_else(|| Error::not_found("no such authorization server"))?;
        Ok(AuthServer::new(&state.config.issuer, server))
    }
}
