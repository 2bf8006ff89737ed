//! Rate limits (issue 7 item 2): per client at /token (per replica), per IP and per username for
//! password checks at the login form and the password grant (in the database, across replicas);
//! 429 with Retry-After; other clients, addresses and users unaffected; the window ends.

use std::sync::Arc;

use portcullis::clock::Clock;
use portcullis::config::Config;
use portcullis::http::router;
use portcullis::manage::clients::ClientRequest;
use portcullis::protocol::GrantType;
use portcullis::state::AppState;
use reqwest::StatusCode;
use tokio::net::TcpListener;

use crate::common::{assert_oauth_error, Backend, Landing, TestServer, UserAgent};
use crate::on_both_databases;

const PASSWORD: &str = "pw-ada-123";

on_both_databases!(
    token_requests_are_limited_per_client,
    login_form_is_limited_per_ip_before_the_password_is_checked,
    password_grant_and_login_share_the_per_username_limit,
    password_grant_is_limited_per_ip,
    replicas_share_the_sign_in_limits,
    buckets_do_not_name_users_or_addresses,
    disabled_limits_do_not_refuse,
    ipv6_clients_are_limited_per_64_and_mapped_ipv4_as_ipv4,
    only_failed_sign_ins_count_toward_the_per_ip_and_per_username_limits,
    all_sign_in_attempts_per_ip_have_their_own_ceiling,
    a_public_clients_token_budget_is_kept_per_address,
);

fn with_limits(per_ip: u64, per_username: u64, per_client: u64) -> impl FnOnce(&mut Config) {
    move |c: &mut Config| {
        c.rate_limits.sign_in_per_ip = per_ip;
        c.rate_limits.sign_in_per_username = per_username;
        c.rate_limits.token_per_client = per_client;
        c.rate_limits.window = portcullis::config::Seconds(60);
    }
}

/// A confidential client allowed the password grant; (id, secret).
async fn password_client(server: &TestServer) -> (String, String) {
    let (client, secret) = server
        .register(ClientRequest {
            server_id: "default".into(),
            name: "Trusted app".into(),
            grant_types: vec![GrantType::Password],
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            scopes: vec![],
            default_scopes: vec![],
            public: false,
            first_party: true,
            auth_method: None,
        })
        .await;
    (client.id, secret.expect("secret").expose().to_string())
}

async fn password_grant(
    base: &str,
    http: &reqwest::Client,
    client: &(String, String),
    username: &str,
    password: &str,
) -> reqwest::Response {
    http.post(format!("{base}/token"))
        .basic_auth(&client.0, Some(&client.1))
        .form(&[
            ("grant_type", "password"),
            ("username", username),
            ("password", password),
        ])
        .send()
        .await
        .expect("token request")
}

/// Assert a 429 with a Retry-After of 1..=window seconds; returns it.
fn retry_after(response: &reqwest::Response) -> u64 {
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let seconds: u64 = response.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("Retry-After in seconds");
    assert!((1..=60).contains(&seconds), "Retry-After {seconds}");
    seconds
}

async fn assert_limited_token_response(response: reqwest::Response) {
    retry_after(&response);
    assert_oauth_error(response, 429, "temporarily_unavailable").await;
}

/// Move the clock to the start of a window, so a test's requests all fall in one window.
fn align(server: &TestServer) {
    let now = server.clock.now();
    server.clock.set(now - now % 60 + 60);
}

