//! Starts the real router on a loopback port, on a fresh SQLite file or a fresh PostgreSQL
//! database, with a manual clock. Every test gets its own database.

#![allow(dead_code)]

use std::sync::Arc;

use portcullis::clock::{Clock, ManualClock};
use portcullis::config::Config;
use portcullis::http::{metrics_router, router};
use portcullis::manage::clients::{register_client, ClientRequest};
use portcullis::protocol::GrantType;
use portcullis::security::Secret;
use portcullis::state::AppState;
use portcullis::store::{Client, Store};
use tokio::net::TcpListener;

pub mod admin;
pub mod agent;
pub mod browser;
pub mod db;
pub mod process;
pub mod receiver;
pub mod replicas;
pub mod rp;
pub mod snapshot;
pub use agent::{Landing, UserAgent};
pub use db::{Backend, TestDatabase};
pub use process::{http, http_client, OutputWithin};

pub struct TestServer {
    pub base: String,
    /// The metrics listener's base URL (`metrics.listen`), when metrics are enabled.
    pub metrics_base: Option<String>,
    pub state: AppState,
    pub clock: ManualClock,
    pub http: reqwest::Client,
    pub db: TestDatabase,
    task: tokio::task::JoinHandle<()>,
    metrics_task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(task) = &self.metrics_task {
            task.abort();
        }
    }
}

impl TestServer {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    /// Start with configuration adjusted by `tweak` (after the test's database is set).
    pub async fn start_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Self {
        let db = TestDatabase::create(backend).await;
        Self::start_on(db, tweak).await.expect("prepare keys")
    }

    /// A second server (a replica, or a restart with another configuration) on this one's
    /// database; Err when start-up refuses.
    pub async fn replica(
        &self,
        tweak: impl FnOnce(&mut Config),
    ) -> Result<Self, portcullis::cli::serve::ServeError> {
        Self::start_on(self.db.shared(), tweak).await
    }

