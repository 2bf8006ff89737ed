//! Refuse oversized requests before any handler runs: a request target longer than
//! `http.max_uri_length` (414), headers larger than `http.max_header_bytes` (431), a declared
//! body larger than `http.body_limit` (413; bodies without a length are cut by the extractors'
//! `DefaultBodyLimit`, also 413). Each answer is an RFC 6749 `invalid_request` JSON error, or an
//! RFC 9457 problem on the management API's paths.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::problem::Problem;
use crate::error::Error;

#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    pub max_uri_length: usize,
    pub max_header_bytes: usize,
    pub body_limit: usize,
}

pub async fn enforce(
    State(limits): State<RequestLimits>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = match check(&limits, &request) {
        Ok(()) => next.run(request).await,
        // The management API answers every error as an RFC 9457 problem.
        Err(e) if request.uri().path().starts_with("/admin/") => {
            Problem::limit(e.status, e.description().to_string()).into_response()
        }
        Err(e) => e.into_response(),
    };
    // A request refused as oversized may not have been read to its end, so the connection
    // cannot carry another request: say so (RFC 9112 §9.6), or a client reusing it would find
    // it closed under its next request.
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        response.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    response
}

fn check(limits: &RequestLimits, request: &Request) -> Result<(), Error> {
    let target = request
        .uri()
        .path_and_query()
        .map_or(0, |pq| pq.as_str().len());
    if target > limits.max_uri_length {
        return Err(Error::invalid_request("the request URI is too long")
            .with_status(StatusCode::URI_TOO_LONG));
    }
    // RFC 6585 §5: the size of the header fields, as sent (name, ": ", value, CRLF).
    let header_bytes: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if header_bytes > limits.max_header_bytes {
        return Err(
            Error::invalid_request("the request header fields are too large")
                .with_status(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE),
        );
    }
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.body_limit as u64) {
        return Err(Error::invalid_request("the request body is too large")
            .with_status(StatusCode::PAYLOAD_TOO_LARGE));
    }
    Ok(())
}