async fn token_requests_are_limited_per_client(backend: Backend) {
    let server = TestServer::start_with(backend, with_limits(100, 100, 3)).await;
    align(&server);
    let (a, a_secret) = server.service_client("default", &[]).await;
    let (b, b_secret) = server.service_client("default", &[]).await;
    let a = (a.id.as_str(), a_secret.expose());
    let b = (b.id.as_str(), b_secret.expose());
    let form = [("grant_type", "client_credentials")];
    for _ in 0..3 {
        assert_eq!(
            server.post_form("/token", Some(a), &form).await.status(),
            200
        );
    }
    assert_limited_token_response(server.post_form("/token", Some(a), &form).await).await;
    // Another client has its own budget.
    assert_eq!(
        server.post_form("/token", Some(b), &form).await.status(),
        200
    );
    // Failed authentication spends nobody's budget: the limit is after authentication.
    let wrong = (b.0, "not-the-secret");
    assert_eq!(
        server
            .post_form("/token", Some(wrong), &form)
            .await
            .status(),
        401
    );
    assert_eq!(
        server.post_form("/token", Some(b), &form).await.status(),
        200
    );
    // The next window.
    server.clock.advance(60);
    assert_eq!(
        server.post_form("/token", Some(a), &form).await.status(),
        200
    );
}

/// The login page of a fresh authorization request: (agent, page URL, page HTML).
async fn login_page(server: &TestServer, client_id: &str) -> (UserAgent, url::Url, String) {
    let agent = UserAgent::new();
    let url = format!(
        "{}/authorize?client_id={client_id}&redirect_uri=http://127.0.0.1:9/cb&response_type=code&scope=openid&state=s",
        server.base
    );
    match agent.navigate(&url, &server.base).await {
        Landing::Page { url, status, body } => {
            assert_eq!(status, 200, "{body}");
            (agent, url, body)
        }
        Landing::Client(url) => panic!("expected the login page, got {url}"),
    }
}

/// Submit the login form (not following redirects); the raw response.
async fn submit_login(
    agent: &UserAgent,
    page_url: &url::Url,
    page: &str,
    username: &str,
    password: &str,
) -> reqwest::Response {
    let action = crate::common::agent::attribute(page, "<form method=\"post\" action=\"", "\"")
        .expect("form action")
        // minijinja escapes `/` and `&` in attributes.
        .replace("&#x2f;", "/")
        .replace("&amp;", "&");
    let mut form = crate::common::agent::hidden_inputs(page);
    form.push(("username".into(), username.into()));
    form.push(("password".into(), password.into()));
    agent
        .http
        .post(page_url.join(&action).expect("action"))
        .form(&form)
        .send()
        .await
        .expect("submit login")
}

async fn login_form_is_limited_per_ip_before_the_password_is_checked(backend: Backend) {
    let server = TestServer::start_with(backend, with_limits(2, 100, 0)).await;
    align(&server);
    server.create_user("ada", PASSWORD).await;
    server.create_user("bob", "pw-bob-123").await;
    let (client, _) = server
        .web_client("http://127.0.0.1:9/cb", true, false)
        .await;
    let (agent, url, mut page) = login_page(&server, &client.id).await;
    for username in ["ada", "bob"] {
        let response = submit_login(&agent, &url, &page, username, "wrong").await;
        assert_eq!(response.status(), 401);
        page = response.text().await.expect("page");
    }
    // The third attempt from this address is refused, even with the right password, and the
    // form is shown again, politely.
    let response = submit_login(&agent, &url, &page, "ada", PASSWORD).await;
    retry_after(&response);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let page_429 = response.text().await.expect("page");
    assert!(page_429.contains("Too many sign-in attempts"), "{page_429}");
    assert!(
        page_429.contains("name=\"password\""),
        "the form is shown again"
    );
    // The refused attempt did not count as a failure toward the lockout.
    let ada = server
        .store()
        .user_by_username("ada")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ada.failed_logins, 1);
    // The window passes: the right password signs in.
    server.clock.advance(60);
    let response = submit_login(&agent, &url, &page_429, "ada", PASSWORD).await;
    assert_eq!(response.status(), 303, "signed in and redirected");
}

