//! The device authorization grant (RFC 8628): a device gets a device code and a user code, the
//! user approves on `/device` (a browser without JavaScript: reqwest with a cookie jar), the
//! device polls `/token`. The whole flow with the `oauth2` crate's device flow; each answer of
//! §3.5 and every bad input on its own.

use std::time::Duration;

use oauth2::basic::BasicClient;
use oauth2::{
    ClientId, DeviceAuthorizationUrl, Scope, StandardDeviceAuthorizationResponse, TokenResponse,
    TokenUrl,
};
use portcullis::manage::clients::ClientRequest;
use portcullis::protocol::GrantType;
use portcullis::security::hash_secret;
use portcullis::store::AuditFilter;
use serde_json::Value;

use crate::common::agent::attribute;
use crate::common::{assert_oauth_error, Backend, Landing, TestServer, UserAgent};
use crate::jwt::{fetch_jwks, verify};
use crate::on_both_databases;

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// A public device client (a TV app) on `server_id`, allowed refresh tokens.
async fn device_client(server: &TestServer, server_id: &str) -> String {
    let (client, _) = server
        .register(ClientRequest {
            server_id: server_id.into(),
            name: "Living-room TV".into(),
            grant_types: vec![GrantType::DeviceCode, GrantType::RefreshToken],
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            scopes: vec!["videos.watch".into()],
            default_scopes: vec![],
            public: true,
            first_party: false,
            auth_method: None,
        })
        .await;
    client.id
}

/// `POST {prefix}/device/authorize` as the public client `client_id`: the JSON answer.
async fn start(server: &TestServer, prefix: &str, client_id: &str, scope: &str) -> Value {
    let response = server
        .post_form(
            &format!("{prefix}/device/authorize"),
            None,
            &[("client_id", client_id), ("scope", scope)],
        )
        .await;
    assert_eq!(response.status(), 200, "device authorization");
    assert_eq!(response.headers()["cache-control"], "no-store");
    response.json().await.expect("device authorization JSON")
}

async fn poll(
    server: &TestServer,
    prefix: &str,
    client_id: &str,
    device_code: &str,
) -> reqwest::Response {
    server
        .post_form(
            &format!("{prefix}/token"),
            None,
            &[
                ("grant_type", DEVICE_GRANT),
                ("client_id", client_id),
                ("device_code", device_code),
            ],
        )
        .await
}

