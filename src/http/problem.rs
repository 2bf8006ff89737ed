//! RFC 9457 problem details: the management API's errors (`admin/`, and the request limits
//! on its paths), as `application/problem+json` with a
//! stable `type` URI per kind of problem, so automation can branch on it rather than on the text.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::keys::KeyError;
use crate::manage::clients::RegistrationError;
use crate::store::StoreError;

/// The kinds of problem; each has a `type` URI that never changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// No token, or one that is not a live access token of the `admin` server (401).
    Unauthorized,
    /// The token lacks the route's scope (403, RFC 6750 §3.1 `insufficient_scope`).
    InsufficientScope,
    /// No such resource (404).
    NotFound,
    /// The request is malformed: unreadable JSON, a bad query parameter (400).
    BadRequest,
    /// The values break a rule of the resource (400), with the CLI's message.
    Invalid,
    /// The resource already exists, or changed under the request (409).
    Conflict,
    /// `If-Match` names a version that is no longer current (412).
    PreconditionFailed,
    /// The route does not take that method (405).
    MethodNotAllowed,
    /// The body is larger than allowed (413).
    PayloadTooLarge,
    /// The request target or the header fields are too long (414, 431).
    TooLong(StatusCode),
    /// The body is not JSON (415).
    UnsupportedMediaType,
    /// Too many requests (429).
    TooManyRequests,
    /// The database cannot be reached; retry (503).
    Unavailable,
    /// A bug or an unexpected failure, logged; nothing leaks (500).
    Internal,
}

impl ProblemKind {
    pub fn slug(self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::InsufficientScope => "insufficient-scope",
            Self::NotFound => "not-found",
            Self::BadRequest => "bad-request",
            Self::Invalid => "invalid",
            Self::Conflict => "conflict",
            Self::PreconditionFailed => "precondition-failed",
            Self::MethodNotAllowed => "method-not-allowed",
            Self::PayloadTooLarge => "payload-too-large",
            Self::TooLong(_) => "request-too-long",
            Self::UnsupportedMediaType => "unsupported-media-type",
            Self::TooManyRequests => "too-many-requests",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::InsufficientScope => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::BadRequest | Self::Invalid => StatusCode::BAD_REQUEST,
            Self::Conflict => StatusCode::CONFLICT,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::TooLong(status) => status,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::Unauthorized => "A valid access token of the admin server is required",
            Self::InsufficientScope => "The access token lacks the scope this route needs",
            Self::NotFound => "No such resource",
            Self::BadRequest => "The request is malformed",
            Self::Invalid => "The values break a rule of the resource",
            Self::Conflict => "The resource exists or changed meanwhile",
            Self::PreconditionFailed => "The resource changed since the ETag given in If-Match",
            Self::MethodNotAllowed => "The route does not take that method",
            Self::PayloadTooLarge => "The request body is too large",
            Self::TooLong(_) => "The request target or header fields are too long",
            Self::UnsupportedMediaType => "The request body must be JSON",
            Self::TooManyRequests => "Too many requests",
            Self::Unavailable => "The service is temporarily unavailable",
            Self::Internal => "An internal error occurred",
        }
    }
}

/// The `type` URI prefix; the slug follows.
pub const TYPE_PREFIX: &str = "urn:portcullis:problem:";

/// The body of every error response (RFC 9457 §3.1).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProblemBody {
    /// A stable URI for the kind of problem, `urn:portcullis:problem:{slug}`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    /// What went wrong with this request, for a person.
    pub detail: String,
    /// The scope the route needs (`insufficient-scope` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

#[derive(Debug)]
pub struct Problem {
    kind: ProblemKind,
    detail: String,
    scope: Option<&'static str>,
    headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl Problem {
    pub fn new(kind: ProblemKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
            scope: None,
            headers: Vec::new(),
        }
    }

    pub fn kind(&self) -> ProblemKind {
        self.kind
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(ProblemKind::BadRequest, detail)
    }

    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::new(ProblemKind::Invalid, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(ProblemKind::NotFound, detail)
    }

    /// A request refused by `http::request_limits` (413, 414, 431).
    pub fn limit(status: StatusCode, detail: String) -> Self {
        let kind = if status == StatusCode::PAYLOAD_TOO_LARGE {
            ProblemKind::PayloadTooLarge
        } else {
            ProblemKind::TooLong(status)
        };
        Self::new(kind, detail)
    }

    /// RFC 6750 §3: a 401 names the Bearer scheme and, for a bad token, `invalid_token`.
    pub fn unauthorized(detail: &str, token_given: bool) -> Self {
        let challenge = if token_given {
            format!(
                "Bearer realm=\"portcullis-admin\", error=\"invalid_token\", error_description=\"{}\"",
                quoted(detail)
            )
        } else {
            "Bearer realm=\"portcullis-admin\"".to_string()
        };
        Self::new(ProblemKind::Unauthorized, detail).with_challenge(challenge)
    }

    /// RFC 6750 §3.1: 403 `insufficient_scope`, naming the scope needed.
    pub fn insufficient_scope(scope: &'static str) -> Self {
        let mut problem = Self::new(
            ProblemKind::InsufficientScope,
            format!("this route needs the scope {scope}"),
        )
        .with_challenge(format!(
            "Bearer realm=\"portcullis-admin\", error=\"insufficient_scope\", scope=\"{scope}\""
        ));
        problem.scope = Some(scope);
        problem
    }

    /// An unexpected failure: the cause goes to the log, never to the caller.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "management API: internal error");
        Self::new(ProblemKind::Internal, "the error was logged")
    }

    fn with_challenge(mut self, value: String) -> Self {
        if let Ok(value) = HeaderValue::from_str(&value) {
            self.headers.push((header::WWW_AUTHENTICATE, value));
        }
        self
    }

    pub fn body(&self) -> ProblemBody {
        ProblemBody {
            kind: format!("{TYPE_PREFIX}{}", self.kind.slug()),
            title: self.kind.title().to_string(),
            status: self.kind.status().as_u16(),
            detail: self.detail.clone(),
            scope: self.scope.map(str::to_string),
        }
    }
}

/// A value inside a quoted-string of a challenge: no quotes, backslashes or control characters.
fn quoted(text: &str) -> String {
    text.chars()
        .filter(|c| *c != '"' && *c != '\\' && !c.is_control())
        .collect()
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.kind.status();
        let body = serde_json::to_vec(&self.body()).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if self.kind == ProblemKind::Unavailable {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        for (name, value) in self.headers {
            headers.insert(name, value);
        }
        response
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Self::not_found(format!("{what} not found")),
            StoreError::AlreadyExists(what) => {
                Self::new(ProblemKind::Conflict, format!("{what} already exists"))
            }
            StoreError::Conflict(message) => Self::new(ProblemKind::Conflict, message),
            e if e.is_unavailable() => {
                tracing::warn!(error = %e, "management API: database unavailable");
                Self::new(ProblemKind::Unavailable, "retry shortly")
            }
            e => Self::internal(e),
        }
    }
}

impl From<RegistrationError> for Problem {
    fn from(e: RegistrationError) -> Self {
        match e {
            RegistrationError::Invalid(message) => Self::invalid(message),
            RegistrationError::NotFound(message) => Self::not_found(message),
            RegistrationError::Store(e) => e.into(),
        }
    }
}

impl From<KeyError> for Problem {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::Store(e) => e.into(),
            e => Self::internal(e),
        }
    }
}