    /// Start on `db`; Err when start-up (`serve::prepare`) refuses.
    pub async fn start_on(
        db: TestDatabase,
        tweak: impl FnOnce(&mut Config),
    ) -> Result<Self, portcullis::cli::serve::ServeError> {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut config = Config {
            issuer: format!("http://{addr}"),
            listen: addr,
            database_url: db.url.clone(),
            database_max_connections: 4,
            ..Config::default()
        };
        // Cheap argon2 through the same configuration operators use (the defaults are OWASP's).
        config.passwords.argon2_memory_kib = 64;
        config.passwords.argon2_iterations = 1;
        // Tests change policy with the CLI (another process) and look at once: the cache checks
        // for changes on every read. tests/it/cache.rs sets real intervals.
        config.cache.refresh_interval = portcullis::config::Seconds(0);
        // Tests sign in many times from one address with a clock that does not move; the rate
        // limit tests set their own limits.
        config.rate_limits.sign_in_per_ip = 10_000;
        config.rate_limits.sign_in_per_username = 10_000;
        config.rate_limits.sign_in_attempts_per_ip = 10_000;
        config.rate_limits.interactions_per_ip = 10_000;
        tweak(&mut config);
        config.validate().expect("test configuration is valid");

        // The manual clock starts at the real time, so independent JWT libraries (which check
        // `exp` against the system clock) accept fresh tokens.
        let clock = ManualClock::new(portcullis::clock::SystemClock.now());
        let clock_dyn: Arc<dyn Clock> = Arc::new(clock.clone());
        let store = portcullis::cli::serve::open(&config, clock_dyn.as_ref())
            .await
            .expect("open store");
        let state = AppState::new(config, store, clock_dyn);
        portcullis::cli::serve::prepare(&state).await?;
        // `/metrics` on a listener of its own, as `serve` does.
        let (metrics_base, metrics_task) = if state.config.metrics.enabled {
            let listener = TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind metrics");
            let addr = listener.local_addr().expect("metrics addr");
            let app = metrics_router(state.clone());
            let task = tokio::spawn(async move {
                axum::serve(listener, app).await.expect("serve metrics");
            });
            (Some(format!("http://{addr}")), Some(task))
        } else {
            (None, None)
        };
        let app = router(state.clone());
        let task = tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .await
            .expect("serve");
        });
        let http = http_client()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("http client");
        Ok(Self {
            base: format!("http://{addr}"),
            metrics_base,
            metrics_task,
            state,
            clock,
            http,
            db,
            task,
        })
    }

    pub fn clock_now(&self) -> i64 {
        self.clock.now()
    }

    pub fn store(&self) -> &Store {
        &self.state.store
    }

    /// Run one SQL statement on the server's database, behind the server's back (what an
    /// operator, or another replica, may do).
    pub async fn execute_sql(&self, sql: &str) {
        match self.db.backend {
            Backend::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&self.db.url).await.unwrap();
                sqlx::query(sql).execute(&pool).await.unwrap();
                pool.close().await;
            }
            Backend::Postgres => {
                let pool = sqlx::PgPool::connect(&self.db.url).await.unwrap();
                sqlx::query(sql).execute(&pool).await.unwrap();
                pool.close().await;
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `/metrics` on the metrics listener.
    pub fn metrics_url(&self) -> String {
        let base = self.metrics_base.as_deref().expect("metrics are enabled");
        format!("{base}/metrics")
    }

    /// The issuer of a server: the base URL for `default`, `{base}/oauth2/{id}` otherwise.
    pub fn issuer(&self, server: &str) -> String {
        if server == "default" {
            self.base.clone()
        } else {
            format!("{}/oauth2/{server}", self.base)
        }
    }

    pub async fn create_server(&self, id: &str) {
        self.store()
            .create_server(id, id, &format!("api://{id}"), self.clock.now())
            .await
            .expect("create server");
    }

    pub async fn register(&self, request: ClientRequest) -> (Client, Option<Secret>) {
        register_client(self.store(), request, self.clock.now())
            .await
            .expect("register client")
    }

    /// A confidential client_credentials client on `server` with `scopes`.
    pub async fn service_client(&self, server: &str, scopes: &[&str]) -> (Client, Secret) {
        let (client, secret) = self
            .register(ClientRequest {
                server_id: server.into(),
                name: "service".into(),
                grant_types: vec![GrantType::ClientCredentials],
                redirect_uris: vec![],
                post_logout_redirect_uris: vec![],
                scopes: scopes.iter().map(|s| s.to_string()).collect(),
                default_scopes: vec![],
                public: false,
                first_party: false,
                auth_method: None,
            })
            .await;
        (client, secret.expect("confidential client has a secret"))
    }

    /// A user with a password and some standard claims.
    pub async fn create_user(&self, username: &str, password: &str) -> portcullis::store::User {
        let hash = self
            .state
            .passwords
            .hash(&Secret::new(password))
            .await
            .expect("hash password");
        let claims = serde_json::json!({
            "name": "Ada Lovelace",
            "given_name": "Ada",
            "family_name": "Lovelace",
            "email": format!("{username}@example.com"),
            "email_verified": true,
            "phone_number": "+44 20 7946 0000",
            "address": { "locality": "London", "country": "GB" },
        });
        self.store()
            .insert_user(
                &portcullis::store::NewUser {
                    username: portcullis::store::Username::parse(username).expect("username"),
                    password_hash: Some(hash),
                    claims: claims.as_object().cloned().unwrap_or_default(),
                },
                self.clock.now(),
            )
            .await
            .expect("insert user")
    }

    /// A web app client (confidential, authorization code) redirecting to `redirect_uri`.
    pub async fn web_client(
        &self,
        redirect_uri: &str,
        first_party: bool,
        public: bool,
    ) -> (Client, Option<Secret>) {
        self.web_client_with(
            redirect_uri,
            first_party,
            public,
            &[GrantType::AuthorizationCode, GrantType::Implicit],
        )
        .await
    }

    /// A web app client on `default` with `grant_types`, redirecting to `redirect_uri`.
    pub async fn web_client_with(
        &self,
        redirect_uri: &str,
        first_party: bool,
        public: bool,
        grant_types: &[GrantType],
    ) -> (Client, Option<Secret>) {
        self.register(ClientRequest {
            server_id: "default".into(),
            name: "Web app".into(),
            grant_types: grant_types.to_vec(),
            redirect_uris: vec![redirect_uri.into()],
            post_logout_redirect_uris: vec![format!("{redirect_uri}/logged-out")],
            scopes: vec!["invoices.read".into()],
            default_scopes: vec![],
            public,
            first_party,
            auth_method: None,
        })
        .await
    }

    /// POST a form to a path, optionally with Basic credentials.
    pub async fn post_form(
        &self,
        path: &str,
        basic: Option<(&str, &str)>,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = self.http.post(self.url(path)).form(form);
        if let Some((id, secret)) = basic {
            request = request.basic_auth(id, Some(secret));
        }
        request.send().await.expect("request")
    }
}

