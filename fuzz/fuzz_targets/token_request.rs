//! `POST /token` before it touches the store: the body (arbitrary bytes, form-declared) and an
//! `Authorization` header (arbitrary bytes) through `endpoints::token::parse_request`, the typed
//! token request of its grant, client credential parsing and the scope and PKCE grammars. Any input must give a value or an
//! RFC 6749 §5.2 error with a 4xx status, never a panic.

#![no_main]

use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderValue, Method};
use libfuzzer_sys::fuzz_target;
use portcullis::endpoints::token::parse_request;
use portcullis::protocol::{pkce, PresentedCredentials, ScopeSet};

const CODES: &[&str] = &[
    "invalid_request",
    "invalid_client",
    "unsupported_grant_type",
];

fuzz_target!(|data: &[u8]| {
    // The first line, if any, is the Authorization header; the rest is the body.
    let (authorization, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (Some(&data[..i]), &data[i + 1..]),
        None => (None, data),
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    if let Some(value) = authorization.and_then(|a| HeaderValue::from_bytes(a).ok()) {
        headers.insert(header::AUTHORIZATION, value);
    }
    let form = match parse_request(&Method::POST, &headers, Ok(Bytes::copy_from_slice(body))) {
        Ok((form, grant)) => {
            if let Err(e) = grant.parse_request(&form) {
                assert_eq!(e.code.as_str(), "invalid_request");
                assert!(e.status.is_client_error());
            }
            form
        }
        Err(e) => {
            assert!(CODES.contains(&e.code.as_str()), "{}", e.code.as_str());
            assert!(e.status.is_client_error());
            return;
        }
    };
    match PresentedCredentials::from_request(&headers, &form) {
        Ok(credentials) => assert!(!credentials.client_id().is_empty()),
        Err(e) => assert!(CODES.contains(&e.code.as_str()) && e.status.is_client_error()),
    }
    if let Some(scope) = form.get("scope") {
        let _ = ScopeSet::parse(scope);
    }
    if let Some(verifier) = form.get("code_verifier") {
        let valid = pkce::is_valid_verifier(verifier);
        assert!(!valid || (43..=128).contains(&verifier.len()));
        let _ = pkce::verify_s256(verifier, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }
});