async fn password_grant_and_login_share_the_per_username_limit(backend: Backend) {
    let server = TestServer::start_with(backend, with_limits(100, 2, 0)).await;
    align(&server);
    server.create_user("ada", PASSWORD).await;
    server.create_user("bob", "pw-bob-123").await;
    let app = password_client(&server).await;
    for _ in 0..2 {
        let r = password_grant(&server.base, &server.http, &app, "ada", "wrong").await;
        assert_oauth_error(r, 400, "invalid_grant").await;
    }
    let r = password_grant(&server.base, &server.http, &app, "ada", PASSWORD).await;
    assert_limited_token_response(r).await;
    // Usernames are counted as the user would type them again: case and spaces aside.
    let r = password_grant(&server.base, &server.http, &app, " ADA ", PASSWORD).await;
    assert_limited_token_response(r).await;
    // Another user is unaffected.
    let r = password_grant(&server.base, &server.http, &app, "bob", "pw-bob-123").await;
    assert_eq!(r.status(), 200);
    // The login form counts toward the same limit.
    let (client, _) = server
        .web_client("http://127.0.0.1:9/cb", true, false)
        .await;
    let (agent, url, page) = login_page(&server, &client.id).await;
    let response = submit_login(&agent, &url, &page, "ada", PASSWORD).await;
    retry_after(&response);
    // The limit is not the lockout: the window passes and the user signs in.
    server.clock.advance(60);
    let r = password_grant(&server.base, &server.http, &app, "ada", PASSWORD).await;
    assert_eq!(r.status(), 200);
}

async fn password_grant_is_limited_per_ip(backend: Backend) {
    let server = TestServer::start_with(backend, with_limits(2, 100, 0)).await;
    align(&server);
    let app = password_client(&server).await;
    for username in ["u1", "u2"] {
        let r = password_grant(&server.base, &server.http, &app, username, "x").await;
        assert_oauth_error(r, 400, "invalid_grant").await;
    }
    let r = password_grant(&server.base, &server.http, &app, "u3", "x").await;
    assert_limited_token_response(r).await;
}

/// A second replica: its own AppState (own in-memory limits, own audit writer) and listener on
/// the same database and clock.
async fn replica(server: &TestServer) -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let config: Config = (*server.state.config).clone();
    let clock: Arc<dyn Clock> = Arc::new(server.clock.clone());
    let store = portcullis::cli::serve::open(&config, clock.as_ref())
        .await
        .expect("open store");
    let state = AppState::new(config, store, clock);
    let app = router(state);
    let task = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .expect("serve");
    });
    (format!("http://{addr}"), task)
}

async fn replicas_share_the_sign_in_limits(backend: Backend) {
    let server = TestServer::start_with(backend, with_limits(100, 2, 0)).await;
    align(&server);
    server.create_user("ada", PASSWORD).await;
    let app = password_client(&server).await;
    let (second, task) = replica(&server).await;
    let r = password_grant(&server.base, &server.http, &app, "ada", "wrong").await;
    assert_oauth_error(r, 400, "invalid_grant").await;
    let r = password_grant(&second, &server.http, &app, "ada", "wrong").await;
    assert_oauth_error(r, 400, "invalid_grant").await;
    // Two attempts in all: both replicas refuse the third.
    let r = password_grant(&server.base, &server.http, &app, "ada", PASSWORD).await;
    assert_limited_token_response(r).await;
    let r = password_grant(&second, &server.http, &app, "ada", PASSWORD).await;
    assert_limited_token_response(r).await;
    task.abort();
}

async fn buckets_do_not_name_users_or_addresses(backend: Backend) {
    let server = TestServer::start_with(backend, with_limits(100, 100, 0)).await;
    let app = password_client(&server).await;
    let r = password_grant(&server.base, &server.http, &app, "ada.lovelace", "x").await;
    assert_oauth_error(r, 400, "invalid_grant").await;
    let buckets = crate::audit::all_rows(&server, "SELECT bucket FROM rate_limits").await;
    // All attempts and failures from the address, failures for the username, and the write
    // an unknown username costs (as a known one costs its attempt).
    assert_eq!(buckets.len(), 4, "{buckets:?}");
    for bucket in buckets {
        assert!(
            !bucket.contains("ada") && !bucket.contains("127.0.0.1"),
            "{bucket}"
        );
    }
}

