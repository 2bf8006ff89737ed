//! Passkeys in a real browser: headless Chromium with a WebDriver virtual authenticator (CTAP2,
//! internal transport, resident keys, user verification) registers a passkey at the enrolment
//! step of a required second factor, then, in a fresh sign-in, signs in with it and no
//! password ("Sign in with a passkey"). The issuer is `http://localhost:PORT`: WebAuthn needs a
//! secure context and a domain as RP ID, and localhost is both.
//!
//! Needs `chromedriver` and Chromium like tests/it/browser.rs (skipped without them, except
//! under `CI`).

use axum::http::Method;
use fantoccini::wd::WebDriverCompatibleCommand;
use oauth2::PkceCodeChallenge;
use portcullis::manage::clients::ClientRequest;
use portcullis::protocol::GrantType;

use crate::common::browser::{query_param, Browser, Callback};
use crate::common::{Backend, TestServer};

/// A raw WebDriver command of the WebAuthn extension (W3C WebAuthn §11).
#[derive(Debug)]
struct WebAuthnCommand {
    path: String,
    body: serde_json::Value,
}

impl WebDriverCompatibleCommand for WebAuthnCommand {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/{}",
            session_id.unwrap_or_default(),
            self.path
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (Method, Option<String>) {
        (Method::POST, Some(self.body.to_string()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passkey_registered_in_chromium_signs_in_without_a_password() {
    let server = TestServer::start_with(Backend::Sqlite, |c| {
        c.issuer = c.issuer.replace("127.0.0.1", "localhost");
    })
    .await;
    let issuer = server.state.config.issuer.clone();
    assert!(issuer.starts_with("http://localhost:"), "{issuer}");
    server
        .store()
        .set_server_mfa("default", "required", server.clock_now())
        .await
        .expect("policy");
    let callback = Callback::start().await;
    let (client, _) = server
        .register(ClientRequest {
            server_id: "default".into(),
            name: "web".into(),
            grant_types: vec![GrantType::AuthorizationCode],
            redirect_uris: vec![callback.redirect_uri.clone()],
            post_logout_redirect_uris: vec![],
            scopes: vec!["openid".into()],
            default_scopes: vec![],
            public: true,
            first_party: true,
            auth_method: None,
        })
        .await;
    let (username, password) = ("alice", "correct horse");
    let user = server.create_user(username, password).await;
    let authorize = |challenge: &PkceCodeChallenge| {
        url::Url::parse_with_params(
            &format!("{issuer}/authorize"),
            &[
                ("response_type", "code"),
                ("client_id", client.id.as_str()),
                ("redirect_uri", callback.redirect_uri.as_str()),
                ("scope", "openid"),
                ("state", "st"),
                ("code_challenge", challenge.as_str()),
                ("code_challenge_method", "S256"),
            ],
        )
        .expect("authorize URL")
    };

    let Some(browser) =
        Browser::start_or_skip("a_passkey_registered_in_chromium_signs_in_without_a_password")
            .await
    else {
        return;
    };
    // The authenticator must exist before a page asks for it.
    let added = browser
        .client()
        .issue_cmd(WebAuthnCommand {
            path: "webauthn/authenticator".into(),
            body: serde_json::json!({
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": true,
                "hasUserVerification": true,
                "isUserVerified": true,
            }),
        })
        .await
        .expect("add a virtual authenticator");
    assert!(added.is_string(), "an authenticator id: {added}");

    // First sign-in: the password, then (no factor yet, one required) a passkey instead of an
    // authenticator app.
    let (challenge, _) = PkceCodeChallenge::new_random_sha256();
    browser.goto(authorize(&challenge).as_str()).await;
    browser.fill("username", username).await;
    browser.fill("password", password).await;
    browser.click("#sign-in").await;
    browser.wait_for_url(&format!("{issuer}/mfa")).await;
    browser.click("#passkey-register").await;
    browser.wait_for_url(&format!("{issuer}/mfa/passkey")).await;
    browser.click("#passkey-start").await;
    browser
        .wait_for_url(&format!("{issuer}/mfa/passkey/finish"))
        .await;
    // The first factor comes with recovery codes, shown once; then on to the client.
    browser.click("#continue").await;
    browser.wait_for_url(&callback.redirect_uri).await;
    let passkeys = server
        .store()
        .passkeys_of(&user.id)
        .await
        .expect("passkeys");
    assert_eq!(passkeys.len(), 1, "the passkey is stored");
    assert_eq!(passkeys[0].rp_id, "localhost");

    // Second sign-in in the same browser after signing out: no password, the passkey.
    // Cookies are per host: delete the issuer's, from one of its pages.
    browser.goto(&format!("{issuer}/healthz")).await;
    browser
        .client()
        .delete_all_cookies()
        .await
        .expect("forget the session");
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    browser.goto(authorize(&challenge).as_str()).await;
    browser.click("#passkey-sign-in").await;
    browser.wait_for_url(&format!("{issuer}/mfa/passkey")).await;
    browser.click("#passkey-start").await;
    let url = browser.wait_for_url(&callback.redirect_uri).await;
    let code = query_param(&url, "code").expect("a code");
    browser.close().await;

    let response = server
        .post_form(
            "/token",
            None,
            &[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", callback.redirect_uri.as_str()),
                ("client_id", client.id.as_str()),
                ("code_verifier", verifier.secret().as_str()),
            ],
        )
        .await;
    assert_eq!(response.status(), 200, "token exchange");
    let tokens: serde_json::Value = response.json().await.expect("token JSON");
    let jwks = crate::jwt::fetch_jwks(&server.http, &server.url("/keys")).await;
    let claims = crate::jwt::verify(
        tokens["id_token"].as_str().expect("an ID token"),
        &jwks,
        &issuer,
        &client.id,
    )
    .expect("the ID token verifies");
    assert_eq!(claims["sub"], user.id.as_str());
    // The virtual authenticator verified the user: a passkey sign-in that is multi-factor.
    assert_eq!(claims["amr"], serde_json::json!(["hwk", "user", "mfa"]));
    let stored = server
        .store()
        .passkeys_of(&user.id)
        .await
        .expect("passkeys");
    assert!(stored[0].last_used_at.is_some());
}
