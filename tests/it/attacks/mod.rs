//! Protocol attacks, one file per family, each test one attack that must be refused. Every
//! hostile request is made between two snapshots of the whole store (`common::snapshot`): an
//! attack changes nothing, or exactly what the protocol prescribes (a code presented by the
//! wrong client is burnt and its grant revoked, RFC 6749 §4.1.2) and the test says so.
//!
//! Where an existing test already proves an attack exactly, a comment points to it instead of
//! copying it here.

mod bad_input;
mod codes;
mod forms;
mod jwt;
mod mix_up;
mod redirect_uri;

use crate::common::TestServer;

/// An error page: `status`, HTML, and above all no `Location` (no redirect anywhere).
pub async fn assert_error_page(response: reqwest::Response, status: u16, what: &str) -> String {
    assert_eq!(response.status().as_u16(), status, "{what}: status");
    assert!(
        response.headers().get("location").is_none(),
        "{what}: redirected to {:?}",
        response.headers().get("location")
    );
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap_or("").to_string())
        .unwrap_or_default();
    assert!(
        content_type.starts_with("text/html"),
        "{what}: content type {content_type}"
    );
    response.text().await.expect("error page body")
}

/// GET `path_and_query` on `server` without cookies and without following redirects.
pub async fn get(server: &TestServer, path_and_query: &str) -> reqwest::Response {
    server
        .http
        .get(server.url(path_and_query))
        .send()
        .await
        .expect("GET")
}

/// `value` percent-encoded for a query string (every byte outside the unreserved set).
pub fn enc(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