async fn disabled_limits_do_not_refuse(backend: Backend) {
    let server = TestServer::start_with(backend, |c| {
        with_limits(1, 1, 1)(c);
        c.rate_limits.enabled = false;
    })
    .await;
    let (a, secret) = server.service_client("default", &[]).await;
    let app = password_client(&server).await;
    for _ in 0..3 {
        let form = [("grant_type", "client_credentials")];
        let r = server
            .post_form("/token", Some((&a.id, secret.expose())), &form)
            .await;
        assert_eq!(r.status(), 200);
        let r = password_grant(&server.base, &server.http, &app, "ada", "x").await;
        assert_eq!(r.status(), 400);
    }
}

/// A password grant from `client` as seen through a trusted proxy (the test's own address).
async fn password_grant_from(
    server: &TestServer,
    app: &(String, String),
    client: &str,
    username: &str,
) -> reqwest::Response {
    server
        .http
        .post(server.url("/token"))
        .basic_auth(&app.0, Some(&app.1))
        .header("x-forwarded-for", client)
        .form(&[
            ("grant_type", "password"),
            ("username", username),
            ("password", "wrong"),
        ])
        .send()
        .await
        .expect("token request")
}

/// One IPv6 subscriber gets a /64 (RFC 6177, RFC 7421): counting per address would give it
/// 2^64 buckets. Addresses of one /64 share a bucket; an IPv4-mapped IPv6 address
/// (`::ffff:a.b.c.d`, RFC 4291 §2.5.5.2) counts as its IPv4 address.
async fn ipv6_clients_are_limited_per_64_and_mapped_ipv4_as_ipv4(backend: Backend) {
    let server = TestServer::start_with(backend, |c| {
        with_limits(2, 100, 0)(c);
        c.http.trusted_proxies = portcullis::config::TrustedProxies::parse(&["127.0.0.1"]).unwrap();
    })
    .await;
    align(&server);
    let app = password_client(&server).await;
    for (client, user) in [("2001:db8:1:2::1", "u1"), ("2001:db8:1:2:ffff::9", "u2")] {
        let r = password_grant_from(&server, &app, client, user).await;
        assert_oauth_error(r, 400, "invalid_grant").await;
    }
    let r = password_grant_from(&server, &app, "2001:db8:1:2:abcd::3", "u3").await;
    assert_limited_token_response(r).await;
    // The next /64 is another subscriber.
    let r = password_grant_from(&server, &app, "2001:db8:1:3::1", "u4").await;
    assert_oauth_error(r, 400, "invalid_grant").await;
    // IPv4 and its mapped form are one client.
    let r = password_grant_from(&server, &app, "192.0.2.7", "u5").await;
    assert_oauth_error(r, 400, "invalid_grant").await;
    let r = password_grant_from(&server, &app, "::ffff:192.0.2.7", "u6").await;
    assert_oauth_error(r, 400, "invalid_grant").await;
    let r = password_grant_from(&server, &app, "192.0.2.7", "u7").await;
    assert_limited_token_response(r).await;
    // Another IPv4 address is not affected.
    let r = password_grant_from(&server, &app, "192.0.2.8", "u8").await;
    assert_oauth_error(r, 400, "invalid_grant").await;
}

/// An office behind one NAT address signs in all at once at 9 a.m.: successful password checks
/// do not count toward `sign_in_per_ip` nor `sign_in_per_username`, failed ones do.
async fn only_failed_sign_ins_count_toward_the_per_ip_and_per_username_limits(backend: Backend) {
    let server = TestServer::start_with(backend, with_limits(2, 2, 0)).await;
    align(&server);
    server.create_user("ada", PASSWORD).await;
    let app = password_client(&server).await;
    for _ in 0..5 {
        let r = password_grant(&server.base, &server.http, &app, "ada", PASSWORD).await;
        assert_eq!(r.status(), 200);
    }
    // The login form: a successful sign-in does not count either.
    let (client, _) = server
        .web_client("http://127.0.0.1:9/cb", true, false)
        .await;
    for _ in 0..3 {
        let (agent, url, page) = login_page(&server, &client.id).await;
        let response = submit_login(&agent, &url, &page, "ada", PASSWORD).await;
        assert_eq!(response.status(), 303, "signed in");
    }
    // Failures count: two, then the limit.
    for username in ["u1", "u2"] {
        let r = password_grant(&server.base, &server.http, &app, username, "x").await;
        assert_oauth_error(r, 400, "invalid_grant").await;
    }
    let r = password_grant(&server.base, &server.http, &app, "ada", PASSWORD).await;
    assert_limited_token_response(r).await;
}

