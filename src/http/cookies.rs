//! Cookies: the session cookie (per authorization server) and the browser-binding cookie that
//! ties pending interactions and CSRF tokens to one browser. All HttpOnly and SameSite=Lax.
//!
//! With an https issuer every cookie is a `__Host-` cookie (RFC 6265bis §4.1.3.2): Secure,
//! `Path=/`, no `Domain`. A browser accepts such a cookie only from this exact host over https,
//! so a sibling subdomain (or a plain-http response) cannot plant one for us to read ("cookie
//! tossing"), and the unprefixed names are not read at all. Over plain http (loopback
//! development) the prefix cannot be used, and the cookies keep their plain names.

use axum::http::{header, HeaderMap, HeaderValue};

use crate::store::servers::DEFAULT_SERVER;

const HOST_PREFIX: &str = "__Host-";

/// The browser-binding cookie's name.
pub fn browser_cookie(secure: bool) -> &'static str {
    if secure {
        "__Host-portcullis_browser"
    } else {
        "portcullis_browser"
    }
}

/// The session cookie's name and path for a server: each server's sessions are its own (by
/// name; by path too where the prefix allows one).
pub fn session_cookie(server_id: &str, secure: bool) -> (String, String) {
    let (name, path) = if server_id == DEFAULT_SERVER {
        ("portcullis_session".to_string(), "/".to_string())
    } else {
        (
            format!("portcullis_session_{server_id}"),
            format!("/oauth2/{server_id}"),
        )
    };
    if secure {
        (format!("{HOST_PREFIX}{name}"), "/".to_string())
    } else {
        (name, path)
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