fn field(v: &Value, name: &str) -> String {
    v[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {v}"))
        .to_string()
}

/// Open `url` (a verification URI), sign in with the entry form if asked, entering `typed` as
/// the user code: the page that follows (the decision page for a good code).
async fn enter_code(
    agent: &UserAgent,
    server: &TestServer,
    url: &str,
    typed: &str,
) -> (reqwest::Url, reqwest::StatusCode, String) {
    let (page_url, status, body) = agent.navigate(url, &server.base).await.page();
    assert_eq!(status, 200, "entry page: {body}");
    assert!(body.contains("name=\"user_code\""), "{body}");
    assert!(!body.contains("<script"), "no JavaScript: {body}");
    let mut fields = vec![("user_code", typed)];
    if body.contains("name=\"password\"") {
        fields.extend([("username", "ada"), ("password", "correct horse")]);
    }
    agent
        .submit(&page_url, &body, &fields, &server.base)
        .await
        .page()
}

/// From the decision page: allow or deny; the final page.
async fn decide(
    agent: &UserAgent,
    server: &TestServer,
    page: (reqwest::Url, reqwest::StatusCode, String),
    decision: &str,
) -> (reqwest::StatusCode, String) {
    let (url, status, body) = page;
    assert_eq!(status, 200, "decision page: {body}");
    assert!(body.contains("Living-room TV"), "names the client: {body}");
    assert!(body.contains("id=\"allow\""), "{body}");
    let (_, status, body) = agent
        .submit(&url, &body, &[("decision", decision)], &server.base)
        .await
        .page();
    (status, body)
}

/// The user approves the request `started` on `/device`, typing the code as shown.
async fn approve(server: &TestServer, started: &Value) {
    let agent = UserAgent::new();
    let page = enter_code(
        &agent,
        server,
        &field(started, "verification_uri"),
        &field(started, "user_code"),
    )
    .await;
    let (status, body) = decide(&agent, server, page, "allow").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Device connected"), "{body}");
}

async fn device_flow_with_the_oauth2_crate(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.create_user("ada", "correct horse").await;
    let client_id = device_client(&server, "default").await;
    let client = BasicClient::new(ClientId::new(client_id.clone()))
        .set_device_authorization_url(
            DeviceAuthorizationUrl::new(server.url("/device/authorize")).unwrap(),
        )
        .set_token_uri(TokenUrl::new(server.url("/token")).unwrap())
        .set_auth_type(oauth2::AuthType::RequestBody);
    let details: StandardDeviceAuthorizationResponse = client
        .exchange_device_code()
        .add_scope(Scope::new("openid".into()))
        .add_scope(Scope::new("videos.watch".into()))
        .request_async(&server.http)
        .await
        .expect("device authorization");
    assert_eq!(details.interval(), Duration::from_secs(5));
    assert_eq!(details.expires_in(), Duration::from_secs(600));
    let user_code = details.user_code().secret().clone();
    assert_eq!(user_code.len(), 9, "BCDF-GHJK: {user_code}");
    assert_eq!(&user_code[4..5], "-");
    assert!(user_code
        .chars()
        .filter(|c| *c != '-')
        .all(|c| "BCDFGHJKLMNPQRSTVWXZ".contains(c)));
    assert_eq!(details.verification_uri().as_str(), server.url("/device"));
    let complete = details
        .verification_uri_complete()
        .expect("verification_uri_complete")
        .secret()
        .clone();

    // The device polls while the user, with the complete URI (the code pre-filled), signs in
    // and approves. Until the user is done, the server's clock stands still, so every poll
    // comes too soon (`slow_down`, and the client's interval grows with the server's) and
    // nothing expires however slow the machine; then a sleep moves the clock by the interval
    // the client was told, and the next poll gets the tokens.
    let polls = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let approved = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clock = server.clock.clone();
    let counted = polls.clone();
    let user_done = approved.clone();
    let device = client.exchange_device_access_token(&details).request_async(
        &server.http,
        move |interval| {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if user_done.load(std::sync::atomic::Ordering::SeqCst) {
                clock.advance(interval.as_secs() as i64);
            }
            tokio::time::sleep(Duration::from_millis(20))
        },
        None,
    );
    let waited = polls.clone();
    let user = async {
        // The user approves only once the device has been told to wait, so the flow always
        // shows the polling (the first poll could otherwise come after the approval).
        while waited.load(std::sync::atomic::Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let agent = UserAgent::new();
        let (url, status, body) = agent.navigate(&complete, &server.base).await.page();
        assert_eq!(status, 200);
        // Pre-filled from verification_uri_complete.
        let prefilled =
            attribute(&body, "name=\"user_code\" value=\"", "\"").expect("user_code input");
        assert_eq!(prefilled.replace('-', ""), user_code.replace('-', ""));
        let page = agent
            .submit(
                &url,
                &body,
                &[
                    ("user_code", prefilled.as_str()),
                    ("username", "ada"),
                    ("password", "correct horse"),
                ],
                &server.base,
            )
            .await
            .page();
        let decided = decide(&agent, &server, page, "allow").await;
        approved.store(true, std::sync::atomic::Ordering::SeqCst);
        decided
    };
    let (token, (status, _)) = tokio::time::timeout(Duration::from_secs(60), async {
        tokio::join!(device, user)
    })
    .await
    .expect("the flow finishes");
    assert_eq!(status, 200);
    let token = token.expect("tokens for the device");
    assert!(
        polls.load(std::sync::atomic::Ordering::SeqCst) >= 1,
        "the device was told to wait at least once"
    );
    assert!(
        token.refresh_token().is_some(),
        "a refresh token, as for the code flow"
    );
    let jwks = fetch_jwks(&server.http, &server.url("/keys")).await;
    let claims = verify(
        token.access_token().secret(),
        &jwks,
        &server.base,
        "api://default",
    )
    .expect("access token verifies");
    let ada = server
        .store()
        .user_by_username("ada")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claims["sub"], ada.id.as_str());
    assert_eq!(claims["client_id"], client_id.as_str());
    assert_eq!(claims["scope"], "openid videos.watch");
}

async fn device_flow_on_a_named_server_issues_an_id_token_with_openid(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.create_server("tv").await;
    server.create_user("ada", "correct horse").await;
    let client_id = device_client(&server, "tv").await;
    let prefix = "/oauth2/tv";
    let discovery: Value = server
        .http
        .get(server.url(&format!("{prefix}/.well-known/openid-configuration")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        discovery["device_authorization_endpoint"],
        server.url(&format!("{prefix}/device/authorize"))
    );
    let started = start(&server, prefix, &client_id, "openid videos.watch").await;
    assert_eq!(
        field(&started, "verification_uri"),
        server.url(&format!("{prefix}/device"))
    );
    approve(&server, &started).await;
    let response = poll(&server, prefix, &client_id, &field(&started, "device_code")).await;
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.unwrap();
    let jwks = fetch_jwks(&server.http, &server.url(&format!("{prefix}/keys"))).await;
    let issuer = server.issuer("tv");
    let id_token =
        verify(&field(&tokens, "id_token"), &jwks, &issuer, &client_id).expect("ID token");
    let ada = server
        .store()
        .user_by_username("ada")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(id_token["sub"], ada.id.as_str());
    assert!(id_token["auth_time"].as_i64().is_some());
    assert!(tokens["refresh_token"].as_str().is_some());
    // The refresh token works like the code flow's.
    let refreshed = server
        .post_form(
            &format!("{prefix}/token"),
            None,
            &[
                ("grant_type", "refresh_token"),
                ("client_id", &client_id),
                ("refresh_token", &field(&tokens, "refresh_token")),
            ],
        )
        .await;
    assert_eq!(refreshed.status(), 200);
}

async fn discovery_lists_both_new_grant_types(backend: Backend) {
    let server = TestServer::start(backend).await;
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let doc: Value = server
            .http
            .get(server.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let grants: Vec<&str> = doc["grant_types_supported"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(grants.contains(&DEVICE_GRANT), "{path}: {grants:?}");
        assert!(
            grants.contains(&"urn:ietf:params:oauth:grant-type:token-exchange"),
            "{path}: {grants:?}"
        );
        assert_eq!(
            doc["device_authorization_endpoint"],
            server.url("/device/authorize"),
            "{path}"
        );
    }
}

async fn polling_before_a_decision_gets_authorization_pending(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client_id = device_client(&server, "default").await;
    let started = start(&server, "", &client_id, "videos.watch").await;
    let device_code = field(&started, "device_code");
    for _ in 0..3 {
        let response = poll(&server, "", &client_id, &device_code).await;
        assert_oauth_error(response, 400, "authorization_pending").await;
        server.clock.advance(5);
    }
}

async fn polling_faster_than_the_interval_gets_slow_down_and_five_more_seconds(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client_id = device_client(&server, "default").await;
    let started = start(&server, "", &client_id, "videos.watch").await;
    let other = start(&server, "", &client_id, "videos.watch").await;
    let device_code = field(&started, "device_code");
    let at = |server: &TestServer| server.clock_now();
    let t0 = at(&server);
    assert_oauth_error(
        poll(&server, "", &client_id, &device_code).await,
        400,
        "authorization_pending",
    )
    .await;
    server.clock.set(t0 + 1);
    assert_oauth_error(
        poll(&server, "", &client_id, &device_code).await,
        400,
        "slow_down",
    )
    .await;
    // The interval is now 10 s: 6 s after the last poll is still too soon, and adds 5 s more.
    server.clock.set(t0 + 7);
    assert_oauth_error(
        poll(&server, "", &client_id, &device_code).await,
        400,
        "slow_down",
    )
    .await;
    // 15 s now.
    server.clock.set(t0 + 7 + 14);
    assert_oauth_error(
        poll(&server, "", &client_id, &device_code).await,
        400,
        "slow_down",
    )
    .await;
    server.clock.set(t0 + 7 + 14 + 20);
    assert_oauth_error(
        poll(&server, "", &client_id, &device_code).await,
        400,
        "authorization_pending",
    )
    .await;
    // Per device code: another device of the same client polls at its own 5 s.
    let other_code = field(&other, "device_code");
    assert_oauth_error(
        poll(&server, "", &client_id, &other_code).await,
        400,
        "authorization_pending",
    )
    .await;
    server.clock.advance(5);
    assert_oauth_error(
        poll(&server, "", &client_id, &other_code).await,
        400,
        "authorization_pending",
    )
    .await;
}

async fn a_denied_request_gets_access_denied(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.create_user("ada", "correct horse").await;
    let client_id = device_client(&server, "default").await;
    let started = start(&server, "", &client_id, "videos.watch").await;
    let agent = UserAgent::new();
    let page = enter_code(
        &agent,
        &server,
        &field(&started, "verification_uri"),
        &field(&started, "user_code"),
    )
    .await;
    let (status, body) = decide(&agent, &server, page, "deny").await;
    assert_eq!(status, 200);
    assert!(body.contains("Request denied"), "{body}");
    let response = poll(&server, "", &client_id, &field(&started, "device_code")).await;
    assert_oauth_error(response, 400, "access_denied").await;
    server.state.audit.flush().await;
    let denied = server
        .store()
        .audit_events(&AuditFilter {
            kind: Some("device_denied".into()),
            limit: 10,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(denied.len(), 1);
}

/// The server's access policies decide the device grant too (issue 17): with a policy whose
/// rules cover other grants only, an approved device gets `invalid_grant` naming the policy;
/// a rule for the device grant lets it through with the rule's lifetime.
async fn access_policies_decide_the_device_grant(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.create_user("ada", "correct horse").await;
    let client_id = device_client(&server, "default").await;
    crate::policy::ok(
        &server,
        "policy create --server default --name tv --all-clients",
    );
    crate::policy::ok(
        &server,
        "rule create --server default --policy tv --name passwords-only \
         --grant-type password --everyone",
    );
    let started = start(&server, "", &client_id, "videos.watch").await;
    approve(&server, &started).await;
    let response = poll(&server, "", &client_id, &field(&started, "device_code")).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant", "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap_or_default()
            .contains("tv"),
        "{body}"
    );

    crate::policy::ok(
        &server,
        "rule create --server default --policy tv --name devices \
         --grant-type device_code --everyone --access-token-ttl 5m",
    );
    server.clock.advance(2);
    let started = start(&server, "", &client_id, "videos.watch").await;
    approve(&server, &started).await;
    let response = poll(&server, "", &client_id, &field(&started, "device_code")).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["expires_in"], 300, "the rule's lifetime: {body}");
}

async fn an_expired_device_code_gets_expired_token_and_its_user_code_is_refused(backend: Backend) {
    let server = TestServer::start_with(backend, |c| {
        c.tokens.device_code_ttl = portcullis::config::Seconds(120);
    })
    .await;
    server.create_user("ada", "correct horse").await;
    let client_id = device_client(&server, "default").await;
    let started = start(&server, "", &client_id, "videos.watch").await;
    assert_eq!(started["expires_in"], 120);
    server.clock.advance(120);
    let response = poll(&server, "", &client_id, &field(&started, "device_code")).await;
    assert_oauth_error(response, 400, "expired_token").await;
    let agent = UserAgent::new();
    let (_, status, body) = enter_code(
        &agent,
        &server,
        &server.url("/device"),
        &field(&started, "user_code"),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("not valid"), "{body}");
}

async fn a_device_code_is_redeemed_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.create_user("ada", "correct horse").await;
    let client_id = device_client(&server, "default").await;
    let started = start(&server, "", &client_id, "videos.watch").await;
    approve(&server, &started).await;
    let device_code = field(&started, "device_code");
    // Two polls at once: exactly one gets the tokens.
    let (a, b) = tokio::join!(
        poll(&server, "", &client_id, &device_code),
        poll(&server, "", &client_id, &device_code)
    );
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [200, 400]);
    server.clock.advance(5);
    let again = poll(&server, "", &client_id, &device_code).await;
    assert_oauth_error(again, 400, "invalid_grant").await;
}

async fn a_user_code_is_single_use(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.create_user("ada", "correct horse").await;
    let client_id = device_client(&server, "default").await;
    let started = start(&server, "", &client_id, "videos.watch").await;
    approve(&server, &started).await;
    let agent = UserAgent::new();
    let (_, status, body) = enter_code(
        &agent,
        &server,
        &server.url("/device"),
        &field(&started, "user_code"),
    )
    .await;
    assert_eq!(status, 400, "a used code is refused: {body}");
    assert!(!body.contains("id=\"allow\""));
}

async fn user_codes_are_entered_in_any_case_with_or_without_the_hyphen(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.create_user("ada", "correct horse").await;
    let client_id = device_client(&server, "default").await;
    let started = start(&server, "", &client_id, "videos.watch").await;
    let typed = field(&started, "user_code").replace('-', "").to_lowercase();
    let agent = UserAgent::new();
    let page = enter_code(&agent, &server, &server.url("/device"), &typed).await;
    let (status, _) = decide(&agent, &server, page, "allow").await;
    assert_eq!(status, 200);
    let response = poll(&server, "", &client_id, &field(&started, "device_code")).await;
    assert_eq!(response.status(), 200);
}

async fn a_wrong_user_code_is_refused_and_changes_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.create_user("ada", "correct horse").await;
    let client_id = device_client(&server, "default").await;
    let started = start(&server, "", &client_id, "videos.watch").await;
    let agent = UserAgent::new();
    for typed in ["BCDF-GHJK", "not a code", "AAAA-AAAA", ""] {
        let (_, status, body) = enter_code(&agent, &server, &server.url("/device"), typed).await;
        assert_eq!(status, 400, "{typed}: {body}");
        assert!(body.contains("not valid"), "{body}");
    }
    server.clock.advance(5);
    let response = poll(&server, "", &client_id, &field(&started, "device_code")).await;
    assert_oauth_error(response, 400, "authorization_pending").await;
    server.state.audit.flush().await;
    let failed = server
        .store()
        .audit_events(&AuditFilter {
            kind: Some("device_user_code_failed".into()),
            limit: 10,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(failed.len(), 4);
}

async fn wrong_user_codes_are_limited_per_session(backend: Backend) {
    let server = TestServer::start_with(backend, |c| {
        c.rate_limits.device_user_code_per_session = 2;
        c.rate_limits.device_user_code_per_ip = 0;
    })
    .await;
    server.create_user("ada", "correct horse").await;
    let client_id = device_client(&server, "default").await;
    let started = start(&server, "", &client_id, "videos.watch").await;
    let agent = UserAgent::new();
    for _ in 0..2 {
        let (_, status, _) = enter_code(&agent, &server, &server.url("/device"), "XXXX-XXXX").await;
        assert_eq!(status, 400);
    }
    // The third wrong code, and even the right one, wait for the window to end.
    for typed in ["XXXX-XXXX".to_string(), field(&started, "user_code")] {
        let (_, status, body) = enter_code(&agent, &server, &server.url("/device"), &typed).await;
        assert_eq!(status, 429, "{body}");
        assert!(body.contains("Too many attempts"), "{body}");
    }
    // Another browser (another session) is not limited by this one's mistakes.
    let other = UserAgent::new();
    let page = enter_code(
        &other,
        &server,
        &server.url("/device"),
        &field(&started, "user_code"),
    )
    .await;
    assert_eq!(page.1, 200, "{}", page.2);
    // A new window, a new budget.
    server.clock.advance(60);
    let (_, status, _) = enter_code(
        &agent,
        &server,
        &server.url("/device"),
        &field(&started, "user_code"),
    )
    .await;
    assert_eq!(status, 200);
}

async fn wrong_user_codes_are_limited_per_address(backend: Backend) {
    let server = TestServer::start_with(backend, |c| {
        c.rate_limits.device_user_code_per_ip = 3;
        c.rate_limits.device_user_code_per_session = 0;
    })
    .await;
    server.create_user("ada", "correct horse").await;
    // Each guess from a new browser (a new session): the address still counts them all.
    for n in 0..4 {
        let agent = UserAgent::new();
        let (_, status, _) = enter_code(&agent, &server, &server.url("/device"), "XXXX-XXXX").await;
        assert_eq!(status, if n < 3 { 400 } else { 429 }, "guess {n}");
    }
    server.state.audit.flush().await;
    let limited = server
        .store()
        .audit_events(&AuditFilter {
            kind: Some("rate_limited".into()),
            limit: 10,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(limited.len(), 1);
    assert!(limited[0].detail.contains("device_user_code_per_ip"));
}

async fn the_verification_forms_need_their_csrf_tokens(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.create_user("ada", "correct horse").await;
    let client_id = device_client(&server, "default").await;
    let started = start(&server, "", &client_id, "videos.watch").await;
    let agent = UserAgent::new();
    let (url, _, body) = agent
        .navigate(&server.url("/device"), &server.base)
        .await
        .page();
    let user_code = field(&started, "user_code");
    for csrf in ["", "forged"] {
        let response = agent
            .http
            .post(url.clone())
            .form(&[
                ("step", "code"),
                ("csrf_token", csrf),
                ("user_code", user_code.as_str()),
                ("username", "ada"),
                ("password", "correct horse"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "entry form with csrf `{csrf}`");
    }
    // The decision form's token is bound to the code: one for another code does not do.
    let page = agent
        .submit(
            &url,
            &body,
            &[
                ("user_code", user_code.as_str()),
                ("username", "ada"),
                ("password", "correct horse"),
            ],
            &server.base,
        )
        .await
        .page();
    let csrf = attribute(&page.2, "name=\"csrf_token\" value=\"", "\"").unwrap();
    let response = agent
        .http
        .post(url.clone())
        .form(&[
            ("step", "decide"),
            ("csrf_token", csrf.as_str()),
            ("user_code", "BCDF-GHJK"),
            ("decision", "allow"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    // Another browser cannot post this one's form.
    let stranger = UserAgent::new();
    let response = stranger
        .http
        .post(url)
        .form(&[
            ("step", "decide"),
            ("csrf_token", csrf.as_str()),
            ("user_code", user_code.as_str()),
            ("decision", "allow"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    server.clock.advance(5);
    let response = poll(&server, "", &client_id, &field(&started, "device_code")).await;
    assert_oauth_error(response, 400, "authorization_pending").await;
}

async fn a_signed_in_user_only_enters_the_code(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.create_user("ada", "correct horse").await;
    let client_id = device_client(&server, "default").await;
    let agent = UserAgent::new();
    let first = start(&server, "", &client_id, "videos.watch").await;
    let page = enter_code(
        &agent,
        &server,
        &server.url("/device"),
        &field(&first, "user_code"),
    )
    .await;
    decide(&agent, &server, page, "allow").await;
    // Same browser, a second device: the SSO session, no password asked.
    let second = start(&server, "", &client_id, "videos.watch").await;
    let (url, status, body) = agent
        .navigate(&server.url("/device"), &server.base)
        .await
        .page();
    assert_eq!(status, 200);
    assert!(!body.contains("name=\"password\""), "{body}");
    assert!(body.contains("ada"), "{body}");
    let page = agent
        .submit(
            &url,
            &body,
            &[("user_code", &field(&second, "user_code"))],
            &server.base,
        )
        .await
        .page();
    let (status, _) = decide(&agent, &server, page, "allow").await;
    assert_eq!(status, 200);
    let response = poll(&server, "", &client_id, &field(&second, "device_code")).await;
    assert_eq!(response.status(), 200);
}

async fn a_wrong_password_on_the_device_page_signs_nobody_in(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.create_user("ada", "correct horse").await;
    let client_id = device_client(&server, "default").await;
    let started = start(&server, "", &client_id, "videos.watch").await;
    let agent = UserAgent::new();
    let (url, _, body) = agent
        .navigate(&server.url("/device"), &server.base)
        .await
        .page();
    let landing = agent
        .submit(
            &url,
            &body,
            &[
                ("user_code", &field(&started, "user_code")),
                ("username", "ada"),
                ("password", "wrong"),
            ],
            &server.base,
        )
        .await;
    let Landing::Page { status, body, .. } = landing else {
        panic!("a page")
    };
    assert_eq!(status, 401);
    assert!(body.contains("Incorrect username or password"), "{body}");
    assert!(body.contains("name=\"password\""), "still asks: {body}");
}

/// A bad request: what it is, Basic credentials, the form, the status and error it gets.
type Case<'a> = (
    &'a str,
    Option<(&'a str, &'a str)>,
    Vec<(&'a str, &'a str)>,
    u16,
    &'a str,
);

async fn device_authorization_errors(backend: Backend) {
    let server = TestServer::start(backend).await;
    let device = device_client(&server, "default").await;
    let (service, secret) = server.service_client("default", &["a"]).await;
    let secret = secret.expose().to_string();
    let (service_id, device) = (service.id.as_str(), device.as_str());
    let cases: Vec<Case> = vec![
        (
            "a client without the grant",
            Some((service_id, secret.as_str())),
            vec![],
            400,
            "unauthorized_client",
        ),
        (
            "an unknown client",
            None,
            vec![("client_id", "nobody")],
            401,
            "invalid_client",
        ),
        ("no client at all", None, vec![], 401, "invalid_client"),
        (
            "a wrong secret",
            Some((service_id, "wrong")),
            vec![],
            401,
            "invalid_client",
        ),
        (
            "a scope it may not have",
            None,
            vec![("client_id", device), ("scope", "admin")],
            400,
            "invalid_scope",
        ),
        (
            "a malformed scope",
            None,
            vec![("client_id", device), ("scope", "a\"b")],
            400,
            "invalid_scope",
        ),
    ];
    for (case, basic, form, status, code) in cases {
        let response = server.post_form("/device/authorize", basic, &form).await;
        assert_eq!(response.status().as_u16(), status, "{case}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], code, "{case}: {body}");
    }
    let response = server
        .http
        .get(server.url("/device/authorize"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    // Nothing was stored by any of them.
    let other = start(&server, "", device, "videos.watch").await;
    assert!(other["device_code"].is_string());
}

async fn device_token_request_errors(backend: Backend) {
    let server = TestServer::start(backend).await;
    let device = device_client(&server, "default").await;
    let other_device = device_client(&server, "default").await;
    let started = start(&server, "", &device, "videos.watch").await;
    let device_code = field(&started, "device_code");
    // No device_code.
    let response = server
        .post_form(
            "/token",
            None,
            &[("grant_type", DEVICE_GRANT), ("client_id", &device)],
        )
        .await;
    assert_oauth_error(response, 400, "invalid_request").await;
    // An unknown device code.
    assert_oauth_error(
        poll(&server, "", &device, "made-up").await,
        400,
        "invalid_grant",
    )
    .await;
    // Another client's device code: unknown to this one, and its state untouched.
    assert_oauth_error(
        poll(&server, "", &other_device, &device_code).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_oauth_error(
        poll(&server, "", &device, &device_code).await,
        400,
        "authorization_pending",
    )
    .await;
    // A client not registered for the grant.
    let (service, secret) = server.service_client("default", &["a"]).await;
    let response = server
        .post_form(
            "/token",
            Some((&service.id, secret.expose())),
            &[("grant_type", DEVICE_GRANT), ("device_code", &device_code)],
        )
        .await;
    assert_oauth_error(response, 400, "unauthorized_client").await;
    // On another server, the code does not exist.
    server.create_server("elsewhere").await;
    let response = poll(&server, "/oauth2/elsewhere", &device, &device_code).await;
    assert_oauth_error(response, 401, "invalid_client").await;
}

async fn device_and_user_codes_are_stored_hashed(backend: Backend) {
    let server = TestServer::start(backend).await;
    let device = device_client(&server, "default").await;
    let started = start(&server, "", &device, "videos.watch").await;
    let device_code = field(&started, "device_code");
    assert!(device_code.len() >= 43, "256 bits, base64url");
    let user_code = field(&started, "user_code").replace('-', "");
    let hash = hash_secret(&device_code);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    let user_hex: String = hash_secret(&user_code)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let (sql_hash, sql_user) = match backend {
        Backend::Sqlite => (format!("X'{hex}'"), format!("X'{user_hex}'")),
        Backend::Postgres => (
            format!("'\\x{hex}'::bytea"),
            format!("'\\x{user_hex}'::bytea"),
        ),
    };
    // Marks the row found by both hashes, so a count of 1 means both matched.
    server
        .execute_sql(&format!(
            "UPDATE device_codes SET scope = 'found' WHERE device_code_hash = {sql_hash} AND user_code_hash = {sql_user}"
        ))
        .await;
    server.clock.advance(5);
    shows_the_row_found_by_both_hashes(&server, &started).await;
}

/// The row edited behind the server's back shows its new scope on the decision page: the
/// request was found by the hashes of both codes.
async fn shows_the_row_found_by_both_hashes(server: &TestServer, started: &Value) {
    server.create_user("ada", "correct horse").await;
    let agent = UserAgent::new();
    let (_, status, body) = enter_code(
        &agent,
        server,
        &field(started, "verification_uri"),
        &field(started, "user_code"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("found"), "{body}");
}

async fn device_metrics_count_polls_by_outcome(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.create_user("ada", "correct horse").await;
    let device = device_client(&server, "default").await;
    let started = start(&server, "", &device, "videos.watch").await;
    let device_code = field(&started, "device_code");
    poll(&server, "", &device, &device_code).await;
    poll(&server, "", &device, &device_code).await;
    approve(&server, &started).await;
    poll(&server, "", &device, &device_code).await;
    let text = server
        .http
        .get(server.metrics_url())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "portcullis_device_polls_total{outcome=\"authorization_pending\"} 1",
        "portcullis_device_polls_total{outcome=\"slow_down\"} 1",
        "portcullis_device_polls_total{outcome=\"issued\"} 1",
    ] {
        assert!(text.contains(line), "{line} in\n{text}");
    }
    assert!(
        text.contains(&format!("grant_type=\"{DEVICE_GRANT}\"")),
        "{text}"
    );
}

/// `client create|update --grant-type device_code` (the URN's short name) on the command line.
async fn the_cli_registers_device_clients_by_the_short_name(backend: Backend) {
    use crate::common::replicas::cli;
    let server = TestServer::start(backend).await;
    let env = vec![("PORTCULLIS_DATABASE_URL".to_string(), server.db.url.clone())];
    let created = cli(
        &env,
        &[
            "client",
            "create",
            "--name",
            "TV",
            "--public",
            "--grant-type",
            "device_code",
            "--grant-type",
            "refresh_token",
            "--scope",
            "videos.watch",
        ],
        "",
    )
    .expect("client create");
    let grants = created["grant_types"].to_string();
    assert!(grants.contains(DEVICE_GRANT), "{grants}");
    let id = field(&created, "client_id");
    let started = start(&server, "", &id, "videos.watch").await;
    assert!(started["user_code"].is_string());
    // The URN itself is accepted too; a made-up name is refused, with a message on stderr.
    let updated = cli(
        &env,
        &["client", "update", &id, "--grant-type", DEVICE_GRANT],
        "",
    )
    .expect("update");
    assert_eq!(updated["grant_types"], serde_json::json!([DEVICE_GRANT]));
    let refused = cli(
        &env,
        &["client", "update", &id, "--grant-type", "device"],
        "",
    )
    .unwrap_err();
    assert!(refused.contains("unknown grant type"), "{refused}");
}

/// Housekeeping deletes device requests past their expiry, and only those.
async fn expired_device_codes_are_deleted_by_housekeeping(backend: Backend) {
    let server = TestServer::start(backend).await;
    let device = device_client(&server, "default").await;
    let old = start(&server, "", &device, "videos.watch").await;
    server.clock.advance(300);
    let young = start(&server, "", &device, "videos.watch").await;
    server.clock.advance(300);
    let config = server.state.config.clone();
    let report = portcullis::housekeeping::run(
        server.store(),
        &config.housekeeping,
        config.audit.retention,
        server.clock_now(),
    )
    .await
    .unwrap();
    assert_eq!(report.device_codes, 1, "{report:?}");
    assert_oauth_error(
        poll(&server, "", &device, &field(&old, "device_code")).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_oauth_error(
        poll(&server, "", &device, &field(&young, "device_code")).await,
        400,
        "authorization_pending",
    )
    .await;
}

/// The decision form counts codes like the entry form: its CSRF token is no secret to the
/// browser it was made for (a hash of that browser's cookie and the code), so guessing through
/// it must hit the same limit.
async fn guessing_through_the_decision_form_is_limited_too(backend: Backend) {
    use std::sync::Arc;
    let server = TestServer::start_with(backend, |c| {
        c.rate_limits.device_user_code_per_session = 2;
        c.rate_limits.device_user_code_per_ip = 0;
    })
    .await;
    server.create_user("ada", "correct horse").await;
    let client_id = device_client(&server, "default").await;
    let started = start(&server, "", &client_id, "videos.watch").await;
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let http = crate::common::http_client()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let agent = UserAgent { http };
    // Signed in, with no code entered yet (an empty code is one wrong guess).
    let (_, status, _) = enter_code(&agent, &server, &server.url("/device"), "").await;
    assert_eq!(status, 400);
    let base: reqwest::Url = server.base.parse().unwrap();
    let cookies = reqwest::cookie::CookieStore::cookies(&*jar, &base).unwrap();
    let browser = cookies
        .to_str()
        .unwrap()
        .split("; ")
        .find_map(|c| c.strip_prefix("portcullis_browser="))
        .expect("the browser cookie")
        .to_string();
    let decide_with = |code: &str| {
        let csrf =
            portcullis::authorize::interaction::csrf_token("device-decision", code, &browser);
        agent
            .http
            .post(server.url("/device"))
            .form(&[
                ("step", "decide"),
                ("csrf_token", csrf.as_str()),
                ("user_code", code),
                ("decision", "allow"),
            ])
            .send()
    };
    let guess = decide_with("XXXXXXXX").await.unwrap();
    assert_eq!(
        guess.status(),
        400,
        "a wrong guess, the second of the window"
    );
    let guess = decide_with("XXXXXXXB").await.unwrap();
    assert_eq!(guess.status(), 429, "the third: limited");
    let right = field(&started, "user_code").replace('-', "");
    let guess = decide_with(&right).await.unwrap();
    assert_eq!(
        guess.status(),
        429,
        "even the right code waits for the window"
    );
    server.clock.advance(5);
    let response = poll(&server, "", &client_id, &field(&started, "device_code")).await;
    assert_oauth_error(response, 400, "authorization_pending").await;
}

on_both_databases!(
    device_flow_with_the_oauth2_crate,
    device_flow_on_a_named_server_issues_an_id_token_with_openid,
    discovery_lists_both_new_grant_types,
    polling_before_a_decision_gets_authorization_pending,
    polling_faster_than_the_interval_gets_slow_down_and_five_more_seconds,
    a_denied_request_gets_access_denied,
    access_policies_decide_the_device_grant,
    an_expired_device_code_gets_expired_token_and_its_user_code_is_refused,
    a_device_code_is_redeemed_once,
    a_user_code_is_single_use,
    user_codes_are_entered_in_any_case_with_or_without_the_hyphen,
    a_wrong_user_code_is_refused_and_changes_nothing,
    wrong_user_codes_are_limited_per_session,
    wrong_user_codes_are_limited_per_address,
    the_verification_forms_need_their_csrf_tokens,
    a_signed_in_user_only_enters_the_code,
    a_wrong_password_on_the_device_page_signs_nobody_in,
    device_authorization_errors,
    device_token_request_errors,
    device_and_user_codes_are_stored_hashed,
    device_metrics_count_polls_by_outcome,
    the_cli_registers_device_clients_by_the_short_name,
    expired_device_codes_are_deleted_by_housekeeping,
    guessing_through_the_decision_form_is_limited_too,
);