/// `sign_in_attempts_per_ip` counts every password check from an address, right or wrong: the
/// ceiling on what one address may cost, well above the failures it may make.
async fn all_sign_in_attempts_per_ip_have_their_own_ceiling(backend: Backend) {
    let server = TestServer::start_with(backend, |c| {
        with_limits(100, 100, 0)(c);
        c.rate_limits.sign_in_attempts_per_ip = 3;
    })
    .await;
    align(&server);
    server.create_user("ada", PASSWORD).await;
    let app = password_client(&server).await;
    for _ in 0..2 {
        let r = password_grant(&server.base, &server.http, &app, "ada", PASSWORD).await;
        assert_eq!(r.status(), 200);
    }
    let r = password_grant(&server.base, &server.http, &app, "bob", "x").await;
    assert_oauth_error(r, 400, "invalid_grant").await;
    let r = password_grant(&server.base, &server.http, &app, "ada", PASSWORD).await;
    assert_limited_token_response(r).await;
    server.clock.advance(60);
    let r = password_grant(&server.base, &server.http, &app, "ada", PASSWORD).await;
    assert_eq!(r.status(), 200);
}

/// A public client is named by a `client_id` anyone can send: its `/token` budget is kept per
/// address, so one sender cannot spend it for every user of the app. A confidential client's
/// budget stays its own wherever it calls from.
async fn a_public_clients_token_budget_is_kept_per_address(backend: Backend) {
    let server = TestServer::start_with(backend, |c| {
        with_limits(100, 100, 2)(c);
        c.http.trusted_proxies = portcullis::config::TrustedProxies::parse(&["127.0.0.1"]).unwrap();
    })
    .await;
    align(&server);
    let (spa, _) = server
        .register(ClientRequest {
            server_id: "default".into(),
            name: "spa".into(),
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            redirect_uris: vec!["http://127.0.0.1:9/cb".into()],
            post_logout_redirect_uris: vec![],
            scopes: vec![],
            default_scopes: vec![],
            public: true,
            first_party: false,
            auth_method: None,
        })
        .await;
    let refresh_from = |from: &'static str| {
        let (http, url, id) = (server.http.clone(), server.url("/token"), spa.id.clone());
        async move {
            http.post(url)
                .header("x-forwarded-for", from)
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", "not-a-token"),
                    ("client_id", id.as_str()),
                ])
                .send()
                .await
                .expect("token request")
        }
    };
    for _ in 0..2 {
        assert_oauth_error(refresh_from("198.51.100.1").await, 400, "invalid_grant").await;
    }
    assert_limited_token_response(refresh_from("198.51.100.1").await).await;
    // Another address still has its budget.
    assert_oauth_error(refresh_from("198.51.100.2").await, 400, "invalid_grant").await;
    // A confidential client's budget is the client's, from any address.
    let (service, secret) = server.service_client("default", &[]).await;
    for from in ["198.51.100.1", "198.51.100.2", "198.51.100.3"] {
        let response = server
            .http
            .post(server.url("/token"))
            .basic_auth(&service.id, Some(secret.expose()))
            .header("x-forwarded-for", from)
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .expect("token request");
        if from == "198.51.100.3" {
            assert_limited_token_response(response).await;
        } else {
            assert_eq!(response.status(), 200);
        }
    }
}
