//! The one protocol error type.
//!
//! Every handler returns `Result<_, Error>`. An `Error` carries the RFC error code, a
//! human-readable description meant for the client developer, and the HTTP status. Internal
//! failures keep their cause for the log and render as a bare `server_error`, leaking nothing.

use std::borrow::Cow;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Error codes named by RFC 6749 §4.1.2.1 / §5.2, RFC 6750 §3.1, RFC 7009, OIDC Core §3.1.2.6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    UnsupportedTokenType,
    InvalidScope,
    AccessDenied,
    InvalidToken,
    InsufficientScope,
    LoginRequired,
    ConsentRequired,
    InteractionRequired,
    RequestNotSupported,
    RequestUriNotSupported,
    RegistrationNotSupported,
    TemporarilyUnavailable,
    ServerError,
    /// RFC 8628 §3.5: the user has not decided yet.
    AuthorizationPending,
    /// RFC 8628 §3.5: polling faster than the interval.
    SlowDown,
    /// RFC 8628 §3.5: the device code expired.
    ExpiredToken,
    /// RFC 8693 §2.2.2: an audience or resource the client may not have.
    InvalidTarget,
    /// RFC 7591 §3.2.2: a redirect URI registration refuses.
    InvalidRedirectUri,
    /// RFC 7591 §3.2.2: client metadata registration refuses.
    InvalidClientMetadata,
    /// Not an RFC code: an unknown authorization server or path.
    NotFound,
    /// RFC 9449 §5, §7.1: a DPoP proof that is missing where required, or invalid.
    InvalidDpopProof,
    /// RFC 9449 §8, §9: the proof must carry the server's current nonce (`DPoP-Nonce`).
    UseDpopNonce,
    /// RFC 9101 §6.2: a `request_uri` that is unknown, expired or used.
    InvalidRequestUri,
    /// RFC 9101 §6.2: a request object that is not validly signed or fails its checks.
    InvalidRequestObject,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::UnsupportedTokenType => "unsupported_token_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
            Self::LoginRequired => "login_required",
            Self::ConsentRequired => "consent_required",
            Self::InteractionRequired => "interaction_required",
            Self::RequestNotSupported => "request_not_supported",
            Self::RequestUriNotSupported => "request_uri_not_supported",
            Self::RegistrationNotSupported => "registration_not_supported",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::ServerError => "server_error",
            Self::AuthorizationPending => "authorization_pending",
            Self::SlowDown => "slow_down",
            Self::ExpiredToken => "expired_token",
            Self::InvalidTarget => "invalid_target",
            Self::InvalidRedirectUri => "invalid_redirect_uri",
            Self::InvalidClientMetadata => "invalid_client_metadata",
            Self::NotFound => "not_found",
            Self::InvalidDpopProof => "invalid_dpop_proof",
            Self::UseDpopNonce => "use_dpop_nonce",
            Self::InvalidRequestUri => "invalid_request_uri",
            Self::InvalidRequestObject => "invalid_request_object",
        }
    }

    /// The status RFC 6749 §5.2 and RFC 6750 §3.1 give each code at the token and resource endpoints.
    fn default_status(self) -> StatusCode {
        match self {
            Self::InvalidClient | Self::InvalidToken => StatusCode::UNAUTHORIZED,
            Self::InsufficientScope | Self::AccessDenied => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            Self::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// How a failed client authentication is challenged (RFC 6749 §5.2, RFC 6750 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    None,
    /// The client tried HTTP Basic: 401 with `WWW-Authenticate: Basic`.
    Basic,
    /// A protected resource: 401 with `WWW-Authenticate: Bearer error="…"`.
    Bearer,
    /// RFC 6750 §3.1: a request without any token gets a bare challenge, no error code.
    BearerBare,
}

#[derive(Debug)]
pub struct Error {
    pub code: ErrorCode,
    pub description: Option<Cow<'static, str>>,
    pub status: StatusCode,
    pub challenge: Challenge,
    /// Extra response headers (`Allow`, `Retry-After`, …).
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
    /// The cause of an internal error, for the log only.
    source: Option<anyhow_lite::Cause>,
}

impl Error {
    pub fn new(code: ErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            description: Some(description.into()),
            status: code.default_status(),
            challenge: Challenge::None,
            headers: Vec::new(),
            source: None,
        }
    }

    pub fn invalid_request(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidRequest, d)
    }
    pub fn invalid_client(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidClient, d)
    }
    pub fn invalid_grant(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidGrant, d)
    }
    pub fn unauthorized_client(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::UnauthorizedClient, d)
    }
    pub fn invalid_scope(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidScope, d)
    }
    pub fn invalid_token(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidToken, d).with_challenge(Challenge::Bearer)
    }
    /// `access_denied` in a token response (RFC 8628 §3.5): RFC 6749 §5.2's 400, not the 403 the
    /// code has at the other endpoints.
    pub fn access_denied_at_token_endpoint(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::AccessDenied, d).with_status(StatusCode::BAD_REQUEST)
    }
    pub fn not_found(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::NotFound, d)
    }

    /// An internal failure: logged with its cause, rendered as a bare `server_error`.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self {
            code: ErrorCode::ServerError,
            description: None,
            status: StatusCode::INTERNAL_SERVER_ERROR,
            challenge: Challenge::None,
            headers: Vec::new(),
            source: Some(anyhow_lite::Cause(cause.to_string())),
        }
    }

    /// The database cannot be reached (down, refusing connections, the pool exhausted): a
    /// `503 temporarily_unavailable` (RFC 6749 §4.1.2.1, §5.2 by analogy) with `Retry-After`, so
    /// clients and load balancers retry instead of treating it as a bug; the cause is logged.
    pub fn unavailable(cause: impl std::fmt::Display) -> Self {
        Self {
            code: ErrorCode::TemporarilyUnavailable,
            description: Some(Cow::Borrowed(
                "the service is temporarily unavailable; retry shortly",
            )),
            status: StatusCode::SERVICE_UNAVAILABLE,
            challenge: Challenge::None,
            headers: vec![(header::RETRY_AFTER, HeaderValue::from_static("1"))],
            source: Some(anyhow_lite::Cause(cause.to_string())),
        }
    }

    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    pub fn with_challenge(mut self, challenge: Challenge) -> Self {
        // RFC 6750 §3.1: insufficient_scope is 403, the other challenges 401.
        if challenge != Challenge::None && self.code != ErrorCode::InsufficientScope {
            self.status = StatusCode::UNAUTHORIZED;
        }
        self.challenge = challenge;
        self
    }

    pub fn with_header(mut self, name: header::HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    pub fn description(&self) -> &str {
        self.description.as_deref().unwrap_or("")
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.code.as_str())?;
        if let Some(d) = &self.description {
            write!(f, ": {d}")?;
        }
        if let Some(cause) = &self.source {
            write!(f, " ({})", cause.0)?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        if database_unavailable(&e) {
            Self::unavailable(format_args!("database: {e}"))
        } else {
            Self::internal(format_args!("database: {e}"))
        }
    }
}

