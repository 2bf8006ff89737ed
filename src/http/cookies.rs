//! Cookies: the session cookie (per authorization server) and the browser-binding cookie that
//! ties pending interactions and CSRF tokens to one browser. All HttpOnly and SameSite=Lax;
//! Secure whenever the issuer is https.

use axum::http::{header, HeaderMap, HeaderValue};

use crate::store::servers::DEFAULT_SERVER;

pub const BROWSER_COOKIE: &str = "portcullis_browser";

/// The session cookie's name and path for a server: each server's sessions are its own.
pub fn session_cookie(server_id: &str) -> (String, String) {
    if server_id == DEFAULT_SERVER {
        ("portcullis_session".into(), "/".into())
    } else {
        (
            format!("portcullis_session_{server_id}"),
            format!("/oauth2/{server_id}"),
        )
    }
}

/// The value of cookie `name` in the request, if present once.
pub fn get(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"').to_string())
        .filter(|v| !v.is_empty())
}

/// A `Set-Cookie` value. `max_age` None: a browser-session cookie; Some(0): delete it.
pub fn set(name: &str, value: &str, path: &str, secure: bool, max_age: Option<i64>) -> HeaderValue {
    let mut cookie = format!("{name}={value}; Path={path}; HttpOnly; SameSite=Lax");
    if secure {
        cookie.push_str("; Secure");
    }
    if let Some(age) = max_age {
        cookie.push_str(&format!("; Max-Age={age}"));
    }
    HeaderValue::from_str(&cookie)
        .unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}
