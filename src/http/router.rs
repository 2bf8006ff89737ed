//! The router: every endpoint at its path, for the `default` server at the root and for the
//! others under `/oauth2/{server_id}`, with the middleware every request passes through.

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, Method, Request};
use axum::routing::{any, get, post};
use axum::Router;
use tower_http::cors::{Any, CorsLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use super::client_ip::ClientIp;
use super::request_id::{self, RequestId};
use super::request_limits::{self, RequestLimits};
use super::security_headers::{self, Hsts};
use crate::endpoints::{
    authorize, consent, device, device_authorization, discovery, health, introspect, jwks, login,
    logout, metrics, par, register, revoke, token, userinfo,
};
use crate::endpoints::{mfa, mfa_recovery, passkey, passkey_account};
use crate::state::AppState;

/// The endpoints every authorization server has, mounted at the root for `default` and under
/// `/oauth2/{server_id}` for the others.
fn server_endpoints() -> Router<AppState> {
    // Pages the user's browser navigates to, and introspection (RFC 7662 §4: for resource
    // servers, never for browser code): no CORS.
    let pages = Router::new()
        .route(
            "/authorize",
            get(authorize::authorize).post(authorize::authorize),
        )
        .route("/authorize/resume", get(authorize::resume))
        .route("/login", get(login::show).post(login::submit))
        .route("/consent", get(consent::show).post(consent::submit))
        // RFC 8628 §3.3: the verification pages.
        .route("/device", get(device::show).post(device::submit))
        .route("/logout", get(logout::logout).post(logout::logout))
        .route("/introspect", any(introspect::introspect))
        // RFC 7591 / RFC 7592: dynamic client registration, when the server's policy allows it.
        .route("/register", post(register::register))
        .route(
            "/register/{client_id}",
            get(register::read)
                .put(register::update)
                .delete(register::delete),
        )
        // Multi-factor sign-in: the second-factor and enrolment page.
        .route("/mfa", get(mfa::show).post(mfa::submit))
        .route(
            "/mfa/recovery-codes",
            get(mfa_recovery::show).post(mfa_recovery::regenerate),
        )
        // RFC 9126: pushed authorization requests, from the client's back end.
        .route("/par", any(par::par))
        // Passkeys (WebAuthn): the ceremony page, its result, its script.
        .route("/mfa/passkey", post(passkey::begin))
        .route("/mfa/passkey/finish", post(passkey::finish))
        .route("/mfa/passkey.js", get(passkey::script))
        .route(
            "/mfa/passkeys",
            get(passkey_account::show).post(passkey_account::begin),
        )
        .route("/mfa/passkeys/finish", post(passkey_account::finish))
        .route("/mfa/passkeys/remove", post(passkey_account::remove));
    pages.merge(api_endpoints())
}

/// Endpoints browser apps call from other origins (CORS): discovery, JWKS, token, userinfo,
/// revocation.
fn api_endpoints() -> Router<AppState> {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST])
        // RFC 9449 §4.1: browser apps send DPoP proofs and read server nonces.
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::HeaderName::from_static("dpop"),
        ])
        .expose_headers([header::HeaderName::from_static("dpop-nonce")])
        .max_age(std::time::Duration::from_secs(3600));
    Router::new()
        .route("/token", any(token::token))
        // RFC 8628 §3.1: called by devices, like /token.
        .route("/device/authorize", any(device_authorization::authorize))
        .route("/revoke", any(revoke::revoke))
        .route("/keys", get(jwks::jwks))
        .route(
            "/userinfo",
            get(userinfo::userinfo).post(userinfo::userinfo),
        )
        .route(
            "/.well-known/openid-configuration",
            get(discovery::openid_configuration),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(discovery::oauth_authorization_server),
        )
        .layer(cors)
}

/// The metrics listener's router (`metrics.listen`): `/metrics` and nothing else, counted like
/// every request. Kept off the public listener: the figures show traffic, and a scraper has no
/// business on the issuer's address.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics::metrics))
        .fallback(health::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            crate::metrics::track,
        ))
        .with_state(state)
}

pub fn router(state: AppState) -> Router {
    let config = state.config.clone();
    let limits = RequestLimits {
        max_uri_length: config.http.max_uri_length,
        max_header_bytes: config.http.max_header_bytes,
        body_limit: config.http.body_limit,
    };
    let tagging = request_id::Tagging {
        header: config.http.request_id_header.0.clone(),
        proxies: Arc::new(config.http.trusted_proxies.clone()),
    };
    Router::new()
        .merge(server_endpoints())
        .nest("/oauth2/{server_id}", server_endpoints())
        // RFC 8414 §3: for an issuer with a path, the well-known segment goes first.
        .route(
            "/.well-known/oauth-authorization-server/oauth2/{server_id}",
            get(discovery::oauth_authorization_server),
        )
        // The management API (README "Management API"): its own auth, limits and problems.
        .nest("/admin/v1", crate::admin::router())
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .fallback(health::not_found)
        .layer(DefaultBodyLimit::max(config.http.body_limit))
        .layer(axum::middleware::from_fn_with_state(
            limits,
            request_limits::enforce,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Hsts(config.is_https()),
            security_headers::add,
        ))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            config.http.request_timeout.as_duration(),
        ))
        .layer(
            // Log the path only: query strings can carry values that do not belong in logs.
            TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                let id = request
                    .extensions()
                    .get::<RequestId>()
                    .map(|id| id.0.as_str());
                let client_ip = request.extensions().get::<ClientIp>().map(|ip| ip.0);
                tracing::info_span!(
                    "request",
                    method = %request.method(),
                    path = %request.uri().path(),
                    request_id = id,
                    client_ip = client_ip.map(tracing::field::display),
                )
            }),
        )
        // Outside the trace layer, so its span carries the id and the client IP.
        .layer(axum::middleware::from_fn_with_state(
            tagging,
            request_id::tag,
        ))
        // Outermost, so timeouts and rejected bodies are counted with their real status.
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            crate::metrics::track,
        ))
        .with_state(state)
}
