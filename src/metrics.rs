//! Prometheus metrics, kept in `AppState` and served at `/metrics` (`endpoints::metrics`).
//!
//! Every label value comes from a small fixed set (route templates, methods, statuses, grant
//! types), so the number of series stays bounded whatever clients send. Recording takes no lock
//! across an await and allocates nothing: labels are `&'static str`s and the route template,
//! which axum already holds in an `Arc`.

use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

/// The content type of the OpenMetrics text format that `encode` writes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Request duration buckets, in seconds: 5 ms to 10 s.
const DURATION_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The kinds of token counted by `portcullis_tokens_issued_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Id,
    Refresh,
}

impl TokenKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Access => "access",
            Self::Id => "id",
            Self::Refresh => "refresh",
        }
    }
}

/// Why a password check failed, as a label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginFailure {
    BadCredentials,
    Locked,
    Disabled,
}

impl LoginFailure {
    fn as_str(self) -> &'static str {
        match self {
            Self::BadCredentials => "bad_credentials",
            Self::Locked => "locked",
            Self::Disabled => "disabled",
        }
    }
}

/// The route template a request matched, with `/oauth2/{server_id}` taken out so every
/// server shares one series per endpoint; `unmatched` for anything no route matched.
#[derive(Debug, Clone)]
pub struct Endpoint(Option<MatchedPath>);

impl Endpoint {
    pub fn as_str(&self) -> &str {
        match &self.0 {
            None => "unmatched",
            Some(path) => normalise(path.as_str()),
        }
    }
}

fn normalise(template: &str) -> &str {
    const SERVER: &str = "/oauth2/{server_id}";
    if let Some(rest) = template.strip_prefix(SERVER) {
        if rest.is_empty() {
            "/"
        } else {
            rest
        }
    } else if let Some(rest) = template.strip_suffix(SERVER) {
        rest
    } else {
        template
    }
}

impl PartialEq for Endpoint {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}
impl Eq for Endpoint {}
impl Hash for Endpoint {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}
impl EncodeLabelValue for Endpoint {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.as_str())
    }
}

/// An HTTP status code as a label value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Status(u16);

impl EncodeLabelValue for Status {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        write!(encoder, "{}", self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    endpoint: Endpoint,
    method: &'static str,
    status: Status,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: Endpoint,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TokenLabels {
    grant_type: &'static str,
    token_type: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TableLabels {
    table: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// The process's metrics. Cloning the handles inside is cheap; `AppState` holds one `Arc`.
pub struct Metrics {
    registry: Registry,
    http_requests: Family<RequestLabels, Counter>,
    http_duration: HistogramFamily<EndpointLabels>,
    tokens_issued: Family<TokenLabels, Counter>,
    login_failures: Family<ReasonLabels, Counter>,
    client_auth_failures: Counter,
    pool_connections: Family<StateLabels, Gauge>,
    housekeeping_deleted: Family<TableLabels, Counter>,
    logout_deliveries: Family<OutcomeLabels, Counter>,
    logout_outbox_depth: Gauge,
    device_polls: Family<OutcomeLabels, Counter>,
}

/// What became of one back-channel logout attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The client answered 2xx (or 400: it refused the token, and will refuse it again).
    Sent,
    /// A network error or another status: tried again later.
    Retried,
    /// Given up after `logout.retry_for`.
    Failed,
}

impl DeliveryOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Retried => "retried",
            Self::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

impl Metrics {
    /// `max_connections`: the database pool's size limit, exported as a constant gauge.
    pub fn new(max_connections: u32) -> Self {
        let mut registry = Registry::default();
        let http_requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "portcullis_http_requests",
            "HTTP requests by route template, method and status",
            http_requests.clone(),
        );
        let http_duration: HistogramFamily<EndpointLabels> =
            Family::new_with_constructor(duration_histogram as fn() -> Histogram);
        registry.register(
            "portcullis_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template",
            http_duration.clone(),
        );
        let tokens_issued = Family::<TokenLabels, Counter>::default();
        registry.register(
            "portcullis_tokens_issued",
            "Tokens issued, by grant type and token type (access, id, refresh)",
            tokens_issued.clone(),
        );
        let login_failures = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "portcullis_login_failures",
            "Failed password checks (login form and password grant), by reason",
            login_failures.clone(),
        );
        let client_auth_failures = Counter::default();
        registry.register(
            "portcullis_client_authentication_failures",
            "Failed client authentications at the token, introspection and revocation endpoints",
            client_auth_failures.clone(),
        );
        let pool_connections = Family::<StateLabels, Gauge>::default();
        registry.register(
            "portcullis_db_pool_connections",
            "Database pool connections by state (idle, in_use), read at scrape time",
            pool_connections.clone(),
        );
        let pool_max = Gauge::<i64>::default();
        pool_max.set(i64::from(max_connections));
        registry.register(
            "portcullis_db_pool_max_connections",
            "Most connections the database pool opens",
            pool_max,
        );
        let housekeeping_deleted = Family::<TableLabels, Counter>::default();
        registry.register(
            "portcullis_housekeeping_deleted_rows",
            "Expired rows deleted by housekeeping, by table",
            housekeeping_deleted.clone(),
        );
        let logout_deliveries = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "portcullis_logout_deliveries",
            "Back-channel logout attempts by outcome (sent, retried, failed)",
            logout_deliveries.clone(),
        );
        let logout_outbox_depth = Gauge::default();
        registry.register(
            "portcullis_logout_outbox_depth",
            "Back-channel logout deliveries waiting in the outbox, as this replica last counted",
            logout_outbox_depth.clone(),
        );
        let device_polls = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "portcullis_device_polls",
            "Device code polls of the token endpoint (RFC 8628), by outcome (issued, \
             authorization_pending, slow_down, access_denied, expired_token, invalid_grant)",
            device_polls.clone(),
        );
        registry.register(
            "portcullis_build",
            "The running version",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        Self {
            registry,
            http_requests,
            http_duration,
            tokens_issued,
            login_failures,
            client_auth_failures,
            pool_connections,
            housekeeping_deleted,
            logout_deliveries,
            logout_outbox_depth,
            device_polls,
        }
    }

    pub fn logout_delivery(&self, outcome: DeliveryOutcome) {
        self.logout_deliveries
            .get_or_create(&OutcomeLabels {
                outcome: outcome.as_str(),
            })
            .inc();
    }

    pub fn set_logout_outbox_depth(&self, depth: i64) {
        self.logout_outbox_depth.set(depth);
    }

    /// One poll of the token endpoint with a device code, by its outcome.
    pub fn device_poll(&self, outcome: &'static str) {
        self.device_polls
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    pub fn observe_request(
        &self,
        endpoint: Endpoint,
        method: &'static str,
        status: u16,
        elapsed: Duration,
    ) {
        self.http_duration
            .get_or_create(&EndpointLabels {
                endpoint: endpoint.clone(),
            })
            .observe(elapsed.as_secs_f64());
        self.http_requests
            .get_or_create(&RequestLabels {
                endpoint,
                method,
                status: Status(status),
            })
            .inc();
    }

    pub fn token_issued(&self, grant_type: &'static str, kind: TokenKind) {
        self.tokens_issued
            .get_or_create(&TokenLabels {
                grant_type,
                token_type: kind.as_str(),
            })
            .inc();
    }

    pub fn login_failure(&self, reason: LoginFailure) {
        self.login_failures
            .get_or_create(&ReasonLabels {
                reason: reason.as_str(),
            })
            .inc();
    }

    pub fn client_authentication_failure(&self) {
        self.client_auth_failures.inc();
    }

    pub fn housekeeping_deleted(&self, table: &'static str, rows: u64) {
        if rows > 0 {
            self.housekeeping_deleted
                .get_or_create(&TableLabels { table })
                .inc_by(rows);
        }
    }

    /// The pool's current connections: `open` in all, `idle` of them unused.
    pub fn set_pool(&self, open: u32, idle: usize) {
        let open = i64::from(open);
        let idle = i64::try_from(idle).unwrap_or(i64::MAX).min(open);
        self.pool_connections
            .get_or_create(&StateLabels { state: "idle" })
            .set(idle);
        self.pool_connections
            .get_or_create(&StateLabels { state: "in_use" })
            .set(open - idle);
    }

    /// The OpenMetrics text exposition of every metric.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::with_capacity(8 * 1024);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// Methods beyond the standard ones share one label value, so a client cannot mint series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// Middleware: count and time every request by the route it matched.
pub async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let endpoint = Endpoint(request.extensions().get::<MatchedPath>().cloned());
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    metrics.observe_request(
        endpoint,
        method,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_paths_share_one_endpoint_label() {
        assert_eq!(normalise("/oauth2/{server_id}/token"), "/token");
        assert_eq!(normalise("/token"), "/token");
        assert_eq!(
            normalise("/.well-known/oauth-authorization-server/oauth2/{server_id}"),
            "/.well-known/oauth-authorization-server"
        );
        assert_eq!(normalise("/oauth2/{server_id}"), "/");
        assert_eq!(Endpoint(None).as_str(), "unmatched");
    }

    #[test]
    fn unusual_methods_share_one_label() {
        assert_eq!(method_label(&Method::POST), "POST");
        assert_eq!(
            method_label(&Method::from_bytes(b"BREW").expect("method")),
            "other"
        );
    }
}
