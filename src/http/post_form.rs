//! The form body of the POST-only endpoints a client calls directly: token (RFC 6749 §3.2),
//! introspection (RFC 7662 §2.1) and revocation (RFC 7009 §2.1).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};

use crate::error::Error;
use crate::protocol::FormParams;

/// The request's form parameters: 405 with `Allow: POST` for another method, the body
/// extractor's status (413 when oversized) for an unreadable body, `invalid_request` for a
/// body that is not a well-formed form.
pub fn post_form(
    endpoint: &'static str,
    method: &Method,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<FormParams, Error> {
    // RFC 6749 §3.2, RFC 7009 §2.1, RFC 7662 §2.1: these endpoints take POST only.
    if *method != Method::POST {
        return Err(
            Error::invalid_request(format!("the {endpoint} endpoint accepts POST only"))
                .with_status(StatusCode::METHOD_NOT_ALLOWED)
                .with_header(header::ALLOW, HeaderValue::from_static("POST")),
        );
    }
    let body = body.map_err(|e| {
        Error::invalid_request("the request body is too large or unreadable")
            .with_status(e.status())
    })?;
    FormParams::from_body(headers, &body)
}
