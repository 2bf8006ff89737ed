//! A relying party for conformance-style tests: one client, one user agent, and shortcuts for
//! authorization requests and code exchange.

use portcullis::config::Config;
use portcullis::protocol::GrantType;
use serde_json::Value;
use url::Url;

use super::agent::query_param;
use super::{Backend, Landing, TestServer, UserAgent};
use crate::jwt::fetch_jwks;

pub const REDIRECT: &str = "http://127.0.0.1:9/cb";
pub const USER: &str = "ada";
pub const PASSWORD: &str = "pw-ada-123";

pub struct Rp {
    pub server: TestServer,
    pub agent: UserAgent,
    pub client_id: String,
    pub secret: String,
    pub user_id: String,
}

impl Rp {
    /// A confidential web app allowed the code and implicit grants; first-party unless said.
    pub async fn start(backend: Backend, first_party: bool) -> Self {
        Self::start_with(
            backend,
            first_party,
            false,
            &[GrantType::AuthorizationCode, GrantType::Implicit],
        )
        .await
    }

    /// A web app allowed `grant_types` (add `RefreshToken` to get refresh tokens from the code
    /// flow), confidential unless `public` (then `secret` is empty).
    pub async fn start_with(
        backend: Backend,
        first_party: bool,
        public: bool,
        grant_types: &[GrantType],
    ) -> Self {
        Self::start_configured(backend, first_party, public, grant_types, |_| {}).await
    }

    /// As `start_with`, on a server whose configuration `tweak` changes.
    pub async fn start_configured(
        backend: Backend,
        first_party: bool,
        public: bool,
        grant_types: &[GrantType],
        tweak: impl FnOnce(&mut Config),
    ) -> Self {
        let server = TestServer::start_with(backend, tweak).await;
        let user = server.create_user(USER, PASSWORD).await;
        let (client, secret) = server
            .web_client_with(REDIRECT, first_party, public, grant_types)
            .await;
        Self {
            agent: UserAgent::new(),
            client_id: client.id,
            secret: secret.map(|s| s.expose().to_string()).unwrap_or_default(),
            user_id: user.id,
            server,
        }
    }

    pub fn authorize_url(&self, params: &str) -> String {
        format!(
            "{}/authorize?client_id={}&redirect_uri={REDIRECT}&{params}",
            self.server.base, self.client_id
        )
    }

    /// Navigate to /authorize with `params`; stop at our first page or at the client.
    pub async fn go(&self, params: &str) -> Landing {
        self.agent
            .navigate(&self.authorize_url(params), &self.server.base)
            .await
    }

    /// Navigate, sign in if the login page shows, and return where the client is sent.
    pub async fn authorize(&self, params: &str) -> Url {
        match self.go(params).await {
            Landing::Client(url) => url,
            page => self
                .agent
                .sign_in(page, USER, PASSWORD, &self.server.base)
                .await
                .client_url(),
        }
    }

    /// A code flow with `extra` parameters; returns the token response.
    pub async fn code_flow(&self, extra: &str) -> Value {
        let url = self
            .authorize(&format!("response_type=code&scope=openid&state=st{extra}"))
            .await;
        let code = query_param(&url, "code").unwrap_or_else(|| panic!("no code: {url}"));
        self.exchange(&code).await
    }

    pub async fn exchange(&self, code: &str) -> Value {
        let response = self
            .server
            .post_form(
                "/token",
                Some((&self.client_id, &self.secret)),
                &[
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("redirect_uri", REDIRECT),
                ],
            )
            .await;
        assert_eq!(response.status(), 200, "token exchange");
        response.json().await.expect("token JSON")
    }

    /// Its credentials, for HTTP Basic (confidential clients).
    pub fn credentials(&self) -> (&str, &str) {
        (&self.client_id, &self.secret)
    }

    /// The refresh token grant (RFC 6749 §6) with this client's credentials.
    pub async fn refresh(&self, refresh_token: &str) -> reqwest::Response {
        self.server
            .post_form(
                "/token",
                Some(self.credentials()),
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh_token),
                ],
            )
            .await
    }

    /// The ID token's claims, verified against the JWKS.
    pub async fn id_claims(&self, id_token: &str) -> Value {
        let jwks = fetch_jwks(&self.server.http, &self.server.url("/keys")).await;
        crate::jwt::verify(id_token, &jwks, &self.server.base, &self.client_id)
            .expect("ID token verifies")
    }

    pub async fn userinfo(&self, access_token: &str) -> reqwest::Response {
        self.server
            .http
            .get(self.server.url("/userinfo"))
            .bearer_auth(access_token)
            .send()
            .await
            .expect("userinfo")
    }
}
