//! One module per grant. Each receives an authenticated client and the request form, decides,
//! and returns the token response; none of them knows about HTTP routing.

pub mod authorization_code;
pub mod client_credentials;
pub mod password;
pub mod refresh_token;
pub mod tokens;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::app::AppState;
use crate::audit::Event;
use crate::clock::UnixTime;
use crate::endpoints::AuthServer;
use crate::error::Error;
use crate::policy::Lifetimes;
use crate::protocol::{FormParams, GrantType, ScopeSet};
use crate::security::{hash_secret, random_secret};
use crate::store::{Client, RefreshToken};

/// The grants the token endpoint serves.
pub const SUPPORTED: &[GrantType] = &[
    GrantType::AuthorizationCode,
    GrantType::ClientCredentials,
    GrantType::Password,
    GrantType::RefreshToken,
];

pub struct GrantContext<'a> {
    pub state: &'a AppState,
    pub server: &'a AuthServer,
    pub client: &'a Client,
    pub form: &'a FormParams,
    pub now: UnixTime,
    /// The client's address, for the sign-in limits of the password grant.
    pub ip: std::net::IpAddr,
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

    /// Absolute lifetime of a refresh token family.
    pub fn refresh_token_ttl(&self) -> i64 {
        self.lifetimes().refresh_token
    }

    pub fn refresh_idle_ttl(&self) -> i64 {
        self.server
            .server
            .refresh_idle_ttl
            .unwrap_or(self.state.config.tokens.refresh_idle_ttl.as_i64())
    }

    pub fn refresh_reuse_grace(&self) -> i64 {
        self.server
            .server
            .refresh_reuse_grace
            .unwrap_or(self.state.config.tokens.refresh_reuse_grace.as_i64())
    }

    /// A refresh token for a new family, when the client and the server's policy allow one.
    /// Never for implicit or client credentials (they do not come through here).
    pub async fn new_refresh_token(
        &self,
        grant_id: &str,
        user_id: &str,
        scope: &ScopeSet,
        auth_time: UnixTime,
        session_sid: Option<&str>,
    ) -> Result<Option<String>, Error> {
        if !self.client.allows(GrantType::RefreshToken) {
            return Ok(None);
        }
        let needs_offline = self.server.server.refresh_requires_offline_access
            || self.state.config.tokens.refresh_requires_offline_access;
        if needs_offline && !scope.contains("offline_access") {
            return Ok(None);
        }
        let value = random_secret();
        let record = RefreshToken {
            grant_id: grant_id.to_string(),
            server_id: self.server.id().to_string(),
            client_id: self.client.id.clone(),
            user_id: user_id.to_string(),
            scope: scope.to_string(),
            auth_time,
            session_sid: session_sid.map(str::to_string),
            created_at: self.now,
            expires_at: self.now + self.refresh_token_ttl(),
            idle_expires_at: self.now + self.refresh_idle_ttl(),
            rotated_at: None,
            revoked_at: None,
        };
        self.state
            .store
            .insert_refresh_token(&hash_secret(value.expose()), &record)
            .await?;
        Ok(Some(value.expose().to_string()))
    }

    pub fn id_token_ttl(&self) -> i64 {
        self.lifetimes().id_token
    }

    /// Audit a token response: ids and scopes only, never a token.
    pub fn audit_issued(
        &self,
        grant: &str,
        user_id: Option<&str>,
        jti: &str,
        scope: &str,
        refresh_token: bool,
    ) {
        self.state.audit.record(Event::token_issued(
            self.now,
            self.server.id(),
            &self.client.id,
            grant,
            user_id,
            Some(jti),
            scope,
            refresh_token,
        ));
    }
}

pub async fn dispatch(grant: GrantType, context: GrantContext<'_>) -> Result<TokenResponse, Error> {
    match grant {
        GrantType::AuthorizationCode => authorization_code::handle(context).await,
        GrantType::ClientCredentials => client_credentials::handle(context).await,
        GrantType::Password => password::handle(context).await,
        GrantType::RefreshToken => refresh_token::handle(context).await,
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
