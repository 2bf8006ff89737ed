//! Headers every response gets: no referrer, no MIME sniffing, and HSTS when the issuer is https.
//! Pages add their own (no caching, no framing, CSP: `pages`); token responses their `no-store`.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// Whether responses carry `Strict-Transport-Security` (the issuer is https: the server sits
/// behind a TLS-terminating proxy, and browsers must never reach it over plain http).
#[derive(Debug, Clone, Copy)]
pub struct Hsts(pub bool);

/// One year, the value browsers' preload lists ask for.
const HSTS: &str = "max-age=31536000; includeSubDomains";

pub async fn add(State(hsts): State<Hsts>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    // Referrer-Policy on every response: a URL of ours may carry a code or an interaction id.
    headers
        .entry(header::REFERRER_POLICY)
        .or_insert(HeaderValue::from_static("no-referrer"));
    headers
        .entry(header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(HeaderValue::from_static("nosniff"));
    if hsts.0 {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
    response
}
