//! End-to-end sign-in through the real HTML pages, in headless Chromium driven over WebDriver.
//!
//! Needs `chromedriver` and Chromium (Debian: `chromium chromium-driver`, which `.ci/run`
//! installs). Without them each test is skipped with a message, except under `CI`, where it
//! fails.

use axum::extract::Form;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use oauth2::PkceCodeChallenge;
use portcullis::manage::clients::ClientRequest;
use portcullis::protocol::GrantType;
use serde::Deserialize;

use crate::common::browser::{callback_page, query_param, Browser, Callback};
use crate::common::{Backend, TestServer};

const LOGIN_FORM: &str = r#"<!doctype html>
<html><head><title>Sign in</title></head>
<body>
  <form method="post">
    <label>Username <input name="username" autocomplete="username"></label>
    <label>Password <input name="password" type="password" autocomplete="current-password"></label>
    <button type="submit" id="sign-in">Sign in</button>
  </form>
</body></html>"#;

#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

/// The harness on its own: a local page with the login form's contract (a POST form with
/// `username`, `password` and `#sign-in`) that redirects 303 to `/cb` with a code and state,
/// but only for the credentials the browser typed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_harness_submits_a_form() {
    async fn submit(Form(form): Form<Credentials>) -> Response {
        if form.username == "alice" && form.password == "correct horse" {
            (
                StatusCode::SEE_OTHER,
                [(header::LOCATION, "/cb?code=xyz&state=abc")],
            )
                .into_response()
        } else {
            (StatusCode::UNAUTHORIZED, Html("wrong username or password")).into_response()
        }
    }
    let app = Router::new()
        .route("/login", get(|| async { Html(LOGIN_FORM) }).post(submit))
        .route("/cb", get(callback_page));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let site = tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });

    let Some(browser) = Browser::start_or_skip("browser_harness_submits_a_form").await else {
        return;
    };
    browser.goto(&format!("{base}/login")).await;
    browser.fill("username", "alice").await;
    browser.fill("password", "correct horse").await;
    browser.click("#sign-in").await;

    let url = browser.wait_for_url(&format!("{base}/cb")).await;
    assert_eq!(url.path(), "/cb");
    assert_eq!(query_param(&url, "code").as_deref(), Some("xyz"));
    assert_eq!(query_param(&url, "state").as_deref(), Some("abc"));
    assert!(
        browser.page_text().await.contains("back at the client"),
        "the callback page is shown"
    );

    browser.close().await;
    site.abort();
}

/// A user signs in on the real login page and the first-party client gets a code for its
/// state, then exchanges it (with the PKCE verifier) for an ID token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_signs_in_through_the_login_page_in_chromium() {
    let server = TestServer::start(Backend::Sqlite).await;
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

    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let state = "state-4f1c";
    let authorize = url::Url::parse_with_params(
        &server.url("/authorize"),
        &[
            ("response_type", "code"),
            ("client_id", client.id.as_str()),
            ("redirect_uri", callback.redirect_uri.as_str()),
            ("scope", "openid"),
            ("state", state),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ],
    )
    .expect("authorize URL");

    let Some(browser) =
        Browser::start_or_skip("a_user_signs_in_through_the_login_page_in_chromium").await
    else {
        return;
    };
    // /authorize answers 303 to the login page.
    browser.goto(authorize.as_str()).await;
    let page = browser.page_text().await;
    assert!(page.contains("Sign in"), "the login page renders: {page}");
    browser.fill("username", username).await;
    browser.fill("password", password).await;
    browser.click("#sign-in").await;

    // A first-party client is not asked for consent: straight back to the redirect URI.
    let url = browser.wait_for_url(&callback.redirect_uri).await;
    let code = query_param(&url, "code").expect("code in the redirect");
    assert!(!code.is_empty());
    assert_eq!(query_param(&url, "state").as_deref(), Some(state));
    assert_eq!(
        query_param(&url, "iss").as_deref(),
        Some(server.issuer("default").as_str())
    );
    browser.close().await;

    // The code, with the verifier, buys an ID token for the user who signed in.
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
        &server.issuer("default"),
        &client.id,
    )
    .expect("the ID token verifies against /keys");
    assert_eq!(claims["sub"], user.id.as_str());
}

/// Wait until the page shows `text` (a form posted to the same URL changes no URL).
async fn wait_for_text(browser: &Browser, text: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let page = browser.page_text().await;
        if page.contains(text) {
            return page;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the page never showed {text:?}; it shows:\n{page}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// RFC 8628 in a real browser: a device starts the flow, the user opens
/// `verification_uri_complete` in Chromium (the code pre-filled), signs in, allows, and the
/// device's next poll gets tokens for that user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_approves_a_device_through_the_device_page_in_chromium() {
    let server = TestServer::start(Backend::Sqlite).await;
    let (client, _) = server
        .register(ClientRequest {
            server_id: "default".into(),
            name: "Living-room TV".into(),
            grant_types: vec![GrantType::DeviceCode],
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            scopes: vec![],
            default_scopes: vec![],
            public: true,
            first_party: false,
            auth_method: None,
        })
        .await;
    let user = server.create_user("alice", "correct horse").await;
    let started: serde_json::Value = server
        .post_form(
            "/device/authorize",
            None,
            &[
                ("client_id", client.id.as_str()),
                ("scope", "openid profile"),
            ],
        )
        .await
        .json()
        .await
        .expect("device authorization JSON");
    let complete = started["verification_uri_complete"].as_str().unwrap();
    let device_code = started["device_code"].as_str().unwrap();
    let form = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("client_id", client.id.as_str()),
        ("device_code", device_code),
    ];
    let poll = || server.post_form("/token", None, &form);
    let pending: serde_json::Value = poll().await.json().await.unwrap();
    assert_eq!(pending["error"], "authorization_pending");

    let Some(browser) =
        Browser::start_or_skip("a_user_approves_a_device_through_the_device_page_in_chromium")
            .await
    else {
        return;
    };
    browser.goto(complete).await;
    wait_for_text(&browser, "Connect a device").await;
    browser.fill("username", "alice").await;
    browser.fill("password", "correct horse").await;
    browser.click("#continue").await;
    let page = wait_for_text(&browser, "Allow the device?").await;
    assert!(page.contains("Living-room TV"), "{page}");
    assert!(
        page.contains(started["user_code"].as_str().unwrap()),
        "shows the code to compare: {page}"
    );
    browser.click("#allow").await;
    wait_for_text(&browser, "Device connected").await;
    browser.close().await;

    server.clock.advance(5);
    let response = poll().await;
    assert_eq!(response.status(), 200);
    let tokens: serde_json::Value = response.json().await.unwrap();
    let jwks = crate::jwt::fetch_jwks(&server.http, &server.url("/keys")).await;
    let claims = crate::jwt::verify(
        tokens["id_token"].as_str().expect("an ID token"),
        &jwks,
        &server.issuer("default"),
        &client.id,
    )
    .expect("the ID token verifies");
    assert_eq!(claims["sub"], user.id.as_str());
}
