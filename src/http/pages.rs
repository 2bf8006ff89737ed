//! Server-rendered HTML pages (minijinja templates, autoescaped), with the headers every page
//! gets: no caching, no framing, a strict CSP with a per-response nonce, no referrer.

use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use minijinja::Environment;
use serde::Serialize;

use crate::security::random_token;

pub struct Pages {
    env: Environment<'static>,
}

impl Default for Pages {
    fn default() -> Self {
        Self::new()
    }
}

impl Pages {
    pub fn new() -> Self {
        let mut env = Environment::new();
        for (name, source) in [
            ("base.html", include_str!("templates/base.html")),
            ("login.html", include_str!("templates/login.html")),
            ("consent.html", include_str!("templates/consent.html")),
            ("error.html", include_str!("templates/error.html")),
            ("logout.html", include_str!("templates/logout.html")),
            ("signed_out.html", include_str!("templates/signed_out.html")),
            ("form_post.html", include_str!("templates/form_post.html")),
            ("device.html", include_str!("templates/device.html")),
            (
                "device_confirm.html",
                include_str!("templates/device_confirm.html"),
            ),
            (
                "device_done.html",
                include_str!("templates/device_done.html"),
            ),
            ("mfa.html", include_str!("templates/mfa.html")),
            (
                "mfa_recovery_codes.html",
                include_str!("templates/mfa_recovery_codes.html"),
            ),
            ("passkey.html", include_str!("templates/passkey.html")),
            ("passkeys.html", include_str!("templates/passkeys.html")),
        ] {
            // The templates are compiled into the binary; a broken one fails every test.
            if let Err(e) = env.add_template(name, source) {
                tracing::error!(template = name, error = %e, "invalid template");
            }
        }
        Self { env }
    }

    /// Render `name` with `context`; `form_targets` are the origins forms (and the redirects
    /// that follow their submission) may go to besides this server.
    pub fn render<S: Serialize>(
        &self,
        status: StatusCode,
        name: &str,
        context: S,
        form_targets: &[String],
        extra_headers: HeaderMap,
    ) -> Response {
        let nonce = random_token(16);
        let html = self.env.get_template(name).and_then(|t| {
            t.render(minijinja::context! { nonce => &nonce, ..minijinja::Value::from_serialize(&context) })
        });
        let html = match html {
            Ok(html) => html,
            Err(e) => {
                tracing::error!(template = name, error = %e, "template rendering failed");
                return (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response();
            }
        };
        let mut response = (status, html).into_response();
        let headers = response.headers_mut();
        headers.extend(extra_headers);
        let mut form_action = String::from("'self'");
        for target in form_targets {
            form_action.push(' ');
            form_action.push_str(target);
        }
        let csp = format!(
            "default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; \
             img-src 'self' data:; form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
        );
        let set = |headers: &mut HeaderMap, name: HeaderName, value: &str| {
            if let Ok(v) = HeaderValue::from_str(value) {
                headers.insert(name, v);
            }
        };
        set(headers, header::CONTENT_TYPE, "text/html; charset=utf-8");
        set(headers, header::CACHE_CONTROL, "no-store");
        set(headers, header::PRAGMA, "no-cache");
        set(headers, header::X_FRAME_OPTIONS, "DENY");
        set(headers, header::CONTENT_SECURITY_POLICY, &csp);
        set(headers, header::REFERRER_POLICY, "no-referrer");
        set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
        response
    }

    /// The error page: for errors that must not be redirected (unknown client, unregistered
    /// redirect URI, broken interaction), RFC 6749 §4.1.2.1.
    pub fn error(&self, status: StatusCode, error: &str, description: &str) -> Response {
        self.render(
            status,
            "error.html",
            serde_json::json!({ "error": error, "description": description }),
            &[],
            HeaderMap::new(),
        )
    }
}

/// Let `response`'s page embed frames from `origins` (front-channel logout): a `frame-src`
/// added to its CSP, which otherwise allows none (`default-src 'none'`).
pub fn allow_frames(response: &mut Response, origins: &[String]) {
    if origins.is_empty() {
        return;
    }
    let headers = response.headers_mut();
    let csp = headers
        .get(header::CONTENT_SECURITY_POLICY)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("default-src 'none'")
        .to_string();
    if let Ok(v) = HeaderValue::from_str(&format!("{csp}; frame-src {}", origins.join(" "))) {
        headers.insert(header::CONTENT_SECURITY_POLICY, v);
    }
}

/// The CSP source a form may post to, for a redirect URI: its origin, or its scheme for
/// private-use schemes of native apps.
pub fn form_target(uri: &str) -> Option<String> {
    let url = url::Url::parse(uri).ok()?;
    match url.scheme() {
        "http" | "https" => Some(url.origin().ascii_serialization()),
        scheme => Some(format!("{scheme}:")),
    }
}
