//! One module per grant. Each receives an authenticated client and the request form, decides,
//! and returns the token response; none of them knows about HTTP routing.

pub mod authorization_code;
pub mod client_credentials;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::app::AppState;
use crate::clock::UnixTime;
use crate::endpoints::AuthServer;
use crate::error::Error;
use crate::policy::Lifetimes;
use crate::protocol::{FormParams, GrantType};
use crate::store::Client;

/// The grants the token endpoint serves.
pub const SUPPORTED: &[GrantType] = &[GrantType::AuthorizationCode, GrantType::ClientCredentials];

pub struct GrantContext<'a> {
    pub state: &'a AppState,
    pub server: &'a AuthServer,
    pub client: &'a Client,
    pub form: &'a FormParams,
    pub now: UnixTime,
}

impl GrantContext<'_> {
    /// Token lifetimes under this server's and client's policy.
    pub fn lifetimes(&self) -> Lifetimes {
        Lifetimes::of(&self.state.config.tokens, &self.server.server, self.client)
    }

    /// Access token lifetime: the client's override, else the server's, else the configuration's.
    pub fn access_token_ttl(&self) -> i64 {
        self.lifetimes().access_token
    }

    pub fn id_token_ttl(&self) -> i64 {
        self.lifetimes().id_token
    }
}

pub async fn dispatch(grant: GrantType, context: GrantContext<'_>) -> Result<TokenResponse, Error> {
    match grant {
        GrantType::AuthorizationCode => authorization_code::handle(context).await,
        GrantType::ClientCredentials => client_credentials::handle(context).await,
        other => Err(Error::new(
            crate::error::ErrorCode::UnsupportedGrantType,
            format!("grant_type `{other}` is not supported"),
        )),
    }
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
}

impl IntoResponse for TokenResponse {
    fn into_response(self) -> Response {
        let mut response = Json(self).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        response
    }
}
