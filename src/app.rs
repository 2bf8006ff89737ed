//! Application state and the router with its middleware.

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderName, Method, Request};
use axum::routing::{any, get};
use axum::Router;
use tower_http::cors::{Any, CorsLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::audit::AuditLog;
use crate::client_ip::{ClientIp, TrustedProxies};
use crate::clock::{Clock, UnixTime};
use crate::config::Config;
use crate::endpoints::discovery::DiscoveryCache;
use crate::endpoints::{
    authorize, consent, discovery, health, introspect, jwks, login, logout, metrics, revoke, token,
    userinfo,
};
use crate::keys::KeyRing;
use crate::metrics::Metrics;
use crate::pages::Pages;
use crate::passwords::PasswordHasher;
use crate::rate_limit::RateLimiter;
use crate::request_id::{self, RequestId};
use crate::request_limits::{self, RequestLimits};
use crate::security_headers::{self, Hsts};
use crate::store::Store;

/// Everything a request needs, shared through axum state. No globals. One `Arc`: axum clones
/// the state for every extractor and middleware that asks for it, so a clone is one reference
/// count, not one per field.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub struct Shared {
    pub config: Arc<Config>,
    pub store: Store,
    pub keys: Arc<KeyRing>,
    pub clock: Arc<dyn Clock>,
    pub pages: Arc<Pages>,
    /// One per process, so `passwords.max_concurrent` bounds every login path together.
    pub passwords: Arc<PasswordHasher>,
    /// The in-memory (per-replica) rate limits; the shared ones live in the store.
    pub rate_limits: Arc<RateLimiter>,
    /// Buffered audit events (needs a tokio runtime: the writer is spawned here).
    pub audit: AuditLog,
    pub metrics: Arc<Metrics>,
    /// `http.trusted_proxies`, parsed once.
    pub proxies: Arc<TrustedProxies>,
    pub discovery: DiscoveryCache,
}

impl AppState {
    pub fn new(config: Config, store: Store, clock: Arc<dyn Clock>) -> Self {
        let keys = Arc::new(KeyRing::new(store.clone(), &config));
        let passwords = Arc::new(PasswordHasher::new(&config.passwords));
        let audit = AuditLog::start(store.clone(), config.audit.buffer);
        let metrics = Arc::new(Metrics::new(config.database_pool_size()));
        // Checked by Config::validate.
        let proxies =
            Arc::new(TrustedProxies::parse(&config.http.trusted_proxies).unwrap_or_default());
        Self(Arc::new(Shared {
            config: Arc::new(config),
            store,
            keys,
            clock,
            pages: Arc::new(Pages::new()),
            passwords,
            rate_limits: Arc::new(RateLimiter::default()),
            audit,
            metrics,
            proxies,
            discovery: DiscoveryCache::default(),
        }))
    }

    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }
}

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
        .route("/logout", get(logout::logout).post(logout::logout))
        .route("/introspect", any(introspect::introspect));
    pages.merge(api_endpoints())
}

/// Endpoints browser apps call from other origins (CORS): discovery, JWKS, token, userinfo,
/// revocation.
fn api_endpoints() -> Router<AppState> {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .max_age(std::time::Duration::from_secs(3600));
    Router::new()
        .route("/token", any(token::token))
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

pub fn router(state: AppState) -> Router {
    let config = state.config.clone();
    let limits = RequestLimits {
        max_uri_length: config.http.max_uri_length,
        max_header_bytes: config.http.max_header_bytes,
        body_limit: config.http.body_limit,
    };
    let tagging = request_id::Tagging {
        // Checked by Config::validate.
        header: HeaderName::from_bytes(config.http.request_id_header.as_bytes())
            .unwrap_or(HeaderName::from_static("x-request-id")),
        proxies: state.proxies.clone(),
    };
    let mut root = Router::new();
    if config.metrics.enabled {
        // At the root only: the metrics are the process's, not a server's.
        root = root.route("/metrics", get(metrics::metrics));
    }
    root.merge(server_endpoints())
        .nest("/oauth2/{server_id}", server_endpoints())
        // RFC 8414 §3: for an issuer with a path, the well-known segment goes first.
        .route(
            "/.well-known/oauth-authorization-server/oauth2/{server_id}",
            get(discovery::oauth_authorization_server),
        )
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