/// A client's id and secret, for HTTP Basic.
pub type Credentials<'a> = (&'a str, &'a str);

impl TestServer {
    /// POST /introspect under `prefix` ("" for `default`, "/oauth2/ID" for another server) as
    /// `client`; asserts 200 and `Cache-Control: no-store` and returns the JSON answer.
    pub async fn introspect(
        &self,
        prefix: &str,
        client: Credentials<'_>,
        token: &str,
        hint: Option<&str>,
    ) -> serde_json::Value {
        let mut form = vec![("token", token)];
        if let Some(hint) = hint {
            form.push(("token_type_hint", hint));
        }
        let response = self
            .post_form(&format!("{prefix}/introspect"), Some(client), &form)
            .await;
        assert_eq!(response.status(), 200, "introspection status");
        assert_eq!(response.headers()["cache-control"], "no-store");
        response.json().await.expect("introspection JSON")
    }

    /// Is `token` active, according to `client` introspecting at the default server?
    pub async fn is_active(&self, client: Credentials<'_>, token: &str) -> bool {
        let answer = self.introspect("", client, token, None).await;
        match answer["active"].as_bool() {
            Some(active) => active,
            None => panic!("no `active` in {answer}"),
        }
    }

    /// A client_credentials access token from the token endpoint under `prefix`.
    pub async fn client_credentials_token(&self, prefix: &str, client: Credentials<'_>) -> String {
        let response = self
            .post_form(
                &format!("{prefix}/token"),
                Some(client),
                &[("grant_type", "client_credentials")],
            )
            .await;
        assert_eq!(response.status(), 200, "client credentials token");
        let body: serde_json::Value = response.json().await.expect("token JSON");
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_string()
    }
}

/// Assert an RFC 6749 §5.2 error response: status, `error` code, no caching.
pub async fn assert_oauth_error(
    response: reqwest::Response,
    status: u16,
    code: &str,
) -> reqwest::header::HeaderMap {
    assert_eq!(response.status().as_u16(), status, "status for {code}");
    let headers = response.headers().clone();
    assert_eq!(
        headers.get("cache-control").map(|v| v.to_str().unwrap()),
        Some("no-store"),
        "error responses are not cached"
    );
    let body: serde_json::Value = response.json().await.expect("JSON error body");
    assert_eq!(body["error"], code, "body: {body}");
    headers
}

/// Generate a test per backend from `async fn name(backend: Backend)`.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(
                    not(portcullis_pg_tests),
                    ignore = "set PORTCULLIS_TEST_POSTGRES_URL to run against PostgreSQL"
                )]
                async fn $name() {
                    super::$name($crate::common::Backend::Postgres).await
                }
            )*
        }
    };
}