/// The database could not be reached, as opposed to a query that failed: no connection
/// (refused, reset, timed out waiting for one), or the server ending or refusing sessions
/// (SQLSTATE classes 08, 53 and 57P, and 55000 "not currently accepting connections"). The
/// request may well succeed a moment later, on this replica or another.
pub fn database_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08")
                || code.starts_with("53")
                || code.starts_with("57P")
                || code == "55000"
        }),
        _ => false,
    }
}

/// The JSON body of RFC 6749 §5.2.
#[derive(Serialize)]
pub struct ErrorBody<'a> {
    pub error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_description: Option<&'a str>,
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        if self.source.is_some() {
            tracing::error!(error = %self, "internal error");
        } else {
            tracing::debug!(error = %self, "request refused");
        }
        let body = ErrorBody {
            error: self.code.as_str(),
            error_description: self.description.as_deref(),
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        // RFC 6749 §5.1/§5.2: token responses, errors included, are never cached.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        match self.challenge {
            Challenge::None => {}
            Challenge::Basic => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"portcullis\", charset=\"UTF-8\""),
                );
            }
            Challenge::BearerBare => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"portcullis\""),
                );
            }
            Challenge::Bearer => {
                let value = bearer_challenge(self.code, self.description.as_deref());
                if let Ok(v) = HeaderValue::from_str(&value) {
                    headers.insert(header::WWW_AUTHENTICATE, v);
                }
            }
        }
        for (name, value) in self.headers {
            headers.insert(name, value);
        }
        response
    }
}

/// RFC 6750 §3: `Bearer realm="…", error="…", error_description="…"`.
fn bearer_challenge(code: ErrorCode, description: Option<&str>) -> String {
    let mut value = format!("Bearer realm=\"portcullis\", error=\"{}\"", code.as_str());
    if let Some(d) = description {
        // §3: the description is limited to %x20-21 / %x23-5B / %x5D-7E.
        let clean: String = d
            .chars()
            .filter(|c| matches!(c, ' '..='~') && *c != '"' && *c != '\\')
            .collect();
        value.push_str(&format!(", error_description=\"{clean}\""));
    }
    value
}

/// A tiny owned cause, so `Error` stays `Send + Sync` without boxing trait objects.
mod anyhow_lite {
    #[derive(Debug)]
    pub struct Cause(pub String);
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
