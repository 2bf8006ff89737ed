//! The pages: login (CSRF, generic failure, session fixation), consent (allow remembered,
//! deny, prompt=consent, prompt=none), the implicit flow, and RP-initiated logout.

use serde_json::Value;

use crate::common::agent::{fragment_param, hidden_inputs, query_param};
use crate::common::rp::{Rp, PASSWORD, REDIRECT, USER};
use crate::common::{Backend, Landing};
use crate::on_both_databases;

async fn login_form_without_a_valid_csrf_token_is_refused(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    let (url, _, body) = rp.go("response_type=code&scope=openid").await.page();
    let fields = hidden_inputs(&body);
    let interaction = fields
        .iter()
        .find(|(k, _)| k == "interaction")
        .unwrap()
        .1
        .clone();
    for csrf in [None, Some("forged")] {
        let mut form = vec![
            ("interaction", interaction.as_str()),
            ("username", USER),
            ("password", PASSWORD),
        ];
        if let Some(c) = csrf {
            form.push(("csrf_token", c));
        }
        let response = rp
            .agent
            .http
            .post(url.join("login").unwrap())
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403);
        assert!(
            response.headers().get("set-cookie").is_none(),
            "no session without CSRF token"
        );
    }
    // Another browser (no browser cookie) with the right fields: refused too.
    let stranger = crate::common::http();
    let mut form: Vec<(String, String)> = fields.clone();
    form.push(("username".into(), USER.into()));
    form.push(("password".into(), PASSWORD.into()));
    let response = stranger
        .post(url.join("login").unwrap())
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
}

async fn wrong_password_gets_a_generic_message(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    for (user, password) in [(USER, "wrong"), ("nobody", "wrong"), ("", "")] {
        let landing = rp.go("response_type=code&scope=openid").await;
        let (_, status, body) = rp
            .agent
            .sign_in(landing, user, password, &rp.server.base)
            .await
            .page();
        assert_eq!(status, 401);
        assert!(body.contains("Incorrect username or password."), "{user}");
    }
}

async fn page_headers_forbid_framing_and_caching(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    let response = rp
        .agent
        .http
        .get(rp.authorize_url("response_type=code&scope=openid"))
        .send()
        .await
        .unwrap();
    let login = response.headers()["location"].to_str().unwrap().to_string();
    let page = rp.agent.http.get(&login).send().await.unwrap();
    let h = page.headers();
    assert_eq!(h["x-frame-options"], "DENY");
    assert!(h["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    assert_eq!(h["cache-control"], "no-store");
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
}

async fn signing_in_issues_a_new_session_id(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    let fixed = "portcullis_session=attacker-chosen-value";
    let response = rp
        .agent
        .http
        .get(rp.authorize_url("response_type=code&scope=openid"))
        .header("cookie", fixed)
        .send()
        .await
        .unwrap();
    let landing = rp.agent.follow(response, &rp.server.base).await;
    let (url, _, body) = landing.page();
    let mut form = hidden_inputs(&body);
    form.push(("username".into(), USER.into()));
    form.push(("password".into(), PASSWORD.into()));
    let response = rp
        .agent
        .http
        .post(url.join("login").unwrap())
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(cookie.starts_with("portcullis_session="));
    assert!(!cookie.contains("attacker-chosen-value"));
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
}

async fn consent_is_asked_remembered_and_can_be_denied(backend: Backend) {
    let rp = Rp::start(backend, false).await;
    // prompt=none before any consent, after signing in: consent_required.
    let landing = rp.go("response_type=code&scope=openid%20email").await;
    let (url, status, body) = rp
        .agent
        .sign_in(landing, USER, PASSWORD, &rp.server.base)
        .await
        .page();
    assert_eq!(status, 200);
    assert!(url.path().ends_with("/consent"));
    assert!(body.contains("See your email address"));
    // Deny: access_denied back to the client.
    let back = rp
        .agent
        .submit(&url, &body, &[("decision", "deny")], &rp.server.base)
        .await
        .client_url();
    assert_eq!(
        query_param(&back, "error").as_deref(),
        Some("access_denied")
    );
    let back = rp
        .go("response_type=code&scope=openid%20email&prompt=none")
        .await
        .client_url();
    assert_eq!(
        query_param(&back, "error").as_deref(),
        Some("consent_required")
    );
    // Allow: a code, and the consent is remembered.
    let (url, _, body) = rp
        .go("response_type=code&scope=openid%20email")
        .await
        .page();
    let back = rp
        .agent
        .submit(&url, &body, &[("decision", "allow")], &rp.server.base)
        .await
        .client_url();
    assert!(query_param(&back, "code").is_some());
    let back = rp
        .go("response_type=code&scope=openid%20email&prompt=none")
        .await
        .client_url();
    assert!(query_param(&back, "code").is_some(), "consent remembered");
    // A wider scope asks again; prompt=consent asks again.
    assert!(matches!(
        rp.go("response_type=code&scope=openid%20email%20phone")
            .await,
        Landing::Page { .. }
    ));
    assert!(matches!(
        rp.go("response_type=code&scope=openid%20email&prompt=consent")
            .await,
        Landing::Page { .. }
    ));
}

async fn implicit_id_token_token_in_the_fragment(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    let url = rp
        .authorize("response_type=id_token%20token&scope=openid%20email&nonce=n1&state=i1")
        .await;
    assert!(
        url.query().is_none(),
        "implicit tokens never travel in the query"
    );
    assert_eq!(fragment_param(&url, "state").as_deref(), Some("i1"));
    assert_eq!(
        fragment_param(&url, "iss").as_deref(),
        Some(rp.server.base.as_str())
    );
    let at = fragment_param(&url, "access_token").unwrap();
    let id_token = fragment_param(&url, "id_token").unwrap();
    let claims = rp.id_claims(&id_token).await;
    assert_eq!(claims["nonce"], "n1");
    assert_eq!(
        claims["at_hash"],
        portcullis::tokens::id_token::half_hash(&at).as_str()
    );
    // With an access token, email goes through /userinfo.
    assert!(claims.get("email").is_none());
    let info: Value = rp.userinfo(&at).await.json().await.unwrap();
    assert_eq!(info["email"], "ada@example.com");
    // id_token alone: the scope's claims are in the ID token.
    let url = rp
        .authorize("response_type=id_token&scope=openid%20email&nonce=n2")
        .await;
    let claims = rp
        .id_claims(&fragment_param(&url, "id_token").unwrap())
        .await;
    assert_eq!(claims["email"], "ada@example.com");
    assert!(fragment_param(&url, "access_token").is_none());
}

/// oidcc-ensure-request-without-nonce-fails (implicit), and no tokens in the query.
async fn implicit_requires_nonce_and_fragment(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    let url = rp
        .go("response_type=id_token&scope=openid&state=x")
        .await
        .client_url();
    assert_eq!(
        fragment_param(&url, "error").as_deref(),
        Some("invalid_request")
    );
    let url = rp
        .go("response_type=token&scope=openid&response_mode=query&state=x")
        .await
        .client_url();
    assert_eq!(
        query_param(&url, "error").as_deref(),
        Some("invalid_request")
    );
}

async fn form_post_response_mode_renders_an_autosubmitting_form(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    let landing = rp
        .go("response_type=code&scope=openid&response_mode=form_post&state=fp")
        .await;
    let (_, status, body) = rp
        .agent
        .sign_in(landing, USER, PASSWORD, &rp.server.base)
        .await
        .page();
    assert_eq!(status, 200);
    assert!(
        body.contains(&format!("action=\"{}\"", REDIRECT.replace('/', "&#x2f;")))
            || body.contains(&format!("action=\"{REDIRECT}\"")),
        "{body}"
    );
    let fields = hidden_inputs(&body);
    assert!(fields.iter().any(|(k, _)| k == "code"));
    assert!(fields.iter().any(|(k, v)| k == "state" && v == "fp"));
}

async fn logout_with_id_token_hint_ends_the_session_and_redirects(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    let tokens = rp.code_flow("").await;
    let hint = tokens["id_token"].as_str().unwrap();
    let target = format!("{REDIRECT}/logged-out");
    let url = format!(
        "{}/logout?id_token_hint={hint}&post_logout_redirect_uri={target}&state=bye",
        rp.server.base
    );
    let response = rp.agent.http.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(
        response.headers()["location"],
        format!("{target}?state=bye").as_str()
    );
    // Signed out: prompt=none now needs a login.
    let back = rp
        .go("response_type=code&scope=openid&prompt=none")
        .await
        .client_url();
    assert_eq!(
        query_param(&back, "error").as_deref(),
        Some("login_required")
    );
}

async fn logout_refuses_bad_redirects_and_hints(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    let tokens = rp.code_flow("").await;
    let hint = tokens["id_token"].as_str().unwrap();
    let tampered = format!("{}x", &hint[..hint.len() - 1]);
    for query in [
        format!("id_token_hint={hint}&post_logout_redirect_uri=https://evil.example/"),
        format!("id_token_hint={tampered}&post_logout_redirect_uri={REDIRECT}/logged-out"),
        format!("post_logout_redirect_uri={REDIRECT}/logged-out"),
    ] {
        let response = rp
            .agent
            .http
            .get(format!("{}/logout?{query}", rp.server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{query}");
        assert!(response.headers().get("location").is_none());
    }
    // Still signed in after the refused attempts.
    let back = rp
        .go("response_type=code&scope=openid&prompt=none")
        .await
        .client_url();
    assert!(query_param(&back, "code").is_some());
    // Without a hint: a confirmation page; confirming signs out.
    let (url, status, body) = rp
        .agent
        .navigate(&format!("{}/logout", rp.server.base), &rp.server.base)
        .await
        .page();
    assert_eq!(status, 200);
    assert!(body.contains("Sign out?"));
    let (_, status, body) = rp
        .agent
        .submit(&url, &body, &[("confirm", "yes")], &rp.server.base)
        .await
        .page();
    assert_eq!(status, 200);
    assert!(body.contains("signed out"));
    let back = rp
        .go("response_type=code&scope=openid&prompt=none")
        .await
        .client_url();
    assert_eq!(
        query_param(&back, "error").as_deref(),
        Some("login_required")
    );
}

/// RP-initiated logout without post_logout_redirect_uri, with only state, and with a
/// registered URI carrying a query (kept, state appended).
async fn logout_variants(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    let tokens = rp.code_flow("").await;
    let hint = tokens["id_token"].as_str().unwrap().to_string();
    // No post_logout_redirect_uri: the signed-out page.
    let response = rp
        .agent
        .http
        .get(format!(
            "{}/logout?id_token_hint={hint}&state=s",
            rp.server.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("signed out"));
    // A registered URI with a query keeps it.
    let (client, _) = rp
        .server
        .register(portcullis::manage::clients::ClientRequest {
            server_id: "default".into(),
            name: "q".into(),
            grant_types: vec![portcullis::protocol::GrantType::AuthorizationCode],
            redirect_uris: vec![REDIRECT.into()],
            post_logout_redirect_uris: vec![format!("{REDIRECT}?from=op")],
            scopes: vec![],
            default_scopes: vec![],
            public: false,
            first_party: true,
            auth_method: None,
        })
        .await;
    let target = format!("{REDIRECT}%3Ffrom%3Dop");
    let response = rp
        .agent
        .http
        .get(format!(
            "{}/logout?client_id={}&post_logout_redirect_uri={target}&state=q1",
            rp.server.base, client.id
        ))
        .send()
        .await
        .unwrap();
    // Without a hint the user confirms first; the page carries the redirect through.
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    let url = url::Url::parse(&format!("{}/logout", rp.server.base)).unwrap();
    let response = {
        let mut form = hidden_inputs(&body);
        form.push(("confirm".into(), "yes".into()));
        rp.agent.http.post(url).form(&form).send().await.unwrap()
    };
    assert_eq!(response.status(), 303);
    assert_eq!(
        response.headers()["location"],
        format!("{REDIRECT}?from=op&state=q1").as_str()
    );
}

/// RFC 8252 §7.3: a native app registered with a loopback IP literal may use any port.
async fn native_app_loopback_redirect_may_use_any_port(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    let (client, _) = rp
        .server
        .register(portcullis::manage::clients::ClientRequest {
            server_id: "default".into(),
            name: "native".into(),
            grant_types: vec![portcullis::protocol::GrantType::AuthorizationCode],
            redirect_uris: vec!["http://127.0.0.1/callback".into()],
            post_logout_redirect_uris: vec![],
            scopes: vec![],
            default_scopes: vec![],
            public: true,
            first_party: true,
            auth_method: None,
        })
        .await;
    let challenge = portcullis::protocol::pkce::s256(&"n".repeat(43));
    let url = format!(
        "{}/authorize?client_id={}&redirect_uri=http://127.0.0.1:53682/callback&response_type=code&scope=openid&code_challenge={challenge}&code_challenge_method=S256",
        rp.server.base, client.id
    );
    let landing = rp.agent.navigate(&url, &rp.server.base).await;
    let back = rp
        .agent
        .sign_in(landing, USER, PASSWORD, &rp.server.base)
        .await
        .client_url();
    assert!(
        back.as_str()
            .starts_with("http://127.0.0.1:53682/callback?code="),
        "{back}"
    );
    // Another path on the loopback host is not registered: an error page.
    let url = url.replace("/callback&", "/other&");
    let response = rp.agent.http.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.headers().get("location").is_none());
}

/// Browser apps call /userinfo cross-origin; the pages are not CORS-enabled.
async fn userinfo_allows_cross_origin_calls_and_pages_do_not(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    let preflight = rp
        .server
        .http
        .request(reqwest::Method::OPTIONS, rp.server.url("/userinfo"))
        .header("origin", "https://spa.example")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
    let page = rp
        .agent
        .http
        .get(rp.authorize_url("response_type=code&scope=openid"))
        .header("origin", "https://spa.example")
        .send()
        .await
        .unwrap();
    assert!(page.headers().get("access-control-allow-origin").is_none());
}

/// A pending sign-in expires (15 minutes), and belongs to the server that started it.
async fn interactions_expire_and_stay_with_their_server(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    rp.server.create_server("tenant").await;
    let (url, _, body) = rp.go("response_type=code&scope=openid").await.page();
    // Posted to another server's login page: unknown there, no session started.
    let mut form = hidden_inputs(&body);
    form.push(("username".into(), USER.into()));
    form.push(("password".into(), PASSWORD.into()));
    let foreign = rp
        .agent
        .http
        .post(rp.server.url("/oauth2/tenant/login"))
        .form(&form)
        .send()
        .await
        .unwrap();
    // The interaction is looked up per server: unknown at the tenant.
    assert_eq!(foreign.status(), 400);
    assert!(foreign.headers().get("set-cookie").is_none());
    assert!(foreign.headers().get("location").is_none());
    // Expired: an error page, never a redirect or a session.
    rp.server.clock.advance(15 * 60 + 1);
    let response = rp
        .agent
        .http
        .post(url.join("login").unwrap())
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.headers().get("location").is_none());
    assert!(response.headers().get("set-cookie").is_none());
    assert!(response.text().await.unwrap().contains("expired"));
}

/// OIDC Core §3.1.2.1: with an `id_token_hint`, the End-User signed in must be the one the
/// hint names; if another user signs in, the client gets login_required, never a code for
/// someone else.
async fn signing_in_as_another_user_than_the_id_token_hint_is_login_required(backend: Backend) {
    let rp = Rp::start(backend, true).await;
    rp.server.create_user("bob", "pw-bob-123").await;
    let tokens = rp.code_flow("").await;
    let hint = tokens["id_token"].as_str().unwrap().to_string();
    // Another browser, nobody signed in: the login page, where bob signs in.
    let agent = crate::common::UserAgent::new();
    let landing = agent
        .navigate(
            &rp.authorize_url(&format!(
                "response_type=code&scope=openid&state=h1&id_token_hint={hint}"
            )),
            &rp.server.base,
        )
        .await;
    let url = agent
        .sign_in(landing, "bob", "pw-bob-123", &rp.server.base)
        .await
        .client_url();
    assert!(url.as_str().starts_with(REDIRECT), "{url}");
    assert_eq!(query_param(&url, "code"), None, "{url}");
    assert_eq!(
        query_param(&url, "error").as_deref(),
        Some("login_required"),
        "{url}"
    );
    assert_eq!(query_param(&url, "state").as_deref(), Some("h1"));
    // Control: the user the hint names signs in and gets a code.
    let agent = crate::common::UserAgent::new();
    let landing = agent
        .navigate(
            &rp.authorize_url(&format!(
                "response_type=code&scope=openid&state=h2&id_token_hint={hint}"
            )),
            &rp.server.base,
        )
        .await;
    let url = agent
        .sign_in(landing, USER, PASSWORD, &rp.server.base)
        .await
        .client_url();
    assert!(query_param(&url, "code").is_some(), "{url}");
}

on_both_databases!(
    signing_in_as_another_user_than_the_id_token_hint_is_login_required,
    interactions_expire_and_stay_with_their_server,
    logout_variants,
    native_app_loopback_redirect_may_use_any_port,
    userinfo_allows_cross_origin_calls_and_pages_do_not,
    login_form_without_a_valid_csrf_token_is_refused,
    wrong_password_gets_a_generic_message,
    page_headers_forbid_framing_and_caching,
    signing_in_issues_a_new_session_id,
    consent_is_asked_remembered_and_can_be_denied,
    implicit_id_token_token_in_the_fragment,
    implicit_requires_nonce_and_fragment,
    form_post_response_mode_renders_an_autosubmitting_form,
    logout_with_id_token_hint_ends_the_session_and_redirects,
    logout_refuses_bad_redirects_and_hints,
);
